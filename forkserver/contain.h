/* contain: whatever a node started ends with the node (DESIGN.md,
 * "Containment"), even processes that called setsid, double-forked or
 * ignore SIGTERM. In the fork-server, which is their subreaper.
 *
 * Two ways, the best the kernel allows:
 * - cgroup: a cgroup v2 per exec'd node, under one of this fork-server's
 *   own (arbor-fsrv-SUPERVISOR-FSRV, next to the fork-server in its
 *   cgroup). The child is born in it (clone3 CLONE_INTO_CGROUP: no
 *   migration, which would take the cgroup-wide lock every fork waits on),
 *   or joins it before it execs where clone3 cannot; when the node's process
 *   ends, one write to its cgroup.kill ends everything left in it at once.
 *   Needs cgroup2 mounted, cgroup.kill (Linux 5.14) and the right to
 *   create cgroups there (root, or a delegated subtree).
 * - subreaper: otherwise. The node's descendants are orphaned to the
 *   fork-server when its process ends; they are told apart by the
 *   ARBOR_TREE/ARBOR_NODE they inherited, or their node's process group
 *   or session, frozen and killed with their whole subtree (ptree.h).
 *   A process that both leaves its session and clears its environment
 *   cannot be told apart: it is killed when the fork-server stops.
 * Builtins start no processes: they are only counted as workers.
 * ARBOR_NO_CGROUP=1 in the environment forces the subreaper way. */
#ifndef ARBOR_CONTAIN_H
#define ARBOR_CONTAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct contain_t contain_t;

/* Probes the cgroup way (and clears what dead fork-servers of the same
 * supervisor left); never fails for want of it. NULL only without memory. */
contain_t *contain_new(pid_t supervisor);
/* Removes its cgroups (contain_kill_all first, or they stay busy). */
void contain_destroy(contain_t **self);

/* Whether nodes get a cgroup each. */
bool contain_has_cgroup(const contain_t *self);

/* Before forking an exec'd node: its cgroup, and *cgroup_fd, an fd
 * (CLOEXEC) of its directory, for clone3's CLONE_INTO_CGROUP or for
 * contain_join (-1 without the cgroup way). *slot names the cgroup for
 * contain_add/contain_abort. 0, or -1 with errno. */
int contain_prepare(contain_t *self, int *cgroup_fd, uint32_t *slot);
/* In a child that was not born in its cgroup, before exec: join it (write
 * to its cgroup.procs). 0, or -1 with errno. */
int contain_join(int cgroup_fd);
/* The fork failed: drop the prepared cgroup. */
void contain_abort(contain_t *self, uint32_t slot);

/* A worker was forked (builtin: tree and path NULL, slot 0). At once, not
 * when its exec succeeds: until then a sweep must know it for a worker. */
int contain_add(contain_t *self, pid_t pid, const char *tree, const char *path, uint32_t slot);
/* Its exec failed: it is no worker (its cgroup is dropped too); reaped, it
 * is an orphan of nobody. */
void contain_drop(contain_t *self, pid_t pid);

/* Workers were reaped (pids[0..n)): kill every process their nodes left
 * behind. escaped[i]: how many had to be killed for pids[i] (0 for a
 * builtin, or a pid that is no worker). One call per batch of reaped
 * workers: the subreaper way reads /proc once for all of them. */
void contain_reaped(contain_t *self, const pid_t *pids, int *escaped, size_t n);

/* Stopping: freeze and kill every descendant of the fork-server, at any
 * depth, and everything in its cgroups. Returns how many were killed. */
int contain_kill_all(contain_t *self, int64_t deadline_ms);

/* Remove cgroups whose processes are now all gone. True while some are
 * still busy (call again a little later). */
bool contain_tick(contain_t *self);

#endif
