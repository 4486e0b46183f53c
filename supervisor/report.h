/* report: a tree's report (schema/report.json) as JSON text, written
 * straight from the tree model. A report is printed to be sent and then
 * dropped, and a 1111-node one is ~45k cJSON items: building them, printing
 * and freeing them was ~10 ms between a cancelled tree's last exit and its
 * done event. Written directly it is a small fraction of that. */
#ifndef ARBOR_REPORT_H
#define ARBOR_REPORT_H

#include <stdint.h>

#include "tree.h"

/* The report of tree at now_ms (its duration runs to now_ms until it has
 * ended), with "guarantees" (a NULL-terminated list of names; NULL: the
 * key is left out). Caller frees; NULL when out of memory. */
char *report_text(const tree_t *tree, int64_t now_ms, const char *const *guarantees);

#endif
