#include "auth.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "curve.h"
#include "log.h"

#define S_LOG_EVERY_MS 10000

struct auth_t {
    zactor_t *zauth;
    zactor_t *monitor;
    zcertstore_t *store;
    char public_key[CURVE_KEY_Z85 + 1];
    uint64_t refused;
    uint64_t refused_unlogged;
    int64_t logged_ms;
};

/* Public certificates in dir (files not ending in _secret). */
static int s_count_certs(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || (len > 7 && strcmp(e->d_name + len - 7, "_secret") == 0))
            continue;
        n++;
    }
    closedir(d);
    return n;
}

static int s_check_dir(const char *dir, bool allow_shared, char *err, size_t errsize)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errsize, "--curve-allow %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errsize, "--curve-allow %s is not a directory", dir);
        return -1;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !allow_shared) {
        snprintf(err, errsize,
                 "--curve-allow %s is writable by %s (mode %04o): whoever can write there can "
                 "allow any key; make it 0755 or stricter, or pass --allow-shared-dir",
                 dir, (st.st_mode & S_IWOTH) ? "everyone" : "its group",
                 (unsigned) (st.st_mode & 07777));
        return -1;
    }
    return 0;
}

/* The secret file should be readable by its owner alone (as keygen writes it). */
static void s_check_secret_mode(const char *path)
{
    char secret[4096];
    snprintf(secret, sizeof secret, "%s_secret", path);
    struct stat st;
    const char *file = stat(secret, &st) == 0 ? secret : path;
    if (stat(file, &st) == 0 && (st.st_mode & 077))
        log_warn("%s is readable by others (mode %04o): chmod 600 it", file,
                 (unsigned) (st.st_mode & 07777));
}

int auth_check_files(const char *secret_file, const char *allow_dir, bool allow_shared, char *err,
                     size_t errsize)
{
    if (s_check_dir(allow_dir, allow_shared, err, errsize) != 0)
        return -1;
    char why[512];
    zcert_t *cert = curve_load_secret(secret_file, why, sizeof why);
    if (!cert) {
        snprintf(err, errsize, "--curve-secret: %s", why);
        return -1;
    }
    zcert_destroy(&cert);
    return 0;
}

auth_t *auth_new(zsock_t *router, const char *secret_file, const char *allow_dir,
                 bool allow_shared, char *err, size_t errsize)
{
    if (s_check_dir(allow_dir, allow_shared, err, errsize) != 0)
        return NULL;
    zcert_t *cert = curve_load_secret(secret_file, err, errsize);
    if (!cert)
        return NULL;
    s_check_secret_mode(secret_file);
    auth_t *self = calloc(1, sizeof *self);
    if (!self) {
        zcert_destroy(&cert);
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    snprintf(self->public_key, sizeof self->public_key, "%s", zcert_public_txt(cert));
    self->zauth = zactor_new(zauth, NULL);
    self->store = zcertstore_new(allow_dir);
    if (!self->zauth || !self->store) {
        zcert_destroy(&cert);
        auth_destroy(&self);
        snprintf(err, errsize, "cannot start the authenticator (zauth)");
        return NULL;
    }
    const char *level = getenv("ARBOR_LOG_LEVEL");
    if (level && strcmp(level, "debug") == 0) {
        zstr_sendx(self->zauth, "VERBOSE", NULL);
        zsock_wait(self->zauth);
    }
    zstr_sendx(self->zauth, "CURVE", allow_dir, NULL);
    zsock_wait(self->zauth);
    /* Options apply to the endpoints bound after them: before any bind. */
    zcert_apply(cert, router);
    zsock_set_curve_server(router, 1);
    zsock_set_zap_domain(router, "arbor");
    zcert_destroy(&cert);

    self->monitor = zactor_new(zmonitor, router);
    if (self->monitor) {
        zstr_sendx(self->monitor, "LISTEN", "HANDSHAKE_FAILED_AUTH", "HANDSHAKE_FAILED_PROTOCOL",
                   "HANDSHAKE_FAILED_NO_DETAIL", NULL);
        zstr_sendx(self->monitor, "START", NULL);
        zsock_wait(self->monitor);
    }
    int n = s_count_certs(allow_dir);
    if (n == 0)
        log_warn("--curve-allow %s holds no certificate: no peer can connect", allow_dir);
    log_info("CURVE: broker key %s, %d allowed certificate%s in %s", self->public_key, n,
             n == 1 ? "" : "s", allow_dir);
    return self;
}

void auth_destroy(auth_t **self)
{
    if (!self || !*self)
        return;
    zactor_destroy(&(*self)->monitor);
    zactor_destroy(&(*self)->zauth);
    zcertstore_destroy(&(*self)->store);
    free(*self);
    *self = NULL;
}

const char *auth_public_key(auth_t *self) { return self->public_key; }
zactor_t *auth_monitor(auth_t *self) { return self->monitor; }
uint64_t auth_refused(auth_t *self) { return self->refused; }

bool auth_lookup(auth_t *self, const char *key, const char **role, const char **name)
{
    zcert_t *cert = key ? zcertstore_lookup(self->store, key) : NULL;
    if (!cert)
        return false;
    *role = zcert_meta(cert, "role") ?: "";
    *name = zcert_meta(cert, "name") ?: "";
    return true;
}

int auth_on_monitor(auth_t *self, int64_t now_ms)
{
    zmsg_t *msg = zmsg_recv(self->monitor);
    if (!msg)
        return 0;
    char *event = zmsg_popstr(msg);
    char *value = zmsg_popstr(msg);
    char *endpoint = zmsg_popstr(msg);
    int refused = event && strncmp(event, "HANDSHAKE_FAILED", 16) == 0;
    if (refused) {
        self->refused++;
        if (now_ms - self->logged_ms >= S_LOG_EVERY_MS || !self->logged_ms) {
            const char *why = strcmp(event, "HANDSHAKE_FAILED_AUTH") == 0
                                  ? "its key is not in the allow directory"
                                  : "not a CURVE client of this broker's key";
            log_warn("refused a connection on %s: %s (%s)%s", endpoint ? endpoint : "?", why,
                     event, self->refused_unlogged ? "; more were refused since the last line" : "");
            self->logged_ms = now_ms;
            self->refused_unlogged = 0;
        } else {
            self->refused_unlogged++;
        }
    }
    zstr_free(&event);
    zstr_free(&value);
    zstr_free(&endpoint);
    zmsg_destroy(&msg);
    return refused;
}
