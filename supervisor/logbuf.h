/* logbuf: one node's stdout and stderr, kept line by line in a bounded ring.
 *
 * Raw chunks go in as the pipes deliver them; complete lines come out dated
 * (t_ms of their first byte, passed in: there is no clock here) and numbered
 * (seq, taken from a counter the caller owns, so that the buffers of a whole
 * tree share one order and one cursor reads them all). Memory is bounded:
 * past max_lines lines or max_bytes bytes of text the oldest lines go, and
 * are counted. A line longer than line_max keeps its first line_max bytes;
 * the rest is cut and the line says how many bytes (LOGBUF_CUT_MARK). A
 * partial last line becomes a line when its stream is closed.
 *
 * Pure data: no I/O, no clock. A sink, when set, sees every line as it is
 * completed, before the ring may drop it (the log directory is written from
 * there: it gets every line, not only the kept ones). */
#ifndef ARBOR_LOGBUF_H
#define ARBOR_LOGBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGBUF_DEFAULT_LINES 1000
#define LOGBUF_DEFAULT_BYTES (256 * 1024)
#define LOGBUF_DEFAULT_LINE_MAX 4096

typedef enum { LOGBUF_STDOUT = 0, LOGBUF_STDERR = 1 } logbuf_stream_t;
#define LOGBUF_STREAMS 2
/* Stream masks for logbuf_find and logbuf_at's callers. */
#define LOGBUF_MASK(stream) (1u << (stream))
#define LOGBUF_ALL (LOGBUF_MASK(LOGBUF_STDOUT) | LOGBUF_MASK(LOGBUF_STDERR))

typedef struct {
    size_t max_lines; /* lines kept, >= 1 */
    size_t max_bytes; /* bytes of text kept, >= 1 */
    size_t line_max;  /* longest line kept whole; clamped to max_bytes */
} logbuf_limits_t;

typedef struct {
    uint64_t seq;          /* >= 1, increasing within a buffer */
    int64_t t_ms;          /* when its first byte arrived */
    logbuf_stream_t stream;
    const char *text;      /* len bytes, NUL-terminated; valid until the next append */
    size_t len;
    uint64_t cut;          /* bytes cut off its end (0: the whole line) */
} logbuf_line_t;

typedef struct logbuf_t logbuf_t;
typedef void(logbuf_sink_fn)(void *arg, const logbuf_line_t *line);

const char *logbuf_stream_name(logbuf_stream_t stream); /* "stdout", "stderr" */
/* -1 when name is neither. */
int logbuf_stream_parse(const char *name);

/* NULL limits: the defaults above. NULL when out of memory. */
logbuf_t *logbuf_new(const logbuf_limits_t *limits);
void logbuf_destroy(logbuf_t **self);

/* fn(arg, line) for every line completed from now on (NULL: none). */
void logbuf_set_sink(logbuf_t *self, logbuf_sink_fn *fn, void *arg);

/* What stream delivered at t_ms. Each line it completes takes ++*seq. */
void logbuf_append(logbuf_t *self, logbuf_stream_t stream, const char *data, size_t len,
                   int64_t t_ms, uint64_t *seq);

/* The stream ended: a partial last line (no newline) becomes a line. */
void logbuf_close(logbuf_t *self, logbuf_stream_t stream, uint64_t *seq);

/* Reading: the kept lines are indexed 0 (oldest) .. logbuf_lines() - 1. */
size_t logbuf_lines(const logbuf_t *self);
/* Index of the first kept line with seq > after in streams (a mask), or
 * logbuf_lines() when there is none. */
size_t logbuf_find(const logbuf_t *self, uint64_t after, unsigned streams);
/* Line at index i (< logbuf_lines()); its text stays valid until the next
 * append or close. */
void logbuf_at(const logbuf_t *self, size_t i, logbuf_line_t *line);
/* Next index at or after i whose line is in streams (logbuf_lines(): none). */
size_t logbuf_next(const logbuf_t *self, size_t i, unsigned streams);

/* Bytes of text kept, lines dropped so far, and the seq of the newest
 * dropped line (0: none dropped): a reader whose cursor is below it missed
 * lines. */
size_t logbuf_bytes(const logbuf_t *self);
uint64_t logbuf_dropped(const logbuf_t *self);
uint64_t logbuf_dropped_seq(const logbuf_t *self);

/* The text a cut line ends with in plain output: " [... N bytes cut]". */
#define LOGBUF_CUT_MARK " [... %llu bytes cut]"

#endif
