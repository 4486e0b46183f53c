/* floor_fork: the floor arbor's spawn and cancel are measured against.
 *
 * A small single-threaded process forks N children. Each child writes one
 * byte to a shared pipe ("I run") and pauses. The parent times fork of the
 * first child until all N bytes have arrived (spawn), then SIGKILLs every
 * child and reaps them all (kill). No ZeroMQ, no JSON, no pidfds: the least
 * any process supervisor must pay for the same work on this machine.
 *
 * With "exec" as third argument each child execve()s /bin/sleep instead
 * (the floor of exec nodes): the pipe is CLOEXEC and the spawn time ends at
 * its EOF, when the last child has exec'd.
 *
 * With "ready PROGRAM" each child execve()s PROGRAM with ARBOR_NOTIFY_FD=3,
 * fd 3 being one end of a SOCK_SEQPACKET socket pair that all children share
 * (the floor of exec'd workers that report): the spawn time ends when N
 * datagrams holding "ready" have arrived on the other end.
 *
 * usage: floor_fork N [REPS [exec | ready PROGRAM]]
 * prints one line per repetition:  n=N spawn_ms=X kill_ms=Y fork_us=Z
 * (fork_us: the average time of the fork() call itself, in the parent)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static pid_t *s_pids;
static int s_n;
static int s_exec;              /* children execve /bin/sleep */
static const char *s_ready_prog; /* children execve this and report ready on fd 3 */

/* On any early exit: no child may outlive the floor. */
static void s_kill_all(void)
{
    for (int i = 0; i < s_n; i++)
        if (s_pids[i] > 0)
            kill(s_pids[i], SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
}

static int s_round(int n)
{
    int fds[2];
    int made = s_ready_prog ? socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds)
                            : pipe2(fds, s_exec ? O_CLOEXEC : 0);
    if (made != 0) {
        perror("floor_fork: pipe");
        return -1;
    }
    s_n = 0;
    double t0 = s_now_ms(), forking = 0;
    for (int i = 0; i < n; i++) {
        double f0 = s_now_ms();
        pid_t pid = fork();
        if (pid > 0)
            forking += s_now_ms() - f0;
        if (pid < 0) {
            perror("floor_fork: fork");
            close(fds[0]);
            close(fds[1]);
            s_kill_all();
            return -1;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(fds[0]);
            if (s_ready_prog) { /* its notify fd: 3, inherited */
                if (dup2(fds[1], 3) != 3)
                    _exit(126);
                char *argv[] = {(char *) s_ready_prog, NULL};
                char *envp[] = {"ARBOR_NOTIFY_FD=3", NULL};
                execve(s_ready_prog, argv, envp);
                _exit(127);
            }
            if (s_exec) {
                char *argv[] = {"sleep", "1000", NULL};
                execv("/bin/sleep", argv);
                _exit(127);
            }
            char c = 'r';
            if (write(fds[1], &c, 1) != 1)
                _exit(1);
            close(fds[1]);
            for (;;)
                pause();
        }
        s_pids[s_n++] = pid;
    }
    close(fds[1]);
    int got = 0;
    char buf[4096];
    while (got < n) {
        ssize_t r = read(fds[0], buf, sizeof buf - 1);
        if (r > 0 && s_ready_prog) { /* one datagram per read: count the readies */
            buf[r] = '\0';
            got += strstr(buf, "\"ready\"") != NULL;
            continue;
        }
        if (r == 0 && s_exec)
            break; /* every child has exec'd */
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "floor_fork: only %d of %d children signalled\n", got, n);
            close(fds[0]);
            s_kill_all();
            return -1;
        }
        got += (int) r;
    }
    double t1 = s_now_ms();

    double t2 = s_now_ms();
    for (int i = 0; i < n; i++)
        kill(s_pids[i], SIGKILL);
    int reaped = 0;
    while (reaped < n) {
        pid_t pid = waitpid(-1, NULL, 0);
        if (pid > 0)
            reaped++;
        else if (errno != EINTR)
            break;
    }
    double t3 = s_now_ms();
    close(fds[0]); /* only now: ready_leaf children end by themselves on its EOF */
    s_n = 0;
    printf("n=%d spawn_ms=%.2f kill_ms=%.2f fork_us=%.1f\n", n, t1 - t0, t3 - t2,
           forking * 1000.0 / n);
    fflush(stdout);
    return reaped == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    bool ready = argc == 5 && strcmp(argv[3], "ready") == 0;
    if (argc < 2 || argc > 5 || (argc == 4 && strcmp(argv[3], "exec") != 0) ||
        (argc == 5 && !ready)) {
        fprintf(stderr, "usage: floor_fork N [REPS [exec | ready PROGRAM]]\n");
        return 2;
    }
    s_ready_prog = ready ? argv[4] : NULL;
    int n = atoi(argv[1]);
    int reps = argc >= 3 ? atoi(argv[2]) : 1;
    s_exec = argc == 4;
    if (s_ready_prog && access(s_ready_prog, X_OK) != 0) {
        fprintf(stderr, "floor_fork: %s: %s\n", s_ready_prog, strerror(errno));
        return 2;
    }
    if (n < 1 || n > 100000 || reps < 1 || reps > 100) {
        fprintf(stderr, "floor_fork: N in 1..100000, REPS in 1..100\n");
        return 2;
    }
    s_pids = calloc((size_t) n, sizeof *s_pids);
    if (!s_pids)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    for (int r = 0; r < reps; r++)
        if (s_round(n) != 0)
            return 1;
    free(s_pids);
    return 0;
}
