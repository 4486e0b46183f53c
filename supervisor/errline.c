#include "errline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jnul.h"
#include "link.h"

#define S_OTHER (-1)  /* the current line does not start with the mark */
#define S_IN (-2)     /* the current line does: its JSON is being kept */
#define S_DEPTH 32    /* nesting a cut line may have and still be closed */
#define S_MARK "\xe2\x80\xa6[truncated %llu bytes]" /* as the worker libraries' */

static const char s_mark[] = LINK_ERROR_MARK;
#define S_MARK_LEN ((int) sizeof s_mark - 1)

/* Keep n more bytes of the line, up to ERRLINE_MAX; the rest is counted.
 * The buffer grows as the line does: most lines are short. */
static void s_keep(errline_t *el, const char *data, size_t n)
{
    size_t want = el->len + n < ERRLINE_MAX ? el->len + n : ERRLINE_MAX;
    if (want > el->cap) {
        size_t cap = el->cap ? el->cap : 256;
        while (cap < want)
            cap *= 2;
        cap = cap < ERRLINE_MAX ? cap : ERRLINE_MAX;
        char *buf = realloc(el->buf, cap);
        if (buf) { /* out of memory: what fits is kept, the rest counted as cut */
            el->buf = buf;
            el->cap = cap;
        }
    }
    size_t take = el->cap - el->len < n ? el->cap - el->len : n;
    if (take)
        memcpy(el->buf + el->len, data, take);
    el->len += take;
    el->dropped += n - take;
}

static void s_line_starts(errline_t *el, uint64_t from)
{
    el->len = 0;
    el->dropped = 0;
    el->from = from;
    el->open = el->seen = true;
    el->col = S_IN;
}

void errline_feed(errline_t *el, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (el->col == S_IN || el->col == S_OTHER) {
            const char *nl = memchr(data + i, '\n', len - i);
            size_t n = nl ? (size_t) (nl - (data + i)) : len - i;
            if (el->col == S_IN)
                s_keep(el, data + i, n);
            i += n;
            if (!nl)
                break;
            i++;
            if (el->col == S_IN) {
                el->open = false;
                el->to = el->at + i;
            }
            el->col = 0;
        } else if (data[i] == s_mark[el->col]) {
            i++;
            if (++el->col == S_MARK_LEN) /* the mark may have come in pieces */
                s_line_starts(el, el->at + i - (uint64_t) S_MARK_LEN);
        } else {
            el->col = S_OTHER; /* data[i] is looked at again: it may end the line */
        }
    }
    el->at += len;
}

bool errline_covers(const errline_t *el, uint64_t off)
{
    return el->seen && off >= el->from && (el->open || off < el->to);
}

void errline_free(errline_t *el)
{
    free(el->buf);
    memset(el, 0, sizeof *el);
}

/* ---- closing a cut line ---------------------------------------------------- */

typedef struct {
    char close[S_DEPTH]; /* '}' or ']' per open container, innermost last */
    int depth;
} s_nest_t;

/* Bytes of the string character at buf[j] (an escape, a surrogate pair of
 * escapes, a UTF-8 sequence): a cut must not split one, or the closed text
 * would not be valid JSON and UTF-8. */
static size_t s_char_len(const char *buf, size_t len, size_t j)
{
    unsigned char b = (unsigned char) buf[j];
    if (b == '\\') {
        if (j + 1 >= len || buf[j + 1] != 'u')
            return 2;
        bool high = j + 5 < len && (buf[j + 2] == 'd' || buf[j + 2] == 'D') &&
                    strchr("89abAB", buf[j + 3]) != NULL;
        return high ? 12 : 6; /* \uD8xx must keep its \uDCxx */
    }
    return b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
}

/* Past the string that starts at buf[i] ('"'), or, cut inside it, the
 * offset of the first character that is not whole, with *cut set. */
static size_t s_string_end(const char *buf, size_t len, size_t i, bool *cut)
{
    size_t j = i + 1;
    while (j < len && buf[j] != '"') {
        size_t n = s_char_len(buf, len, j);
        if (j + n > len)
            break;
        j += n;
    }
    *cut = j >= len || buf[j] != '"';
    return *cut ? j : j + 1;
}

static char *s_join(const char *buf, size_t keep, const char *mid, const s_nest_t *nest)
{
    size_t mlen = strlen(mid);
    char *out = malloc(keep + mlen + (size_t) nest->depth + 1);
    if (!out)
        return NULL;
    memcpy(out, buf, keep);
    memcpy(out + keep, mid, mlen);
    size_t n = keep + mlen;
    for (int d = nest->depth - 1; d >= 0; d--)
        out[n++] = nest->close[d];
    out[n] = 0;
    return out;
}

/* Past the number or literal that starts at buf[i]; len when it may go on
 * past the cut. */
static size_t s_scalar_end(const char *buf, size_t len, size_t i)
{
    while (i < len && !strchr(" \t\r\n,:}]", buf[i]))
        i++;
    return i;
}

/* buf[0, len) is the start of a JSON text whose rest (dropped bytes) is
 * gone: the same text, closed. Cut inside a string value, that string ends
 * with the marker (*marked); cut anywhere else, the text goes back to the
 * end of its last whole value. *lost: the bytes of the line not kept. NULL
 * when it was not JSON to begin with. */
static char *s_closed(const char *buf, size_t len, uint64_t dropped, bool *marked, uint64_t *lost)
{
    s_nest_t nest = {{0}, 0}, safe = {{0}, 0};
    size_t safe_len = 0;
    bool want_key = false;
    *marked = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ':') {
            continue;
        } else if (c == ',') {
            want_key = nest.depth > 0 && nest.close[nest.depth - 1] == '}';
            continue;
        } else if (c == '{' || c == '[') {
            if (nest.depth == S_DEPTH)
                return NULL;
            nest.close[nest.depth++] = c == '{' ? '}' : ']';
            want_key = c == '{';
        } else if (c == '}' || c == ']') {
            if (nest.depth == 0 || nest.close[nest.depth - 1] != c)
                return NULL;
            nest.depth--;
            want_key = false;
        } else if (c == '"') {
            bool cut, key = want_key;
            size_t end = s_string_end(buf, len, i, &cut);
            want_key = false;
            if (cut && !key) {
                *lost = len - end + dropped;
                char mark[64];
                snprintf(mark, sizeof mark, S_MARK "\"", (unsigned long long) *lost);
                *marked = true;
                return s_join(buf, end, mark, &nest);
            }
            if (cut)
                break; /* in a key: back to the last whole value */
            i = end - 1;
            if (key)
                continue; /* a key is no value: not a place to close */
        } else {
            size_t end = s_scalar_end(buf, len, i);
            if (end >= len)
                break; /* a number or literal that may be cut: not whole */
            i = end - 1;
        }
        safe = nest;
        safe_len = i + 1;
    }
    *lost = len - safe_len + dropped;
    return safe_len ? s_join(buf, safe_len, "", &safe) : NULL;
}

/* ---- the error it holds ------------------------------------------------------ */

static void s_why(char *why, size_t size, const char *fmt, const char *arg)
{
    if (size)
        snprintf(why, size, fmt, arg);
}

/* A cut line's error: whatever of type and message it lost is filled in,
 * and the marker is in it somewhere. */
static void s_complete_cut(cJSON *e, bool marked, uint64_t lost)
{
    if (!cJSON_IsString(cJSON_GetObjectItem(e, "type"))) {
        cJSON_DeleteItemFromObject(e, "type");
        cJSON_AddStringToObject(e, "type", "Error");
    }
    const cJSON *m = cJSON_GetObjectItem(e, "message");
    char text[96] = "";
    if (!marked)
        snprintf(text, sizeof text, S_MARK, (unsigned long long) lost);
    if (cJSON_IsString(m) && marked)
        return;
    char *msg = NULL;
    if (asprintf(&msg, "%s%s", cJSON_IsString(m) ? m->valuestring : "", text) < 0)
        msg = NULL;
    cJSON_DeleteItemFromObject(e, "message");
    cJSON_AddStringToObject(e, "message", msg ? msg : text);
    free(msg);
}

cJSON *errline_error(const errline_t *el, char *why, size_t size)
{
    s_why(why, size, "%s", "");
    if (!el->seen)
        return NULL;
    bool marked = false;
    uint64_t lost = 0;
    char *text = el->dropped ? s_closed(el->buf, el->len, el->dropped, &marked, &lost)
                             : strndup(el->buf ? el->buf : "", el->len);
    const char *end = NULL;
    cJSON *e = text ? cJSON_ParseWithLengthOpts(text, strlen(text), &end, false) : NULL;
    char pointer[64];
    if (!cJSON_IsObject(e)) {
        s_why(why, size, "%s", "its ARBOR-ERROR line is not a JSON object");
    } else if (jnul_find(text, (size_t) (end - text), pointer, sizeof pointer) >= 0) {
        /* cJSON cut that string at the NUL: the error would say less than
         * what was written (the line stays in the report's stderr). */
        s_why(why, size, "its ARBOR-ERROR line has a \\u0000 (NUL) in the string at %s", pointer);
    } else if (el->dropped) {
        s_complete_cut(e, marked, lost);
        free(text);
        return e;
    } else if (!cJSON_IsString(cJSON_GetObjectItem(e, "type")) ||
               !cJSON_IsString(cJSON_GetObjectItem(e, "message"))) {
        s_why(why, size, "%s", "its ARBOR-ERROR line has no string \"type\" and \"message\"");
    } else {
        free(text);
        return e;
    }
    cJSON_Delete(e);
    free(text);
    return NULL;
}
