/* super: the supervisor — owner of its trees. It turns spawn requests into
 * trees, drives the fork-server, propagates cancellation downward with
 * per-node deadlines and escalation, and collects each tree's report.
 * Statuses come from the fork-server's exit statuses, never from the broker. */
#ifndef ARBOR_SUPER_H
#define ARBOR_SUPER_H

#include "fsrv.h"
#include "nodelog.h"
#include "spec.h"

/* fds the supervisor keeps for itself (ZeroMQ, logs, timers) besides its
 * workers' four each; --max-processes is lowered to fit RLIMIT_NOFILE. */
#define SUPER_FDS_RESERVED 256

typedef struct {
    const char *name;
    const char *broker;
    spec_limits_t limits;
    int keep_finished;   /* finished trees kept for status queries */
    int stop_deadline_ms; /* on SIGTERM: longest wait for trees to end */
    int max_trees;       /* trees running at once */
    int max_processes;   /* worker processes at once, over all trees */
    int spawn_rate;      /* forks per second (a fork bomb's brake) */
    nodelog_cfg_t logs;  /* --log-lines, --log-bytes, --log-dir */
} super_cfg_t;

typedef struct super_t super_t;

/* fsrv must already run (started before any thread). */
super_t *super_new(const super_cfg_t *cfg, fsrv_t fsrv);
void super_destroy(super_t **self);
/* Run until SIGTERM/SIGINT (trees are cancelled first) or a fatal error.
 * Returns the process exit code. */
int super_run(super_t *self);

#endif
