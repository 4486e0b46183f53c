/* arbor-example-worker: a C worker for "exec" nodes, reporting over its
 * notify fd with libarbor_worker (docs/WRITING-WORKERS.md).
 * Usage: arbor-example-worker [MS [fail]]
 * Works MS milliseconds (default: until cancelled), then exits 0, or with
 * "fail" reports an error ExampleFailure and exits 2. A cancel (the
 * supervisor's message, or SIGTERM) leads to a graceful cleanup. Outside
 * arbor every report is a no-op: the program runs the same.
 *
 * Build against an installed libarbor_worker:
 *     cc -o example_worker example_worker.c $(pkg-config --cflags --libs arbor-worker) */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arbor_worker.h>

static volatile sig_atomic_t s_term;
static void s_on_term(int sig) { (void) sig; s_term = 1; }

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: arbor-example-worker [MS [fail]]\n"
               "Run as an arbor exec node: reports ready, running, then works MS ms\n"
               "(default: until cancelled), reports cleanup and exiting. With \"fail\",\n"
               "reports an error ExampleFailure and exits 2.\n");
        return 0;
    }
    struct sigaction sa = {.sa_handler = s_on_term};
    sigaction(SIGTERM, &sa, NULL);
    arbor_worker_t *w = arbor_worker_from_env(); /* NULL outside arbor: calls do nothing */
    long ms = argc > 1 ? atol(argv[1]) : -1;
    bool fail = argc > 2 && strcmp(argv[2], "fail") == 0;
    arbor_worker_phase(w, "ready");
    arbor_worker_phase(w, "running");
    long waited = 0;
    bool cancelled = false;
    while (!s_term && !cancelled && (ms < 0 || waited < ms)) {
        /* One "unit of work" (here: 20 ms of waiting), then look for news.
         * A program with its own poll loop adds arbor_worker_fd(w) to it. */
        cancelled = arbor_worker_poll(w, 20) == ARBOR_EV_CANCEL;
        waited += 20;
    }
    if (s_term || cancelled)
        arbor_worker_phase(w, "cancel_requested");
    arbor_worker_phase(w, "cleanup");
    bool failing = fail && !s_term && !cancelled;
    if (failing) {
        fprintf(stderr, "example worker: giving up as asked\n");
        arbor_worker_error(w, "ExampleFailure", "the example worker was asked to fail",
                           "example_worker.c: main: argv[2] == \"fail\"");
    }
    arbor_worker_phase(w, "exiting");
    arbor_worker_close(&w);
    return failing ? 2 : 0;
}
