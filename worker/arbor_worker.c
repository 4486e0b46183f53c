/* arbor_worker: the worker's side of the notify fd, libc only (see the
 * header). The JSON it writes is formatted here with proper string
 * escaping; the JSON it reads is scanned just enough to find "event". */
#include "arbor_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* A child's end read while nobody asked for it: its datagram, kept whole. */
typedef struct s_msg_t {
    struct s_msg_t *next;
    size_t len;
    char data[];
} s_msg_t;

struct arbor_worker_t {
    int fd;
    bool cancelled;
    bool gone;          /* the supervisor closed its end */
    bool tell_cancel;   /* a cancel poll has not returned yet */
    bool tell_children; /* a children_exited poll has not returned yet */
    int untold;         /* child ends poll has not returned yet */
    unsigned long long next_id; /* of spawn requests */
    s_msg_t *head, *tail;       /* child ends not read yet, oldest first */
    char *last_error;           /* error_json of the last end handed out */
    char buf[ARBOR_WORKER_MSG_MAX + 1]; /* one message out or in; +1: a longer one shows */
};

static const char *const s_phases[] = {"ready",   "running", "cancel_requested",
                                       "cancelling_children", "children_exited",
                                       "cleanup", "exiting"};

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

arbor_worker_t *arbor_worker_open_fd(int fd)
{
    int type = 0;
    socklen_t tlen = sizeof type;
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_SEQPACKET) {
        errno = ENOTSOCK;
        return NULL;
    }
    arbor_worker_t *w = malloc(sizeof *w);
    if (!w)
        return NULL;
    memset(w, 0, offsetof(arbor_worker_t, buf));
    w->fd = fd;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* A supervisor that stopped reading must not stop the worker. */
    struct timeval tv = {ARBOR_WORKER_SEND_TIMEOUT_MS / 1000,
                         (ARBOR_WORKER_SEND_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return w;
}

arbor_worker_t *arbor_worker_from_env(void)
{
    const char *v = getenv(ARBOR_WORKER_ENV);
    if (!v || !*v)
        return NULL;
    char *end;
    errno = 0;
    long fd = strtol(v, &end, 10);
    if (errno || *end || fd < 0 || fd > INT32_MAX)
        return NULL;
    return arbor_worker_open_fd((int) fd);
}

static int s_send(arbor_worker_t *w, size_t len)
{
    ssize_t n;
    do
        n = send(w->fd, w->buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

static bool s_phase_known(const char *phase)
{
    for (size_t i = 0; phase && i < sizeof s_phases / sizeof *s_phases; i++)
        if (strcmp(phase, s_phases[i]) == 0)
            return true;
    return false;
}

int arbor_worker_phase(arbor_worker_t *w, const char *phase)
{
    return arbor_worker_phases(w, &phase, 1);
}

int arbor_worker_phases(arbor_worker_t *w, const char *const *phases, size_t n)
{
    if (!w || n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!s_phase_known(phases[i])) {
            errno = EINVAL;
            return -1;
        }
    long long now = (long long) s_mono_ms();
    if (n == 1) /* a plain datagram, as before sequences: every supervisor reads it */
        return s_send(w, (size_t) snprintf(w->buf, sizeof w->buf,
                                           "{\"phase\":\"%s\",\"t_mono_ms\":%lld}", phases[0],
                                           now));
    /* RFC 7464: each message after RS (0x1e), ended by a newline. */
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(w->buf + len, sizeof w->buf - len,
                         "\x1e{\"phase\":\"%s\",\"t_mono_ms\":%lld}\n", phases[i], now);
        if (k < 0 || (size_t) k >= sizeof w->buf - len) {
            errno = EMSGSIZE;
            return -1;
        }
        len += (size_t) k;
    }
    return s_send(w, len);
}

/* ---- error reports: escaped, and cut to fit ------------------------------- */

/* Escaped length of one byte inside a JSON string. */
static size_t s_esc_len(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f')
        return 2;
    return c < 0x20 ? 6 : 1;
}

static size_t s_esc_total(const char *s, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += s_esc_len((unsigned char) s[i]);
    return t;
}

static char *s_put_esc(char *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        const char *two = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\t' ? "\\t" : c == '\r' ? "\\r" : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f" : NULL;
        if (two) {
            memcpy(p, two, 2);
            p += 2;
        } else if (c < 0x20) {
            p += sprintf(p, "\\u%04x", c);
        } else {
            *p++ = (char) c;
        }
    }
    return p;
}

/* A string to write, maybe cut: [head, head+keep) or its last keep bytes. */
typedef struct {
    const char *s;
    size_t len, from, keep; /* the kept bytes are s[from, from + keep) */
    bool tail;              /* the marker goes first (the end was kept) */
} s_field_t;

#define S_MARK_MAX 48 /* "…[truncated N bytes]" escaped, with room */

static s_field_t s_field(const char *s, bool tail)
{
    s = s ? s : "";
    size_t n = strlen(s);
    return (s_field_t){s, n, 0, n, tail};
}

static size_t s_field_cost(const s_field_t *f)
{
    return s_esc_total(f->s + f->from, f->keep) + (f->keep < f->len ? S_MARK_MAX : 0);
}

/* Keep as much of f as fits in budget escaped bytes (marker included),
 * never splitting a UTF-8 sequence. */
static void s_field_fit(s_field_t *f, size_t budget)
{
    if (s_field_cost(f) <= budget)
        return;
    size_t room = budget > S_MARK_MAX ? budget - S_MARK_MAX : 0, used = 0, k = 0;
    if (!f->tail) {
        while (k < f->len && used + s_esc_len((unsigned char) f->s[k]) <= room)
            used += s_esc_len((unsigned char) f->s[k++]);
        while (k > 0 && k < f->len && ((unsigned char) f->s[k] & 0xC0) == 0x80)
            k--; /* do not end inside a character */
        f->from = 0;
    } else {
        while (k < f->len && used + s_esc_len((unsigned char) f->s[f->len - 1 - k]) <= room)
            used += s_esc_len((unsigned char) f->s[f->len - 1 - k++]);
        while (k > 0 && ((unsigned char) f->s[f->len - k] & 0xC0) == 0x80)
            k--; /* do not start inside a character */
        f->from = f->len - k;
    }
    f->keep = k;
}

static char *s_put_field(char *p, const char *key, const s_field_t *f)
{
    p += sprintf(p, "%s\"%s\":\"", strcmp(key, "type") ? "," : "", key);
    char mark[S_MARK_MAX];
    int m = snprintf(mark, sizeof mark, "\xe2\x80\xa6[truncated %zu bytes]", f->len - f->keep);
    if (f->keep < f->len && f->tail) {
        memcpy(p, mark, (size_t) m);
        p += m;
    }
    p = s_put_esc(p, f->s + f->from, f->keep);
    if (f->keep < f->len && !f->tail) {
        memcpy(p, mark, (size_t) m);
        p += m;
    }
    *p++ = '"';
    return p;
}

int arbor_worker_error(arbor_worker_t *w, const char *type, const char *message,
                       const char *traceback)
{
    if (!w)
        return 0;
    s_field_t t = s_field(type && *type ? type : "Error", false);
    s_field_t m = s_field(message, false);
    s_field_t tb = s_field(traceback, true);
    /* {"error":{"type":"","message":"","traceback":""},"t_mono_ms":N} */
    size_t room = ARBOR_WORKER_MSG_MAX - 96;
    s_field_fit(&t, 1024);
    room -= s_field_cost(&t);
    if (s_field_cost(&m) + (traceback ? s_field_cost(&tb) : 0) > room) {
        /* The traceback gives way first, down to a quarter of the room;
         * then the message takes what is left. */
        size_t mc = s_field_cost(&m), tbc = traceback ? s_field_cost(&tb) : 0;
        size_t tb_room = mc < room ? room - mc : 0;
        if (traceback && tb_room < room / 4)
            tb_room = tbc < room / 4 ? tbc : room / 4;
        if (traceback)
            s_field_fit(&tb, tb_room);
        s_field_fit(&m, room - (traceback ? s_field_cost(&tb) : 0));
    }
    char *p = w->buf;
    p += sprintf(p, "{\"error\":{");
    p = s_put_field(p, "type", &t);
    p = s_put_field(p, "message", &m);
    if (traceback)
        p = s_put_field(p, "traceback", &tb);
    p += sprintf(p, "},\"t_mono_ms\":%lld}", (long long) s_mono_ms());
    return s_send(w, (size_t) (p - w->buf));
}

/* ---- events from the supervisor ------------------------------------------ */

static const char *s_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Past a JSON string starting at p ('"'); NULL when unterminated. */
static const char *s_str_end(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Past any JSON value starting at p; NULL when it does not end in [p, e). */
static const char *s_value_end(const char *p, const char *e)
{
    int depth = 0;
    while (p && p < e) {
        if (*p == '"') {
            p = s_str_end(p, e);
            if (p && depth == 0)
                return p;
            continue;
        }
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth < 0)
                return p; /* the end of the enclosing object: a scalar ended */
            if (depth == 0)
                return p + 1;
        } else if (depth == 0 && (*p == ',' || *p == ' ' || *p == '\n' || *p == '\t' ||
                                  *p == '\r')) {
            return p;
        }
        p++;
    }
    return depth == 0 ? p : NULL;
}

/* The value of key at the top level of the object in [p, e): [*v, *ve).
 * false when absent or the object is malformed. */
static bool s_key(const char *p, const char *e, const char *key, const char **v, const char **ve)
{
    size_t klen = strlen(key);
    p = s_ws(p, e);
    if (p >= e || *p++ != '{')
        return false;
    for (;;) {
        p = s_ws(p, e);
        if (p >= e || *p != '"')
            return false;
        const char *k = p + 1, *ke = s_str_end(p, e);
        if (!ke)
            return false;
        bool match = (size_t) (ke - k - 1) == klen && memcmp(k, key, klen) == 0;
        p = s_ws(ke, e);
        if (p >= e || *p++ != ':')
            return false;
        p = s_ws(p, e);
        const char *end = s_value_end(p, e);
        if (!end)
            return false;
        if (match) {
            *v = p;
            *ve = end;
            return true;
        }
        p = s_ws(end, e);
        if (p >= e || *p++ != ',')
            return false;
    }
}

/* The JSON string value [v, ve) equals word. */
static bool s_is_str(const char *v, const char *ve, const char *word)
{
    size_t n = strlen(word);
    return v && *v == '"' && (size_t) (ve - v) == n + 2 && memcmp(v + 1, word, n) == 0;
}

static void s_put_utf8(char **o, char *oe, unsigned long c)
{
    char b[4];
    int n;
    if (c < 0x80) {
        b[0] = (char) c, n = 1;
    } else if (c < 0x800) {
        b[0] = (char) (0xC0 | c >> 6), b[1] = (char) (0x80 | (c & 0x3F)), n = 2;
    } else if (c < 0x10000) {
        b[0] = (char) (0xE0 | c >> 12), b[1] = (char) (0x80 | (c >> 6 & 0x3F));
        b[2] = (char) (0x80 | (c & 0x3F)), n = 3;
    } else {
        b[0] = (char) (0xF0 | c >> 18), b[1] = (char) (0x80 | (c >> 12 & 0x3F));
        b[2] = (char) (0x80 | (c >> 6 & 0x3F)), b[3] = (char) (0x80 | (c & 0x3F)), n = 4;
    }
    if (oe - *o < n)
        return; /* cut between characters, never inside one */
    memcpy(*o, b, (size_t) n);
    *o += n;
}

static long s_hex4(const char *p, const char *e)
{
    if (e - p < 4)
        return -1;
    long c = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
              : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        c = c * 16 + d;
    }
    return c;
}

/* The JSON string [v, ve) unescaped into out (size bytes, NUL-terminated,
 * cut to fit between characters); "" when it is not a string. */
static void s_unescape(const char *v, const char *ve, char *out, size_t size)
{
    if (!size)
        return;
    char *o = out, *oe = out + size - 1;
    if (v && *v == '"' && ve - v >= 2) {
        const char *p = v + 1, *e = ve - 1;
        while (p < e && o < oe) {
            unsigned char c = (unsigned char) *p;
            if (c != '\\') {
                /* a raw byte: copy a UTF-8 sequence whole or stop */
                size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
                if ((size_t) (oe - o) < n || (size_t) (e - p) < n)
                    break;
                memcpy(o, p, n);
                o += n, p += n;
                continue;
            }
            if (++p >= e)
                break;
            char x = *p++;
            long u;
            switch (x) {
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u':
                u = s_hex4(p, e);
                if (u < 0)
                    goto done;
                p += 4;
                if (u >= 0xD800 && u < 0xDC00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                    long lo = s_hex4(p + 2, e);
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    }
                }
                s_put_utf8(&o, oe, (unsigned long) u);
                break;
            default: *o++ = x; break; /* \" \\ \/ */
            }
        }
    }
done:
    *o = 0;
}

enum { S_NONE, S_SKIP, S_CANCEL, S_CHILDREN, S_CHILD, S_ANSWER, S_GONE, S_ERROR };

/* What one message is; *re for an answer ({"re": N, ...}). */
static int s_classify(const char *p, size_t len, unsigned long long *re)
{
    const char *e = p + len, *v, *ve;
    if (s_key(p, e, "event", &v, &ve)) {
        if (s_is_str(v, ve, "cancel"))
            return S_CANCEL;
        if (s_is_str(v, ve, "children_exited"))
            return S_CHILDREN;
        if (s_is_str(v, ve, "child_exited") && s_key(p, e, "path", &v, &ve) && *v == '"')
            return S_CHILD;
        return S_SKIP; /* an event this version does not know */
    }
    if (s_key(p, e, "re", &v, &ve) && *v >= '0' && *v <= '9') {
        char num[24];
        size_t n = (size_t) (ve - v) < sizeof num - 1 ? (size_t) (ve - v) : sizeof num - 1;
        memcpy(num, v, n);
        num[n] = 0;
        *re = strtoull(num, NULL, 10);
        return S_ANSWER;
    }
    return S_SKIP;
}

/* Read one message into w->buf, waiting until deadline (-1: no limit), and
 * keep what it says: a cancel, children_exited, a child's end (queued). An
 * answer stays in w->buf for the caller (*len, *re). */
static int s_next(arbor_worker_t *w, int64_t deadline, size_t *len, unsigned long long *re)
{
    for (;;) {
        if (w->gone)
            return S_GONE;
        ssize_t n = recv(w->fd, w->buf, sizeof w->buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            w->gone = true;
            return S_GONE;
        }
        if (n > 0) {
            int k = s_classify(w->buf, (size_t) n, re);
            if (k == S_CANCEL) {
                w->cancelled = w->tell_cancel = true;
            } else if (k == S_CHILDREN) {
                w->tell_children = true;
            } else if (k == S_CHILD) {
                s_msg_t *m = malloc(sizeof *m + (size_t) n);
                if (!m)
                    return S_ERROR; /* errno ENOMEM */
                m->next = NULL;
                m->len = (size_t) n;
                memcpy(m->data, w->buf, (size_t) n);
                if (w->tail)
                    w->tail->next = m;
                else
                    w->head = m;
                w->tail = m;
                w->untold++;
            }
            *len = (size_t) n;
            return k;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return S_ERROR;
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - s_mono_ms();
            if (left <= 0)
                return S_NONE;
            wait = left > INT32_MAX ? INT32_MAX : (int) left;
        }
        struct pollfd pfd = {w->fd, POLLIN, 0};
        if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
            return S_ERROR;
    }
}

static int64_t s_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : s_mono_ms() + timeout_ms;
}

int arbor_worker_poll(arbor_worker_t *w, int timeout_ms)
{
    if (!w)
        return ARBOR_EV_NONE;
    int64_t deadline = s_deadline(timeout_ms);
    for (;;) {
        /* What was read meanwhile (by a spawn, a wait for child ends) first. */
        if (w->tell_cancel) {
            w->tell_cancel = false;
            return ARBOR_EV_CANCEL;
        }
        if (w->tell_children) {
            w->tell_children = false;
            return ARBOR_EV_CHILDREN_EXITED;
        }
        if (w->untold > 0) {
            w->untold--;
            return ARBOR_EV_CHILD_EXITED;
        }
        size_t len;
        unsigned long long re;
        int k = s_next(w, deadline, &len, &re);
        if (k == S_NONE)
            return ARBOR_EV_NONE;
        if (k == S_GONE)
            return ARBOR_EV_GONE;
        if (k == S_ERROR)
            return ARBOR_EV_ERROR;
        /* an answer nobody waits for any more, or an unknown message: skipped */
    }
}

/* ---- dynamic children --------------------------------------------------------- */

static void s_say(char *out, size_t size, const char *text)
{
    if (out && size)
        snprintf(out, size, "%s", text);
}

int arbor_worker_spawn(arbor_worker_t *w, const char *node_json, char *path_out, size_t size,
                       int timeout_ms)
{
    if (!w) {
        s_say(path_out, size, "not running under arbor (no usable " ARBOR_WORKER_ENV
                              "): there is no supervisor to start a child under");
        errno = ENOTCONN;
        return -1;
    }
    if (!node_json) {
        s_say(path_out, size, "no node given");
        errno = EINVAL;
        return -1;
    }
    unsigned long long id = ++w->next_id;
    int n = snprintf(w->buf, sizeof w->buf, "{\"spawn\":%s,\"id\":%llu}", node_json, id);
    if (n < 0 || (size_t) n > ARBOR_WORKER_MSG_MAX) {
        s_say(path_out, size, "the node is over the 64 KiB of one message");
        errno = EMSGSIZE;
        return -1;
    }
    if (w->gone || s_send(w, (size_t) n) != 0) {
        int e = w->gone ? EPIPE : errno;
        s_say(path_out, size, "could not send the request: the supervisor is gone or not reading");
        errno = e == EAGAIN || e == EWOULDBLOCK ? ETIMEDOUT : EPIPE;
        return -1;
    }
    int64_t deadline = s_deadline(timeout_ms < 0 ? ARBOR_WORKER_SPAWN_TIMEOUT_MS : timeout_ms);
    for (;;) {
        size_t len;
        unsigned long long re = 0;
        int k = s_next(w, deadline, &len, &re);
        if (k == S_NONE || k == S_GONE || k == S_ERROR) {
            int e = k == S_NONE ? ETIMEDOUT : k == S_GONE ? EPIPE : errno;
            s_say(path_out, size, k == S_NONE ? "no answer from the supervisor in time"
                                  : k == S_GONE ? "the supervisor closed the notify fd"
                                                : "reading the notify fd failed");
            errno = e;
            return -1;
        }
        if (k != S_ANSWER || re != id)
            continue; /* kept (an event) or stale (an answer to a request given up) */
        const char *e = w->buf + len, *v, *ve;
        if (s_key(w->buf, e, "path", &v, &ve) && *v == '"') {
            s_unescape(v, ve, path_out, size);
            return 0;
        }
        const char *ev, *eve;
        if (s_key(w->buf, e, "error", &ev, &eve) && s_key(ev, eve, "message", &v, &ve))
            s_unescape(v, ve, path_out, size);
        else
            s_say(path_out, size, "refused, with no reason given");
        errno = EINVAL;
        return -1;
    }
}

/* Fill *out from one queued child_exited message. */
static int s_fill_end(arbor_worker_t *w, const s_msg_t *m, arbor_child_exit_t *out)
{
    const char *p = m->data, *e = m->data + m->len, *v, *ve;
    memset(out, 0, offsetof(arbor_child_exit_t, error_json));
    if (s_key(p, e, "path", &v, &ve))
        s_unescape(v, ve, out->path, sizeof out->path);
    if (s_key(p, e, "status", &v, &ve))
        s_unescape(v, ve, out->status, sizeof out->status);
    out->failed = !strcmp(out->status, "failed") || !strcmp(out->status, "spawn_failed") ||
                  !strcmp(out->status, "lost");
    const char *err = "null";
    size_t elen = 4;
    if (s_key(p, e, "error", &v, &ve) && *v == '{') {
        err = v;
        elen = (size_t) (ve - v);
        const char *tv, *tve;
        if (s_key(v, ve, "type", &tv, &tve))
            s_unescape(tv, tve, out->type, sizeof out->type);
        if (s_key(v, ve, "message", &tv, &tve))
            s_unescape(tv, tve, out->message, sizeof out->message);
    }
    w->last_error = malloc(elen + 1);
    if (!w->last_error)
        return -1;
    memcpy(w->last_error, err, elen);
    w->last_error[elen] = 0;
    out->error_json = w->last_error;
    return 0;
}

int arbor_worker_child_exited(arbor_worker_t *w, arbor_child_exit_t *out, int timeout_ms)
{
    if (!w)
        return 0;
    free(w->last_error);
    w->last_error = NULL;
    int64_t deadline = s_deadline(timeout_ms);
    for (;;) {
        s_msg_t *m = w->head;
        if (m) {
            w->head = m->next;
            if (!w->head)
                w->tail = NULL;
            if (w->untold > 0)
                w->untold--; /* read here: poll need not announce it */
            int r = s_fill_end(w, m, out);
            free(m);
            return r == 0 ? 1 : -1;
        }
        size_t len;
        unsigned long long re;
        int k = s_next(w, deadline, &len, &re);
        if (k == S_NONE)
            return 0;
        if (k == S_CANCEL) {
            errno = ECANCELED;
            return -1;
        }
        if (k == S_GONE) {
            errno = EPIPE;
            return -1;
        }
        if (k == S_ERROR)
            return -1;
    }
}

int arbor_worker_cancel(arbor_worker_t *w, const char *path)
{
    if (!w)
        return 0;
    if (!path || !*path || s_esc_total(path, strlen(path)) > ARBOR_WORKER_MSG_MAX - 32) {
        errno = EINVAL;
        return -1;
    }
    char *p = w->buf;
    p += sprintf(p, "{\"cancel\":\"");
    p = s_put_esc(p, path, strlen(path));
    p += sprintf(p, "\"}");
    return s_send(w, (size_t) (p - w->buf));
}

int arbor_nursery_wait(arbor_worker_t *w, int n_children, int timeout_ms, arbor_child_cb report_cb,
                       void *arg)
{
    if (!w)
        return 0;
    int64_t deadline = s_deadline(timeout_ms);
    int failed = 0;
    arbor_child_exit_t end;
    for (int got = 0; got < n_children;) {
        int left = -1;
        if (deadline >= 0) {
            int64_t l = deadline - s_mono_ms();
            left = l <= 0 ? 0 : l > INT32_MAX ? INT32_MAX : (int) l;
        }
        int r = arbor_worker_child_exited(w, &end, left);
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        got++;
        failed += end.failed;
        if (report_cb)
            report_cb(arg, &end);
    }
    return failed;
}

int arbor_worker_fd(const arbor_worker_t *w) { return w ? w->fd : -1; }
bool arbor_worker_cancelled(const arbor_worker_t *w) { return w && w->cancelled; }

void arbor_worker_note_cancel(arbor_worker_t *w)
{
    if (w)
        w->cancelled = true;
}

void arbor_worker_close(arbor_worker_t **w)
{
    if (!w || !*w)
        return;
    close((*w)->fd);
    for (s_msg_t *m = (*w)->head, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    free((*w)->last_error);
    free(*w);
    *w = NULL;
}
