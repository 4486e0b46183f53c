/* ptree: a process's descendants, read from /proc, and killing whole
 * subtrees without letting them fork away. Shared by the fork-server (it
 * adopts the orphans of exec'd programs as a subreaper) and the supervisor
 * (the second subreaper, for when the fork-server dies).
 *
 * Killing a subtree is "freeze, then kill": every process is stopped
 * (SIGSTOP) top-down and its children listed only once it is seen stopped,
 * so that nothing forks between the listing and the SIGKILL. A process is
 * taken as a child of P only if /proc says its parent is P when it is
 * stopped: a pid reused between two reads is never signalled by mistake.
 * Every wait is bounded by a deadline. */
#ifndef ARBOR_PTREE_H
#define ARBOR_PTREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Children of pid (every thread's), into out (up to cap). Returns how many
 * there are (may exceed cap: only cap stored), or -1 with errno. Uses
 * /proc/PID/task/TID/children, or a scan of /proc where the kernel lacks it. */
int ptree_children(pid_t pid, pid_t *out, size_t cap);

/* A process's parent, state letter, process group and session, from
 * /proc/PID/stat. 0, or -1 when it is gone. */
typedef struct {
    pid_t ppid, pgid, sid;
    char state;
} ptree_stat_t;
int ptree_stat(pid_t pid, ptree_stat_t *st);

/* Freeze then SIGKILL each of roots[0..n) (children of parent) and all their
 * descendants. Does not reap. Returns how many processes were killed. */
int ptree_kill_subtrees(pid_t parent, const pid_t *roots, size_t n, int64_t deadline_ms);

/* Values of names[0..n) in the environment pid started with (its
 * /proc/PID/environ), each into values[i] (cap bytes; "" when absent).
 * Returns how many were found, or -1 when it cannot be read. An empty
 * environment is read again for up to 20 ms: during an execve it shows
 * empty for a moment. */
int ptree_getenv(pid_t pid, const char *const *names, char (*values)[128], size_t n);

#endif
