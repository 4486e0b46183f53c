/* ctl: arborctl's session with the broker — a peer (common/peer.h) plus the
 * deadlines, heartbeats and SIGINT/SIGTERM handling every command needs.
 * Every wait here is bounded; a signal ends any wait at once. */
#ifndef ARBOR_CLI_CTL_H
#define ARBOR_CLI_CTL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "env.h"

#define CTL_DEFAULT_BROKER "ipc:///tmp/arbor/broker.sock"
/* The packaged broker's endpoint (systemd/arbor-broker.service): the
 * default instead of CTL_DEFAULT_BROKER when its socket exists. */
#define CTL_SYSTEM_BROKER "ipc:///run/arbor/broker.sock"
#define CTL_WELCOME_MS 3000  /* no welcome within this: broker unreachable */
#define CTL_REPLY_MS 5000    /* a request not answered within this: unreachable */
#define CTL_SNDTIMEO_MS 1000

typedef struct ctl_t ctl_t;

/* Block SIGINT/SIGTERM and route them to a signalfd. Call before any ZeroMQ
 * socket exists, so that libzmq's threads inherit the mask. 0 / -1. */
int ctl_signals_init(void);

/* Connect and wait for the broker's welcome (CTL_WELCOME_MS). NULL when it
 * did not come (message printed) or on interrupt (ctl_signalled() true). */
ctl_t *ctl_connect(const char *endpoint);
void ctl_destroy(ctl_t **self);

/* Reports received from now on stay the JSON text the supervisor wrote
 * (a cJSON_Raw item, peer_keep_raw): for a command that prints a report
 * with --json as it came, and needs only its status. query.h reads
 * and prints both kinds; query_report_tree parses one when needed. */
void ctl_keep_raw_reports(ctl_t *self);

const char *ctl_endpoint(ctl_t *self);

/* True once SIGINT or SIGTERM arrived. */
bool ctl_signalled(void);

/* Send; body is taken. Returns the message id or -1. */
int64_t ctl_send(ctl_t *self, const char *to, const char *type, cJSON *body);

/* Next message until deadline (clk_now_ms() base; 0 = no deadline), sending
 * heartbeats meanwhile. NULL on deadline or signal. Messages set aside by
 * ctl_request come first. */
env_t *ctl_recv(ctl_t *self, int64_t deadline);

/* Send and wait for the message answering it (same "re"); anything else that
 * arrives meanwhile is set aside for ctl_recv. NULL on timeout or signal. */
env_t *ctl_request(ctl_t *self, const char *to, const char *type, cJSON *body, int timeout_ms);

/* Give back a message taken with ctl_recv: the next ctl_recv returns the
 * set-aside messages first, in order. */
void ctl_unread(ctl_t *self, env_t *env);

/* Subscribe to topic and wait for the broker's "subscribed" listing it.
 * 0, or -1 on timeout or signal. */
int ctl_subscribe(ctl_t *self, const char *topic, int timeout_ms);

/* Names of the peers with role "supervisor" (a cJSON array of strings), or
 * NULL when the broker did not answer. */
cJSON *ctl_supervisors(ctl_t *self);

#endif
