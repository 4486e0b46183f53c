#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096 /* bytes of one line, newline included */
#define LOG_FIELD_MAX 512 /* bytes of one field value */
#define LOG_FIELDS_MAX 8  /* key/value pairs on one line */

static char s_prog[64] = "arbor";
static log_level_t s_level = ALOG_INFO;
static log_format_t s_format = ALOG_TEXT;
static const char *s_names[] = {"debug", "info", "warn", "error"};
static const char *s_formats[] = {"text", "json"};

int log_level_parse(const char *name, log_level_t *out)
{
    for (int i = 0; name && i < 4; i++)
        if (strcasecmp(name, s_names[i]) == 0) {
            *out = (log_level_t) i;
            return 0;
        }
    return -1;
}

int log_format_parse(const char *name, log_format_t *out)
{
    for (int i = 0; name && i < 2; i++)
        if (strcasecmp(name, s_formats[i]) == 0) {
            *out = (log_format_t) i;
            return 0;
        }
    return -1;
}

/* Also exported, so that the processes this one starts (the fork-server,
 * also when re-exec'd; workers) log the same way. */
void log_set_level(log_level_t level)
{
    if ((int) level < 0 || level > ALOG_ERROR)
        return;
    s_level = level;
    setenv("ARBOR_LOG_LEVEL", s_names[level], 1);
}

void log_set_format(log_format_t format)
{
    if ((int) format < 0 || format > ALOG_JSON)
        return;
    s_format = format;
    setenv("ARBOR_LOG_FORMAT", s_formats[format], 1);
}
log_format_t log_format(void) { return s_format; }

void log_init(const char *prog, log_level_t level)
{
    snprintf(s_prog, sizeof s_prog, "%s", prog);
    s_level = level;
    log_level_parse(getenv("ARBOR_LOG_LEVEL"), &s_level);
    log_format_parse(getenv("ARBOR_LOG_FORMAT"), &s_format);
}

/* --- building a line into a fixed buffer --------------------------------- */

typedef struct {
    char *buf;
    int len;
    int cap; /* bytes usable; the caller keeps room for the line's end */
} out_t;

static void s_raw(out_t *o, const char *text, int n)
{
    if (n > o->cap - o->len)
        n = o->cap - o->len;
    if (n > 0) {
        memcpy(o->buf + o->len, text, (size_t) n);
        o->len += n;
    }
}

static void s_fmt(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_fmt(out_t *o, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        s_raw(o, tmp, n < (int) sizeof tmp ? n : (int) sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static int s_utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    int n = (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && p[0] < 0xC2) || (n == 4 && p[0] > 0xF4))
        return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0)))
        return 0; /* overlong, surrogate */
    if (n == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90)))
        return 0;
    return n;
}

/* The JSON string body of text (no quotes): escapes, invalid UTF-8 as '?',
 * at most max bytes written, never a sequence cut in half. */
static void s_json_text(out_t *o, const char *text, int max)
{
    int limit = o->len + max < o->cap ? o->len + max : o->cap;
    const unsigned char *p = (const unsigned char *) text;
    while (*p) {
        char esc[8];
        int n = 0, take = 1;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char) *p, n = 2;
        } else if (*p == '\n') {
            memcpy(esc, "\\n", 2), n = 2;
        } else if (*p == '\t') {
            memcpy(esc, "\\t", 2), n = 2;
        } else if (*p == '\r') {
            memcpy(esc, "\\r", 2), n = 2;
        } else if (*p < 0x20) {
            n = snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else {
            take = s_utf8_len(p);
            if (take == 0)
                esc[0] = '?', n = 1, take = 1;
            else
                memcpy(esc, p, (size_t) take), n = take;
        }
        if (o->len + n > limit)
            break;
        memcpy(o->buf + o->len, esc, (size_t) n);
        o->len += n;
        p += take;
    }
}

/* Text value: control characters as '?', at most max bytes. */
static void s_plain_text(out_t *o, const char *text, int max)
{
    int limit = o->len + max < o->cap ? o->len + max : o->cap;
    for (const unsigned char *p = (const unsigned char *) text; *p && o->len < limit; p++)
        o->buf[o->len++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char) *p;
}

static bool s_word_char(char c, bool slash)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || (slash && c == '/');
}

/* A token of word characters at p, ending at one of the characters of end;
 * copied to out. Its length, or 0. */
static int s_token(const char *p, bool slash, const char *end, char *out, int size)
{
    int n = 0;
    while (s_word_char(p[n], slash))
        n++;
    if (n == 0 || n >= size || !p[n] || !strchr(end, p[n]))
        return 0;
    memcpy(out, p, (size_t) n);
    out[n] = 0;
    return n;
}

/* The fields the message's own words give (see log.h). */
static int s_convention(const char *msg, const char **kv, int nkv, char *tree, char *node,
                        char *peer)
{
    int n;
    if (strncmp(msg, "tree ", 5) == 0 && (n = s_token(msg + 5, false, ": ", tree, 65))) {
        kv[nkv++] = "tree";
        kv[nkv++] = tree;
        const char *rest = msg + 5 + n;
        /* "PATH:" always; "PATH " only when PATH has a '/' (else it could
         * be a verb: "tree ID: spawning 9 nodes") */
        if (strncmp(rest, ": ", 2) == 0 &&
            (s_token(rest + 2, true, ":", node, LOG_FIELD_MAX) ||
             (s_token(rest + 2, true, " ", node, LOG_FIELD_MAX) && strchr(node, '/')))) {
            kv[nkv++] = "node";
            kv[nkv++] = node;
        }
    } else if (strncmp(msg, "peer ", 5) == 0 && s_token(msg + 5, false, " :", peer, 129)) {
        kv[nkv++] = "peer";
        kv[nkv++] = peer;
        return nkv;
    }
    /* "... from NAME: ..." (bad input from a peer, a spec from a client) */
    const char *from = strstr(msg, " from ");
    if (from && s_token(from + 6, false, ":", peer, 129)) {
        kv[nkv++] = "peer";
        kv[nkv++] = peer;
    }
    return nkv;
}

static bool s_has_key(const char *const *kv, int n, const char *key)
{
    for (int i = 0; i + 1 < n; i += 2)
        if (strcmp(kv[i], key) == 0)
            return true;
    return false;
}

int log_format_line(char *buf, int size, log_format_t format, log_level_t level,
                    const char *const *kv, const char *msg)
{
    if (size < 64)
        return 0;
    if ((int) level < 0 || level > ALOG_ERROR)
        level = ALOG_ERROR;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    long ms = ts.tv_nsec / 1000000;

    /* Explicit fields first, then those the message's own words give. */
    const char *fields[2 * LOG_FIELDS_MAX + 6];
    int nf = 0;
    for (int i = 0; kv && kv[i] && nf < 2 * LOG_FIELDS_MAX; i += 2) {
        if (!kv[i + 1])
            continue;
        fields[nf++] = kv[i];
        fields[nf++] = kv[i + 1];
    }
    char tree[65], node[LOG_FIELD_MAX], peer[129];
    if (format == ALOG_JSON) {
        const char *conv[6];
        int nc = s_convention(msg, conv, 0, tree, node, peer);
        for (int i = 0; i < nc; i += 2)
            if (!s_has_key(fields, nf, conv[i])) {
                fields[nf++] = conv[i];
                fields[nf++] = conv[i + 1];
            }
    }

    /* Room kept for the end: '"}' + newline (json) or the newline (text). */
    out_t o = {.buf = buf, .len = 0, .cap = size - 3};
    if (format == ALOG_JSON) {
        s_fmt(&o, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"prog\":\"",
              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        s_json_text(&o, s_prog, 64);
        s_fmt(&o, "\",\"pid\":%d,\"level\":\"%s\"", (int) getpid(), s_names[level]);
        for (int i = 0; i < nf; i += 2) {
            int mark = o.len;
            s_raw(&o, ",\"", 2);
            s_json_text(&o, fields[i], 64);
            s_raw(&o, "\":\"", 3);
            s_json_text(&o, fields[i + 1], LOG_FIELD_MAX);
            s_raw(&o, "\"", 1);
            if (o.len >= o.cap - 16) { /* no room: leave the field out */
                o.len = mark;
                break;
            }
        }
        s_raw(&o, ",\"msg\":\"", 8);
        s_json_text(&o, msg, o.cap - o.len);
        o.cap = size; /* the reserved end */
        s_raw(&o, "\"}\n", 3);
    } else {
        s_fmt(&o, "%02d:%02d:%02d.%03ld %s[%d] %s: ", tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
              s_prog, (int) getpid(), s_names[level]);
        s_plain_text(&o, msg, o.cap);
        for (int i = 0; i < nf; i += 2) {
            s_raw(&o, i ? " " : "  ", i ? 1 : 2);
            s_plain_text(&o, fields[i], 64);
            s_raw(&o, "=", 1);
            s_plain_text(&o, fields[i + 1], LOG_FIELD_MAX);
        }
        o.cap = size;
        s_raw(&o, "\n", 1);
    }
    return o.len;
}

void log_vkv(log_level_t level, const char *const *kv, const char *fmt, va_list ap)
{
    if (level < s_level)
        return;
    char msg[LOG_LINE_MAX];
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        return;
    char line[LOG_LINE_MAX + 256];
    int n = log_format_line(line, (int) sizeof line, s_format, level, kv, msg);
    /* One write per line so lines from many processes never interleave. */
    ssize_t w = write(STDERR_FILENO, line, (size_t) n);
    (void) w;
}

void log_kv(log_level_t level, const char *const *kv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vkv(level, kv, fmt, ap);
    va_end(ap);
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vkv(level, NULL, fmt, ap);
    va_end(ap);
}

int log_flag(const char *prog, const char *flag, const char *value)
{
    if (strcmp(flag, "--log-level") == 0) {
        log_level_t level;
        if (log_level_parse(value, &level) != 0) {
            fprintf(stderr, "%s: --log-level: \"%s\" is not debug|info|warn|error\n", prog, value);
            return -1;
        }
        log_set_level(level);
        return 0;
    }
    log_format_t format;
    if (log_format_parse(value, &format) != 0) {
        fprintf(stderr, "%s: --log-format: \"%s\" is not text|json\n", prog, value);
        return -1;
    }
    log_set_format(format);
    return 0;
}

bool log_budget_take(log_budget_t *b, int per_s, int64_t now_ms, const char *what)
{
    if (now_ms - b->window_ms >= 1000) {
        b->window_ms = now_ms;
        b->used = 0;
    }
    if (b->used >= per_s) {
        b->dropped++;
        return false;
    }
    b->used++;
    if (b->dropped) {
        log_warn("%llu more %s not logged (at most %d lines a second)", b->dropped, what, per_s);
        b->dropped = 0;
    }
    return true;
}
