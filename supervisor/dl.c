#include "dl.h"

#include <stdlib.h>

struct dl_heap_t {
    dl_entry_t *items;
    size_t n, cap;
};

dl_heap_t *dl_new(void) { return calloc(1, sizeof(dl_heap_t)); }

void dl_destroy(dl_heap_t **self)
{
    if (!self || !*self)
        return;
    free((*self)->items);
    free(*self);
    *self = NULL;
}

size_t dl_size(const dl_heap_t *self) { return self->n; }

static void s_swap(dl_entry_t *a, dl_entry_t *b)
{
    dl_entry_t t = *a;
    *a = *b;
    *b = t;
}

static void s_up(dl_heap_t *h, size_t i)
{
    while (i > 0 && h->items[(i - 1) / 2].when > h->items[i].when) {
        s_swap(&h->items[(i - 1) / 2], &h->items[i]);
        i = (i - 1) / 2;
    }
}

static void s_down(dl_heap_t *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->items[l].when < h->items[m].when)
            m = l;
        if (r < h->n && h->items[r].when < h->items[m].when)
            m = r;
        if (m == i)
            return;
        s_swap(&h->items[i], &h->items[m]);
        i = m;
    }
}

int dl_push(dl_heap_t *self, dl_entry_t entry)
{
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 256;
        dl_entry_t *grown = realloc(self->items, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->items = grown;
        self->cap = cap;
    }
    self->items[self->n] = entry;
    s_up(self, self->n++);
    return 0;
}

bool dl_pop_due(dl_heap_t *self, int64_t now, dl_entry_t *out)
{
    if (self->n == 0 || self->items[0].when > now)
        return false;
    *out = self->items[0];
    self->items[0] = self->items[--self->n];
    s_down(self, 0);
    return true;
}

int64_t dl_next_in(const dl_heap_t *self, int64_t now)
{
    if (self->n == 0)
        return -1;
    int64_t d = self->items[0].when - now;
    return d > 0 ? d : 0;
}

int64_t dl_next_when(const dl_heap_t *self) { return self->n ? self->items[0].when : -1; }

void dl_forget_tree(dl_heap_t *self, uint64_t serial)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->n; i++)
        if (self->items[i].serial != serial)
            self->items[kept++] = self->items[i];
    self->n = kept;
    for (size_t i = self->n / 2 + 1; i-- > 0;)
        s_down(self, i);
}
