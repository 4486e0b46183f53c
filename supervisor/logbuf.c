#include "logbuf.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t seq;
    int64_t t_ms;
    uint64_t cut;
    size_t len;
    char *text;
    logbuf_stream_t stream;
} s_rec_t;

/* The line a stream is in the middle of: at most line_max bytes, the rest
 * only counted. */
typedef struct {
    char *buf; /* cap + 1 bytes, grown as the line does, up to line_max + 1 */
    size_t len, cap;
    uint64_t cut;
    int64_t t_ms;
    bool open; /* a line has begun */
} s_partial_t;

struct logbuf_t {
    logbuf_limits_t lim;
    s_rec_t *ring; /* cap slots, count kept from head, oldest first */
    size_t cap, head, count;
    size_t bytes;
    uint64_t dropped, dropped_seq;
    s_partial_t part[LOGBUF_STREAMS];
    logbuf_sink_fn *sink;
    void *sink_arg;
};

static const char *s_names[LOGBUF_STREAMS] = {"stdout", "stderr"};

const char *logbuf_stream_name(logbuf_stream_t stream)
{
    return stream == LOGBUF_STDERR ? s_names[1] : s_names[0];
}

int logbuf_stream_parse(const char *name)
{
    for (int i = 0; name && i < LOGBUF_STREAMS; i++)
        if (strcmp(name, s_names[i]) == 0)
            return i;
    return -1;
}

logbuf_t *logbuf_new(const logbuf_limits_t *limits)
{
    logbuf_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->lim = limits ? *limits
                       : (logbuf_limits_t){LOGBUF_DEFAULT_LINES, LOGBUF_DEFAULT_BYTES,
                                           LOGBUF_DEFAULT_LINE_MAX};
    if (self->lim.max_lines < 1)
        self->lim.max_lines = 1;
    if (self->lim.max_bytes < 1)
        self->lim.max_bytes = 1;
    if (self->lim.line_max < 1)
        self->lim.line_max = 1;
    if (self->lim.line_max > self->lim.max_bytes)
        self->lim.line_max = self->lim.max_bytes;
    return self;
}

void logbuf_destroy(logbuf_t **self)
{
    if (!self || !*self)
        return;
    logbuf_t *b = *self;
    for (size_t i = 0; i < b->count; i++)
        free(b->ring[(b->head + i) % b->cap].text);
    free(b->ring);
    for (int s = 0; s < LOGBUF_STREAMS; s++)
        free(b->part[s].buf);
    free(b);
    *self = NULL;
}

void logbuf_set_sink(logbuf_t *self, logbuf_sink_fn *fn, void *arg)
{
    self->sink = fn;
    self->sink_arg = arg;
}

static s_rec_t *s_slot(const logbuf_t *self, size_t i)
{
    return &self->ring[(self->head + i) % self->cap];
}

static void s_drop_oldest(logbuf_t *self)
{
    s_rec_t *r = s_slot(self, 0);
    self->bytes -= r->len;
    self->dropped++;
    self->dropped_seq = r->seq;
    free(r->text);
    r->text = NULL;
    self->head = (self->head + 1) % self->cap;
    self->count--;
}

/* Room for one more record: grow the ring by doubling up to max_lines,
 * else drop the oldest. false only when out of memory with nothing to drop. */
static bool s_make_room(logbuf_t *self)
{
    if (self->count < self->cap)
        return true;
    if (self->cap < self->lim.max_lines) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        if (cap > self->lim.max_lines)
            cap = self->lim.max_lines;
        s_rec_t *ring = malloc(cap * sizeof *ring);
        if (ring) {
            for (size_t i = 0; i < self->count; i++)
                ring[i] = *s_slot(self, i);
            free(self->ring);
            self->ring = ring;
            self->cap = cap;
            self->head = 0;
            return true;
        }
    }
    if (self->count == 0)
        return false;
    s_drop_oldest(self);
    return true;
}

/* The partial line of stream is complete: keep it (dropping what the
 * budgets demand) and show it to the sink. */
static void s_emit(logbuf_t *self, logbuf_stream_t stream, uint64_t *seq)
{
    s_partial_t *p = &self->part[stream];
    logbuf_line_t line = {++*seq, p->t_ms, stream, p->buf ? p->buf : "", p->len, p->cut};
    char *text = malloc(p->len + 1);
    if (text) {
        memcpy(text, line.text, p->len);
        text[p->len] = 0;
        while (self->count > 0 && self->bytes + p->len > self->lim.max_bytes)
            s_drop_oldest(self);
        if (s_make_room(self)) {
            s_rec_t *r = &self->ring[(self->head + self->count) % self->cap];
            *r = (s_rec_t){line.seq, line.t_ms, line.cut, line.len, text, stream};
            self->count++;
            self->bytes += p->len;
            line.text = text;
        } else {
            free(text);
            text = NULL;
        }
    }
    if (!text) { /* out of memory: the line is lost, and counted as such */
        self->dropped++;
        self->dropped_seq = line.seq;
    }
    if (p->buf)
        p->buf[p->len] = 0;
    if (self->sink)
        self->sink(self->sink_arg, &line);
    p->len = 0;
    p->cut = 0;
    p->open = false;
}

void logbuf_append(logbuf_t *self, logbuf_stream_t stream, const char *data, size_t len,
                   int64_t t_ms, uint64_t *seq)
{
    s_partial_t *p = &self->part[stream];
    while (len > 0) {
        if (!p->open) {
            p->open = true;
            p->t_ms = t_ms;
        }
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t) (nl - data) : len;
        size_t room = self->lim.line_max - p->len;
        size_t keep = take < room ? take : room;
        if (keep > 0 && p->len + keep > p->cap) {
            /* Most lines are short: a node's pending line costs what it holds. */
            size_t cap = p->cap ? p->cap : 120;
            while (cap < p->len + keep)
                cap *= 2;
            if (cap > self->lim.line_max)
                cap = self->lim.line_max;
            char *grown = realloc(p->buf, cap + 1);
            if (grown) {
                p->buf = grown;
                p->cap = cap;
            }
        }
        if (p->buf && p->len + keep <= p->cap) {
            memcpy(p->buf + p->len, data, keep);
            p->len += keep;
        } else {
            keep = 0; /* out of memory: counted as cut */
        }
        p->cut += take - keep;
        data += take;
        len -= take;
        if (nl) {
            data++;
            len--;
            s_emit(self, stream, seq);
        }
    }
}

void logbuf_close(logbuf_t *self, logbuf_stream_t stream, uint64_t *seq)
{
    if (self->part[stream].open)
        s_emit(self, stream, seq);
    free(self->part[stream].buf);
    self->part[stream].buf = NULL;
    self->part[stream].cap = 0;
}

size_t logbuf_lines(const logbuf_t *self)
{
    return self->count;
}

size_t logbuf_next(const logbuf_t *self, size_t i, unsigned streams)
{
    while (i < self->count && !(streams & LOGBUF_MASK(s_slot(self, i)->stream)))
        i++;
    return i;
}

size_t logbuf_find(const logbuf_t *self, uint64_t after, unsigned streams)
{
    /* seqs increase from the oldest: the first one above after, by halves */
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s_slot(self, mid)->seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return logbuf_next(self, lo, streams);
}

void logbuf_at(const logbuf_t *self, size_t i, logbuf_line_t *line)
{
    const s_rec_t *r = s_slot(self, i);
    *line = (logbuf_line_t){r->seq, r->t_ms, r->stream, r->text, r->len, r->cut};
}

size_t logbuf_bytes(const logbuf_t *self)
{
    return self->bytes;
}

uint64_t logbuf_dropped(const logbuf_t *self)
{
    return self->dropped;
}

uint64_t logbuf_dropped_seq(const logbuf_t *self)
{
    return self->dropped_seq;
}
