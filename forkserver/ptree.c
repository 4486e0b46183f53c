#include "ptree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* Read a whole small /proc file into buf (NUL-terminated). Bytes read, or -1. */
static ssize_t s_read(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    close(fd);
    buf[got] = 0;
    return (ssize_t) got;
}

int ptree_stat(pid_t pid, ptree_stat_t *st)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    if (s_read(path, buf, sizeof buf) <= 0)
        return -1;
    /* The name (field 2) may hold spaces and ')': parse after the last ')'. */
    char *p = strrchr(buf, ')');
    int ppid, pgid, sid;
    char state;
    if (!p || sscanf(p + 1, " %c %d %d %d", &state, &ppid, &pgid, &sid) != 4)
        return -1;
    *st = (ptree_stat_t){.ppid = ppid, .pgid = pgid, .sid = sid, .state = state};
    return 0;
}

/* Kernels without CONFIG_PROC_CHILDREN: every process whose parent is pid. */
static int s_scan_children(pid_t pid, pid_t *out, size_t cap)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        ptree_stat_t st;
        pid_t p = (pid_t) atoi(e->d_name);
        if (ptree_stat(p, &st) == 0 && st.ppid == pid) {
            if ((size_t) count < cap)
                out[count] = p;
            count++;
        }
    }
    closedir(d);
    return count;
}

/* Read a whole /proc file into a malloc'd, NUL-terminated buffer. */
static char *s_slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (got + 1 >= cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    close(fd);
    if (buf) {
        buf[got] = 0;
        *len = got;
    }
    return buf;
}

int ptree_children(pid_t pid, pid_t *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int count = 0;
    bool missing = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char file[320];
        size_t len;
        snprintf(file, sizeof file, "/proc/%d/task/%s/children", (int) pid, e->d_name);
        char *buf = s_slurp(file, &len);
        if (!buf) {
            missing = missing || errno == ENOENT; /* no such file: CONFIG_PROC_CHILDREN off */
            continue;
        }
        char *p = buf, *end;
        for (long v; (v = strtol(p, &end, 10)), end != p; p = end) {
            if ((size_t) count < cap)
                out[count] = (pid_t) v;
            count++;
        }
        free(buf);
    }
    closedir(d);
    if (count == 0 && missing)
        return s_scan_children(pid, out, cap);
    return count;
}

typedef struct {
    pid_t *pid;
    size_t n, cap;
} s_set_t;

static bool s_has(const s_set_t *s, pid_t p)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->pid[i] == p)
            return true;
    return false;
}

static int s_add(s_set_t *s, pid_t p)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        pid_t *grown = realloc(s->pid, cap * sizeof *grown);
        if (!grown)
            return -1;
        s->pid = grown;
        s->cap = cap;
    }
    s->pid[s->n++] = p;
    return 0;
}

/* Stop p (a child of parent, checked), and add it. */
static void s_freeze(s_set_t *set, pid_t parent, pid_t p)
{
    ptree_stat_t st;
    if (s_has(set, p) || ptree_stat(p, &st) != 0 || st.ppid != parent || st.state == 'Z' ||
        st.state == 'X')
        return;
    if (kill(p, SIGSTOP) == 0)
        s_add(set, p);
}

/* Until the deadline: wait for p to be seen stopped (or dead). */
static void s_wait_stopped(pid_t p, int64_t deadline)
{
    for (int spin = 0;; spin++) {
        ptree_stat_t st;
        if (ptree_stat(p, &st) != 0 || st.state == 'T' || st.state == 't' || st.state == 'Z' ||
            st.state == 'X' || clk_now_ms() >= deadline)
            return;
        if (spin < 50) {
            sched_yield();
            continue;
        }
        struct timespec ts = {0, 200000}; /* 0.2 ms: it is being scheduled to stop */
        nanosleep(&ts, NULL);
    }
}

int ptree_kill_subtrees(pid_t parent, const pid_t *roots, size_t n, int64_t deadline_ms)
{
    s_set_t set = {0};
    for (size_t i = 0; i < n; i++)
        s_freeze(&set, parent, roots[i]);
    /* Breadth first: each one, once stopped, cannot fork any more; its
     * children listed then are all it will ever have. */
    pid_t kids[256];
    for (size_t i = 0; i < set.n; i++) {
        pid_t p = set.pid[i];
        s_wait_stopped(p, deadline_ms);
        int k = ptree_children(p, kids, sizeof kids / sizeof kids[0]);
        if (k > (int) (sizeof kids / sizeof kids[0])) {
            /* More children than fit: list them all. */
            pid_t *all = malloc((size_t) k * sizeof *all);
            int k2 = all ? ptree_children(p, all, (size_t) k) : -1;
            for (int j = 0; j < k2 && j < k; j++)
                s_freeze(&set, p, all[j]);
            free(all);
            continue;
        }
        for (int j = 0; j < k; j++)
            s_freeze(&set, p, kids[j]);
    }
    for (size_t i = 0; i < set.n; i++)
        kill(set.pid[i], SIGKILL);
    int killed = (int) set.n;
    free(set.pid);
    return killed;
}

int ptree_getenv(pid_t pid, const char *const *names, char (*values)[128], size_t n)
{
    char path[64];
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/%d/environ", (int) pid);
    char *buf = s_slurp(path, &len);
    /* A process in the middle of execve shows no environment for a moment
     * (the new image's is not set up yet): look again, briefly. */
    for (int64_t until = clk_now_ms() + 20; buf && len == 0 && clk_now_ms() < until;) {
        free(buf);
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
        buf = s_slurp(path, &len);
    }
    if (!buf)
        return -1;
    for (size_t i = 0; i < n; i++)
        values[i][0] = 0;
    int found = 0;
    for (char *p = buf; p < buf + len; p += strlen(p) + 1) {
        for (size_t i = 0; i < n; i++) {
            size_t k = strlen(names[i]);
            if (!values[i][0] && strncmp(p, names[i], k) == 0 && p[k] == '=') {
                snprintf(values[i], sizeof values[i], "%s", p + k + 1);
                found++;
            }
        }
    }
    free(buf);
    return found;
}
