/* builtin: the behaviours of the tree spec that arbor runs itself (supervise,
 * sleep, fail, exit, crash, hang, flood), each reporting its phases. Runs in
 * a child just forked by the fork-server, reporting over its notify fd (link.h)
 * with libarbor_worker, like any worker: no ZeroMQ in a builtin. */
#ifndef ARBOR_BUILTIN_H
#define ARBOR_BUILTIN_H
#include <stddef.h>

/* payload: {"tree","path","has_children",
 * "spec": node spec}. Never returns: the process exits (or crashes). */
void builtin_run(const char *payload, size_t len) __attribute__((noreturn));

#endif
