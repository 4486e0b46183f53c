/* jnul: find a "\u0000" escape inside a JSON string.
 *
 * cJSON, the parser of every arbor process, decodes \u0000 to a NUL byte
 * and then reads the string as a C string: "abc\u0000def" becomes "abc"
 * with no error, so a name or an error type would be silently cut. Specs
 * are refused instead (cli/specfile.c, supervisor/spec.c); this finds where,
 * in the raw text, before or after cJSON has parsed it. */
#ifndef ARBOR_JNUL_H
#define ARBOR_JNUL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Byte offset in text of the first \u0000 escape inside a string (a key or
 * a value), or -1 when there is none. pointer (may be NULL) gets the JSON
 * Pointer (RFC 6901) of the value it is in, or of the member whose key
 * holds it: "/children/0/error/type" (keys as written, escapes kept).
 * text must be valid JSON (call it once a parser took it); a string that
 * only looks like the escape ("\\u0000": a backslash, then "u0000") is no
 * hit. Cheap when there is no "\u0000" at all (one memmem). */
ssize_t jnul_find(const char *text, size_t len, char *pointer, size_t size);

#endif
