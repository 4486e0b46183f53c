#include "specfile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jnul.h"

cJSON *specfile_parse(const char *text, size_t len, char *err, size_t err_size)
{
    const char *end = NULL;
    cJSON *spec = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!spec) {
        /* cJSON points at the first byte it could not take. */
        const char *at = end ? end : cJSON_GetErrorPtr();
        if (!at || at < text || at > text + len)
            at = text;
        int line = 1, col = 1;
        for (const char *p = text; p < at; p++) {
            if (*p == '\n')
                line++, col = 1;
            else
                col++;
        }
        const char *rest = at;
        while (rest < text + len && (*rest == ' ' || *rest == '\n' || *rest == '\r' || *rest == '\t'))
            rest++;
        if (rest == text + len)
            snprintf(err, err_size, "not valid JSON: unexpected end of input at line %d, column %d",
                     line, col);
        else
        {
            size_t left = (size_t) (text + len - at);
            snprintf(err, err_size, "not valid JSON at line %d, column %d (near '%.*s')", line,
                     col, (int) (left < 16 ? left : 16), at);
        }
        /* keep the message on one line */
        for (char *p = err; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
        return NULL;
    }
    /* cJSON reads "a\u0000b" as "a" without a word: refuse it here, where
     * the text still says where it is. */
    char pointer[192];
    ssize_t nul = jnul_find(text, len, pointer, sizeof pointer);
    if (nul >= 0) {
        int line = 1, col = 1;
        for (const char *p = text; p < text + nul; p++) {
            if (*p == '\n')
                line++, col = 1;
            else
                col++;
        }
        snprintf(err, err_size,
                 "line %d, column %d: the string at %s holds \\u0000 (NUL), which arbor refuses "
                 "(every arbor process would read the string only up to it)",
                 line, col, *pointer ? pointer : "/");
        cJSON_Delete(spec);
        return NULL;
    }
    if (!cJSON_IsObject(spec)) {
        snprintf(err, err_size, "a tree spec must be a JSON object (the root node)");
        cJSON_Delete(spec);
        return NULL;
    }
    return spec;
}

static char *s_read_all(FILE *f, size_t *len, char *err, size_t err_size)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) { /* +1: room for a NUL */
            if (cap > SPECFILE_MAX_BYTES) {
                snprintf(err, err_size, "larger than %d bytes", SPECFILE_MAX_BYTES);
                free(buf);
                return NULL;
            }
            char *grown = realloc(buf, cap * 2);
            if (!grown)
                break;
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                snprintf(err, err_size, "read error: %s", strerror(errno));
                free(buf);
                return NULL;
            }
            buf[n] = 0;
            *len = n;
            return buf;
        }
    }
    free(buf);
    snprintf(err, err_size, "out of memory");
    return NULL;
}

cJSON *specfile_load(const char *path, char *err, size_t err_size)
{
    bool from_stdin = strcmp(path, "-") == 0;
    const char *label = from_stdin ? "<stdin>" : path;
    FILE *f = from_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: %s", label, strerror(errno));
        return NULL;
    }
    char why[200] = "";
    size_t len = 0;
    char *text = s_read_all(f, &len, why, sizeof why);
    if (!from_stdin)
        fclose(f);
    if (!text) {
        snprintf(err, err_size, "%s: %s", label, why);
        return NULL;
    }
    cJSON *spec = specfile_parse(text, len, why, sizeof why);
    free(text);
    if (!spec)
        snprintf(err, err_size, "%s: %s", label, why);
    return spec;
}
