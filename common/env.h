/* env: the JSON envelope every arbor message travels in.
 *
 *   {"v":1,"type":T,"to":DEST,"id":N,"re":N|null,"body":{...}}
 *
 * A sender puts one envelope in one frame. The broker delivers it as two
 * frames, [sender name][envelope bytes unchanged]: the broker, never the
 * sender, states who sent it. See docs/PROTOCOL.md. */
#ifndef ARBOR_ENV_H
#define ARBOR_ENV_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENV_VERSION 1
#define ENV_NAME_MAX 128          /* peer names: [A-Za-z0-9_.-]{1,128} */
#define ENV_TOPIC_PREFIX "topic:" /* "to" of a fan-out to subscribers */

typedef struct {
    char code[32];    /* bad_json, bad_envelope, unknown_type, ... */
    char message[256];
} env_err_t;

typedef struct {
    char type[32];
    char to[ENV_NAME_MAX + 64];
    char from[ENV_NAME_MAX + 1]; /* filled by the receiver from the sender frame */
    int64_t id;
    int64_t re;                  /* -1 when null */
    cJSON *root;                 /* whole document, owned */
    cJSON *body;                 /* borrowed from root; always an object */
    /* JSON Pointer of the first string holding \u0000 (common/jnul.h), ""
     * when none: cJSON cut that string short, so a receiver that must not
     * act on a cut string (a spawn's spec) refuses the message. */
    char nul_pointer[192];
} env_t;

/* Parse and check one envelope. Returns NULL and fills err on bad input. */
env_t *env_decode(const void *data, size_t len, env_err_t *err);

/* env_decode, except that the body's member named member, when it is an
 * object, stays its JSON text: a cJSON_Raw item, checked to be strict JSON
 * (jscan.h) but never parsed. For a client that passes a large value on as
 * it came (arborctl printing a half-megabyte report): no tree of 45k items
 * to build, walk and free. A frame that is not strict JSON, or has no such
 * member, is decoded by env_decode, errors and all. */
env_t *env_decode_raw(const void *data, size_t len, const char *member, env_err_t *err);
void env_destroy(env_t **self);

/* Serialise an envelope; body is taken and freed (NULL = {}). Caller frees
 * the returned text. */
char *env_encode(const char *type, const char *to, int64_t id, int64_t re, cJSON *body);

/* True when type is one of the message types of docs/PROTOCOL.md. */
bool env_type_known(const char *type);

/* [A-Za-z0-9_.-]{1,max} */
bool env_name_valid(const char *name, size_t max);

/* Fill err; returns -1 so callers can `return env_err_set(...)`. */
int env_err_set(env_err_t *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Body accessors: NULL / fallback when absent or of another type. */
const char *env_str(const cJSON *obj, const char *key);
int64_t env_int(const cJSON *obj, const char *key, int64_t fallback);
/* True and *out set when obj[key] is a number. */
bool env_num(const cJSON *obj, const char *key, int64_t *out);

#endif
