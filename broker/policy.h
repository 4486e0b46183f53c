/* policy: who may send what to whom, as a pure decision on names, roles and
 * types (no sockets, no registry, no clock), so that every rule of
 * docs/SECURITY.md has a unit test. broker.c asks after route_decide() and
 * answers `forbidden` when the answer is no.
 *
 * Roles are "client" and "supervisor": workers are never broker peers (they
 * report to their supervisor over their notify fd, common/link.h), so no
 * role, name or message type exists for them here. With CURVE,
 * policy_identity() also binds names and roles to keys. */
#ifndef ARBOR_POLICY_H
#define ARBOR_POLICY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *role;    /* the sender's registered role */
    const char *name;    /* the sender's name */
    const char *type;    /* the message type */
    const char *to;      /* "broker", "topic:T" or a peer name */
    const char *to_role; /* the destination peer's role; NULL for broker and topics */
} policy_msg_t;

/* True when the message may go on; otherwise why says which rule refused it.
 * A role (of sender or destination) other than client or supervisor is
 * refused. */
bool policy_allows(const policy_msg_t *m, char *why, size_t size);

/* True when name is under owner: name is "OWNER.<more>" (a client key's
 * names: alice owns alice.ctl-12-ab). */
bool policy_owns(const char *owner, const char *name);

/* With CURVE: may a peer whose key's certificate (in the broker's allow
 * directory) says key_role and key_name say hello as name with role?
 *   key_role "supervisor": role supervisor as key_name itself;
 *   key_role "client" (also when absent): role client as key_name or key_name.*;
 *   any other key role ("broker", or one nobody knows): nothing.
 * An empty or NULL key_name leaves the name free (a weaker setup: such a key
 * can take any name of its role). */
bool policy_identity(const char *key_role, const char *key_name, const char *name,
                     const char *role, char *why, size_t size);

#endif
