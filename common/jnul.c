#include "jnul.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define S_DEPTH 64 /* levels kept for the pointer; deeper ones still found */

typedef struct {
    bool array;
    long index;          /* arrays: the current element */
    const char *key;     /* objects: the current member's key, raw */
    size_t key_len;
} s_level_t;

static void s_pointer(const s_level_t *lv, int depth, char *out, size_t size)
{
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < depth && i < S_DEPTH && n + 1 < size; i++) {
        int w;
        if (lv[i].array) {
            w = snprintf(out + n, size - n, "/%ld", lv[i].index);
        } else {
            /* RFC 6901: '~' is "~0", '/' is "~1". */
            char key[160];
            size_t k = 0;
            for (size_t j = 0; j < lv[i].key_len && k + 3 < sizeof key; j++) {
                char c = lv[i].key[j];
                if (c == '~' || c == '/') {
                    key[k++] = '~';
                    key[k++] = c == '~' ? '0' : '1';
                } else {
                    key[k++] = c;
                }
            }
            key[k] = 0;
            w = snprintf(out + n, size - n, "/%s", key);
        }
        if (w < 0 || (size_t) w >= size - n)
            return; /* cut: what fits is still the right prefix */
        n += (size_t) w;
    }
}

ssize_t jnul_find(const char *text, size_t len, char *pointer, size_t size)
{
    if (pointer && size)
        pointer[0] = 0;
    if (!text || !memmem(text, len, "\\u0000", 6))
        return -1;
    s_level_t lv[S_DEPTH];
    int depth = 0;
    bool want_key = false; /* inside an object, before a member's ':' */
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '{' || c == '[') {
            if (depth >= 0 && depth < S_DEPTH) /* < 0: bytes after the value */
                lv[depth] = (s_level_t){c == '[', 0, NULL, 0};
            depth++;
            want_key = c == '{';
        } else if (c == '}' || c == ']') {
            depth--;
            want_key = false;
        } else if (c == ',') {
            if (depth > 0 && depth <= S_DEPTH && lv[depth - 1].array)
                lv[depth - 1].index++;
            want_key = depth > 0 && depth <= S_DEPTH && !lv[depth - 1].array;
        } else if (c == '"') {
            size_t start = ++i;
            ssize_t hit = -1;
            while (i < len && text[i] != '"') {
                if (text[i] == '\\') {
                    if (hit < 0 && i + 5 < len && memcmp(text + i, "\\u0000", 6) == 0)
                        hit = (ssize_t) i;
                    i++; /* the escaped character: never a closing quote */
                }
                i++;
            }
            if (i > len)
                i = len; /* a text that ends in a lone backslash: the string stops at its end */
            if (want_key && depth > 0 && depth <= S_DEPTH) {
                lv[depth - 1].key = text + start;
                lv[depth - 1].key_len = i - start;
                want_key = false;
            }
            if (hit >= 0) {
                if (pointer && size)
                    s_pointer(lv, depth, pointer, size);
                return hit;
            }
        }
    }
    return -1;
}
