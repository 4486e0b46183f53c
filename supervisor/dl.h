/* dl: a min-heap of deadlines. Every wait on arbor's teardown path is an
 * entry here; nothing waits without one. Entries are never removed early:
 * a stale one (its node's generation moved on) is skipped when it fires. */
#ifndef ARBOR_DL_H
#define ARBOR_DL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { DL_ESCALATE, DL_TREE_TIMEOUT } dl_kind_t;

typedef struct {
    int64_t when;     /* monotonic ms */
    uint64_t serial;  /* tree */
    int node;         /* index in the tree, -1 for the tree itself */
    uint32_t gen;     /* the node's deadline_gen when this was set */
    dl_kind_t kind;
} dl_entry_t;

typedef struct dl_heap_t dl_heap_t;

dl_heap_t *dl_new(void);
void dl_destroy(dl_heap_t **self);
int dl_push(dl_heap_t *self, dl_entry_t entry);
size_t dl_size(const dl_heap_t *self);
/* Pop the earliest entry if it is due at now. */
bool dl_pop_due(dl_heap_t *self, int64_t now, dl_entry_t *out);
/* Milliseconds until the earliest entry (0 if due), -1 when empty. */
int64_t dl_next_in(const dl_heap_t *self, int64_t now);
/* When the earliest entry is due (the clock's ms), or -1 when there is none. */
int64_t dl_next_when(const dl_heap_t *self);
/* Drop every entry of a tree (when a finished tree is forgotten). */
void dl_forget_tree(dl_heap_t *self, uint64_t serial);

#endif
