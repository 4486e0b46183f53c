/* spawn_many: the worker of bench/run.sh's nursery part (docs/BENCHMARKS.md).
 * Usage: spawn_many N [count]
 * Reports ready and running, then starts N "sleep" children under itself
 * through libarbor_worker: one arbor_worker_spawn per child, each waiting for
 * its answer (default); or all in one request ("count": N); then runs until
 * cancelled, reading its children's ends. N = 0: starts nothing (the root of
 * the static spec the dynamic spawn is compared with). Prints to stderr how
 * long the requests took. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arbor_worker.h"

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: spawn_many N [count]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    bool one = argc > 2 && !strcmp(argv[2], "count");
    arbor_worker_t *w = arbor_worker_from_env();
    if (!w) {
        fprintf(stderr, "spawn_many: not running under arbor\n");
        return 2;
    }
    arbor_worker_phase(w, "ready");
    arbor_worker_phase(w, "running");
    char node[128], path[ARBOR_WORKER_PATH_MAX];
    double t0 = s_now_ms();
    for (int i = 0; i < (one ? (n > 0) : n); i++) {
        if (one)
            snprintf(node, sizeof node, "{\"name\":\"c\",\"count\":%d,\"run\":\"sleep\"}", n);
        else
            snprintf(node, sizeof node, "{\"name\":\"c-%d\",\"run\":\"sleep\"}", i);
        if (arbor_worker_spawn(w, node, path, sizeof path, -1) != 0) {
            fprintf(stderr, "spawn_many: child %d: %s (%s)\n", i, path, strerror(errno));
            arbor_worker_error(w, "SpawnFailed", path, NULL);
            arbor_worker_close(&w);
            return 1;
        }
    }
    fprintf(stderr, "spawn_many: %d children requested in %.1f ms\n", n, s_now_ms() - t0);
    int ev;
    arbor_child_exit_t end;
    while ((ev = arbor_worker_poll(w, -1)) != ARBOR_EV_CANCEL && ev != ARBOR_EV_GONE &&
           ev != ARBOR_EV_ERROR)
        while (arbor_worker_child_exited(w, &end, 0) == 1)
            ;
    arbor_worker_phase(w, "cancel_requested");
    arbor_worker_phase(w, "cleanup");
    arbor_worker_phase(w, "exiting");
    arbor_worker_close(&w);
    return 0;
}
