/* ptree and contain, as the fork-server uses them: this test process plays
 * the fork-server (a subreaper), forks "workers" that start processes of
 * their own (setsid'd, orphaned), and checks that what a node left dies
 * with it, counted, and that nothing of a live node is touched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "contain.h"
#include "ptree.h"

/* Fork a worker for node `path` of tree "t", as the fork-server does: it
 * execs a shell with ARBOR_TREE/ARBOR_NODE in its environment, which starts
 * a setsid'd daemon through an intermediate shell that exits (so the
 * daemon is orphaned to us), then lingers or exits. The daemon reports its
 * pid in *daemon. join_fd: the node's cgroup, or -1. */
static pid_t s_worker(const char *path, int join_fd, bool linger, pid_t *daemon)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        if (contain_join(join_fd) != 0)
            _exit(3);
        setpgid(0, 0);
        if (dup2(p[1], 3) != 3)
            _exit(4);
        char node[128];
        snprintf(node, sizeof node, "ARBOR_NODE=%s", path);
        char *env[] = {"ARBOR_TREE=t", node, "PATH=/usr/bin:/bin", NULL};
        char script[300];
        snprintf(script, sizeof script,
                 "sh -c 'setsid sh -c \"echo \\$\\$ >&3; exec sleep 1000\" &'; %s",
                 linger ? "exec 3>&-; exec sleep 1000" : "exit 0");
        execle("/bin/sh", "sh", "-c", script, (char *) NULL, env);
        _exit(5);
    }
    close(p[1]);
    char buf[32] = "";
    assert_true(read(p[0], buf, sizeof buf - 1) > 0);
    *daemon = (pid_t) atoi(buf);
    assert_true(*daemon > 0);
    close(p[0]);
    /* Its intermediate shell exits a moment later: then it is ours. */
    ptree_stat_t st = {0};
    for (int64_t deadline = clk_now_ms() + 30000;
         ptree_stat(*daemon, &st) == 0 && st.ppid != getpid() && clk_now_ms() < deadline;)
        usleep(1000); /* polling /proc: no event tells a reparenting */
    assert_int_equal(st.ppid, getpid());
    return w;
}

/* contain_reaped for one pid: how many its node left. */
static int s_contain_one(contain_t *c, pid_t pid)
{
    int escaped = -1;
    contain_reaped(c, &pid, &escaped, 1);
    return escaped;
}

/* Wait (reaping, bounded) until pid, a child of ours, is gone; its signal. */
static int s_reaped_signal(pid_t pid)
{
    int64_t deadline = clk_now_ms() + 30000; /* a hang guard: loaded CI machines */
    int st;
    while (clk_now_ms() < deadline) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        usleep(1000); /* the orphan reaches us as its intermediate exits */
    }
    return -1;
}

static void s_reap_quiet(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

/* After each test, passed or failed: nothing it started may live on (an
 * assertion leaves its processes; they would skew the next test's counts,
 * and outlive this program). */
static int s_teardown(void **state)
{
    (void) state;
    pid_t kids[256];
    int n = ptree_children(getpid(), kids, 256);
    if (n > 0)
        ptree_kill_subtrees(getpid(), kids, (size_t) (n < 256 ? n : 256), clk_now_ms() + 2000);
    for (int64_t deadline = clk_now_ms() + 5000; clk_now_ms() < deadline;) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r < 0)
            break; /* no child left */
        if (r == 0)
            usleep(1000); /* killed ones exit, their orphans come to us */
    }
    unsetenv("ARBOR_NO_CGROUP");
    return 0;
}

static void test_ptree_freeze_kills_a_whole_subtree(void **state)
{
    (void) state;
    pid_t daemon;
    pid_t w = s_worker("root/a", -1, true, &daemon);
    pid_t kids[8];
    /* The worker is our child; the daemon is ours too (orphaned). */
    int n = ptree_children(getpid(), kids, 8);
    assert_true(n >= 2);
    pid_t roots[] = {w};
    assert_int_equal(ptree_kill_subtrees(getpid(), roots, 1, clk_now_ms() + 2000), 1);
    assert_int_equal(s_reaped_signal(w), SIGKILL);
    /* The daemon is not below the worker any more: not touched. */
    assert_int_equal(kill(daemon, 0), 0);
    roots[0] = daemon;
    assert_int_equal(ptree_kill_subtrees(getpid(), roots, 1, clk_now_ms() + 2000), 1);
    assert_int_equal(s_reaped_signal(daemon), SIGKILL);
}

static void test_ptree_getenv_reads_what_a_process_started_with(void **state)
{
    (void) state;
    pid_t daemon;
    pid_t w = s_worker("root/env", -1, true, &daemon);
    static const char *const names[] = {"ARBOR_TREE", "ARBOR_NODE", "NO_SUCH_VAR"};
    char values[3][128];
    /* Inherited through fork, setsid and exec. */
    assert_int_equal(ptree_getenv(daemon, names, values, 3), 2);
    assert_string_equal(values[0], "t");
    assert_string_equal(values[1], "root/env");
    assert_string_equal(values[2], "");
    ptree_stat_t st;
    assert_int_equal(ptree_stat(daemon, &st), 0);
    assert_int_equal(st.ppid, getpid()); /* orphaned to us, the subreaper */
    assert_int_equal(st.sid, daemon);
    kill(w, SIGKILL);
    kill(daemon, SIGKILL);
    assert_int_equal(s_reaped_signal(w), SIGKILL);
    assert_int_equal(s_reaped_signal(daemon), SIGKILL);
    assert_int_equal(ptree_stat(daemon, &st), -1);
}

/* The subreaper way: a daemon is told apart by the environment it
 * inherited from its node. */
static void test_contain_subreaper_kills_what_an_ended_node_left(void **state)
{
    (void) state;
    setenv("ARBOR_NO_CGROUP", "1", 1);
    contain_t *c = contain_new(getpid());
    assert_non_null(c);
    assert_false(contain_has_cgroup(c));
    pid_t d_live, d_ended;
    pid_t live = s_worker("root/live", -1, true, &d_live);
    pid_t ended = s_worker("root/ended", -1, false, &d_ended);
    assert_int_equal(contain_add(c, live, "t", "root/live", 0), 0);
    assert_int_equal(contain_add(c, ended, "t", "root/ended", 0), 0);
    assert_int_equal(s_reaped_signal(ended), 0);
    assert_int_equal(s_contain_one(c, ended), 1);
    assert_int_equal(s_reaped_signal(d_ended), SIGKILL);
    /* The live node's daemon is untouched. */
    assert_int_equal(kill(d_live, 0), 0);
    /* Stopping kills everything: the live worker and its daemon. */
    assert_int_equal(contain_kill_all(c, clk_now_ms() + 2000), 2);
    assert_int_equal(s_reaped_signal(live), SIGKILL);
    assert_int_equal(s_reaped_signal(d_live), SIGKILL);
    assert_int_equal(s_contain_one(c, live), 0);
    s_reap_quiet();
    contain_destroy(&c);
    assert_null(c);
    unsetenv("ARBOR_NO_CGROUP");
}

/* Nodes that ended together are swept together, each counted apart. */
static void test_contain_subreaper_batch_counts_each_node(void **state)
{
    (void) state;
    setenv("ARBOR_NO_CGROUP", "1", 1);
    contain_t *c = contain_new(getpid());
    pid_t d[3], w[3];
    const char *paths[] = {"root/a", "root/b", "root/c"};
    for (int i = 0; i < 3; i++) {
        w[i] = s_worker(paths[i], -1, false, &d[i]);
        assert_int_equal(contain_add(c, w[i], "t", paths[i], 0), 0);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(s_reaped_signal(w[i]), 0);
    /* b is still "alive" as far as the batch knows: only a and c ended. */
    pid_t batch[] = {w[0], w[2], 12345678 /* no worker */};
    int escaped[3];
    contain_reaped(c, batch, escaped, 3);
    assert_int_equal(escaped[0], 1);
    assert_int_equal(escaped[1], 1);
    assert_int_equal(escaped[2], 0);
    assert_int_equal(s_reaped_signal(d[0]), SIGKILL);
    assert_int_equal(s_reaped_signal(d[2]), SIGKILL);
    assert_int_equal(kill(d[1], 0), 0);
    assert_int_equal(s_contain_one(c, w[1]), 1);
    assert_int_equal(s_reaped_signal(d[1]), SIGKILL);
    contain_destroy(&c);
    unsetenv("ARBOR_NO_CGROUP");
}

/* The cgroup way, where this host allows it: everything the node started
 * is in its cgroup, whatever session or environment it has. */
static void test_contain_cgroup_kills_everything_of_the_node(void **state)
{
    (void) state;
    contain_t *c = contain_new(getpid());
    assert_non_null(c);
    if (!contain_has_cgroup(c)) {
        contain_destroy(&c);
        skip(); /* unprivileged or in a container: the subreaper test covers it */
    }
    int join_live, join_ended;
    uint32_t slot_live, slot_ended;
    assert_int_equal(contain_prepare(c, &join_live, &slot_live), 0);
    assert_int_equal(contain_prepare(c, &join_ended, &slot_ended), 0);
    pid_t d_live, d_ended;
    pid_t live = s_worker("root/live", join_live, true, &d_live);
    pid_t ended = s_worker("root/ended", join_ended, false, &d_ended);
    close(join_live);
    close(join_ended);
    assert_int_equal(contain_add(c, live, "t", "root/live", slot_live), 0);
    assert_int_equal(contain_add(c, ended, "t", "root/ended", slot_ended), 0);
    assert_int_equal(s_reaped_signal(ended), 0);
    assert_int_equal(s_contain_one(c, ended), 1);
    assert_int_equal(s_reaped_signal(d_ended), SIGKILL);
    assert_int_equal(kill(d_live, 0), 0);
    kill(live, SIGKILL);
    assert_int_equal(s_reaped_signal(live), SIGKILL);
    assert_int_equal(s_contain_one(c, live), 1);
    assert_int_equal(s_reaped_signal(d_live), SIGKILL);
    for (int64_t deadline = clk_now_ms() + 2000; contain_tick(c) && clk_now_ms() < deadline;)
        usleep(1000); /* cgroups of dead processes are removable a moment later */
    assert_false(contain_tick(c));
    contain_destroy(&c);
}

int main(void)
{
    /* This process plays the fork-server: orphans must come back to it. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ptree_freeze_kills_a_whole_subtree, s_teardown),
        cmocka_unit_test_teardown(test_ptree_getenv_reads_what_a_process_started_with, s_teardown),
        cmocka_unit_test_teardown(test_contain_subreaper_kills_what_an_ended_node_left, s_teardown),
        cmocka_unit_test_teardown(test_contain_subreaper_batch_counts_each_node, s_teardown),
        cmocka_unit_test_teardown(test_contain_cgroup_kills_everything_of_the_node, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
