/* arbor-test-escaper: a worker for the tests whose children try to outlive
 * their node, the way real programs' children do. Statically linked, so it
 * runs in the FROM scratch supervisor image, which has no shell, setsid or
 * sleep (docker/build.sh --test-helpers adds it; test_compose.py uses it).
 *
 *   arbor-test-escaper MODE...     MODE: setsid, double-fork, ignore-term
 *   arbor-test-escaper kill COMM   SIGKILL every process named COMM
 *
 * As a worker: starts one child per MODE, waits until each has set itself
 * up, reports ready and running, and on a cancel (its message, or SIGTERM)
 * reports its phases and exits 0, leaving the children behind: arbor must
 * end them with the node. The children inherit its environment (the tests'
 * ARBOR_TEST_MARK, by which they are found) and pause until killed:
 *   setsid       a child in a session of its own (keeps the node's pipes);
 *   double-fork  a daemon: fork, setsid, fork again, the middle one exits,
 *                stdio on /dev/null and every other fd closed;
 *   ignore-term  a child in the node's process group that ignores SIGTERM.
 *
 * `kill COMM` is for the same image, which has no kill(1): it SIGKILLs
 * every process of its PID namespace whose /proc/PID/comm is COMM (the
 * fork-server is "arbor-forksrv"), prints their pids, exit 1 if none. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arbor_worker.h>

static volatile sig_atomic_t s_term;
static void s_on_term(int sig) { (void) sig; s_term = 1; }

static void s_die(const char *what)
{
    fprintf(stderr, "arbor-test-escaper: %s: %s\n", what, strerror(errno));
    _exit(1);
}

static void s_pause_forever(void)
{
    for (;;)
        pause();
}

/* A daemon's own house-keeping: nothing of the node but its environment. */
static void s_detach_fds(int keep)
{
    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        s_die("open /dev/null");
    for (int fd = 0; fd < 3; fd++)
        dup2(null, fd);
    for (int fd = 3; fd < 1024; fd++)
        if (fd != keep)
            close(fd);
}

/* The child of one MODE; ready closes when it is set up. Never returns. */
static void s_escape(const char *mode, int ready)
{
    if (strcmp(mode, "setsid") == 0) {
        if (setsid() < 0)
            s_die("setsid");
    } else if (strcmp(mode, "ignore-term") == 0) {
        signal(SIGTERM, SIG_IGN);
    } else if (strcmp(mode, "double-fork") == 0) {
        if (setsid() < 0)
            s_die("setsid");
        pid_t pid = fork();
        if (pid < 0)
            s_die("fork");
        if (pid > 0)
            _exit(0); /* the middle one: its child is adopted by a subreaper */
        s_detach_fds(ready);
    }
    close(ready);
    s_pause_forever();
}

/* One child per mode; returns once each is set up (the pipe's EOF). */
static void s_start_escapers(char **modes, int n)
{
    int p[2];
    if (pipe(p) != 0)
        s_die("pipe");
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            s_die("fork");
        if (pid == 0) {
            close(p[0]);
            s_escape(modes[i], p[1]);
        }
        if (strcmp(modes[i], "double-fork") == 0)
            waitpid(pid, NULL, 0); /* the middle one exits at once */
    }
    close(p[1]);
    for (;;) {
        char c;
        ssize_t r = read(p[0], &c, 1);
        if (r == 0 || (r < 0 && errno != EINTR))
            break;
    }
    close(p[0]);
}

static int s_kill_named(const char *comm)
{
    DIR *d = opendir("/proc");
    if (!d)
        s_die("opendir /proc");
    int killed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[300], name[64] = "";
        pid_t pid = (pid_t) atoi(e->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%d/comm", (int) pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(name, sizeof name, f))
            name[strcspn(name, "\n")] = 0;
        fclose(f);
        if (strcmp(name, comm) == 0 && kill(pid, SIGKILL) == 0) {
            printf("%d\n", (int) pid);
            killed++;
        }
    }
    closedir(d);
    return killed ? 0 : 1;
}

static int s_usage(void)
{
    fprintf(stderr, "usage: arbor-test-escaper MODE...  (setsid, double-fork, ignore-term)\n"
                    "       arbor-test-escaper kill COMM\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "kill") == 0)
        return s_kill_named(argv[2]);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "setsid") && strcmp(argv[i], "double-fork") &&
            strcmp(argv[i], "ignore-term"))
            return s_usage();
    if (argc < 2)
        return s_usage();
    arbor_worker_t *w = arbor_worker_from_env();
    s_start_escapers(argv + 1, argc - 1);
    arbor_worker_phase(w, "ready"); /* its children started: they are there to be found */
    struct sigaction sa = {.sa_handler = s_on_term}; /* after the forks: theirs stays */
    sigaction(SIGTERM, &sa, NULL);
    arbor_worker_phase(w, "running");
    int ev = ARBOR_EV_NONE;
    while (!s_term && w && ev != ARBOR_EV_CANCEL && ev != ARBOR_EV_GONE && ev != ARBOR_EV_ERROR)
        ev = arbor_worker_poll(w, 1000);
    while (!s_term && !w) /* outside arbor: until SIGTERM */
        pause();
    arbor_worker_phase(w, "cancel_requested");
    arbor_worker_phase(w, "cleanup");
    arbor_worker_phase(w, "exiting");
    arbor_worker_close(&w);
    return 0;
}
