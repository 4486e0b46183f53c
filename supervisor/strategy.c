#include "strategy.h"

#include <stdlib.h>
#include <string.h>

static const char *s_strategies[] = {"one_for_all", "one_for_one", "rest_for_one"};
static const char *s_restarts[] = {"transient", "permanent", "temporary"};

const char *strategy_name(strategy_t s) { return s_strategies[s]; }
const char *restart_name(restart_t r) { return s_restarts[r]; }

int restart_parse(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, s_restarts[i]))
            return i;
    return -1;
}

bool strategy_window_allow(strat_window_t *w, int max_restarts, int64_t within_ms, int64_t now_ms)
{
    if (max_restarts <= 0)
        return false;
    int recent = 0;
    for (int i = 0; i < w->n; i++)
        recent += w->at[i] > now_ms - within_ms;
    if (recent >= max_restarts)
        return false;
    if (!w->at && !(w->at = calloc((size_t) max_restarts, sizeof *w->at)))
        return false; /* out of memory: no restart, the parent fails (visible) */
    /* Only the last max_restarts times can count: a ring, oldest first. */
    if (w->n < max_restarts) {
        w->at[w->n++] = now_ms;
    } else {
        memmove(w->at, w->at + 1, (size_t) (max_restarts - 1) * sizeof *w->at);
        w->at[max_restarts - 1] = now_ms;
    }
    return true;
}

void strategy_window_clear(strat_window_t *w)
{
    free(w->at);
    w->at = NULL;
    w->n = 0;
}

static bool s_wants_restart(restart_t r, bool failed)
{
    return r == RESTART_PERMANENT || (r == RESTART_TRANSIENT && failed);
}

strat_decision_t strategy_on_child_end(const strat_parent_t *p, strat_window_t *w, int child,
                                       restart_t restart, bool failed, int64_t now_ms)
{
    strat_decision_t d = {STRAT_NOTHING, 0, 0, false};
    if (p->stopping || restart == RESTART_TEMPORARY)
        return d; /* a stopping parent restarts nothing; a temporary child stops nobody */
    if (p->max_restarts > 0 && s_wants_restart(restart, failed)) {
        if (!strategy_window_allow(w, p->max_restarts, p->within_ms, now_ms)) {
            d.verdict = STRAT_FAIL_PARENT;
            d.limit_hit = true;
            return d;
        }
        d.verdict = STRAT_RESTART;
        d.first = p->strategy == STRAT_ONE_FOR_ALL ? 0 : child;
        d.last = p->strategy == STRAT_ONE_FOR_ONE ? child : p->nchildren - 1;
        return d;
    }
    if (failed)
        d.verdict = STRAT_FAIL_PARENT;
    return d;
}

bool strategy_fails_parent_early(const strat_parent_t *p, restart_t restart)
{
    /* Where a restart may follow, it is decided at the child's exit. */
    return !p->stopping && restart != RESTART_TEMPORARY && p->max_restarts == 0;
}
