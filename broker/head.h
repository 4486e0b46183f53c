/* head: what the broker reads of an envelope to route it — type, to, id,
 * re and from — with every check of env_decode(), without a cJSON tree.
 *
 * head_read() validates the whole frame as JSON (jscan.h: strict RFC 8259,
 * and whatever it accepts cJSON accepts), then checks the envelope exactly
 * as env_decode() does, in the same order and with the same error codes
 * and messages: an object; "v" the number 1; "type" a string shorter than
 * 32 bytes; "to" a non-empty string shorter than ENV_NAME_MAX + 64; "id" a
 * non-negative integer below 2^53; "re" absent, null or such an integer;
 * "body" an object; a known type; none of these keys twice (parsers
 * disagree on which one would count). Members are read as cJSON reads
 * them: strings up to their first NUL.
 *
 * The difference from env_decode(): stricter JSON (no bytes after the
 * value, no leading zeros, no control characters in strings, ...), which
 * is answered bad_json; and no body: messages the broker handles itself
 * are decoded again with env_decode(). tests/fuzz/fuzz_envelope.c checks
 * both against each other on every input. */
#ifndef ARBOR_HEAD_H
#define ARBOR_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "env.h"

typedef enum {
    HEAD_FROM_NONE,  /* no "from" member */
    HEAD_FROM_NAME,  /* a string short enough to be a peer name: from_name */
    HEAD_FROM_OTHER, /* not a string, or too long to be anybody's name */
} head_from_t;

typedef struct {
    char type[32];
    char to[ENV_NAME_MAX + 64];
    int64_t id;
    int64_t re; /* -1 when absent or null */
    head_from_t from;
    char from_name[ENV_NAME_MAX + 1]; /* "" unless HEAD_FROM_NAME */
} head_t;

/* 0, or -1 with err filled as env_decode() fills it (bad_json,
 * bad_envelope, unknown_type). */
int head_read(const void *data, size_t len, head_t *out, env_err_t *err);

/* The head of an envelope decoded with env_decode() (tests, tools). */
void head_of_env(const env_t *env, head_t *out);

#endif
