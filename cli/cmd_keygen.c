/* arborctl keygen: a CURVE key pair as two zcert files (docs/SECURITY.md).
 * NAME.cert is public (it goes into the broker's allow directory, or to the
 * peers when it is the broker's); NAME.cert_secret stays with its owner. The
 * certificate's metadata "name" and "role" say which names and role the
 * broker lets this key register. No broker is contacted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "cmd.h"
#include "curve.h"
#include "exitcode.h"

static bool s_role_valid(const char *role)
{
    return strcmp(role, "client") == 0 || strcmp(role, "supervisor") == 0 ||
           strcmp(role, "broker") == 0;
}

static bool s_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Write both files; the secret one is never readable by others, not even
 * for an instant (umask). 0, or -1 with errno. */
static int s_save(zcert_t *cert, const char *pub, const char *secret)
{
    mode_t old = umask(077);
    int rc = zcert_save(cert, pub);
    umask(old);
    if (rc != 0) {
        if (!errno)
            errno = EIO;
        return -1;
    }
    if (chmod(secret, 0600) != 0 || chmod(pub, 0644) != 0)
        return -1;
    return 0;
}

int cmd_keygen(const char *broker, int argc, char **argv)
{
    (void) broker;
    static const struct option longs[] = {
        {"dir", required_argument, NULL, 'd'},
        {"role", required_argument, NULL, 'r'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = ".", *role = "client";
    bool force = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'r': role = optarg; break;
        case 'f': force = true; break;
        case 'h': return cmd_help("keygen");
        default: return cmd_bad_option("keygen", c, argv);
        }
    }
    if (optind >= argc)
        return cmd_usage_error("keygen", "missing NAME");
    if (optind + 1 < argc)
        return cmd_usage_error("keygen", "unexpected argument \"%s\"", argv[optind + 1]);
    const char *name = argv[optind];
    if (!curve_name_valid(name))
        return cmd_usage_error("keygen", "NAME \"%s\" must match [A-Za-z0-9_-]{1,%d} (no dots)",
                               name, CURVE_NAME_MAX);
    if (!s_role_valid(role))
        return cmd_usage_error("keygen", "--role must be client, supervisor or broker, not \"%s\"",
                               role);
    struct stat st;
    if (stat(dir, &st) != 0 && mkdir(dir, 0700) != 0) {
        fprintf(stderr, "arborctl keygen: cannot create directory %s: %s\n", dir, strerror(errno));
        return EXIT_TREE_FAILED;
    }
    char pub[4096], secret[4200];
    snprintf(pub, sizeof pub, "%s/%s.cert", dir, name);
    snprintf(secret, sizeof secret, "%s_secret", pub);
    if (!force && (s_exists(pub) || s_exists(secret))) {
        fprintf(stderr, "arborctl keygen: %s or %s exists already (--force replaces them)\n", pub,
                secret);
        return EXIT_TREE_FAILED;
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "arborctl keygen: cannot generate a key pair\n");
        return EXIT_TREE_FAILED;
    }
    char created[32];
    time_t now = time(NULL);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    zcert_set_meta(cert, "name", "%s", name);
    zcert_set_meta(cert, "role", "%s", role);
    zcert_set_meta(cert, "created", "%s", created);
    zcert_set_meta(cert, "created-by", "arborctl keygen");
    if (s_save(cert, pub, secret) != 0) {
        fprintf(stderr, "arborctl keygen: cannot write %s: %s\n", pub, strerror(errno));
        zcert_destroy(&cert);
        return EXIT_TREE_FAILED;
    }
    printf("%s\n", zcert_public_txt(cert));
    if (strcmp(role, "broker") == 0)
        fprintf(stderr,
                "arborctl keygen: wrote %s (public: give it, or the key above, to every peer as "
                "ARBOR_CURVE_SERVERKEY) and %s (secret, mode 0600: arbor-broker --curve-secret "
                "%s)\n",
                pub, secret, pub);
    else
        fprintf(stderr,
                "arborctl keygen: wrote %s (public: copy it into the broker's --curve-allow "
                "directory) and %s (secret, mode 0600: ARBOR_CURVE_CERT=%s for the %s \"%s\")\n",
                pub, secret, pub, role, name);
    zcert_destroy(&cert);
    return EXIT_TREE_OK;
}
