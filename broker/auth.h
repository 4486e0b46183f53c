/* auth: CURVE on the broker's ROUTER (docs/SECURITY.md). CZMQ's zauth actor
 * answers the ZeroMQ handshake from a directory of allowed public
 * certificates; a connection with any other key (or none) never gets
 * through. The broker also reads that directory itself: each certificate's
 * "role" and "name" metadata say which names and roles its key may register
 * (policy_identity). Messages carry the sender's key as their "User-Id"
 * property, set by the handshake: the peer cannot choose it. */
#ifndef ARBOR_AUTH_H
#define ARBOR_AUTH_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct auth_t auth_t;

/* Start zauth on allow_dir and make router (not yet bound) a CURVE server
 * with the secret certificate in secret_file. allow_shared: accept an allow
 * directory that others may write to. NULL with a message in err. */
auth_t *auth_new(zsock_t *router, const char *secret_file, const char *allow_dir,
                 bool allow_shared, char *err, size_t errsize);
void auth_destroy(auth_t **self);

/* What auth_new checks of its files, alone and before anything starts (no
 * thread, no ZeroMQ context): secret_file a certificate with its secret half,
 * allow_dir a directory (that others may not write to, unless allow_shared).
 * A file named on the command line that is not there or not usable is the
 * caller's mistake, told apart from a failure to start. 0, or -1 with the
 * reason (naming the flag) in err. */
int auth_check_files(const char *secret_file, const char *allow_dir, bool allow_shared, char *err,
                     size_t errsize);

/* The broker's public key, z85. */
const char *auth_public_key(auth_t *self);

/* The role and name its certificate gives key (empty strings when absent).
 * False when key is not in the allow directory (any more). The strings stay
 * valid until the next call. */
bool auth_lookup(auth_t *self, const char *key, const char **role, const char **name);

/* The monitor of the handshakes (for the loop): every refused connection is
 * counted and logged (at most one line per 10 s). */
zactor_t *auth_monitor(auth_t *self);
/* Read one event from the monitor; returns 1 when it was a refused
 * connection, else 0. */
int auth_on_monitor(auth_t *self, int64_t now_ms);
uint64_t auth_refused(auth_t *self);

#endif
