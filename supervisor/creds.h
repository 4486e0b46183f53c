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

/* The payload's "creds" for spec (a checked exec node), or NULL when it
 * names neither user nor group (or out of memory):
 *   {"uid": U, "gid": G, "groups": [G, ...], "home": H, "name": N}
 *   (uid only with "user"; home and name when the user has a passwd entry)
 * or {"errno": E, "what": "user \"x\" does not exist"}. */
cJSON *creds_resolve(const cJSON *spec);

#endif
