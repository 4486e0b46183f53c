#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool s_reserve(sbuf_t *self, size_t extra)
{
    if (self->oom)
        return false;
    if (self->len + extra + 1 <= self->cap)
        return true;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < self->len + extra + 1)
        cap *= 2;
    char *data = realloc(self->data, cap);
    if (!data) {
        self->oom = true;
        return false;
    }
    self->data = data;
    self->cap = cap;
    return true;
}

bool sbuf_reserve(sbuf_t *self, size_t extra) { return s_reserve(self, extra); }

void sbuf_add(sbuf_t *self, const char *text, size_t len)
{
    if (!s_reserve(self, len))
        return;
    memcpy(self->data + self->len, text, len);
    self->len += len;
    self->data[self->len] = 0;
}

void sbuf_printf(sbuf_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !s_reserve(self, (size_t) n))
        return;
    va_start(ap, fmt);
    vsnprintf(self->data + self->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    self->len += (size_t) n;
}

void sbuf_add_clean(sbuf_t *self, const char *text, size_t max)
{
    size_t n = strlen(text);
    bool cut = max && n > max;
    if (cut) { /* do not split a UTF-8 sequence */
        n = max;
        while (n > 0 && ((unsigned char) text[n] & 0xC0) == 0x80)
            n--;
    }
    if (!s_reserve(self, n + 3))
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) text[i];
        self->data[self->len++] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
    }
    self->data[self->len] = 0;
    if (cut)
        sbuf_add(self, "...", 3);
}

void sbuf_add_jstr(sbuf_t *self, const char *text)
{
    if (!text) {
        sbuf_add(self, "null", 4);
        return;
    }
    sbuf_add(self, "\"", 1);
    const char *run = text; /* bytes copied as they are, in one go */
    for (const char *p = text;; p++) {
        unsigned char c = (unsigned char) *p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sbuf_add(self, run, (size_t) (p - run));
        if (c == 0)
            break;
        char esc[8];
        int k;
        switch (c) {
        case '"': k = snprintf(esc, sizeof esc, "\\\""); break;
        case '\\': k = snprintf(esc, sizeof esc, "\\\\"); break;
        case '\b': k = snprintf(esc, sizeof esc, "\\b"); break;
        case '\f': k = snprintf(esc, sizeof esc, "\\f"); break;
        case '\n': k = snprintf(esc, sizeof esc, "\\n"); break;
        case '\r': k = snprintf(esc, sizeof esc, "\\r"); break;
        case '\t': k = snprintf(esc, sizeof esc, "\\t"); break;
        default: k = snprintf(esc, sizeof esc, "\\u%04x", c); break;
        }
        sbuf_add(self, esc, (size_t) k);
        run = p + 1;
    }
    sbuf_add(self, "\"", 1);
}

void sbuf_add_i64(sbuf_t *self, long long v)
{
    char digits[24];
    char *end = digits + sizeof digits, *p = end;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long) v : (unsigned long long) v;
    do
        *--p = (char) ('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    sbuf_add(self, p, (size_t) (end - p));
}
char *sbuf_take(sbuf_t *self)
{
    if (!self->data && s_reserve(self, 0))
        self->data[0] = 0;
    char *text = self->data;
    self->data = NULL;
    self->len = self->cap = 0;
    self->oom = false;
    return text;
}

void sbuf_reset(sbuf_t *self)
{
    free(self->data);
    self->data = NULL;
    self->len = self->cap = 0;
    self->oom = false;
}
