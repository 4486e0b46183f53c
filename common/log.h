/* log: one line per event on stderr, "TIME PROG LEVEL message". */
#ifndef ARBOR_LOG_H
#define ARBOR_LOG_H

/* ALOG_: <syslog.h> (pulled in by czmq.h) owns the LOG_ names. */
typedef enum { ALOG_DEBUG = 0, ALOG_INFO, ALOG_WARN, ALOG_ERROR } log_level_t;

/* Set the program name shown on every line and the lowest level printed.
 * ARBOR_LOG_LEVEL=debug|info|warn|error overrides the level. */
void log_init(const char *prog, log_level_t level);
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(ALOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(ALOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(ALOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(ALOG_ERROR, __VA_ARGS__)

#endif
