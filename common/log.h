/* log: one line per event on stderr, written with a single write(2) so that
 * lines of many processes never interleave. Two formats:
 *   text  "TIME PROG[PID] LEVEL: message  key=value..."
 *   json  {"ts":"2025-01-31T12:00:00.123Z","prog","pid","level","msg",...keys}
 * (one object per line; strings JSON-escaped and kept valid UTF-8).
 *
 * Fields: a line about a node or a peer carries it as a field, given
 * explicitly (log_kv, log_node, log_peer) or, for the existing messages, by
 * convention (json only: the text line already says it): a message that
 * begins "tree ID: " or "tree ID " gets the field tree=ID; "tree ID: PATH: "
 * or "tree ID: A/B ..." (a path with a '/') also node=PATH; "peer NAME "
 * or "... from NAME: ..." gets peer=NAME. */
#ifndef ARBOR_LOG_H
#define ARBOR_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* ALOG_: <syslog.h> (pulled in by czmq.h) owns the LOG_ names. */
typedef enum { ALOG_DEBUG = 0, ALOG_INFO, ALOG_WARN, ALOG_ERROR } log_level_t;
typedef enum { ALOG_TEXT = 0, ALOG_JSON } log_format_t;

/* Set the program name shown on every line and the lowest level printed.
 * The environment overrides: ARBOR_LOG_LEVEL=debug|info|warn|error and
 * ARBOR_LOG_FORMAT=text|json (unknown values are ignored). Flags parsed
 * after log_init override the environment through log_set_*. */
void log_init(const char *prog, log_level_t level);

/* "debug|info|warn|error" / "text|json" (case-insensitive): 0, or -1 when
 * the name is unknown (*out untouched). For --log-level / --log-format.
 * log_set_* also set ARBOR_LOG_LEVEL / ARBOR_LOG_FORMAT, so that child
 * processes log the same way: call them before any thread exists. */
int log_level_parse(const char *name, log_level_t *out);
int log_format_parse(const char *name, log_format_t *out);
void log_set_level(log_level_t level);
void log_set_format(log_format_t format);

/* The daemons' --log-level / --log-format flags: apply value, or print why
 * not (as "PROG: FLAG: ...") and return -1. */
int log_flag(const char *prog, const char *flag, const char *value);
#define LOG_FLAGS_HELP                                                                  \
    "      --log-level LEVEL  debug|info|warn|error (default info; $ARBOR_LOG_LEVEL)\n" \
    "      --log-format FMT   text|json (default text; $ARBOR_LOG_FORMAT)\n"
log_format_t log_format(void);

void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* With fields: kv is a NULL-terminated list of key, value pairs (NULL kv:
 * none; a NULL value skips its pair). Keys are plain words. */
void log_kv(log_level_t level, const char *const *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vkv(log_level_t level, const char *const *kv, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define log_debug(...) log_msg(ALOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(ALOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(ALOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(ALOG_ERROR, __VA_ARGS__)

/* A line about one node of one tree, or about one peer. */
#define log_node(level, tree, path, ...) \
    log_kv(level, (const char *const[]){"tree", (tree), "node", (path), NULL}, __VA_ARGS__)
#define log_peer(level, name, ...) \
    log_kv(level, (const char *const[]){"peer", (name), NULL}, __VA_ARGS__)

/* A budget of log lines for something a peer can repeat at will (bad
 * input, rejected specs): at most per_s lines a second. The rest are
 * counted; the first line allowed after them says how many were dropped
 * ("N more WHAT not logged"). Zero-initialise. */
typedef struct {
    int64_t window_ms;
    int used;
    unsigned long long dropped;
} log_budget_t;
/* True: log this one. now_ms: the caller's monotonic clock. */
bool log_budget_take(log_budget_t *b, int per_s, int64_t now_ms, const char *what);

/* Format one line into buf (no trailing NUL needed by the caller; the
 * newline included) and return its length; for tests. Never more than
 * size bytes; JSON lines stay valid JSON when cut. */
int log_format_line(char *buf, int size, log_format_t format, log_level_t level,
                    const char *const *kv, const char *msg);

#endif
