/* strategy: what a parent does when one of its children ends, as in OTP.
 *
 * Strategies (the parent's): one_for_all, one_for_one, rest_for_one.
 * Restart types (the child's): transient (default: restarted when it
 * failed), permanent (restarted whenever it ends), temporary (never
 * restarted; its failure stops nobody, the parent fails at the end).
 * Restarts happen only where the parent allows them (max_restarts > 0);
 * more than max_restarts within within_ms and the parent fails instead.
 *
 * Pure: no tree, no clock (time is passed in). Unit-tested rule by rule in
 * tests/unit/test_strategy.c. */
#ifndef ARBOR_STRATEGY_H
#define ARBOR_STRATEGY_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { STRAT_ONE_FOR_ALL, STRAT_ONE_FOR_ONE, STRAT_REST_FOR_ONE } strategy_t;
typedef enum { RESTART_TRANSIENT, RESTART_PERMANENT, RESTART_TEMPORARY } restart_t;

/* When a parent's last restarts happened: at most max_restarts kept. */
typedef struct {
    int64_t *at;
    int n;
} strat_window_t;

typedef struct {
    strategy_t strategy;
    int max_restarts;    /* 0: this parent restarts nothing */
    int64_t within_ms;
    int nchildren;
    bool stopping;       /* the parent is being stopped: it restarts nothing */
} strat_parent_t;

typedef enum {
    STRAT_NOTHING,       /* the siblings run on */
    STRAT_RESTART,       /* restart children first..last (once their subtrees ended) */
    STRAT_FAIL_PARENT    /* the parent fails, which stops its other children */
} strat_verdict_t;

typedef struct {
    strat_verdict_t verdict;
    int first, last;     /* STRAT_RESTART: the children to restart, by index */
    bool limit_hit;      /* STRAT_FAIL_PARENT because restarts ran out */
} strat_decision_t;

/* Child `child` of p ended, `failed` or not, at now_ms. A restart is
 * recorded in w when it is decided. */
strat_decision_t strategy_on_child_end(const strat_parent_t *p, strat_window_t *w, int child,
                                       restart_t restart, bool failed, int64_t now_ms);

/* A child reported an error while it still runs: does its parent fail at
 * once (stopping its siblings now, not at the child's exit)? */
bool strategy_fails_parent_early(const strat_parent_t *p, restart_t restart);

/* Restart intensity: true (and recorded) when one more restart at now_ms
 * stays within max_restarts per within_ms. */
bool strategy_window_allow(strat_window_t *w, int max_restarts, int64_t within_ms, int64_t now_ms);
void strategy_window_clear(strat_window_t *w);

const char *strategy_name(strategy_t s);
const char *restart_name(restart_t r);
/* -1 when name is not a restart type. */
int restart_parse(const char *name);

#endif
