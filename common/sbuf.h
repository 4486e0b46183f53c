/* sbuf: a growable text buffer for building output before one write. */
#ifndef ARBOR_SBUF_H
#define ARBOR_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data; /* always NUL-terminated once anything was added */
    size_t len;
    size_t cap;
    bool oom; /* an append failed; the text is truncated */
} sbuf_t;

/* Make room for extra more bytes at once (a size known in advance saves
 * the copies of growing); false when out of memory. */
bool sbuf_reserve(sbuf_t *self, size_t extra);
void sbuf_printf(sbuf_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_add(sbuf_t *self, const char *text, size_t len);
/* Append text with control characters replaced by '?' and at most max bytes
 * (0: no limit): report strings come from workers and must not drive the
 * terminal. */
void sbuf_add_clean(sbuf_t *self, const char *text, size_t max);
/* Append text as a JSON string: quoted, with '"', '\\' and control
 * characters escaped as cJSON escapes them (everything else, UTF-8
 * included, as it is). NULL appends null. */
void sbuf_add_jstr(sbuf_t *self, const char *text);
/* Append a number in decimal, as JSON writes an integer. */
void sbuf_add_i64(sbuf_t *self, long long v);
/* Hand the text over (never NULL unless out of memory); the buffer is reset. */
char *sbuf_take(sbuf_t *self);
void sbuf_reset(sbuf_t *self);

#endif
