/* curve: CURVE keys for arbor's peers (docs/SECURITY.md).
 *
 * A peer talks CURVE to the broker when two variables are set (arborctl's
 * --curve-cert and --curve-server-key set them too):
 *   ARBOR_CURVE_SERVERKEY  the broker's public key: 40 z85 characters, or the
 *                          path of a certificate file that holds it;
 *   ARBOR_CURVE_CERT       the peer's own certificate: FILE (public) next to
 *                          FILE_secret (secret), as `arborctl keygen` writes.
 * Workers need neither: they never connect to the broker (exec'd programs
 * still inherit both from their supervisor's environment: docs/SECURITY.md,
 * "Not protected"). With neither set the peer talks plain ZeroMQ. */
#ifndef ARBOR_CURVE_H
#define ARBOR_CURVE_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#define CURVE_KEY_Z85 40      /* a key in z85 text */
#define CURVE_NAME_MAX 64     /* certificate "name": [A-Za-z0-9_-]{1,64}, no dots */
#define CURVE_ENV_CERT "ARBOR_CURVE_CERT"
#define CURVE_ENV_SERVERKEY "ARBOR_CURVE_SERVERKEY"

typedef struct {
    zcert_t *cert;                      /* the peer's own, with its secret key */
    char server_key[CURVE_KEY_Z85 + 1]; /* the broker's public key, z85 */
} curve_client_t;

/* True for 40 characters of the z85 alphabet. */
bool curve_key_valid(const char *text);

/* [A-Za-z0-9_-]{1,CURVE_NAME_MAX}: a key's name space is NAME and NAME.* */
bool curve_name_valid(const char *name);

/* The broker's public key from text: a z85 key, or a certificate file.
 * 0, or -1 with a message in err. */
int curve_server_key(const char *text, char out[CURVE_KEY_Z85 + 1], char *err, size_t errsize);

/* Load the certificate at path with its secret key (read from path_secret,
 * or from path itself when it is the secret file). NULL with a message in
 * err when it cannot be read or holds no secret key. */
zcert_t *curve_load_secret(const char *path, char *err, size_t errsize);

/* From the environment: 0 when CURVE is not configured (plain), 1 when out
 * was filled, -1 with a message in err when it is half or badly configured. */
int curve_client_from_env(curve_client_t *out, char *err, size_t errsize);
void curve_client_clear(curve_client_t *self);

/* Make sock (not yet connected) a CURVE client of the broker. */
void curve_client_apply(const curve_client_t *self, zsock_t *sock);

/* The "name" of the certificate in ARBOR_CURVE_CERT, copied to out: 0, or
 * -1 when CURVE is not configured or the certificate has no valid name. */
int curve_env_cert_name(char *out, size_t size);

#endif
