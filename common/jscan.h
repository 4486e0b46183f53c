/* jscan: check that a buffer is one JSON text, without building anything.
 *
 * The broker's hot path (head.h) needs five top-level members of each
 * envelope and a guarantee that the whole frame is JSON that its receivers
 * can parse; a cJSON tree of every message, body included, cost most of the
 * broker's time. jscan validates in one pass, allocates nothing, and hands
 * the members of a top-level object to a callback as spans of the input.
 *
 * What it accepts is RFC 8259 JSON, with two limits taken from cJSON so
 * that whatever jscan accepts, cJSON (the receivers' parser) accepts too:
 *   - at most CJSON_NESTING_LIMIT (1000) nested arrays/objects;
 *   - numbers of at most 63 characters (cJSON reads no more).
 * It is stricter than cJSON elsewhere: whitespace is only space, tab, LF,
 * CR; no byte-order mark, no bytes after the value, no control characters
 * inside strings, numbers exactly as RFC 8259 writes them (no "01", "1.",
 * "-.5"), \u escapes with four hex digits and paired surrogates. Like
 * cJSON it does not check that strings are valid UTF-8 (bytes >= 0x80 pass
 * as they are). */
#ifndef ARBOR_JSCAN_H
#define ARBOR_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    JSCAN_INVALID = -1, /* not one JSON text */
    JSCAN_OBJECT,
    JSCAN_ARRAY,
    JSCAN_STRING,
    JSCAN_NUMBER,
    JSCAN_TRUE,
    JSCAN_FALSE,
    JSCAN_NULL,
} jscan_kind_t;

#define JSCAN_NUMBER_MAX 63 /* characters in a number */

/* A value (or a key) inside the scanned buffer. */
typedef struct {
    jscan_kind_t kind;
    const char *start; /* strings: the first byte after the opening quote;
                          others: the first byte of the value */
    size_t len;        /* strings: bytes between the quotes, still escaped;
                          others: bytes of the value ("{...}" whole) */
    bool escaped;      /* strings: at least one backslash escape inside */
} jscan_span_t;

/* One member of the top-level object: key (a string span) and value; or,
 * for jscan_each, one element of the top-level array: key NULL. */
typedef void(jscan_member_fn)(const jscan_span_t *key, const jscan_span_t *value, void *arg);

/* Validate text[0..len) as one JSON text and return the kind of its value,
 * or JSCAN_INVALID. When the value is an object, fn (may be NULL) is called
 * for each of its members in order, as they are read: an invalid text may
 * have reported some members before it turned out invalid. */
jscan_kind_t jscan(const char *text, size_t len, jscan_member_fn *fn, void *arg);

/* jscan that also hands over the elements of a top-level array, with key
 * NULL (the members of an object come with their key, as in jscan). */
jscan_kind_t jscan_each(const char *text, size_t len, jscan_member_fn *fn, void *arg);

/* The string a valid string span stands for, as cJSON decodes it (escapes
 * resolved, \u escapes as UTF-8) and as C reads it: up to its first NUL.
 * Writes at most size - 1 bytes and a NUL into buf (size > 0); returns the
 * whole length, so a result >= size means it was cut. */
size_t jscan_string(const jscan_span_t *s, char *buf, size_t size);

/* The number a valid number span stands for, as cJSON reads it (strtod). */
double jscan_number(const jscan_span_t *s);

#define JSCAN_MEMBER_NAME_MAX 255 /* longest name jscan_member matches an escaped key to */

/* The value of the first member named name of the top-level object of
 * text[0..len), keys read as cJSON reads them (escapes resolved, up to a
 * NUL): true and *value set when text is one valid JSON object that has
 * it. One validating pass, nothing built. */
bool jscan_member(const char *text, size_t len, const char *name, jscan_span_t *value);

/* jscan_member for a text already known to be valid (jscan accepted it, or
 * it is a span of one it accepted): the same member, but the scan stops at
 * it instead of reading the rest. On any other text it is still bounded by
 * len and returns a member only if the text is valid up to it. The status
 * of a 530 kB report is its third member: found without reading the rest. */
bool jscan_find(const char *text, size_t len, const char *name, jscan_span_t *value);

#endif
