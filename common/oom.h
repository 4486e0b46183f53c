/* oom: arbor's one out-of-memory policy for its daemons and its CLI.
 *
 * Running out of memory is not bad input: nothing a request did can be
 * undone by refusing it, and a supervisor that silently drops a phase, an
 * error or a deadline would break the promises it exists for. So an
 * allocation that fails is fatal, at once and loudly: oom_die() writes one
 * line naming the program and the size, and exits with OOM_EXIT_CODE. For
 * a supervisor the kernel then closes its fork-server's channel, and the
 * fork-server stops every worker and descendant (no orphan, the containment
 * guarantee); a broker is restarted by its service manager and its peers
 * register again.
 *
 * oom_install() routes every cJSON allocation (the bulk of what the
 * daemons allocate) through this policy; oom_alloc()/oom_calloc() serve
 * the rest. The fork-server does not install it: there a failed parse is
 * a spawn_failed for one node, and the fork-server keeps running. */
#ifndef ARBOR_OOM_H
#define ARBOR_OOM_H

#include <stddef.h>

#define OOM_EXIT_CODE 71 /* EX_OSERR */

/* Remember the program's name for the message; hook cJSON's allocator. */
void oom_install(const char *program);
/* Never returns. */
void oom_die(size_t size) __attribute__((noreturn));
/* malloc/calloc that never return NULL. */
void *oom_alloc(size_t size);
void *oom_calloc(size_t n, size_t size);

#endif
