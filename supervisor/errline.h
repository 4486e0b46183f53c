/* errline: the last "ARBOR-ERROR {json}" line of a node's stderr, kept on
 * its own so that a long error survives.
 *
 * A program may write its error on stderr as one line, LINK_ERROR_MARK then
 * {"type","message"[,"traceback"]} (common/link.h). The node's stderr tail
 * keeps only its last TREE_TAIL_BYTES (4 KiB): a 10 kB line lost its start
 * there and the error became NonZeroExit. The line is kept here instead, up
 * to ERRLINE_MAX bytes of JSON (what one notify fd message may hold): whole
 * up to that, and beyond it cut, the JSON closed again with the marker
 * "…[truncated N bytes]" where it was cut. Pure: no I/O, no clock.
 *
 *     errline_t el = {0};
 *     errline_feed(&el, data, len);            // every chunk of stderr, in order
 *     cJSON *e = errline_error(&el, why, sizeof why);
 *     errline_free(&el);
 */
#ifndef ARBOR_ERRLINE_H
#define ARBOR_ERRLINE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ERRLINE_MAX 65536 /* bytes of JSON kept, as NOTIFY_MSG_MAX */

typedef struct {
    char *buf;         /* the last marked line's JSON (after the mark), its first bytes */
    size_t len, cap;   /* cap grows up to ERRLINE_MAX: a short line costs little */
    uint64_t dropped;  /* its bytes beyond ERRLINE_MAX */
    uint64_t from, to; /* where it is in the stderr stream: mark to newline included */
    bool open;         /* its newline has not come (yet) */
    bool seen;         /* a marked line was found */
    uint64_t at;       /* bytes of stderr fed so far */
    int col;           /* the current line: bytes of the mark matched, or a state below */
} errline_t;

/* Feed the next bytes of stderr; chunks may split anywhere (the mark too). */
void errline_feed(errline_t *el, const char *data, size_t len);

/* The error the last marked line holds, as the node's error: the object
 * whole, or cut at ERRLINE_MAX and closed with the marker (a "type" it lost
 * is "Error", a "message" it lost ""). NULL when there is no marked line, or
 * when the line is not such an error (not JSON, no type, a \u0000 in a
 * string: cJSON would have cut it there); then why says which, if a line
 * was there ("" when none). */
cJSON *errline_error(const errline_t *el, char *why, size_t size);

/* Does the stream's range [from, to) of the last marked line cover the
 * stream offset off? (what a report's stderr should not show twice) */
bool errline_covers(const errline_t *el, uint64_t off);

void errline_free(errline_t *el);

#endif
