#include "payload.h"

#include <stdlib.h>

bool pl_parse(const char *text, size_t len, pl_t *root)
{
    if (jscan(text, len, NULL, NULL) != JSCAN_OBJECT)
        return false;
    *root = (pl_t){.kind = JSCAN_OBJECT, .start = text, .len = len};
    return true;
}

bool pl_get(const pl_t *obj, const char *name, pl_t *out)
{
    /* obj is part of a text jscan accepted: the scan may stop at the member */
    return obj && obj->kind == JSCAN_OBJECT && jscan_find(obj->start, obj->len, name, out);
}

const char *pl_str(const pl_t *obj, const char *name, char *buf, size_t size)
{
    pl_t v;
    if (!pl_get(obj, name, &v) || v.kind != JSCAN_STRING || size == 0)
        return NULL;
    jscan_string(&v, buf, size);
    return buf;
}

char *pl_dup(const pl_t *v)
{
    if (!v || v->kind != JSCAN_STRING)
        return NULL;
    char *s = malloc(v->len + 1); /* decoding never lengthens a string */
    if (s)
        jscan_string(v, s, v->len + 1);
    return s;
}

bool pl_num(const pl_t *obj, const char *name, double *out)
{
    pl_t v;
    if (!pl_get(obj, name, &v) || v.kind != JSCAN_NUMBER)
        return false;
    *out = jscan_number(&v);
    return true;
}

bool pl_is(const pl_t *obj, const char *name, jscan_kind_t kind)
{
    pl_t v;
    return pl_get(obj, name, &v) && v.kind == kind;
}

void pl_each(const pl_t *container, jscan_member_fn *fn, void *arg)
{
    if (container && (container->kind == JSCAN_OBJECT || container->kind == JSCAN_ARRAY))
        jscan_each(container->start, container->len, fn, arg);
}
