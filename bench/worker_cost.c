/* worker_cost: what one worker costs, piece by piece.
 *
 * Linked with the same libraries as arbor-supervisor (libarbor_worker,
 * CZMQ, libzmq, cJSON), so a fork from it copies the same mappings the
 * fork-server's forks copy. For each variant it forks N children one at a
 * time (no contention between them), reaps each with wait4 and sums the
 * child's CPU time (user + sys, all its threads) from the rusage:
 *
 *   bare   the child _exits at once: fork + exit of a process with these
 *          libraries mapped
 *   ctx    zmq_ctx_new + zmq_ctx_term (libzmq: I/O and reaper threads,
 *          and pgm_init in Debian's OpenPGM-enabled build)
 *   zsys   zsys_init + zsys_shutdown (what CZMQ's first zsock_new does)
 *   link   what a builtin does over its life: the phases ready, running,
 *          cancel_requested, cleanup, exiting over its notify fd (a
 *          socketpair made before the fork, read by the parent), exit
 *   worker what an exec'd program linked with libarbor_worker does after
 *          its exec: arbor_worker_from_env (ARBOR_NOTIFY_FD), the same
 *          five phases over the notify fd, arbor_worker_close, exit
 *          (atexit handlers)
 *
 * usage: worker_cost --broker EP --supervisor NAME [--only VARIANT] [N]
 * prints: variant=V n=N cpu_us=C wall_us=W fork_us=F   (averages per child)
 */
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arbor_worker.h"
#include "link.h"

static double s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static const char *s_ep, *s_sup;
static const char *const s_phases[] = {"ready", "running", "cancel_requested", "cleanup",
                                       "exiting"};
static int s_link[2] = {-1, -1};

static void s_child(const char *variant, int i)
{
    if (!strcmp(variant, "link")) {
        arbor_worker_t *w = arbor_worker_open_fd(s_link[1]);
        for (size_t p = 0; p < sizeof s_phases / sizeof *s_phases; p++)
            arbor_worker_phase(w, s_phases[p]);
        arbor_worker_close(&w);
        exit(0);
    }
    if (!strcmp(variant, "bare"))
        _exit(0);
    if (!strcmp(variant, "ctx")) {
        void *ctx = zmq_ctx_new();
        zmq_ctx_term(ctx);
        _exit(0);
    }
    if (!strcmp(variant, "zsys")) {
        zsys_handler_set(NULL);
        zsys_init();
        zsys_shutdown();
        _exit(0);
    }
    (void) i;
    char fd[16];
    snprintf(fd, sizeof fd, "%d", s_link[1]);
    setenv("ARBOR_NOTIFY_FD", fd, 1);
    arbor_worker_t *w = arbor_worker_from_env();
    if (!w)
        _exit(3);
    for (size_t p = 0; p < sizeof s_phases / sizeof *s_phases; p++)
        arbor_worker_phase(w, s_phases[p]);
    arbor_worker_close(&w);
    exit(0); /* like a builtin: atexit handlers run */
}

static int s_variant(const char *variant, int n)
{
    double cpu = 0, wall = 0, forking = 0;
    for (int i = 0; i < n; i++) {
        if ((!strcmp(variant, "link") || !strcmp(variant, "worker")) &&
            socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s_link) != 0) {
            perror("worker_cost: socketpair");
            return -1;
        }
        double t0 = s_now_us();
        pid_t pid = fork();
        double t1 = s_now_us();
        if (pid < 0) {
            perror("worker_cost: fork");
            return -1;
        }
        if (pid == 0)
            s_child(variant, i);
        int status;
        struct rusage ru;
        while (wait4(pid, &status, 0, &ru) < 0)
            if (errno != EINTR)
                return -1;
        double t2 = s_now_us();
        if (s_link[0] >= 0) { /* what the supervisor reads */
            char buf[NOTIFY_MSG_MAX];
            while (recv(s_link[0], buf, sizeof buf, MSG_DONTWAIT) > 0) {
            }
            close(s_link[0]);
            close(s_link[1]);
            s_link[0] = s_link[1] = -1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "worker_cost: %s child failed (status %d)\n", variant, status);
            return -1;
        }
        cpu += (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
               (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
        wall += t2 - t0;
        forking += t1 - t0;
    }
    printf("variant=%s n=%d cpu_us=%.0f wall_us=%.0f fork_us=%.0f\n", variant, n, cpu / n,
           wall / n, forking / n);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 200;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            s_ep = argv[++i];
        else if (!strcmp(argv[i], "--supervisor") && i + 1 < argc)
            s_sup = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else
            n = atoi(argv[i]);
    }
    if (!s_ep || !s_sup || n < 1) {
        fprintf(stderr, "usage: worker_cost --broker EP --supervisor NAME [--only VARIANT] [N]\n");
        return 2;
    }
    /* Like the fork-server: single-threaded, no ZeroMQ context in the parent. */
    static const char *variants[] = {"bare", "link", "ctx", "zsys", "worker"};
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++)
        if ((!only || !strcmp(only, variants[v])) && s_variant(variants[v], n) != 0)
            return 1;
    return 0;
}
