/* sec: process hygiene of arbor's daemons (docs/SECURITY.md): no root
 * unless asked for, and ipc sockets only in directories nobody else can
 * write to. */
#ifndef ARBOR_SEC_H
#define ARBOR_SEC_H

#include <stdbool.h>
#include <stddef.h>

/* As root (effective uid 0): -1 (message on stderr, prefixed by prog) when
 * ARBOR_REFUSE_ROOT=1 and allow_root is false; otherwise 0 after a warning,
 * a loud one without allow_root, one short line with it. 0 for other users. */
int sec_check_root(const char *prog, bool allow_root);

/* For an ipc:// endpoint about to be bound: create the socket's directory
 * (one level, mode 0700) when it is missing; refuse a directory that group
 * or others may write to, or that belongs to another user (other than root),
 * unless allow_shared. 0, or -1 with the reason in err. Other transports,
 * and Linux abstract sockets (ipc://@name), pass unchecked: 0. */
int sec_ipc_dir(const char *endpoint, bool allow_shared, char *err, size_t errsize);

/* True for an endpoint on the local host only: ipc:// or inproc://. */
bool sec_endpoint_local(const char *endpoint);

#endif
