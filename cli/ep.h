/* ep: arborctl's look at a broker endpoint before it connects, so that a
 * local mistake is a usage error (exit 2) and a broker that cannot be there
 * is said at once (exit 3) instead of after the welcome timeout:
 *   - not tcp://[SRC;]HOST:PORT or ipc://PATH (or ipc://@NAME): 2;
 *   - ipc://PATH whose PATH is no socket (a file, a directory, too long): 2;
 *   - ipc://PATH that does not exist, or that this user may not connect to: 3.
 * ZeroMQ itself would accept most of these and retry silently forever. */
#ifndef ARBOR_CLI_EP_H
#define ARBOR_CLI_EP_H

#include <stddef.h>

/* 0 when endpoint looks usable; else EXIT_USAGE or EXIT_UNREACHABLE with a
 * sentence in why (no program prefix, no newline). */
int ep_check(const char *endpoint, char *why, size_t size);

#endif
