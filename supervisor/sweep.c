#include "sweep.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "ptree.h"

/* Wait until pid has exited (its pidfd is readable), at most ms. */
static int s_wait_exit(int pidfd, int ms)
{
    struct pollfd p = {pidfd, POLLIN, 0};
    int rc;
    do
        rc = poll(&p, 1, ms);
    while (rc < 0 && errno == EINTR);
    return rc > 0 ? 0 : -1;
}

int sweep_descendants(pid_t fsrv_pid)
{
    /* Its orphans come to us only once it has fully exited (the channel
     * closes earlier, in its exit): wait for that first. */
    int pidfd = (int) syscall(SYS_pidfd_open, fsrv_pid, 0);
    if (pidfd >= 0) {
        if (s_wait_exit(pidfd, SWEEP_WAIT_MS) != 0) {
            log_error("the fork-server (pid %d) lost its channel but is still alive after %d "
                      "ms: SIGKILL",
                      (int) fsrv_pid, SWEEP_WAIT_MS);
            syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
            s_wait_exit(pidfd, SWEEP_WAIT_MS);
        }
        close(pidfd);
    }
    int64_t deadline = clk_now_ms() + SWEEP_DEADLINE_MS;
    int killed = 0;
    pid_t self = getpid();
    for (;;) {
        pid_t kids[512], live[512];
        int n = ptree_children(self, kids, sizeof kids / sizeof kids[0]);
        if (n > (int) (sizeof kids / sizeof kids[0]))
            n = (int) (sizeof kids / sizeof kids[0]); /* the rest on the next round */
        int nlive = 0, nzombie = 0;
        for (int i = 0; i < n; i++) {
            ptree_stat_t st;
            if (kids[i] == fsrv_pid || ptree_stat(kids[i], &st) != 0)
                continue;
            if (st.state == 'Z')
                nzombie += waitpid(kids[i], NULL, WNOHANG) == kids[i] ? 0 : 1;
            else
                live[nlive++] = kids[i];
        }
        if (nlive == 0 && nzombie == 0)
            break;
        if (clk_now_ms() >= deadline) {
            log_error("sweep: %d processes the fork-server left are still alive after %d ms",
                      nlive + nzombie, SWEEP_DEADLINE_MS);
            break;
        }
        if (nlive > 0)
            killed += ptree_kill_subtrees(self, live, (size_t) nlive, deadline);
        /* The killed become zombies (and their orphans our children) in a
         * moment: look again soon. */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (killed > 0)
        log_warn("sweep: killed %d processes left by the lost fork-server's workers", killed);
    return killed;
}
