/* payload: what the fork-server and its builtins read of a spawn payload
 * (the JSON object the supervisor sends with SPAWN: its "spec" and the
 * node's names), straight from its text.
 *
 * jscan (common/jscan.h) validates the text once; every value is then a
 * span of it, read where it is needed (strings decoded as cJSON decodes
 * them). Nothing is built and no JSON library is linked: the fork-server
 * is a static program of libc alone (docs/ARCHITECTURE.md, "Fork-server"),
 * and the child of each fork finds the payload in its copy of the
 * fork-server's buffer. */
#ifndef ARBOR_PAYLOAD_H
#define ARBOR_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "jscan.h"

typedef jscan_span_t pl_t;

/* The payload's object: true when text[0..len) is one valid JSON object. */
bool pl_parse(const char *text, size_t len, pl_t *root);

/* Member name of the object obj (a span pl_parse or pl_get gave): true and
 * *out set when obj is an object that has it. */
bool pl_get(const pl_t *obj, const char *name, pl_t *out);

/* Member name as a string, decoded into buf (cut to size - 1 bytes): buf,
 * or NULL when absent or not a string. */
const char *pl_str(const pl_t *obj, const char *name, char *buf, size_t size);

/* A string span decoded into memory of its own (free it), or NULL when v
 * is not a string (or out of memory). */
char *pl_dup(const pl_t *v);

/* Member name as a number into *out: false when absent or not a number. */
bool pl_num(const pl_t *obj, const char *name, double *out);

/* Whether member name is there with this kind (JSCAN_TRUE, JSCAN_FALSE...). */
bool pl_is(const pl_t *obj, const char *name, jscan_kind_t kind);

/* fn for each member of an object (key, value) or element of an array
 * (key NULL); nothing for any other value. */
void pl_each(const pl_t *container, jscan_member_fn *fn, void *arg);

#endif
