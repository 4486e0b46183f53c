#include "jscan.h"

#include <cjson/cJSON.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_DEPTH_MAX CJSON_NESTING_LIMIT

/* Bytes that end a run of plain string content: '"', '\\' and the control
 * characters (which are invalid there). */
static const uint8_t s_special[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1,
};

/* True when none of the 8 bytes at p is special: the usual case inside a
 * string, checked a word at a time (zero-byte tests: exact as a whole). */
static inline bool s_plain8(const char *p)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');
    uint64_t hits = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
                    ((v - ones * 0x20) & ~v); /* a byte < 0x20 */
    return (hits & highs) == 0;
}

typedef struct {
    const char *p;
    const char *end;
} s_buf_t;

static inline void s_ws(s_buf_t *b)
{
    while (b->p < b->end && (*b->p == ' ' || *b->p == '\n' || *b->p == '\r' || *b->p == '\t'))
        b->p++;
}

static inline bool s_digit(char c) { return c >= '0' && c <= '9'; }

/* Four hex digits at p (the caller checked they are there): their value,
 * or -1. */
static long s_hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A string; b->p is on the opening quote. */
static bool s_string(s_buf_t *b, jscan_span_t *out)
{
    const char *p = b->p + 1, *end = b->end;
    out->kind = JSCAN_STRING;
    out->start = p;
    out->escaped = false;
    for (;;) {
        while (end - p >= 8 && s_plain8(p))
            p += 8;
        while (p < end && !s_special[(uint8_t) *p])
            p++;
        if (p >= end)
            return false;
        if (*p == '"')
            break;
        if (*p != '\\')
            return false; /* a control character */
        out->escaped = true;
        if (end - p < 2)
            return false;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            continue;
        case 'u':
            break;
        default:
            return false;
        }
        /* \uXXXX, and a high surrogate only with its low one (as cJSON) */
        if (end - p < 6)
            return false;
        long cp = s_hex4(p + 2);
        if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
            return false;
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                return false;
            long low = s_hex4(p + 2);
            if (low < 0xDC00 || low > 0xDFFF)
                return false;
            p += 6;
        }
    }
    out->len = (size_t) (p - out->start);
    b->p = p + 1;
    return true;
}

/* A number as RFC 8259 writes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool s_number(s_buf_t *b, jscan_span_t *out)
{
    const char *p = b->p, *end = b->end;
    out->kind = JSCAN_NUMBER;
    out->start = p;
    out->escaped = false;
    if (*p == '-')
        p++;
    if (p >= end || !s_digit(*p))
        return false;
    if (*p++ != '0')
        while (p < end && s_digit(*p))
            p++;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !s_digit(*p))
            return false;
        while (p < end && s_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !s_digit(*p))
            return false;
        while (p < end && s_digit(*p))
            p++;
    }
    out->len = (size_t) (p - out->start);
    if (out->len > JSCAN_NUMBER_MAX)
        return false;
    b->p = p;
    return true;
}

static bool s_literal(s_buf_t *b, const char *word, size_t n, jscan_kind_t kind,
                      jscan_span_t *out)
{
    if ((size_t) (b->end - b->p) < n || memcmp(b->p, word, n) != 0)
        return false;
    *out = (jscan_span_t){.kind = kind, .start = b->p, .len = n};
    b->p += n;
    return true;
}

/* jscan, which with stop set returns JSCAN_OBJECT as soon as a call of fn
 * has made *stop true, reading no further. */
static jscan_kind_t s_scan(const char *text, size_t len, jscan_member_fn *fn, void *arg,
                           const bool *stop, bool elements)
{
    if (!text)
        return JSCAN_INVALID;
    s_buf_t b = {text, text + len};
    uint8_t objects[(S_DEPTH_MAX + 7) / 8]; /* per open container: 1 object, 0 array */
    int depth = 0;
    jscan_kind_t top = JSCAN_INVALID;
    jscan_span_t key = {0}, value = {0};
    const char *member_start = NULL; /* the value of a top-level member being read */

    s_ws(&b);
    for (;;) {
        /* A value at b.p. */
        if (b.p >= b.end)
            return JSCAN_INVALID;
        if (depth == 1 && (*b.p == '{' || *b.p == '['))
            member_start = b.p; /* a member or element that is a container */
        bool opened = false;
        switch (*b.p) {
        case '{':
        case '[': {
            if (depth >= S_DEPTH_MAX)
                return JSCAN_INVALID;
            bool object = *b.p == '{';
            if (depth == 0)
                top = object ? JSCAN_OBJECT : JSCAN_ARRAY;
            if (object)
                objects[depth / 8] |= (uint8_t) (1u << (depth % 8));
            else
                objects[depth / 8] &= (uint8_t) ~(1u << (depth % 8));
            depth++;
            b.p++;
            s_ws(&b);
            if (b.p < b.end && *b.p == (object ? '}' : ']')) {
                b.p++;
                depth--; /* empty: the value is complete */
                break;
            }
            opened = true;
            break;
        }
        case '"':
            if (!s_string(&b, &value))
                return JSCAN_INVALID;
            break;
        case 't':
            if (!s_literal(&b, "true", 4, JSCAN_TRUE, &value))
                return JSCAN_INVALID;
            break;
        case 'f':
            if (!s_literal(&b, "false", 5, JSCAN_FALSE, &value))
                return JSCAN_INVALID;
            break;
        case 'n':
            if (!s_literal(&b, "null", 4, JSCAN_NULL, &value))
                return JSCAN_INVALID;
            break;
        default:
            if (*b.p != '-' && !s_digit(*b.p))
                return JSCAN_INVALID;
            if (!s_number(&b, &value))
                return JSCAN_INVALID;
            break;
        }
        if (depth == 0 && !opened) {
            if (top == JSCAN_INVALID)
                top = value.kind; /* a scalar text */
            s_ws(&b);
            return b.p == b.end ? top : JSCAN_INVALID;
        }
        /* After a complete value (closing as many containers as end here),
         * or after an opening bracket with content: what comes next. */
        bool need_key = false;
        if (opened) {
            need_key = objects[(depth - 1) / 8] & (1u << ((depth - 1) % 8));
        } else {
            for (;;) {
                /* A value at depth `depth` is complete. */
                if (depth == 1) {
                    if (member_start) { /* it was a container: its whole text */
                        value = (jscan_span_t){.kind = *member_start == '{' ? JSCAN_OBJECT
                                                                           : JSCAN_ARRAY,
                                               .start = member_start,
                                               .len = (size_t) (b.p - member_start)};
                        member_start = NULL;
                    }
                    if (fn && (top == JSCAN_OBJECT || elements)) {
                        fn(top == JSCAN_OBJECT ? &key : NULL, &value, arg);
                        if (stop && *stop)
                            return top;
                    }
                }
                s_ws(&b);
                if (b.p >= b.end)
                    return JSCAN_INVALID;
                bool in_object = objects[(depth - 1) / 8] & (1u << ((depth - 1) % 8));
                if (*b.p == ',') {
                    b.p++;
                    s_ws(&b);
                    need_key = in_object;
                    break;
                }
                if (*b.p != (in_object ? '}' : ']'))
                    return JSCAN_INVALID;
                b.p++;
                if (--depth == 0) {
                    s_ws(&b);
                    return b.p == b.end ? top : JSCAN_INVALID;
                }
            }
        }
        if (need_key) {
            if (b.p >= b.end || *b.p != '"')
                return JSCAN_INVALID;
            jscan_span_t k;
            if (!s_string(&b, &k))
                return JSCAN_INVALID;
            s_ws(&b);
            if (b.p >= b.end || *b.p != ':')
                return JSCAN_INVALID;
            b.p++;
            s_ws(&b);
            if (depth == 1)
                key = k;
        }
    }
}

jscan_kind_t jscan(const char *text, size_t len, jscan_member_fn *fn, void *arg)
{
    return s_scan(text, len, fn, arg, NULL, false);
}

jscan_kind_t jscan_each(const char *text, size_t len, jscan_member_fn *fn, void *arg)
{
    return s_scan(text, len, fn, arg, NULL, true);
}

/* UTF-8 of code point cp into out (room for 4): its length. */
static size_t s_utf8(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xC0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xE0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char) (0xF0 | (cp >> 18));
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

size_t jscan_string(const jscan_span_t *s, char *buf, size_t size)
{
    const char *p = s->start, *end = s->start + s->len;
    size_t n = 0; /* the decoded length so far */
    while (p < end) {
        char one[4];
        size_t k;
        if (*p != '\\') {
            one[0] = *p++;
            k = 1;
        } else {
            char c = p[1];
            p += 2;
            switch (c) {
            case 'b': one[0] = '\b'; k = 1; break;
            case 'f': one[0] = '\f'; k = 1; break;
            case 'n': one[0] = '\n'; k = 1; break;
            case 'r': one[0] = '\r'; k = 1; break;
            case 't': one[0] = '\t'; k = 1; break;
            case 'u': {
                unsigned long cp = (unsigned long) s_hex4(p);
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    cp = 0x10000 + (((cp & 0x3FF) << 10) | ((unsigned long) s_hex4(p + 2) & 0x3FF));
                    p += 6;
                }
                k = s_utf8(cp, one);
                break;
            }
            default: one[0] = c; k = 1; break; /* " \ / */
            }
        }
        for (size_t i = 0; i < k; i++) {
            if (one[i] == 0)
                goto done; /* where C stops reading */
            if (n + 1 < size)
                buf[n] = one[i];
            n++;
        }
    }
done:
    buf[n < size ? n : size - 1] = 0;
    return n;
}

double jscan_number(const jscan_span_t *s)
{
    /* Plain integers of up to 15 digits: exact, no strtod. */
    if (s->len <= 15) {
        double v = 0;
        size_t i = 0;
        for (; i < s->len && s_digit(s->start[i]); i++)
            v = v * 10 + (s->start[i] - '0');
        if (i == s->len)
            return v;
    }
    /* Otherwise strtod, given what cJSON gives it: the locale's decimal point. */
    char text[JSCAN_NUMBER_MAX + 1];
    char point = localeconv()->decimal_point[0];
    size_t n = s->len < JSCAN_NUMBER_MAX ? s->len : JSCAN_NUMBER_MAX;
    for (size_t i = 0; i < n; i++)
        text[i] = s->start[i] == '.' ? point : s->start[i];
    text[n] = 0;
    return strtod(text, NULL);
}

typedef struct {
    const char *name;
    jscan_span_t *value;
    bool found;
} s_sought_t;

static void s_seek(const jscan_span_t *key, const jscan_span_t *value, void *arg)
{
    s_sought_t *m = arg;
    if (m->found)
        return;
    size_t n = strlen(m->name);
    if (key->escaped) {
        char decoded[JSCAN_MEMBER_NAME_MAX + 1];
        jscan_string(key, decoded, sizeof decoded);
        m->found = strcmp(decoded, m->name) == 0;
    } else {
        m->found = key->len == n && memcmp(key->start, m->name, n) == 0;
    }
    if (m->found)
        *m->value = *value;
}

bool jscan_member(const char *text, size_t len, const char *name, jscan_span_t *value)
{
    s_sought_t m = {.name = name, .value = value};
    return jscan(text, len, s_seek, &m) == JSCAN_OBJECT && m.found;
}

bool jscan_find(const char *text, size_t len, const char *name, jscan_span_t *value)
{
    s_sought_t m = {.name = name, .value = value};
    return s_scan(text, len, s_seek, &m, &m.found, false) == JSCAN_OBJECT && m.found;
}
