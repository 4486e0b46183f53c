/* arbor_worker: the worker's side of the notify fd, libc only (see the
 * header). The JSON it writes is formatted here with proper string
 * escaping; the JSON it reads is scanned just enough to find "event". */
#include "arbor_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct arbor_worker_t {
    int fd;
    bool cancelled;
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
    w->fd = fd;
    w->cancelled = false;
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

int arbor_worker_phase(arbor_worker_t *w, const char *phase)
{
    if (!w)
        return 0;
    bool known = false;
    for (size_t i = 0; phase && i < sizeof s_phases / sizeof *s_phases; i++)
        known = known || strcmp(phase, s_phases[i]) == 0;
    if (!known) {
        errno = EINVAL;
        return -1;
    }
    int n = snprintf(w->buf, sizeof w->buf, "{\"phase\":\"%s\",\"t_mono_ms\":%lld}", phase,
                     (long long) s_mono_ms());
    return s_send(w, (size_t) n);
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

/* The ARBOR_EV_ of one message: {"event":"cancel"|"children_exited",...}. */
static int s_event_of(const char *p, size_t len)
{
    const char *e = p + len;
    p = s_ws(p, e);
    if (p >= e || *p++ != '{')
        return ARBOR_EV_NONE;
    for (;;) {
        p = s_ws(p, e);
        if (p >= e || *p != '"')
            return ARBOR_EV_NONE;
        const char *k = p + 1, *ke = s_str_end(p, e);
        if (!ke)
            return ARBOR_EV_NONE;
        bool is_event = ke - k - 1 == 5 && memcmp(k, "event", 5) == 0;
        p = s_ws(ke, e);
        if (p >= e || *p++ != ':')
            return ARBOR_EV_NONE;
        p = s_ws(p, e);
        const char *ve = s_value_end(p, e);
        if (!ve)
            return ARBOR_EV_NONE;
        if (is_event && *p == '"') {
            size_t n = (size_t) (ve - p - 2);
            if (n == 6 && memcmp(p + 1, "cancel", 6) == 0)
                return ARBOR_EV_CANCEL;
            if (n == 15 && memcmp(p + 1, "children_exited", 15) == 0)
                return ARBOR_EV_CHILDREN_EXITED;
            return ARBOR_EV_NONE; /* an event this version does not know */
        }
        p = s_ws(ve, e);
        if (p >= e || *p++ != ',')
            return ARBOR_EV_NONE;
    }
}

int arbor_worker_poll(arbor_worker_t *w, int timeout_ms)
{
    if (!w)
        return ARBOR_EV_NONE;
    int64_t deadline = timeout_ms < 0 ? -1 : s_mono_ms() + timeout_ms;
    for (;;) {
        ssize_t n = recv(w->fd, w->buf, sizeof w->buf, MSG_DONTWAIT);
        if (n == 0)
            return ARBOR_EV_GONE;
        if (n > 0) {
            int ev = s_event_of(w->buf, (size_t) n);
            if (ev == ARBOR_EV_CANCEL)
                w->cancelled = true;
            if (ev != ARBOR_EV_NONE)
                return ev;
            continue; /* unknown: skip it */
        }
        if (errno == ECONNRESET)
            return ARBOR_EV_GONE;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return ARBOR_EV_ERROR;
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - s_mono_ms();
            if (left <= 0)
                return ARBOR_EV_NONE;
            wait = left > INT32_MAX ? INT32_MAX : (int) left;
        }
        struct pollfd pfd = {w->fd, POLLIN, 0};
        if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
            return ARBOR_EV_ERROR;
    }
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
    free(*w);
    *w = NULL;
}
