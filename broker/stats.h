/* stats: the broker's counters, and errors counted per code. */
#ifndef ARBOR_STATS_H
#define ARBOR_STATS_H

#include <cjson/cJSON.h>
#include <stdint.h>

/* Error codes of docs/PROTOCOL.md, in its order; "internal" last. */
#define STATS_CODES 12
extern const char *const stats_codes[STATS_CODES];

typedef struct {
    uint64_t received;  /* messages (routing id + frames) read from the socket */
    uint64_t routed;    /* forwarded to one peer */
    uint64_t published; /* messages to a topic with at least one subscriber */
    uint64_t delivered; /* copies of published messages sent */
    uint64_t swallowed; /* messages to a topic with no subscriber */
    uint64_t handled;   /* broker messages answered */
    uint64_t events;    /* events the broker published on "peers" */
    uint64_t errors;    /* error replies, all codes */
    uint64_t expired;   /* peers expired for silence */
    uint64_t dropped;   /* sends that failed (peer gone or full) */
    uint64_t auth_refused; /* with CURVE: connections refused at the handshake */
    uint64_t by_code[STATS_CODES];
} stats_t;

/* Count one error of code (unknown codes count as "internal"). */
void stats_error(stats_t *self, const char *code);
uint64_t stats_code(const stats_t *self, const char *code);
/* {"counters": {...}, "errors": {CODE: N...}}, every code present. */
cJSON *stats_json(const stats_t *self);

#endif
