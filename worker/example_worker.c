/* arbor-example-worker: a user program for "exec" nodes that reports its
 * phases with libarbor_worker. Usage: arbor-example-worker [MS [fail]]
 * Works MS milliseconds (default: until cancelled), then exits 0, or with
 * "fail" reports an error and exits 2. SIGTERM (arbor's cancel for exec
 * nodes) leads to a graceful cleanup. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbor_worker.h"

static volatile sig_atomic_t s_term;
static void s_on_term(int sig) { (void) sig; s_term = 1; }

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: arbor-example-worker [MS [fail]]\n"
               "Run as an arbor exec node: reports ready, running, then works MS ms\n"
               "(default: until SIGTERM), reports cleanup and exiting. With \"fail\",\n"
               "reports an error ExampleFailure and exits 2.\n");
        return 0;
    }
    struct sigaction sa = {.sa_handler = s_on_term};
    sigaction(SIGTERM, &sa, NULL);
    arbor_worker_t *w = arbor_worker_from_env();
    if (!w)
        return 3;
    long ms = argc > 1 ? atol(argv[1]) : -1;
    bool fail = argc > 2 && strcmp(argv[2], "fail") == 0;
    arbor_worker_phase(w, "ready");
    arbor_worker_phase(w, "running");
    long waited = 0;
    while (!s_term && (ms < 0 || waited < ms)) {
        if (arbor_worker_poll(w, 20) == ARBOR_EV_CANCEL)
            break;
        waited += 20;
    }
    if (s_term)
        arbor_worker_phase(w, "cancel_requested");
    arbor_worker_phase(w, "cleanup");
    if (fail && !s_term) {
        fprintf(stderr, "example worker: giving up as asked\n");
        arbor_worker_error(w, "ExampleFailure", "the example worker was asked to fail");
    }
    arbor_worker_phase(w, "exiting");
    arbor_worker_close(&w);
    return fail && !s_term ? 2 : 0;
}
