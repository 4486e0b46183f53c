#include "contain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "ptree.h"

#define S_BUCKETS 1024
#define S_FREEZE_MS 500 /* freezing what a node left: bounded per node */

typedef struct s_worker_t {
    pid_t pid;
    uint32_t slot;     /* its cgroup, n<slot> under base; 0: none */
    char *tree, *path; /* exec'd nodes: what its descendants inherit */
    struct s_worker_t *next;
} s_worker_t;

struct contain_t {
    pid_t self;
    char *base; /* the cgroup of this fork-server's nodes; NULL: subreaper way */
    uint32_t next_slot;
    s_worker_t *bucket[S_BUCKETS];
    size_t nworkers;
    uint32_t *busy; /* cgroups of ended nodes not removed yet */
    size_t nbusy, capbusy;
};

/* ---- cgroup files ---------------------------------------------------------- */

/* snprintf for paths: "" (and -1) when it would not fit, never a cut path. */
static int __attribute__((format(printf, 3, 4))) s_path(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= size) {
        out[0] = 0;
        return -1;
    }
    return 0;
}

static int s_write(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t) strlen(text) ? 0 : -1;
}

/* Processes in a cgroup (its cgroup.procs lines), -1 if unreadable. */
static int s_count_procs(const char *dir)
{
    char path[PATH_MAX], buf[4096];
    s_path(path, sizeof path, "%s/cgroup.procs", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

/* The cgroup v2 directory this process is in, from mountinfo and
 * /proc/self/cgroup (also when the mount shows only a subtree, as in a
 * container without its own cgroup namespace). */
static char *s_own_cgroup(void)
{
    char cg[PATH_MAX] = "";
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[PATH_MAX + 64];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0) {
            s_path(cg, sizeof cg, "%s", line + 3);
            cg[strcspn(cg, "\n")] = 0;
        }
    if (f)
        fclose(f);
    if (!cg[0])
        return NULL;
    f = fopen("/proc/self/mountinfo", "re");
    char *found = NULL;
    while (f && !found && fgets(line, sizeof line, f)) {
        char root[PATH_MAX], mnt[PATH_MAX], fstype[64];
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
            sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
            continue;
        size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
        if (strncmp(cg, root, rl) != 0 || (cg[rl] != '/' && cg[rl] != 0))
            continue;
        if (asprintf(&found, "%s%s", mnt, cg + rl) < 0)
            found = NULL;
    }
    if (f)
        fclose(f);
    return found;
}

/* Kill everything in a cgroup tree of ours and remove it, briefly waiting
 * for the killed to exit (what a dead fork-server of ours left). */
static void s_clear_tree(const char *dir)
{
    char path[PATH_MAX];
    s_path(path, sizeof path, "%s/cgroup.kill", dir);
    s_write(path, "1");
    int64_t deadline = clk_now_ms() + S_FREEZE_MS;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        s_path(path, sizeof path, "%s/%s", dir, e->d_name);
        while (rmdir(path) != 0 && errno == EBUSY && clk_now_ms() < deadline) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (d)
        closedir(d);
    if (rmdir(dir) != 0)
        log_warn("fork-server: cannot remove the old cgroup %s: %s", dir, strerror(errno));
}

/* The cgroup way, if this host allows it: base is made, cgroup.kill
 * writable. What dead fork-servers of this supervisor left is cleared. */
static void s_probe_cgroup(contain_t *c, pid_t supervisor)
{
    const char *off = getenv("ARBOR_NO_CGROUP");
    if (off && strcmp(off, "0") != 0)
        return;
    char *own = s_own_cgroup();
    if (!own) {
        log_info("fork-server: no cgroup v2 mount holds this process: containment by subreaper");
        return;
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "arbor-fsrv-%d-", (int) supervisor);
    DIR *d = opendir(own);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_type == DT_DIR && strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            char old[PATH_MAX];
            s_path(old, sizeof old, "%s/%s", own, e->d_name);
            s_clear_tree(old);
        }
    }
    if (d)
        closedir(d);
    char *base = NULL, kill_file[PATH_MAX];
    if (asprintf(&base, "%s/%s%d", own, prefix, (int) c->self) < 0)
        base = NULL;
    free(own);
    if (!base)
        return;
    s_path(kill_file, sizeof kill_file, "%s/cgroup.kill", base);
    if (mkdir(base, 0755) != 0 && errno != EEXIST) {
        log_info("fork-server: no cgroup per node (%s: %s): containment by subreaper", base,
                 strerror(errno));
        free(base);
        return;
    }
    if (access(kill_file, W_OK) != 0) {
        log_info("fork-server: no cgroup.kill in %s (%s): containment by subreaper", base,
                 strerror(errno));
        rmdir(base);
        free(base);
        return;
    }
    c->base = base;
}

static void s_node_dir(const contain_t *c, uint32_t slot, char *out, size_t size)
{
    s_path(out, size, "%s/n%u", c->base, slot);
}

/* Remove a node's cgroup, or keep it for contain_tick while it is busy. */
static void s_retire(contain_t *c, uint32_t slot)
{
    char dir[PATH_MAX];
    s_node_dir(c, slot, dir, sizeof dir);
    if (rmdir(dir) == 0 || errno == ENOENT)
        return;
    if (c->nbusy == c->capbusy) {
        size_t cap = c->capbusy ? c->capbusy * 2 : 16;
        uint32_t *grown = realloc(c->busy, cap * sizeof *grown);
        if (!grown) {
            log_warn("fork-server: out of memory: cgroup %s stays", dir);
            return;
        }
        c->busy = grown;
        c->capbusy = cap;
    }
    c->busy[c->nbusy++] = slot;
}

/* ---- workers ------------------------------------------------------------- */

static s_worker_t **s_bucket(contain_t *c, pid_t pid)
{
    return &c->bucket[(uint32_t) pid % S_BUCKETS];
}

static s_worker_t *s_find(contain_t *c, pid_t pid)
{
    for (s_worker_t *w = *s_bucket(c, pid); w; w = w->next)
        if (w->pid == pid)
            return w;
    return NULL;
}

/* Remove pid's record from the table and return it (the caller frees it),
 * or NULL: no worker (an adopted orphan, a child whose exec failed). */
static s_worker_t *s_take(contain_t *c, pid_t pid)
{
    s_worker_t **link = s_bucket(c, pid);
    while (*link && (*link)->pid != pid)
        link = &(*link)->next;
    s_worker_t *w = *link;
    if (w) {
        *link = w->next;
        c->nworkers--;
    }
    return w;
}

/* Whether an exec'd node (tree, path) still has its process. */
static bool s_node_alive(contain_t *c, const char *tree, const char *path)
{
    for (size_t b = 0; b < S_BUCKETS; b++)
        for (s_worker_t *w = c->bucket[b]; w; w = w->next)
            if (w->tree && strcmp(w->tree, tree) == 0 && strcmp(w->path, path) == 0)
                return true;
    return false;
}

static void s_free_worker(s_worker_t *w)
{
    free(w->tree);
    free(w->path);
    free(w);
}

/* The fork-server's children: workers and adopted orphans. */
static pid_t *s_children(contain_t *c, int *n)
{
    int cap = (int) c->nworkers + 64;
    for (int tries = 0; tries < 4; tries++) {
        pid_t *kids = malloc((size_t) cap * sizeof *kids);
        if (!kids)
            break;
        *n = ptree_children(c->self, kids, (size_t) cap);
        if (*n >= 0 && *n <= cap)
            return kids;
        free(kids);
        if (*n < 0)
            break;
        cap = *n + 64;
    }
    *n = 0;
    return NULL;
}

/* The subreaper way, for nodes that just ended (their workers reaped):
 * the orphans each left, told apart by process group, session or the
 * environment they inherited, frozen and killed with their subtrees;
 * killed[i] counts ended[i]'s. Orphans of nodes that had ended before are
 * killed too. One /proc read of our children for the whole batch. */
static void s_sweep_orphans(contain_t *c, s_worker_t **ended, int *killed, size_t nended)
{
    int n;
    pid_t *kids = s_children(c, &n);
    /* As many children as workers: no orphan at all (the usual case). */
    int *owner = kids && (size_t) n > c->nworkers ? malloc((size_t) n * sizeof *owner) : NULL;
    if (owner) {
        static const char *const names[] = {"ARBOR_TREE", "ARBOR_NODE"};
        int strays = 0;
        for (int i = 0; i < n; i++) {
            ptree_stat_t st;
            char val[2][128];
            owner[i] = -1; /* not ours to kill: a worker, or a live node's */
            if (s_find(c, kids[i]) || ptree_stat(kids[i], &st) != 0 || st.state == 'Z')
                continue;
            for (size_t e = 0; e < nended && owner[i] < 0; e++)
                if (st.pgid == ended[e]->pid || st.sid == ended[e]->pid)
                    owner[i] = (int) e;
            if (owner[i] >= 0 || ptree_getenv(kids[i], names, val, 2) != 2)
                continue;
            for (size_t e = 0; e < nended && owner[i] < 0; e++)
                if (strcmp(val[0], ended[e]->tree) == 0 && strcmp(val[1], ended[e]->path) == 0)
                    owner[i] = (int) e;
            if (owner[i] < 0 && !s_node_alive(c, val[0], val[1])) {
                owner[i] = (int) nended; /* a node that had ended before */
                strays++;
            }
        }
        int64_t deadline = clk_now_ms() + S_FREEZE_MS;
        pid_t *roots = malloc((size_t) n * sizeof *roots);
        for (size_t e = 0; roots && e <= nended; e++) {
            size_t k = 0;
            for (int i = 0; i < n; i++)
                if (owner[i] == (int) e)
                    roots[k++] = kids[i];
            int dead = k ? ptree_kill_subtrees(c->self, roots, k, deadline) : 0;
            if (e < nended)
                killed[e] = dead;
            else if (strays)
                log_warn("fork-server: killed %d processes left by nodes that had ended", dead);
        }
        free(roots);
    }
    free(owner);
    free(kids);
    for (size_t e = 0; e < nended; e++)
        kill(-ended[e]->pid, SIGKILL); /* its process group, if anything of it is left */
}

/* ---- the API --------------------------------------------------------------- */

contain_t *contain_new(pid_t supervisor)
{
    contain_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->self = getpid();
    s_probe_cgroup(c, supervisor);
    return c;
}

bool contain_has_cgroup(const contain_t *self)
{
    return self->base != NULL;
}

int contain_prepare(contain_t *self, int *cgroup_fd, uint32_t *slot)
{
    *cgroup_fd = -1;
    *slot = 0;
    if (!self->base)
        return 0;
    if (++self->next_slot == 0)
        self->next_slot = 1;
    char dir[PATH_MAX];
    s_node_dir(self, self->next_slot, dir, sizeof dir);
    if (mkdir(dir, 0755) != 0)
        return -1;
    *cgroup_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*cgroup_fd < 0) {
        int e = errno;
        rmdir(dir);
        errno = e;
        return -1;
    }
    *slot = self->next_slot;
    return 0;
}

int contain_join(int cgroup_fd)
{
    if (cgroup_fd < 0)
        return 0;
    int fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write(fd, "0", 1) == 1 ? 0 : -1; /* "0": the writer itself */
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

void contain_abort(contain_t *self, uint32_t slot)
{
    if (slot && self->base)
        s_retire(self, slot);
}

void contain_drop(contain_t *self, pid_t pid)
{
    s_worker_t *w = s_take(self, pid);
    if (!w)
        return;
    contain_abort(self, w->slot);
    s_free_worker(w);
}

int contain_add(contain_t *self, pid_t pid, const char *tree, const char *path, uint32_t slot)
{
    s_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->pid = pid;
    w->slot = slot;
    if (tree && path) {
        w->tree = strdup(tree);
        w->path = strdup(path);
        if (!w->tree || !w->path) {
            s_free_worker(w);
            return -1;
        }
    }
    s_worker_t **b = s_bucket(self, pid);
    w->next = *b;
    *b = w;
    self->nworkers++;
    return 0;
}

void contain_reaped(contain_t *self, const pid_t *pids, int *escaped, size_t n)
{
    /* Nodes for the subreaper way, swept together: which pid each was. */
    s_worker_t **ended = calloc(n ? n : 1, sizeof *ended);
    size_t *at = calloc(n ? n : 1, sizeof *at);
    int *killed = calloc(n ? n : 1, sizeof *killed);
    size_t nended = 0;
    for (size_t i = 0; i < n; i++) {
        escaped[i] = 0;
        s_worker_t *w = s_take(self, pids[i]);
        if (!w)
            continue; /* an adopted orphan, not a worker */
        if (w->slot && self->base) {
            char dir[PATH_MAX], file[PATH_MAX + 16];
            s_node_dir(self, w->slot, dir, sizeof dir);
            int left = s_count_procs(dir);
            s_path(file, sizeof file, "%s/cgroup.kill", dir);
            if (left > 0 && s_write(file, "1") != 0)
                log_error("fork-server: cannot kill what %s left (%s): %s", w->path, file,
                          strerror(errno));
            escaped[i] = left > 0 ? left : 0;
            s_retire(self, w->slot);
        } else if (w->tree && ended && at && killed) {
            at[nended] = i;
            ended[nended++] = w;
            continue;
        } else if (w->tree) {
            log_error("fork-server: out of memory: what %s left is not swept", w->path);
        }
        s_free_worker(w);
    }
    if (nended > 0)
        s_sweep_orphans(self, ended, killed, nended);
    for (size_t e = 0; e < nended; e++) {
        escaped[at[e]] = killed[e];
        s_free_worker(ended[e]);
    }
    free(ended);
    free(at);
    free(killed);
}

int contain_kill_all(contain_t *self, int64_t deadline_ms)
{
    int n, killed = 0;
    pid_t *kids = s_children(self, &n);
    if (kids)
        killed = ptree_kill_subtrees(self->self, kids, (size_t) n, deadline_ms);
    free(kids);
    if (self->base) {
        char file[PATH_MAX];
        s_path(file, sizeof file, "%s/cgroup.kill", self->base);
        s_write(file, "1");
    }
    return killed;
}

bool contain_tick(contain_t *self)
{
    size_t keep = 0;
    for (size_t i = 0; i < self->nbusy; i++) {
        char dir[PATH_MAX];
        s_node_dir(self, self->busy[i], dir, sizeof dir);
        if (rmdir(dir) != 0 && errno == EBUSY)
            self->busy[keep++] = self->busy[i];
    }
    self->nbusy = keep;
    return keep > 0;
}

void contain_destroy(contain_t **self)
{
    contain_t *c = *self;
    if (!c)
        return;
    if (c->base) {
        /* Workers never reaped (the deadline passed): their cgroups too. */
        for (size_t b = 0; b < S_BUCKETS; b++)
            for (s_worker_t *w = c->bucket[b]; w; w = w->next)
                if (w->slot)
                    s_retire(c, w->slot);
        /* Killed processes leave their cgroup a moment after SIGKILL. */
        for (int64_t deadline = clk_now_ms() + S_FREEZE_MS;
             contain_tick(c) && clk_now_ms() < deadline;) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        if (c->nbusy)
            log_warn("fork-server: %zu node cgroups still busy under %s", c->nbusy, c->base);
        if (rmdir(c->base) != 0 && c->nbusy == 0)
            log_warn("fork-server: cannot remove %s: %s", c->base, strerror(errno));
        free(c->base);
    }
    for (size_t b = 0; b < S_BUCKETS; b++)
        while (c->bucket[b]) {
            s_worker_t *w = c->bucket[b];
            c->bucket[b] = w->next;
            s_free_worker(w);
        }
    free(c->busy);
    free(c);
    *self = NULL;
}
