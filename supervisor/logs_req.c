#include "logs_req.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "logbuf.h"

/* Length of a valid UTF-8 sequence starting at s (n bytes left), 0 if the
 * byte there does not start one. */
static size_t s_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c >= 0x01 && c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0; /* NUL, a continuation byte, 0xC0/0xC1, 0xF5.. */
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* in as valid UTF-8, NUL-terminated, into out (room for 3 * len + 1):
 * each byte that starts no valid sequence (and NUL) becomes U+FFFD. Also
 * adds to *json the bytes cJSON will print for it. */
static void s_clean(const char *in, size_t len, char *out, size_t *json)
{
    const unsigned char *s = (const unsigned char *) in;
    size_t o = 0, cost = 2; /* the quotes */
    for (size_t i = 0; i < len;) {
        size_t k = s_utf8_seq(s + i, len - i);
        if (k == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            cost += 3;
            i++;
            continue;
        }
        if (k == 1 && s[i] < 0x20)
            cost += (s[i] == '\n' || s[i] == '\t' || s[i] == '\r' || s[i] == '\b' || s[i] == '\f')
                        ? 2 : 6;
        else if (k == 1 && (s[i] == '"' || s[i] == '\\'))
            cost += 2;
        else
            cost += k;
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
    }
    out[o] = 0;
    *json += cost;
}

static bool s_selected(const tree_node_t *n, const char *path, size_t plen)
{
    return n->path && (!path || (strncmp(n->path, path, plen) == 0 &&
                                 (n->path[plen] == 0 || n->path[plen] == '/')));
}

/* The merge's heap: the next line of selected node k has seq. */
typedef struct {
    uint64_t seq;
    int k;
} s_head_t;

static void s_push(s_head_t *heap, int *n, s_head_t h)
{
    int i = (*n)++;
    while (i > 0 && heap[(i - 1) / 2].seq > h.seq) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = h;
}

static void s_pop(s_head_t *heap, int *n)
{
    s_head_t h = heap[--*n];
    int i = 0;
    while (2 * i + 1 < *n) {
        int c = 2 * i + 1;
        if (c + 1 < *n && heap[c + 1].seq < heap[c].seq)
            c++;
        if (heap[c].seq >= h.seq)
            break;
        heap[i] = heap[c];
        i = c;
    }
    if (*n > 0)
        heap[i] = h;
}

static uint64_t s_seq_at(const tree_t *t, int node, size_t i)
{
    logbuf_line_t l;
    logbuf_at(t->nodes[node].logs, i, &l);
    return l.seq;
}

static cJSON *s_fail(const char **code, const char *c, char *err, size_t errlen, const char *fmt,
                     const char *arg)
{
    *code = c;
    snprintf(err, errlen, fmt, arg);
    return NULL;
}

cJSON *logs_req_reply(tree_t *t, const cJSON *body, const char **code, char *err, size_t errlen)
{
    /* The request, checked before anything is built. */
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(body, "path");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(body, "stream");
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(body, "after");
    if (jp && !cJSON_IsString(jp))
        return s_fail(code, "bad_request", err, errlen, "logs: \"path\" must be a string%s", "");
    if (js && logbuf_stream_parse(cJSON_GetStringValue(js)) < 0)
        return s_fail(code, "bad_request", err, errlen,
                      "logs: \"stream\" must be \"stdout\" or \"stderr\"%s", "");
    if (ja && (!cJSON_IsNumber(ja) || ja->valuedouble < 0 || ja->valuedouble > 9007199254740991.0 ||
               ja->valuedouble != (double) (uint64_t) ja->valuedouble))
        return s_fail(code, "bad_request", err, errlen,
                      "logs: \"after\" must be an integer >= 0 (a \"next\" of a reply)%s", "");
    const char *path = jp ? jp->valuestring : NULL;
    tree_node_t *top = path ? tree_find_path(t, path) : &t->nodes[0];
    if (!top)
        return s_fail(code, "not_found", err, errlen, "tree has no node \"%.200s\"", path);
    unsigned mask = js ? LOGBUF_MASK(logbuf_stream_parse(js->valuestring)) : LOGBUF_ALL;
    uint64_t after = ja ? (uint64_t) ja->valuedouble : 0;
    size_t plen = path ? strlen(path) : 0;

    /* The selected nodes: where each one's next line is, and their state. */
    int *sel = malloc((size_t) t->nnodes * sizeof *sel);
    size_t *pos = malloc((size_t) t->nnodes * sizeof *pos);
    s_head_t *heap = malloc((size_t) t->nnodes * sizeof *heap);
    if (!sel || !pos || !heap) {
        free(sel);
        free(pos);
        free(heap);
        return s_fail(code, "internal", err, errlen, "logs: out of memory%s", "");
    }
    int nsel = 0;
    uint64_t dropped = 0;
    bool gap = false, open = false;
    for (int i = 0; i < t->nnodes; i++) {
        tree_node_t *n = &t->nodes[i];
        if (!s_selected(n, path, plen))
            continue;
        open |= n->fds.pipe[WFD_OUT] >= 0 || n->fds.pipe[WFD_ERR] >= 0;
        if (!n->logs)
            continue;
        dropped += logbuf_dropped(n->logs);
        gap |= logbuf_dropped_seq(n->logs) > after;
        sel[nsel] = i;
        pos[nsel++] = logbuf_find(n->logs, after, mask);
    }

    /* Merge by seq, up to a reply's worth: a min-heap of each node's next
     * line, so a tree of many nodes costs log(nodes) a line. */
    int nheap = 0;
    for (int k = 0; k < nsel; k++)
        if (pos[k] < logbuf_lines(t->nodes[sel[k]].logs))
            s_push(heap, &nheap, (s_head_t){s_seq_at(t, sel[k], pos[k]), k});
    cJSON *reply = cJSON_CreateObject();
    cJSON_AddStringToObject(reply, "tree", t->id);
    cJSON *lines = cJSON_AddArrayToObject(reply, "lines");
    size_t count = 0, json = 0, scratch_cap = 0;
    char *scratch = NULL;
    uint64_t last = after;
    bool more = false;
    while (nheap > 0) {
        int best = heap[0].k;
        logbuf_line_t bl;
        logbuf_at(t->nodes[sel[best]].logs, pos[best], &bl);
        const tree_node_t *n = &t->nodes[sel[best]];
        size_t cost = 80 + strlen(n->path);
        if (scratch_cap < 3 * bl.len + 1) {
            char *grown = realloc(scratch, 3 * bl.len + 1);
            if (!grown) { /* out of memory: this line is for the next reply */
                more = true;
                break;
            }
            scratch = grown;
            scratch_cap = 3 * bl.len + 1;
        }
        s_clean(bl.text, bl.len, scratch, &cost);
        if (count > 0 && (count >= LOGS_REQ_MAX_LINES || json + cost > LOGS_REQ_MAX_JSON)) {
            more = true;
            break;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "seq", (double) bl.seq);
        cJSON_AddStringToObject(o, "path", n->path);
        cJSON_AddStringToObject(o, "stream", logbuf_stream_name(bl.stream));
        cJSON_AddNumberToObject(o, "t_ms", (double) bl.t_ms);
        cJSON_AddStringToObject(o, "text", scratch);
        if (bl.cut)
            cJSON_AddNumberToObject(o, "cut", (double) bl.cut);
        cJSON_AddItemToArray(lines, o);
        count++;
        json += cost;
        last = bl.seq;
        pos[best] = logbuf_next(n->logs, pos[best] + 1, mask);
        s_pop(heap, &nheap);
        if (pos[best] < logbuf_lines(n->logs))
            s_push(heap, &nheap, (s_head_t){s_seq_at(t, sel[best], pos[best]), best});
    }
    free(heap);
    free(scratch);
    free(sel);
    free(pos);
    if (more && count == 0) { /* not even one line fitted in memory */
        cJSON_Delete(reply);
        return s_fail(code, "internal", err, errlen, "logs: out of memory%s", "");
    }

    /* Every line up to the tree's last seq was looked at unless it was full. */
    uint64_t next = more ? last : (t->log_seq > after ? t->log_seq : after);
    bool ended = t->ended_ms != 0 || (path && tree_subtree_settled(top));
    cJSON_AddNumberToObject(reply, "next", (double) next);
    cJSON_AddBoolToObject(reply, "more", more);
    cJSON_AddNumberToObject(reply, "dropped", (double) dropped);
    cJSON_AddBoolToObject(reply, "gap", gap);
    cJSON_AddStringToObject(reply, "status", tree_status_name(tree_status_of(t)));
    if (path)
        cJSON_AddStringToObject(reply, "node_status", status_name(top->status));
    cJSON_AddBoolToObject(reply, "ended", ended);
    cJSON_AddBoolToObject(reply, "eof", ended && !open && !more);
    return reply;
}
