/* sweep: the supervisor as the second subreaper (DESIGN.md, rule 6).
 *
 * The fork-server is the subreaper of every worker and of whatever they
 * start; when it is SIGKILLed its workers die with it (PDEATHSIG), but
 * processes they started (setsid'd, double-forked, ignoring SIGTERM) would
 * live on. fsrv_start makes the supervisor a subreaper too, so they are
 * reparented here instead of to init, and sweep_descendants kills and
 * reaps them before a new fork-server is started. */
#ifndef ARBOR_SWEEP_H
#define ARBOR_SWEEP_H

#include <sys/types.h>

#define SWEEP_WAIT_MS 1000     /* for the lost fork-server to be seen dead */
#define SWEEP_DEADLINE_MS 2000 /* freezing, killing and reaping what it left */

/* The fork-server fsrv_pid is lost: wait (bounded) until it has exited,
 * SIGKILL it if it has not (its channel is broken anyway); then freeze and
 * SIGKILL every other descendant of this process at any depth, and reap
 * those that are its children. fsrv_pid itself is left unreaped for its
 * owner's waitpid. Zombies among its children are reaped by pid, never
 * with waitpid(-1), so fsrv_pid's status stays for its owner. Returns how
 * many processes were killed. */
int sweep_descendants(pid_t fsrv_pid);

#endif
