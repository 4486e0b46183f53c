/* capture: --capture FILE, a JSON-lines record of the traffic for schema
 * checks. One line per message, flushed at once:
 *   {"from": SENDER, "dir": "in"|"out", "msg": ENVELOPE}
 * "in": every received frame that parsed as JSON (valid envelope or not);
 * "out": every message the broker itself originates. */
#ifndef ARBOR_CAPTURE_H
#define ARBOR_CAPTURE_H

#include <cjson/cJSON.h>

typedef struct cap_t cap_t;

/* Opens path for appending (O_CLOEXEC). NULL with errno on failure. */
cap_t *cap_new(const char *path);
void cap_destroy(cap_t **self);

/* A received message, already parsed. */
void cap_in(cap_t *self, const char *from, const cJSON *msg);
/* A message the broker sends: text is one line of JSON (env_encode). */
void cap_out(cap_t *self, const char *text);

#endif
