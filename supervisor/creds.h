/* creds: the ids an exec'd node runs as, resolved from its spec's "user"
 * and "group" before the node goes to the fork-server.
 *
 * Names are looked up here, through glibc's NSS (getpwnam, getgrnam,
 * getgrouplist), because the fork-server is a static program of libc alone
 * (forkserver/payload.h) and a static glibc cannot use NSS reliably. The
 * fork-server's child then only applies numbers: setgroups, setgid,
 * setuid, HOME/USER/LOGNAME. A name that does not resolve is not an error
 * here: it travels with the payload and the child reports it as the
 * node's spawn failure, where it always was. With "files" a lookup costs
 * microseconds; a spec that gives numeric ids needs none. */
#ifndef ARBOR_CREDS_H
#define ARBOR_CREDS_H

#include <cjson/cJSON.h>

#include <stdint.h>

#define CREDS_TTL_MS 1000 /* how long an answer is reused for the same names */

/* The last answer, reused for CREDS_TTL_MS: a tree of 1000 exec'd nodes
 * that run as one user costs one lookup (~47 µs with "files"), not 1000. */
typedef struct creds_t creds_t;

creds_t *creds_new(void);
void creds_destroy(creds_t **self);

/* The payload's "creds" for spec (a checked exec node), a new item the
 * caller owns, or NULL when it names neither user nor group:
 *   {"uid": U, "gid": G, "groups": [G, ...], "home": H, "name": N}
 *   (uid only with "user"; home and name when the user has a passwd entry)
 * or {"errno": E, "what": "user \"x\" does not exist"}. */
cJSON *creds_resolve(creds_t *self, const cJSON *spec, int64_t now_ms);

#endif
