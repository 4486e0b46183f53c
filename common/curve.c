#include "curve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool curve_key_valid(const char *text)
{
    /* The z85 alphabet (ZeroMQ RFC 32). */
    static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              ".-:+=^!/*?&<>()[]{}@%$#";
    if (!text || strlen(text) != CURVE_KEY_Z85)
        return false;
    for (const char *p = text; *p; p++)
        if (!strchr(z85, *p))
            return false;
    return true;
}

bool curve_name_valid(const char *name)
{
    if (!name || !*name || strlen(name) > CURVE_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

int curve_server_key(const char *text, char out[CURVE_KEY_Z85 + 1], char *err, size_t errsize)
{
    struct stat st;
    if (!text || !*text) {
        snprintf(err, errsize, "the broker's public key is empty");
        return -1;
    }
    if (curve_key_valid(text) && stat(text, &st) != 0) {
        memcpy(out, text, CURVE_KEY_Z85 + 1);
        return 0;
    }
    zcert_t *cert = zcert_load(text);
    if (!cert) {
        snprintf(err, errsize,
                 "the broker's public key \"%s\" is neither 40 z85 characters nor a readable "
                 "certificate file",
                 text);
        return -1;
    }
    snprintf(out, CURVE_KEY_Z85 + 1, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}

zcert_t *curve_load_secret(const char *path, char *err, size_t errsize)
{
    if (!path || !*path) {
        snprintf(err, errsize, "no certificate file given");
        return NULL;
    }
    zcert_t *cert = zcert_load(path);
    if (!cert) {
        snprintf(err, errsize, "cannot read the certificate %s (or %s_secret)", path, path);
        return NULL;
    }
    static const byte zero[32] = {0};
    if (memcmp(zcert_secret_key(cert), zero, sizeof zero) == 0) {
        snprintf(err, errsize,
                 "the certificate %s holds no secret key (%s_secret is missing or unreadable)",
                 path, path);
        zcert_destroy(&cert);
        return NULL;
    }
    return cert;
}

int curve_client_from_env(curve_client_t *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof *out);
    const char *server = getenv(CURVE_ENV_SERVERKEY);
    const char *cert = getenv(CURVE_ENV_CERT);
    bool has_server = server && *server, has_cert = cert && *cert;
    if (!has_server && !has_cert)
        return 0;
    if (!has_server || !has_cert) {
        snprintf(err, errsize,
                 "CURVE is half configured: %s is set but %s is not (set both, or neither for "
                 "plain)",
                 has_server ? CURVE_ENV_SERVERKEY : CURVE_ENV_CERT,
                 has_server ? CURVE_ENV_CERT : CURVE_ENV_SERVERKEY);
        return -1;
    }
    if (curve_server_key(server, out->server_key, err, errsize) != 0)
        return -1;
    out->cert = curve_load_secret(cert, err, errsize);
    return out->cert ? 1 : -1;
}

void curve_client_clear(curve_client_t *self)
{
    if (self)
        zcert_destroy(&self->cert);
}

void curve_client_apply(const curve_client_t *self, zsock_t *sock)
{
    zcert_apply(self->cert, sock);
    zsock_set_curve_serverkey(sock, self->server_key);
}

int curve_env_cert_name(char *out, size_t size)
{
    const char *path = getenv(CURVE_ENV_CERT);
    if (!path || !*path || !getenv(CURVE_ENV_SERVERKEY))
        return -1;
    zcert_t *cert = zcert_load(path);
    const char *name = cert ? zcert_meta(cert, "name") : NULL;
    int rc = -1;
    if (curve_name_valid(name) && strlen(name) < size) {
        snprintf(out, size, "%s", name);
        rc = 0;
    }
    zcert_destroy(&cert);
    return rc;
}
