/* fuzz_notify: what one datagram from a worker's notify fd means
 * (supervisor/notify.c). Any program a user runs writes these bytes, so
 * every input must get a kind and never a crash; what the kind promises
 * must hold: a PHASE names a worker phase, an ERROR has a string type, a
 * SPAWN has an object and an id, a CANCEL_REQ a path; none of them holds a
 * \u0000 (cJSON would have cut the string there); a bad message says why.
 * A datagram that begins with RS is a sequence (notify_next): its messages
 * lie inside it, in order, and cover it. The input is copied to the end of
 * an arena before an unreadable
 * page, so reading past it is a crash.
 *
 * Run with tests/fuzz/run.sh; corpus in tests/fuzz/corpus/notify. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jnul.h"
#include "notify.h"
#include "tree.h"

#define S_ARENA (1u << 17)

static char *s_arena;

static void s_die(const char *what)
{
    fprintf(stderr, "fuzz_notify: %s\n", what);
    abort();
}

static void s_one(const char *in, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_arena) {
        long page = sysconf(_SC_PAGESIZE);
        char *map = mmap(NULL, S_ARENA + (size_t) page, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED || mprotect(map + S_ARENA, (size_t) page, PROT_NONE) != 0)
            s_die("cannot map the arena");
        s_arena = map;
    }
    if (size > S_ARENA)
        return 0;
    char *in = s_arena + S_ARENA - size;
    memcpy(in, data, size);
    /* The datagram's messages (a sequence when it begins with RS): each
     * one inside it, after the one before, and together all of it. */
    const char *rest = in, *msg;
    size_t left = size, n, covered = 0;
    while (notify_next(&rest, &left, &msg, &n)) {
        if (msg < in || msg + n > in + size || (covered && msg < in + covered))
            s_die("a message outside its datagram, or out of order");
        covered = (size_t) (msg + n - in);
        s_one(msg, n);
    }
    if (covered != size || left != 0)
        s_die("messages that do not cover their datagram");
    return 0;
}

/* One message: what notify_parse makes of it holds together. */
static void s_one(const char *in, size_t size)
{
    notify_msg_t m;
    notify_kind_t kind = notify_parse(in, size, &m);
    if (kind != m.kind)
        s_die("the returned kind is not the message's");
    switch (kind) {
    case NOTIFY_PHASE: {
        phase_t ph = phase_parse(m.phase);
        if (ph < PH_READY || ph > PH_EXITING)
            s_die("a PHASE that is not a worker phase");
        break;
    }
    case NOTIFY_ERROR:
        if (!cJSON_IsObject(m.error) || !cJSON_IsString(cJSON_GetObjectItem(m.error, "type")))
            s_die("an ERROR without a string type");
        break;
    case NOTIFY_SPAWN:
        if (!cJSON_IsObject(m.node) || m.id < 0)
            s_die("a SPAWN without a node object or an id");
        break;
    case NOTIFY_CANCEL_REQ:
        if (!m.path)
            s_die("a CANCEL_REQ without a path");
        break;
    case NOTIFY_UNKNOWN:
    case NOTIFY_MALFORMED:
    case NOTIFY_TOOBIG:
        if (!m.why[0])
            s_die("a bad message that does not say why");
        break;
    default:
        s_die("an unknown kind");
    }
    if (kind >= NOTIFY_PHASE && kind <= NOTIFY_CANCEL_REQ && jnul_find(in, size, NULL, 0) >= 0)
        s_die("an accepted message with a \\u0000 in a string");
    if (!notify_kind_name(kind))
        s_die("a kind without a name");
    notify_msg_clear(&m);
}
