/* endpoint: is a string a ZeroMQ endpoint arbor can use, and is an ipc
 * socket file already served?
 *
 * libzmq takes "tcp://127.0.0.1:99999" and binds some other port (the
 * number wraps), and binding an ipc:// path unlinks whatever socket file is
 * there, so a second broker silently takes a live broker's socket over.
 * Both are refused before binding or connecting. */
#ifndef ARBOR_ENDPOINT_H
#define ARBOR_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

/* 0 when ep is tcp://[SRC;]HOST:PORT (PORT 1..65535; HOST "*" only to bind,
 * SRC; only to connect, an IPv6 HOST in brackets),
 * ipc://PATH (a path that fits a socket address, or @name: abstract) or
 * inproc://NAME; else -1 with the reason in why. Pure: no system call. */
int endpoint_check(const char *ep, bool bind, char *why, size_t size);

/* For an ipc://PATH endpoint (not abstract): 1 when a process accepts
 * connections on PATH now (connect() succeeds), 0 when nobody does (no
 * file, or a stale one: ECONNREFUSED), -1 with errno when it cannot tell.
 * Other endpoints: 0. A connection it makes is closed at once. */
int endpoint_ipc_in_use(const char *ep);

#endif
