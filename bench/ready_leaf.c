/* ready_leaf: the exec'd C worker of bench/run.sh's "cleaves" part
 * (docs/BENCHMARKS.md). Linked with the shared libarbor_worker, as a user's
 * program built with `pkg-config --libs arbor-worker` is. Reports ready and
 * running over its notify fd, then waits for cancel (or for its supervisor
 * to go away) and reports its way out. Run by floor_fork too, which hands it
 * a notify socket of its own and counts the same "ready" datagrams. */
#include "arbor_worker.h"

int main(void)
{
    arbor_worker_t *w = arbor_worker_from_env();
    if (!w)
        return 2;
    arbor_worker_phase(w, "ready");
    arbor_worker_phase(w, "running");
    int ev;
    while ((ev = arbor_worker_poll(w, -1)) != ARBOR_EV_CANCEL && ev != ARBOR_EV_GONE &&
           ev != ARBOR_EV_ERROR)
        ;
    arbor_worker_phase(w, "cancel_requested");
    arbor_worker_phase(w, "cleanup");
    arbor_worker_phase(w, "exiting");
    arbor_worker_close(&w);
    return 0;
}
