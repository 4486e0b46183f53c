#include "fsrv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h> /* setgroups */
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h> /* struct clone_args, CLONE_INTO_CGROUP */

#include "clock.h"
#include "contain.h"
#include "link.h"
#include "log.h"
#include "payload.h"
#include "ptree.h"

/* ---- the server ----------------------------------------------------------- */

typedef struct {
    pid_t pid;
    uint64_t req;
} s_child_t;

/* What an exec'd child tells the fork-server when it cannot reach its
 * program: the errno and the step that failed. */
typedef struct {
    int32_t err;
    char what[200]; /* the step: "exec /bin/x", "setrlimit rlimits.nofile=3" */
    char hint[200]; /* why, when the errno alone does not say it */
} s_execfail_t;

/* An exec'd child forked but whose exec verdict has not come yet: the
 * fork-server goes on forking meanwhile, and answers the spawn request when
 * its status pipe reads EOF (it runs its program) or a failure. */
typedef struct {
    pid_t pid;
    uint64_t req;
    int status;                 /* read end of its CLOEXEC status pipe, O_NONBLOCK */
    int fds[FSRV_MAX_FDS];      /* pidfd, stdout, stderr, notify: sent with SPAWNED */
    int64_t forked_at, deadline;
    s_execfail_t f;
    size_t got;
    bool spoke; /* its pipe polled readable: read it */
} s_pending_t;

typedef struct s_out_t {
    fsrv_hdr_t hdr;
    char text[512];
    int fds[FSRV_MAX_FDS];
    int nfds;
    struct s_out_t *next;
} s_out_t;

typedef struct {
    int sock;
    int sigfd;
    pid_t supervisor;
    fsrv_builtin_fn builtin;
    contain_t *contain;            /* what nodes start ends with them */
    s_child_t *children;
    size_t nchildren, cap;
    s_pending_t *pending;          /* exec'd children awaiting their exec verdict */
    size_t npending, cappending;
    struct pollfd *pfds;           /* s_serve's poll set: sock, sigfd, pending status pipes */
    size_t cappfds;
    s_out_t *out_head, *out_tail; /* replies waiting for room in the socket */
    size_t unacked;                /* exit statuses sent but not acknowledged */
    int devnull;                   /* a child's stdin */
    bool single_threaded;          /* checked once per batch of requests (rule 1) */
    int nhandled;                  /* signals whose disposition is not SIG_DFL here */
    int handled[NSIG];
    char payload[FSRV_MAX_PAYLOAD + 1];
} s_server_t;

static void s_queue(s_server_t *s, const fsrv_hdr_t *hdr, const char *text, const int *fds,
                    int nfds)
{
    s_out_t *o = calloc(1, sizeof *o);
    if (!o) {
        /* Without memory the status cannot be kept; say so loudly. */
        log_error("fork-server: out of memory queueing a message for req %llu",
                  (unsigned long long) hdr->req);
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return;
    }
    o->hdr = *hdr;
    if (text)
        snprintf(o->text, sizeof o->text, "%s", text);
    o->hdr.len = text ? (uint32_t) strlen(o->text) : 0;
    if (nfds > 0)
        memcpy(o->fds, fds, (size_t) nfds * sizeof(int));
    o->nfds = nfds;
    if (s->out_tail)
        s->out_tail->next = o;
    else
        s->out_head = o;
    s->out_tail = o;
}

/* Send queued replies in order until the socket is full. */
static int s_flush(s_server_t *s)
{
    while (s->out_head) {
        s_out_t *o = s->out_head;
        if (fsrv_wire_send(s->sock, &o->hdr, o->text, o->fds, o->nfds) != 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        for (int i = 0; i < o->nfds; i++)
            close(o->fds[i]);
        if (o->hdr.type == FSRV_EXITED)
            s->unacked++;
        s->out_head = o->next;
        if (!s->out_head)
            s->out_tail = NULL;
        free(o);
    }
    return 0;
}

static void s_reply_failed(s_server_t *s, uint64_t req, int err, const char *what)
{
    fsrv_hdr_t hdr = {.type = FSRV_SPAWN_FAILED, .req = req, .err = err};
    char text[512];
    snprintf(text, sizeof text, "%s: %s", what, strerror(err));
    s_queue(s, &hdr, text, NULL, 0);
}

/* In the child: everything it inherited is put back to a clean state.
 * Dispositions: the fork-server never changes its own after start, so the
 * ones that are not SIG_DFL are known (s_server_main) and only those are
 * reset, not all 64 one syscall each. */
static void s_child_reset(const s_server_t *s, pid_t parent, int out_w, int err_w)
{
    sigset_t none;
    sigemptyset(&none);
    for (int i = 0; i < s->nhandled; i++)
        signal(s->handled[i], SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* No orphans: die with the fork-server, and check it is still there now
     * that the death signal is armed (it may have died just before). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    setsid(); /* a terminal's ^C reaches the supervisor, never workers directly */
    prctl(PR_SET_NAME, "arbor-worker"); /* not "arbor-forksrv" in ps and top */
    if (dup2(s->devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
        _exit(127);
}

static void __attribute__((noreturn)) s_child_fail(int status_fd, int err, const char *hint,
                                                   const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_child_fail(int status_fd, int err, const char *hint, const char *fmt, ...)
{
    s_execfail_t f = {.err = err};
    snprintf(f.hint, sizeof f.hint, "%s", hint ? hint : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f.what, sizeof f.what, fmt, ap);
    va_end(ap);
    if (status_fd >= 0) {
        ssize_t w = write(status_fd, &f, sizeof f); /* < PIPE_BUF: one piece */
        (void) w;
    } else {
        dprintf(2, "arbor: %s: %s\n", f.what, strerror(err));
    }
    _exit(127);
}

/* One member of "rlimits" (name: number), set in the child. */
typedef struct {
    int status_fd;
    const char *prog;
} s_rlimits_t;

static void s_child_rlimit(const jscan_span_t *key, const jscan_span_t *value, void *arg)
{
    static const struct {
        const char *name;
        int resource;
    } map[] = {{"as", RLIMIT_AS},         {"core", RLIMIT_CORE},     {"cpu", RLIMIT_CPU},
               {"data", RLIMIT_DATA},     {"fsize", RLIMIT_FSIZE},   {"memlock", RLIMIT_MEMLOCK},
               {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},   {"stack", RLIMIT_STACK}};
    const s_rlimits_t *a = arg;
    int status_fd = a->status_fd;
    char name[16];
    if (!key || value->kind != JSCAN_NUMBER)
        return; /* spec.c let no such through */
    jscan_string(key, name, sizeof name);
    double limit = jscan_number(value);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(name, map[i].name) != 0)
            continue;
        struct rlimit lim = {(rlim_t) limit, (rlim_t) limit};
        if (setrlimit(map[i].resource, &lim) != 0)
            s_child_fail(status_fd, errno, NULL, "setrlimit rlimits.%s=%.0f", name, limit);
        if (map[i].resource != RLIMIT_NOFILE || status_fd < 0)
            continue;
        /* A program must be able to open something (a dynamic one, its
         * libraries): some fd below the limit must be free once exec
         * has closed the CLOEXEC ones. Else it would die of EMFILE
         * before main, as "exit 127" and no word why. */
        bool free_fd = false;
        for (rlim_t fd = 0; fd < lim.rlim_cur && !free_fd; fd++) {
            int fl = fcntl((int) fd, F_GETFD);
            free_fd = fl < 0 || (fl & FD_CLOEXEC);
        }
        if (!free_fd) {
            char hint[200];
            snprintf(hint, sizeof hint,
                     "rlimits.nofile=%.0f too low: no descriptor is left beyond stdin, "
                     "stdout and stderr, so it could not open any file, not even its "
                     "shared libraries",
                     limit);
            s_child_fail(status_fd, EMFILE, hint, "exec %s", a->prog);
        }
    }
}

/* In the child, once its fds are in place: the spec's "rlimits" (checked
 * by spec.c), soft = hard. Failures go to status_fd (exec'd) or stderr. */
static void s_child_rlimits(const pl_t *spec, int status_fd, const char *prog)
{
    pl_t rlimits;
    s_rlimits_t a = {status_fd, prog};
    if (pl_get(spec, "rlimits", &rlimits))
        pl_each(&rlimits, s_child_rlimit, &a);
}

/* execvp without its fallback of running a file that is not a valid
 * executable as a shell script: that fallback turned ENOEXEC into
 * "exit 127". Returns the errno that explains the failure. */
static int s_execvp(const char *file, char *const argv[])
{
    extern char **environ;
    if (strchr(file, '/')) {
        execve(file, argv, environ);
        return errno;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    bool denied = false;
    char buf[PATH_MAX];
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        int dirlen = (int) (end - p);
        if (snprintf(buf, sizeof buf, "%.*s%s%s", dirlen, dirlen ? p : ".", "/", file) <
            (int) sizeof buf) {
            execve(buf, argv, environ);
            switch (errno) {
            case EACCES: denied = true; break;
            case ENOENT: case ENOTDIR: case ESTALE: case ENAMETOOLONG: case ELOOP: break;
            default: return errno; /* ENOEXEC, E2BIG, ENOMEM, ETXTBSY, ...: the answer */
            }
        }
        if (!*end)
            break;
        p = end;
    }
    return denied ? EACCES : ENOENT;
}

/* Room for need elements of size elem in the array *v of capacity *cap
 * (doubled as it grows); false when out of memory. */
static bool s_room(void *v, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t grown_cap = *cap ? *cap : 8;
    while (grown_cap < need)
        grown_cap *= 2;
    void *grown = realloc(*(void **) v, grown_cap * elem);
    if (!grown)
        return false;
    *(void **) v = grown;
    *cap = grown_cap;
    return true;
}

/* The supplementary groups of "creds", in the child (never freed: it execs). */
typedef struct {
    gid_t *v;
    size_t n, cap;
    bool failed;
} s_gids_t;

static void s_gid_add(const jscan_span_t *key, const jscan_span_t *value, void *arg)
{
    (void) key;
    s_gids_t *g = arg;
    if (value->kind != JSCAN_NUMBER || g->failed)
        return;
    if (!s_room(&g->v, &g->cap, g->n + 1, sizeof *g->v)) {
        g->failed = true;
        return;
    }
    g->v[g->n++] = (gid_t) jscan_number(value);
}

/* In an exec'd child, before the exec: the exec options of the spec
 * (checked by supervisor/spec.c): "env_inherit": false starts from an
 * empty environment; "group" and "user", as the ids the supervisor
 * resolved (the payload's "creds", supervisor/creds.h), drop privileges
 * (setgroups, setgid, setuid: in that order, while still allowed);
 * "cwd" is entered last, as the user the program runs as. 0, or an errno
 * with the failed step in what. */
static int s_exec_setup(const pl_t *payload, const pl_t *spec, char *what, size_t size)
{
    if (pl_is(spec, "env_inherit", JSCAN_FALSE)) {
        /* arbor's own variables stay (the broker, CURVE keys for
         * libarbor_worker): the program's environment is arbor's, not the
         * supervisor's. putenv keeps the strings: they live until exec. */
        size_t n = 0;
        for (char **e = environ; *e; e++)
            n += strncmp(*e, "ARBOR_", 6) == 0;
        char **keep = calloc(n + 1, sizeof *keep);
        for (size_t i = 0, k = 0; keep && environ[i]; i++)
            if (strncmp(environ[i], "ARBOR_", 6) == 0)
                keep[k++] = strdup(environ[i]);
        clearenv();
        for (size_t k = 0; keep && k < n; k++)
            if (keep[k])
                putenv(keep[k]);
    }
    /* "user" and "group" come resolved to numbers (supervisor/creds.h):
     * no name is looked up in this static program. */
    pl_t creds, groups_v;
    double v;
    if (pl_get(payload, "creds", &creds)) {
        if (pl_num(&creds, "errno", &v)) { /* a name that did not resolve */
            if (!pl_str(&creds, "what", what, size))
                snprintf(what, size, "user or group");
            return (int) v;
        }
        s_gids_t gids = {0};
        if (pl_get(&creds, "groups", &groups_v))
            pl_each(&groups_v, s_gid_add, &gids);
        gid_t gid = pl_num(&creds, "gid", &v) ? (gid_t) v : 0;
        if (gids.failed) {
            snprintf(what, size, "the supplementary groups");
            return ENOMEM;
        }
        if (setgroups(gids.n, gids.v) != 0) {
            snprintf(what, size, "setgroups for gid %lu", (unsigned long) gid);
            return errno;
        }
        if (setgid(gid) != 0) {
            snprintf(what, size, "setgid %lu", (unsigned long) gid);
            return errno;
        }
        if (pl_num(&creds, "uid", &v)) {
            if (setuid((uid_t) v) != 0) {
                snprintf(what, size, "setuid %lu", (unsigned long) v);
                return errno;
            }
            /* as login(1) and systemd's User= do; "env" may override */
            pl_t home_v, name_v;
            char *home = pl_get(&creds, "home", &home_v) ? pl_dup(&home_v) : NULL;
            char *name = pl_get(&creds, "name", &name_v) ? pl_dup(&name_v) : NULL;
            if (home)
                setenv("HOME", home, 1);
            if (name) {
                setenv("USER", name, 1);
                setenv("LOGNAME", name, 1);
            }
            free(home);
            free(name);
        }
    }
    pl_t cwd_v;
    char *cwd = pl_get(spec, "cwd", &cwd_v) ? pl_dup(&cwd_v) : NULL;
    if (cwd && chdir(cwd) != 0) {
        snprintf(what, size, "cwd \"%s\"", cwd);
        return errno;
    }
    return 0;
}

/* argv of the spec, decoded (the strings of "argv", in order). */
typedef struct {
    char **v;
    size_t n, cap;
    bool failed, not_strings;
} s_argv_t;

static void s_argv_add(const jscan_span_t *key, const jscan_span_t *value, void *arg)
{
    (void) key;
    s_argv_t *a = arg;
    char *word = pl_dup(value);
    if (!s_room(&a->v, &a->cap, a->n + 2, sizeof *a->v)) { /* the word and NULL */
        free(word);
        a->failed = true;
        return;
    }
    a->failed |= !word;
    a->not_strings |= value->kind != JSCAN_STRING; /* spec.c lets none through */
    a->v[a->n++] = word;
    a->v[a->n] = NULL;
}

/* One member of "env" (name: string), set in the child. */
static void s_env_set(const jscan_span_t *key, const jscan_span_t *value, void *arg)
{
    (void) arg;
    char *name = key ? pl_dup(key) : NULL, *text = pl_dup(value);
    if (name && text)
        setenv(name, text, 1);
    free(name);
    free(text);
}

/* In the child: exec the user's program with its env and ARBOR_ vars; on
 * failure the step and errno go back through status_fd (CLOEXEC: a
 * successful exec closes it, the fork-server reads EOF). */
static void s_child_exec(const pl_t *payload, int status_fd)
{
    pl_t spec, argv_v;
    s_argv_t argv = {0};
    if (pl_get(payload, "spec", &spec) && pl_get(&spec, "argv", &argv_v))
        pl_each(&argv_v, s_argv_add, &argv);
    if (argv.failed || argv.n < 1)
        s_child_fail(status_fd, argv.n < 1 || argv.not_strings ? EINVAL : ENOMEM, NULL,
                     "exec: argv");
    char what[200];
    int err = s_exec_setup(payload, &spec, what, sizeof what);
    if (err)
        s_child_fail(status_fd, err, NULL, "%s", what);
    pl_t env;
    if (pl_get(&spec, "env", &env))
        pl_each(&env, s_env_set, NULL);
    static const char *vars[][2] = {{"ARBOR_BROKER", "broker"},   {"ARBOR_TREE", "tree"},
                                    {"ARBOR_NODE", "path"},       {"ARBOR_WORKER", "worker"},
                                    {"ARBOR_SUPERVISOR", "supervisor"}};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        pl_t v;
        char *text = pl_get(payload, vars[i][1], &v) ? pl_dup(&v) : NULL;
        if (text)
            setenv(vars[i][0], text, 1);
        free(text);
    }
    char **args = argv.v;
    setenv(LINK_ENV, "3", 1); /* the notify fd (link.h) */
    /* The supervisor's secret key stays with the supervisor: a worker
     * reports over its notify fd and never needs the broker. */
    unsetenv("ARBOR_CURVE_CERT");
    s_child_rlimits(&spec, status_fd, args[0]);
    err = s_execvp(args[0], args);
    s_child_fail(status_fd, err,
                 err == ENOEXEC ? "not a format this kernel runs, and no #! line" : NULL,
                 "exec %s", args[0]);
}

/* The text of a child's failure: "exec /x: ENOEXEC (Exec format error)". */
static void s_reply_child_failed(s_server_t *s, uint64_t req, s_execfail_t *f)
{
    fsrv_hdr_t hdr = {.type = FSRV_SPAWN_FAILED, .req = req, .err = f->err};
    char text[512];
    const char *name = strerrorname_np(f->err);
    f->what[sizeof f->what - 1] = f->hint[sizeof f->hint - 1] = 0;
    snprintf(text, sizeof text, "%s: %s (%s%s%s)", f->what, name ? name : "error",
             strerror(f->err), f->hint[0] ? "; " : "", f->hint);
    s_queue(s, &hdr, text, NULL, 0);
}

static void s_close_all(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* A child the fork-server answers for: its exit will be reported. */
static void s_adopt_child(s_server_t *s, pid_t pid, uint64_t req)
{
    s->children[s->nchildren++] = (s_child_t){pid, req};
}

/* Read what the status pipe of pending child i holds: 0 no verdict yet,
 * 1 it runs its program (EOF), 2 p->f says why not. */
static int s_verdict_read(s_pending_t *p)
{
    for (;;) {
        ssize_t n = read(p->status, (char *) &p->f + p->got, sizeof p->f - p->got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : 1; /* a broken pipe says nothing: it ran */
        if (n == 0)
            return p->got == sizeof p->f ? 2 : 1;
        p->got += (size_t) n;
        if (p->got == sizeof p->f)
            return 2;
    }
}

/* Settle pending child i with its verdict (1 runs, 2 failed, -1 no word
 * within the deadline) and remove it from the pending table. */
static void s_settle(s_server_t *s, size_t i, int verdict)
{
    s_pending_t p = s->pending[i];
    s->pending[i] = s->pending[--s->npending];
    if (verdict == 1) {
        s_adopt_child(s, p.pid, p.req);
        fsrv_hdr_t hdr = {.type = FSRV_SPAWNED, .req = p.req, .pid = p.pid,
                          .mono_ms = p.forked_at};
        s_queue(s, &hdr, NULL, p.fds, FSRV_MAX_FDS);
    } else {
        /* It never ran its program: it has _exited (or is killed now);
         * s_reap reaps it as a stranger, nothing to report twice. */
        if (verdict < 0)
            kill(p.pid, SIGKILL);
        s_close_all(p.fds, FSRV_MAX_FDS);
        contain_drop(s->contain, p.pid); /* and its cgroup */
        if (verdict == 2) {
            s_reply_child_failed(s, p.req, &p.f);
        } else {
            char what[64];
            snprintf(what, sizeof what, "exec: no word from the child within %d ms",
                     FSRV_EXEC_DEADLINE_MS);
            s_reply_failed(s, p.req, ETIMEDOUT, what);
        }
    }
    close(p.status);
}

/* Settle every pending child whose pipe has spoken or whose deadline has
 * passed; returns the poll timeout (ms) until the next deadline, -1 none. */
static int s_pending_check(s_server_t *s)
{
    int64_t now = clk_now_ms(), next = -1;
    for (size_t i = 0; i < s->npending;) {
        s_pending_t *p = &s->pending[i];
        int v = p->spoke || now >= p->deadline ? s_verdict_read(p) : 0;
        p->spoke = false;
        if (v == 0 && now >= p->deadline)
            v = -1;
        if (v != 0) {
            s_settle(s, i, v); /* i now holds the last entry: look at it next */
            continue;
        }
        if (next < 0 || p->deadline - now < next)
            next = p->deadline - now;
        i++;
    }
    return (int) next;
}

/* A pending child was reaped before its verdict was read: its pipe holds
 * the verdict now (its writer is gone). Settled first, so that its exit
 * follows its SPAWNED. */
static void s_pending_reaped(s_server_t *s, pid_t pid)
{
    for (size_t i = 0; i < s->npending; i++)
        if (s->pending[i].pid == pid) {
            int v = s_verdict_read(&s->pending[i]);
            s_settle(s, i, v == 0 ? 1 : v);
            return;
        }
}

/* fork(), or for a node with a cgroup (cgroup_fd >= 0) clone3 with
 * CLONE_INTO_CGROUP, so that the child is born in it: no migration, which
 * takes the cgroup-wide lock every fork on the machine waits on. *born_in
 * says whether it was; where clone3 cannot (an older kernel, a seccomp
 * filter), fork, and the child joins with contain_join. The child of a
 * raw clone3 must not rely on glibc's cached thread id (raise, abort,
 * pthread_self's tid): it resets, execs or _exits, as a fork child does
 * here anyway. */
static pid_t s_fork_into(int cgroup_fd, bool *born_in)
{
    *born_in = false;
    if (cgroup_fd >= 0) {
        struct clone_args args = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD,
                                  .cgroup = (uint64_t) cgroup_fd};
        pid_t pid = (pid_t) syscall(SYS_clone3, &args, sizeof args);
        if (pid >= 0) {
            *born_in = true;
            return pid;
        }
        if (errno == EAGAIN || errno == ENOMEM)
            return -1;
    }
    return fork();
}

static void s_spawn(s_server_t *s, uint64_t req, size_t len)
{
    s->payload[len] = 0;
    if (!s->single_threaded) {
        /* Rule 1: forking a multi-threaded process copies locks held by
         * threads that do not exist in the child. Refuse. */
        s_reply_failed(s, req, EDEADLK, "fork-server is not single-threaded");
        return;
    }
    /* Only what the fork-server itself needs is read here; the child reads
     * the rest from its copy of the buffer. */
    pl_t payload, spec;
    if (!pl_parse(s->payload, len, &payload) || !pl_get(&payload, "spec", &spec) ||
        spec.kind != JSCAN_OBJECT) {
        s_reply_failed(s, req, EINVAL, "malformed spawn payload");
        return;
    }
    char run[8];
    bool is_exec = pl_str(&spec, "run", run, sizeof run) && strcmp(run, "exec") == 0;
    if (is_exec && s->npending == s->cappending) {
        size_t cap = s->cappending ? s->cappending * 2 : 64;
        s_pending_t *grown = realloc(s->pending, cap * sizeof *grown);
        if (!grown) {
            s_reply_failed(s, req, ENOMEM, "fork-server pending table");
            return;
        }
        s->pending = grown;
        s->cappending = cap;
    }
    if (s->nchildren + s->npending >= s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        s_child_t *grown = realloc(s->children, cap * sizeof *grown);
        if (!grown) {
            s_reply_failed(s, req, ENOMEM, "fork-server child table");
            return;
        }
        s->children = grown;
        s->cap = cap;
    }
    /* out, err (unless the supervisor says it will write nothing), status
     * (exec), the notify socket (every worker), and the node's cgroup
     * directory (exec, cgroup way). */
    int fd[9] = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
    int *out = fd, *err = fd + 2, *status = fd + 4, *link = fd + 6, *join = fd + 8;
    bool quiet = !is_exec && pl_is(&payload, "output", JSCAN_FALSE);
    uint32_t slot = 0;
    const char *step = "pipe2";
    bool ok = (quiet || (!pipe2(out, O_CLOEXEC) && !pipe2(err, O_CLOEXEC))) &&
              (!is_exec || !pipe2(status, O_CLOEXEC | O_NONBLOCK)) &&
              !socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, link);
    if (ok && is_exec) {
        step = "make the node's cgroup";
        ok = contain_prepare(s->contain, join, &slot) == 0;
    }
    if (!ok) {
        int e = errno;
        s_close_all(fd, 9);
        s_reply_failed(s, req, e, step);
        return;
    }
    pid_t self_pid = getpid();
    int64_t forked_at = clk_now_ms();
    bool born_in;
    pid_t pid = s_fork_into(*join, &born_in);
    if (pid == 0) {
        /* A quiet builtin's stdout is /dev/null; its stderr is ours (open:
         * stdfds_open in main), so that what it could still say (a bad
         * payload) reaches the log. */
        s_child_reset(s, self_pid, quiet ? s->devnull : out[1], quiet ? STDERR_FILENO : err[1]);
        if (is_exec) {
            /* Into its node's cgroup first: all it starts is born there. */
            if (!born_in && contain_join(*join) != 0)
                s_child_fail(status[1], errno, NULL, "join the node's cgroup");
            /* fd 3 is the notify fd, kept across the exec (ARBOR_NOTIFY_FD);
             * fd 4 carries exec failures; everything above it is closed.
             * No dup may overwrite the other fd before it has moved (and
             * none needs a free fd above 4: "rlimits" may allow only 5). */
            int nfd = link[1], sfd = status[1];
            if (sfd == LINK_FD && nfd == 4)
                sfd = fcntl(sfd, F_DUPFD_CLOEXEC, 5); /* crossed: one goes aside */
            if (sfd == LINK_FD)
                sfd = dup3(sfd, 4, O_CLOEXEC);
            if (sfd < 0 || (nfd == LINK_FD ? fcntl(nfd, F_SETFD, 0) : dup3(nfd, LINK_FD, 0)) < 0 ||
                (sfd != 4 && dup3(sfd, 4, O_CLOEXEC) < 0))
                s_child_fail(status[1], errno, NULL, "move the notify fd and exec status pipe");
            close_range(5, ~0U, 0);
            s_child_exec(&payload, 4);
        }
        /* A builtin reports over its link, as fd 3 (LINK_FD). */
        if (link[1] != LINK_FD && dup3(link[1], LINK_FD, O_CLOEXEC) < 0)
            _exit(127);
        close_range(LINK_FD + 1, ~0U, 0);
        s_child_rlimits(&spec, -1, "");
        s->builtin(s->payload, len);
        _exit(0);
    }
    int fork_errno = errno;
    pl_t tree_v, path_v;
    char *tree = is_exec && pl_get(&payload, "tree", &tree_v) ? pl_dup(&tree_v) : NULL;
    char *path = is_exec && pl_get(&payload, "path", &path_v) ? pl_dup(&path_v) : NULL;
    /* The parent keeps only the read ends. */
    int child_ends[] = {out[1], err[1], status[1], link[1], *join};
    s_close_all(child_ends, 5);
    if (pid < 0) {
        int mine[] = {out[0], err[0], status[0], link[0]};
        s_close_all(mine, 4);
        contain_abort(s->contain, slot);
        free(tree);
        free(path);
        s_reply_failed(s, req, fork_errno, "fork");
        return;
    }
    int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        /* Rule 4 needs a pidfd: without one the worker is not supervisable. */
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        int mine[] = {out[0], err[0], status[0], link[0]};
        s_close_all(mine, 4);
        contain_abort(s->contain, slot);
        free(tree);
        free(path);
        s_reply_failed(s, req, e, "pidfd_open");
        return;
    }
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    /* A worker from now on, for containment: a sweep while its verdict is
     * pending must not take it for an orphan of an ended node. */
    if (contain_add(s->contain, pid, tree, path, slot) != 0)
        log_error("fork-server: out of memory: what %s starts is not contained", path ?: "?");
    free(tree);
    free(path);
    if (is_exec) {
        /* Its verdict comes later (s_pending_check): fork the next one now. */
        s_pending_t *p = &s->pending[s->npending++];
        *p = (s_pending_t){.pid = pid, .req = req, .status = status[0],
                           .fds = {pidfd, out[0], err[0], link[0]},
                           .forked_at = forked_at,
                           .deadline = clk_now_ms() + FSRV_EXEC_DEADLINE_MS};
        return;
    }
    s_adopt_child(s, pid, req);
    fsrv_hdr_t hdr = {.type = FSRV_SPAWNED, .req = req, .pid = pid, .mono_ms = forked_at};
    int fds[FSRV_MAX_FDS] = {pidfd, out[0], err[0], link[0]};
    if (quiet)
        s_queue(s, &hdr, NULL, (int[]){pidfd, link[0]}, 2);
    else
        s_queue(s, &hdr, NULL, fds, FSRV_MAX_FDS);
}

/* Reap every child that has exited; queue its status for the supervisor,
 * with how many processes its node left behind had to be killed. Workers
 * are handled in batches, so that containment reads /proc once for all
 * the nodes that ended together (a cancelled tree: many). */
static void s_reap(s_server_t *s)
{
    enum { BATCH = 64 };
    for (bool more = true; more;) {
        pid_t pids[BATCH];
        int status[BATCH], escaped[BATCH];
        uint64_t reqs[BATCH];
        size_t n = 0;
        while (n < BATCH) {
            int st;
            pid_t pid = waitpid(-1, &st, WNOHANG);
            if (pid <= 0) {
                more = false;
                break;
            }
            s_pending_reaped(s, pid);
            /* Unknown pids are orphans of exec'd programs, reparented to us
             * as the subreaper (or children whose exec failed): reaped
             * here, never left as zombies. */
            for (size_t i = 0; i < s->nchildren; i++) {
                if (s->children[i].pid != pid)
                    continue;
                pids[n] = pid;
                status[n] = st;
                reqs[n++] = s->children[i].req;
                s->children[i] = s->children[--s->nchildren];
                break;
            }
        }
        if (n == 0)
            continue;
        contain_reaped(s->contain, pids, escaped, n);
        int64_t now = clk_now_ms();
        for (size_t i = 0; i < n; i++) {
            fsrv_hdr_t hdr = {.type = FSRV_EXITED, .req = reqs[i], .pid = pids[i],
                              .status = status[i], .escaped = escaped[i], .mono_ms = now};
            s_queue(s, &hdr, NULL, NULL, 0);
        }
    }
}

/* SIGTERM or SIGKILL to every child: workers and adopted orphans. */
static void s_signal_all(s_server_t *s, int sig)
{
    for (size_t i = 0; i < s->nchildren; i++)
        kill(s->children[i].pid, sig); /* our own unreaped children: no pid reuse */
    pid_t kids[1024];
    int n = ptree_children(getpid(), kids, sizeof kids / sizeof kids[0]);
    for (int i = 0; i < n && i < (int) (sizeof kids / sizeof kids[0]); i++)
        kill(kids[i], sig); /* children: not reaped, so not reused */
}

/* Wait (reaping) until no worker is left (all: also no adopted orphan)
 * or the deadline passes. */
static void s_reap_until(s_server_t *s, int64_t deadline, bool all)
{
    for (;;) {
        s_reap(s);
        if (s->nchildren == 0 && (!all || waitpid(-1, NULL, WNOHANG | __WALL) < 0))
            return;
        int64_t left = deadline - clk_now_ms();
        if (left <= 0)
            return;
        struct pollfd p = {s->sigfd, POLLIN, 0};
        if (poll(&p, 1, (int) (left < 20 ? left : 20)) > 0) {
            struct signalfd_siginfo si;
            while (read(s->sigfd, &si, sizeof si) > 0) {
            }
        }
    }
}

static void s_shutdown(s_server_t *s, const char *why)
{
    size_t n = s->nchildren;
    if (n)
        log_warn("fork-server: %s; stopping %zu workers (SIGTERM, then SIGKILL to everything "
                 "they started, after %d ms)",
                 why, n, FSRV_TERM_GRACE_MS);
    s_signal_all(s, SIGTERM);
    s_reap_until(s, clk_now_ms() + FSRV_TERM_GRACE_MS, false);
    /* Rule 6, at any depth: whatever is left below us, setsid'd and
     * double-forked ones too, is frozen and killed. */
    int64_t deadline = clk_now_ms() + FSRV_REAP_DEADLINE_MS;
    int killed = contain_kill_all(s->contain, deadline);
    s_reap_until(s, deadline, true);
    s_flush(s);
    if (killed > (int) s->nchildren && s->nchildren == 0)
        log_info("fork-server: killed %d processes below its workers", killed);
    if (s->nchildren)
        log_error("fork-server: %zu workers did not die after SIGKILL", s->nchildren);
    contain_destroy(&s->contain);
    _exit(s->nchildren ? 1 : 0);
}

static void s_serve(s_server_t *s)
{
    for (;;) {
        if (s->cappfds < s->npending + 2) {
            size_t cap = s->npending + 64;
            struct pollfd *grown = realloc(s->pfds, cap * sizeof *grown);
            if (!grown)
                s_shutdown(s, "out of memory for its poll set");
            s->pfds = grown;
            s->cappfds = cap;
        }
        /* Ended nodes' cgroups are removed once their last process is gone;
         * a pending exec has its deadline. */
        int timeout = contain_tick(s->contain) ? 50 : -1;
        int verdicts = s->npending ? s_pending_check(s) : -1;
        if (verdicts >= 0 && (timeout < 0 || verdicts < timeout))
            timeout = verdicts;
        struct pollfd *p = s->pfds;
        p[0] = (struct pollfd){s->sock, POLLIN | (s->out_head ? POLLOUT : 0), 0};
        p[1] = (struct pollfd){s->sigfd, POLLIN, 0};
        for (size_t i = 0; i < s->npending; i++)
            p[2 + i] = (struct pollfd){s->pending[i].status, POLLIN, 0};
        size_t npoll = 2 + s->npending;
        if (poll(p, npoll, timeout) < 0) {
            if (errno == EINTR)
                continue;
            s_shutdown(s, "poll failed");
        }
        /* Marked now, read after: reaping below may reorder the table. */
        for (size_t i = 2; i < npoll; i++)
            s->pending[i - 2].spoke = p[i].revents != 0;
        if (s->npending)
            s_pending_check(s);
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(s->sigfd, &si, sizeof si) == (ssize_t) sizeof si) {
                /* Its parent's death (PDEATHSIG) ends it; a stop signal to
                 * the whole process group (killall, a terminal, a process
                 * manager) is the supervisor's to handle: it cancels the
                 * trees properly, then closes our channel. */
                if (si.ssi_signo != SIGCHLD && getppid() != s->supervisor)
                    s_shutdown(s, "its supervisor died");
            }
            s_reap(s);
        }
        if (p[0].revents & POLLIN) {
            /* /proc read once per batch, not per fork: nothing in this
             * process starts threads, this only proves it. */
            s->single_threaded = fsrv_thread_count() == 1;
            for (int budget = 64; budget > 0; budget--) {
                fsrv_hdr_t hdr;
                int rc = fsrv_wire_recv(s->sock, &hdr, s->payload, FSRV_MAX_PAYLOAD, NULL, NULL);
                if (rc == 0)
                    break;
                if (rc < 0)
                    s_shutdown(s, "supervisor is gone");
                if (hdr.type == FSRV_SPAWN)
                    s_spawn(s, hdr.req, hdr.len);
                else if (hdr.type == FSRV_ACK_EXIT) /* status: how many */
                    s->unacked -= hdr.status > 0 && (size_t) hdr.status < s->unacked
                                      ? (size_t) hdr.status
                                      : s->unacked;
            }
        } else if (p[0].revents & (POLLHUP | POLLERR)) {
            s_shutdown(s, "supervisor is gone");
        }
        if (s_flush(s) < 0)
            s_shutdown(s, "supervisor is gone");
    }
}

/* The fork-server's life: set up, say which guarantees hold, serve. */
static void __attribute__((noreturn)) s_server_main(int sock, pid_t supervisor,
                                                     fsrv_builtin_fn builtin)
{
    log_init("arbor-forkserver", ALOG_INFO);
    prctl(PR_SET_NAME, "arbor-forksrv");
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    s_server_t *s = calloc(1, sizeof *s);
    if (!s)
        _exit(1);
    s->sock = sock;
    s->supervisor = supervisor;
    s->builtin = builtin;
    s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    /* Rule 6: if the supervisor dies we hear it as SIGTERM (and as EOF). */
    int guarantees = 0;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == 0)
        guarantees |= FSRV_G_PDEATHSIG;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) == 0)
        guarantees |= FSRV_G_SUBREAPER;
    if (getppid() != supervisor || s->sigfd < 0)
        _exit(1);
    /* Keep the fd table small and low-numbered: only 0-2, sock, sigfd,
     * and /dev/null for the children's stdin. */
    int keep_hi = s->sock > s->sigfd ? s->sock : s->sigfd;
    for (int fd = 3; fd < keep_hi; fd++)
        if (fd != s->sock && fd != s->sigfd)
            close(fd);
    if (close_range((unsigned) keep_hi + 1, ~0U, 0) == 0)
        guarantees |= FSRV_G_CLOSE_RANGE;
    s->contain = contain_new(supervisor);
    if (!s->contain)
        _exit(1);
    if (contain_has_cgroup(s->contain))
        guarantees |= FSRV_G_CGROUP;
    s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (s->devnull < 0)
        _exit(1);
    /* What children must reset: every disposition that is not SIG_DFL now
     * (SIGPIPE, and whatever was ignored when this program was exec'd). */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &sa) == 0 &&
            sa.sa_handler != SIG_DFL)
            s->handled[s->nhandled++] = sig;
    }
    int self_fd = (int) syscall(SYS_pidfd_open, getpid(), 0);
    if (self_fd >= 0) {
        guarantees |= FSRV_G_PIDFD;
        close(self_fd);
    }
    fsrv_hdr_t ready = {.type = FSRV_READY, .status = guarantees, .pid = getpid(),
                        .mono_ms = clk_now_ms()};
    s_queue(s, &ready, NULL, NULL, 0);
    s_serve(s);
    _exit(0);
}

void fsrv_server_main(fsrv_builtin_fn builtin)
{
    fcntl(FSRV_EXEC_FD, F_SETFD, FD_CLOEXEC);
    s_server_main(FSRV_EXEC_FD, getppid(), builtin);
}

