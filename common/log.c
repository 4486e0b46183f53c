#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static char s_prog[64] = "arbor";
static log_level_t s_level = ALOG_INFO;
static const char *s_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *prog, log_level_t level)
{
    snprintf(s_prog, sizeof s_prog, "%s", prog);
    s_level = level;
    const char *env = getenv("ARBOR_LOG_LEVEL");
    for (int i = 0; env && i < 4; i++)
        if (strcasecmp(env, s_names[i]) == 0)
            s_level = (log_level_t) i;
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    if (level < s_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s[%d] %s: ", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, s_prog, (int) getpid(),
                     s_names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t) n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t) n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t) n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    /* One write per line so lines from many processes never interleave. */
    ssize_t w = write(STDERR_FILENO, line, (size_t) n);
    (void) w;
}
