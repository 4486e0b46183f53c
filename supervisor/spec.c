#include "spec.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "fsrv.h"
#include "jnul.h"
#include "sig.h"

/* Room left in the fork-server's SPAWN payload for what the supervisor adds
 * to a node's own JSON: broker endpoint, names, tree id, path (up to
 * --max-depth 64 levels of 65 bytes) and the node's expanded name. */
_Static_assert(SPEC_MAX_NODE_BYTES + 8192 <= FSRV_MAX_PAYLOAD,
               "a node's JSON plus the payload fields must fit the fork-server's limit");

#define MS_MAX 86400000.0 /* one day: longer waits are a typo */

static const char *s_run_names[] = {"supervise", "sleep", "fail", "exit",
                                    "crash", "hang", "flood", "exec"};

/* Which behaviour-specific keys each run kind accepts. */
static const char *s_run_keys[][8] = {
    [RUN_SUPERVISE] = {NULL},
    [RUN_SLEEP] = {"ms", NULL},
    [RUN_FAIL] = {"after_ms", "error", NULL},
    [RUN_EXIT] = {"after_ms", "code", NULL},
    [RUN_CRASH] = {"after_ms", "signal", NULL},
    [RUN_HANG] = {"in", NULL},
    [RUN_FLOOD] = {"bytes", "error", "after_ms", NULL},
    [RUN_EXEC] = {"argv", "env", "env_inherit", "cwd", "user", "group", NULL},
};

static const char *s_common_keys[] = {"name", "run", "children", "count", "strategy",
                                      "grace_ms", "kill_after_ms", "max_restarts",
                                      "within_ms", "rlimits", "on", "restart", NULL};

/* Resource limits a node's process gets (setrlimit, soft = hard). */
const char *const spec_rlimit_names[] = {"as", "core", "cpu", "data", "fsize", "memlock",
                                         "nofile", "nproc", "stack", NULL};

run_kind_t spec_run_kind(const char *name, bool *ok)
{
    for (int i = 0; i <= RUN_EXEC; i++)
        if (name && strcmp(name, s_run_names[i]) == 0) {
            *ok = true;
            return (run_kind_t) i;
        }
    *ok = false;
    return RUN_SUPERVISE;
}

static int s_fail(spec_err_t *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(spec_err_t *err, const char *path, const char *fmt, ...)
{
    if (err) {
        snprintf(err->path, sizeof err->path, "%s", path);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool s_in(const char *key, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

/* An optional integer key in [min, max]; *out keeps its default if absent. */
static int s_int(const cJSON *node, const char *key, double min, double max, int64_t *out,
                 const char *path, spec_err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(node, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max)
        return s_fail(err, path, "%s: must be an integer from %.0f to %.0f", key, min, max);
    *out = (int64_t) v->valuedouble;
    return 0;
}

bool spec_signal_ends_process(int signo)
{
    /* Default action stop, continue or ignore (signal(7)); 0 sends nothing. */
    static const int harmless[] = {0,       SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU,
                                   SIGCONT, SIGCHLD, SIGURG,  SIGWINCH};
    for (size_t i = 0; i < sizeof harmless / sizeof harmless[0]; i++)
        if (signo == harmless[i])
            return false;
    return signo > 0 && signo < NSIG;
}

/* "user"/"group": a name ([A-Za-z0-9_.-], not starting with '-', as
 * useradd takes) or a numeric id. Whether it exists is known only when the
 * node starts (creds.c resolves it then): the node is spawn_failed if not. */
static bool s_id_valid(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return v->valuedouble >= 0 && v->valuedouble < 4294967295.0 &&
               v->valuedouble == floor(v->valuedouble);
    if (!cJSON_IsString(v) || v->valuestring[0] == '-')
        return false;
    return env_name_valid(v->valuestring, 32);
}

/* The exec options: cwd, env_inherit, user, group. */
static int s_check_exec_options(const cJSON *node, const spec_limits_t *limits, const char *path,
                                spec_err_t *err)
{
    const cJSON *cwd = cJSON_GetObjectItemCaseSensitive(node, "cwd");
    if (cwd && !(cJSON_IsString(cwd) && cwd->valuestring[0] == '/' &&
                 strlen(cwd->valuestring) < 4096))
        return s_fail(err, path, "cwd: must be an absolute path (a string starting with '/')");
    const cJSON *inherit = cJSON_GetObjectItemCaseSensitive(node, "env_inherit");
    if (inherit && !cJSON_IsBool(inherit))
        return s_fail(err, path, "env_inherit: must be true or false");
    static const char *ids[] = {"user", "group"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(node, ids[i]);
        if (!v)
            continue;
        if (!s_id_valid(v))
            return s_fail(err, path, "%s: must be a name ([A-Za-z0-9_.-]{1,32}) or a numeric id",
                          ids[i]);
        if (!limits->may_switch_user)
            return s_fail(err, path,
                          "%s: this supervisor does not run as root, so it cannot start "
                          "a worker as another %s", ids[i], ids[i]);
    }
    return 0;
}

/* A node's own JSON, as the fork-server will get it: compact, without
 * "children" (nor "count" and "timeout_ms", which the supervisor drops). */
static int s_check_size(const cJSON *node, const char *path, spec_err_t *err)
{
    cJSON *own = cJSON_CreateObject();
    const cJSON *item;
    cJSON_ArrayForEach(item, node)
    {
        if (strcmp(item->string, "children") && strcmp(item->string, "count") &&
            strcmp(item->string, "timeout_ms"))
            cJSON_AddItemReferenceToObject(own, item->string, (cJSON *) item);
    }
    char *text = own ? cJSON_PrintUnformatted(own) : NULL;
    size_t len = text ? strlen(text) : 0;
    cJSON_free(text);
    cJSON_Delete(own);
    if (!text)
        return s_fail(err, path, "out of memory");
    if (len > SPEC_MAX_NODE_BYTES)
        return s_fail(err, path,
                      "this node's parameters take %zu bytes of JSON: over the limit of %d "
                      "per node (children not counted)", len, SPEC_MAX_NODE_BYTES);
    return 0;
}

static int s_check_behaviour(const cJSON *node, run_kind_t run, const spec_limits_t *limits,
                             const char *path, spec_err_t *err)
{
    int64_t scratch = 0;
    if (s_int(node, "ms", 0, MS_MAX, &scratch, path, err) ||
        s_int(node, "after_ms", 0, MS_MAX, &scratch, path, err) ||
        s_int(node, "code", 0, 255, &scratch, path, err) ||
        s_int(node, "bytes", 0, 1 << 30, &scratch, path, err))
        return -1;
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(node, "error");
    if (error && !(cJSON_IsObject(error) && cJSON_IsString(cJSON_GetObjectItem(error, "type")) &&
                   cJSON_IsString(cJSON_GetObjectItem(error, "message"))))
        return s_fail(err, path, "error: must be an object with string \"type\" and \"message\"");
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(node, "signal");
    if (sig) {
        char num[16];
        const char *name = cJSON_IsString(sig) ? sig->valuestring : NULL;
        if (cJSON_IsNumber(sig)) {
            /* Range first: casting 1e30 to int is undefined (found by fuzz_spec). */
            double d = sig->valuedouble;
            snprintf(num, sizeof num, "%d", d >= 1 && d <= 1024 && d == floor(d) ? (int) d : -1);
            name = num;
        }
        int signo = sig_parse(name);
        if (signo < 0)
            return s_fail(err, path, "signal: unknown signal (use a name like \"SIGSEGV\")");
        if (!spec_signal_ends_process(signo))
            return s_fail(err, path,
                          "signal: %s does not end a process (it stops, continues or is "
                          "ignored): use one that does, like SIGSEGV or SIGKILL",
                          sig_name(signo));
    }
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(node, "rlimits");
    if (rl && !cJSON_IsObject(rl))
        return s_fail(err, path, "rlimits: must be an object like {\"nofile\": 64}");
    const cJSON *r;
    cJSON_ArrayForEach(r, rl)
    {
        if (!s_in(r->string, spec_rlimit_names))
            return s_fail(err, path,
                          "rlimits: unknown limit \"%s\" (use as, core, cpu, data, fsize, "
                          "memlock, nofile, nproc, stack)", r->string);
        if (!cJSON_IsNumber(r) || r->valuedouble < 0 || r->valuedouble != floor(r->valuedouble) ||
            r->valuedouble > 9007199254740992.0)
            return s_fail(err, path, "rlimits: %s must be a non-negative integer", r->string);
    }
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(node, "in");
    if (in && !(cJSON_IsString(in) &&
                (!strcmp(in->valuestring, "running") || !strcmp(in->valuestring, "cleanup"))))
        return s_fail(err, path, "in: must be \"running\" or \"cleanup\"");
    if (run == RUN_EXEC) {
        const cJSON *argv = cJSON_GetObjectItemCaseSensitive(node, "argv");
        if (!cJSON_IsArray(argv) || cJSON_GetArraySize(argv) == 0)
            return s_fail(err, path, "argv: exec needs a non-empty array of strings");
        const cJSON *a;
        cJSON_ArrayForEach(a, argv) if (!cJSON_IsString(a) || !*a->valuestring) return s_fail(
            err, path, "argv: every element must be a non-empty string");
        const cJSON *env = cJSON_GetObjectItemCaseSensitive(node, "env");
        if (env && !cJSON_IsObject(env))
            return s_fail(err, path, "env: must be an object of strings");
        const cJSON *e;
        cJSON_ArrayForEach(e, env) if (!cJSON_IsString(e) || !*e->string ||
                                       strchr(e->string, '=')) return s_fail(
            err, path, "env: \"%s\" must be a string value under a name without '='", e->string);
        if (s_check_exec_options(node, limits, path, err))
            return -1;
    }
    return 0;
}

typedef struct {
    const spec_limits_t *limits;
    spec_err_t *err;
    int nodes;
} s_walk_t;

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sibling names, after "count" expansion, must be unique. */
static int s_check_unique(s_walk_t *w, const cJSON *children, const char *path)
{
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    int rc = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, children)
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const cJSON *count = cJSON_GetObjectItem(c, "count");
        int copies = count ? (int) count->valuedouble : 1;
        for (int k = 0; k < copies && names; k++) {
            if (n == cap) {
                char **grown = realloc(names, (cap *= 2) * sizeof *names);
                if (!grown)
                    break;
                names = grown;
            }
            char buf[TREE_NAME_MAX + 16];
            if (count)
                snprintf(buf, sizeof buf, "%s-%d", name, k);
            else
                snprintf(buf, sizeof buf, "%s", name);
            names[n++] = strdup(buf);
        }
    }
    if (!names)
        return s_fail(w->err, path, "out of memory");
    qsort(names, n, sizeof *names, s_cmp_str);
    for (size_t i = 1; i < n && rc == 0; i++)
        if (names[i] && names[i - 1] && strcmp(names[i], names[i - 1]) == 0)
            rc = s_fail(w->err, path, "children: name \"%s\" is used by two siblings", names[i]);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int s_check_node(s_walk_t *w, const cJSON *node, const char *path, int depth, bool root);

static int s_check_children(s_walk_t *w, const cJSON *node, const char *path, int depth)
{
    const cJSON *children = cJSON_GetObjectItemCaseSensitive(node, "children");
    if (!children)
        return 0;
    if (!cJSON_IsArray(children))
        return s_fail(w->err, path, "children: must be an array of nodes");
    /* Sibling names after "count" expansion must be unique. */
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, children)
    {
        char cpath[256];
        const cJSON *name = cJSON_IsObject(c) ? cJSON_GetObjectItem(c, "name") : NULL;
        if (cJSON_IsString(name) && env_name_valid(name->valuestring, TREE_NAME_MAX))
            snprintf(cpath, sizeof cpath, "%s/%s", path, name->valuestring);
        else
            snprintf(cpath, sizeof cpath, "%s/children[%d]", path, i);
        if (s_check_node(w, c, cpath, depth + 1, false))
            return -1;
        i++;
    }
    return s_check_unique(w, children, path);
}

static int s_check_node(s_walk_t *w, const cJSON *node, const char *path, int depth, bool root)
{
    spec_err_t *err = w->err;
    if (!cJSON_IsObject(node))
        return s_fail(err, path, "a node must be a JSON object");
    if (depth > w->limits->max_depth)
        return s_fail(err, path, "tree is deeper than the limit of %d levels", w->limits->max_depth);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(node, "name");
    if (!cJSON_IsString(name))
        return s_fail(err, path, "name: required, a string");
    if (!env_name_valid(name->valuestring, TREE_NAME_MAX))
        return s_fail(err, path, "name: \"%.80s\" must match [A-Za-z0-9_.-]{1,%d}",
                      name->valuestring, TREE_NAME_MAX);
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(node, "run");
    bool ok = true;
    run_kind_t kind = RUN_SUPERVISE;
    if (run) {
        kind = spec_run_kind(cJSON_IsString(run) ? run->valuestring : NULL, &ok);
        if (!ok)
            return s_fail(err, path,
                          "run: unknown behaviour (use supervise, sleep, fail, exit, crash, "
                          "hang, flood or exec)");
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, node)
    {
        const char *key = item->string;
        for (const cJSON *other = item->next; other; other = other->next)
            if (strcmp(other->string, key) == 0)
                return s_fail(err, path, "%s: the key appears twice", key);
        if (s_in(key, s_common_keys) || s_in(key, s_run_keys[kind]))
            continue;
        if (root && strcmp(key, "timeout_ms") == 0)
            continue;
        if (strcmp(key, "timeout_ms") == 0)
            return s_fail(err, path, "timeout_ms: only the root node may have a tree timeout");
        return s_fail(err, path, "%s: unknown key for a node that runs \"%s\"", key,
                      s_run_names[kind]);
    }
    int64_t count = 0, scratch = 0;
    if (s_int(node, "count", 1, 1 << 30, &count, path, err))
        return -1;
    if (count > w->limits->max_nodes)
        return s_fail(err, path, "count: %lld is over the limit of %d nodes per tree",
                      (long long) count, w->limits->max_nodes);
    if (
        s_int(node, "grace_ms", 0, MS_MAX, &scratch, path, err) ||
        s_int(node, "kill_after_ms", 0, MS_MAX, &scratch, path, err) ||
        s_int(node, "max_restarts", 0, 1000, &scratch, path, err) ||
        s_int(node, "within_ms", 1, MS_MAX, &scratch, path, err) ||
        s_int(node, "timeout_ms", 1, MS_MAX, &scratch, path, err))
        return -1;
    if (root && count)
        return s_fail(err, path, "count: the root node cannot be replicated");
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(node, "on");
    if (on && root)
        return s_fail(err, path, "on: spawn the tree on that supervisor instead (--supervisor)");
    if (on && !(cJSON_IsString(on) && env_name_valid(on->valuestring, 48) &&
                strcmp(on->valuestring, "broker") != 0))
        return s_fail(err, path, "on: must be a supervisor name, [A-Za-z0-9_.-]{1,48}");
    if (count && strlen(name->valuestring) + 1 + snprintf(NULL, 0, "%lld", (long long) count - 1) >
                     TREE_NAME_MAX)
        return s_fail(err, path, "name: \"%s-%lld\" would be longer than %d characters",
                      name->valuestring, (long long) count - 1, TREE_NAME_MAX);
    const cJSON *strategy = cJSON_GetObjectItemCaseSensitive(node, "strategy");
    if (strategy && !(cJSON_IsString(strategy) && (!strcmp(strategy->valuestring, "one_for_all") ||
                                                   !strcmp(strategy->valuestring, "one_for_one") ||
                                                   !strcmp(strategy->valuestring, "rest_for_one"))))
        return s_fail(err, path, "strategy: must be one_for_all, one_for_one or rest_for_one");
    const cJSON *restart = cJSON_GetObjectItemCaseSensitive(node, "restart");
    if (restart && restart_parse(cJSON_GetStringValue(restart)) < 0)
        return s_fail(err, path, "restart: must be transient, permanent or temporary");
    if (restart && root)
        return s_fail(err, path, "restart: the root has no parent to restart it");
    if (s_check_behaviour(node, kind, w->limits, path, err) || s_check_size(node, path, err))
        return -1;
    /* Settings that cannot work: a strategy needs children to act on (in
     * the spec, or started at run time by a program: a builtin starts
     * none), and a restart window needs restarts to count. */
    const cJSON *kids = cJSON_GetObjectItemCaseSensitive(node, "children");
    bool may_have_children = (cJSON_IsArray(kids) && cJSON_GetArraySize(kids) > 0) ||
                             kind == RUN_EXEC;
    static const char *parent_keys[] = {"strategy", "max_restarts", "within_ms", NULL};
    for (int i = 0; !may_have_children && parent_keys[i]; i++)
        if (cJSON_HasObjectItem(node, parent_keys[i]))
            return s_fail(err, path,
                          "%s: only a node with children, or a program (run \"exec\") that "
                          "may start some, has a strategy", parent_keys[i]);
    const cJSON *mr = cJSON_GetObjectItemCaseSensitive(node, "max_restarts");
    if (cJSON_HasObjectItem(node, "within_ms") && mr && mr->valuedouble == 0)
        return s_fail(err, path, "within_ms: max_restarts is 0, so there is nothing to count");
    /* Count this node's processes: itself and its subtree, times count. */
    int before = w->nodes;
    w->nodes++;
    if (w->nodes > w->limits->max_nodes)
        return s_fail(err, path, "tree has more than the limit of %d nodes", w->limits->max_nodes);
    if (s_check_children(w, node, path, depth))
        return -1;
    if (count > 1) {
        int64_t per = w->nodes - before;
        if (per * count + before > w->limits->max_nodes)
            return s_fail(err, path, "tree has more than the limit of %d nodes",
                          w->limits->max_nodes);
        w->nodes = (int) (before + per * count);
    }
    return 0;
}

static int s_count_children(const cJSON *node)
{
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(node, "children"))
    {
        const cJSON *count = cJSON_GetObjectItem(c, "count");
        n += count ? (int) count->valuedouble : 1;
    }
    return n;
}

tree_t *spec_build(const cJSON *spec, const char *tree_id, uint64_t serial,
                   const char *supervisor, const spec_limits_t *limits, spec_err_t *err)
{
    spec_limits_t defaults = {SPEC_DEFAULT_MAX_DEPTH, SPEC_DEFAULT_MAX_NODES, false};
    s_walk_t w = {limits ? limits : &defaults, err, 0};
    const cJSON *name = cJSON_IsObject(spec) ? cJSON_GetObjectItem(spec, "name") : NULL;
    const char *root_path = cJSON_IsString(name) && env_name_valid(name->valuestring, TREE_NAME_MAX)
                                ? name->valuestring
                                : "(root)";
    if (s_check_node(&w, spec, root_path, 1, true))
        return NULL;
    tree_t *tree = tree_new(tree_id, serial, supervisor, w.nodes);
    if (!tree) {
        s_fail(err, root_path, "out of memory for %d nodes", w.nodes);
        return NULL;
    }
    const cJSON *timeout = cJSON_GetObjectItem(spec, "timeout_ms");
    tree->timeout_ms = timeout ? (int64_t) timeout->valuedouble : 0;

    /* Breadth-first: a node's children get consecutive indices after all
     * nodes of the levels above, so parents are always spawned first. */
    int next = 1;
    tree_node_t *root = &tree->nodes[0];
    snprintf(root->name, sizeof root->name, "%s", name->valuestring);
    root->path = strdup(root->name);
    root->params = cJSON_Duplicate(spec, 1);
    for (int i = 0; i < tree->nnodes; i++) {
        tree_node_t *n = &tree->nodes[i];
        const cJSON *c;
        int slot = 0;
        n->nchildren = s_count_children(n->params);
        n->children = n->nchildren ? calloc((size_t) n->nchildren, sizeof *n->children) : NULL;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(n->params, "children"))
        {
            const cJSON *count = cJSON_GetObjectItem(c, "count");
            int copies = count ? (int) count->valuedouble : 1;
            for (int k = 0; k < copies; k++) {
                tree_node_t *child = &tree->nodes[next++];
                const char *cname = cJSON_GetObjectItem(c, "name")->valuestring;
                if (count)
                    snprintf(child->name, sizeof child->name, "%s-%d", cname, k);
                else
                    snprintf(child->name, sizeof child->name, "%s", cname);
                size_t plen = strlen(n->path) + 1 + strlen(child->name) + 1;
                child->path = malloc(plen);
                if (child->path)
                    snprintf(child->path, plen, "%s/%s", n->path, child->name);
                child->parent = n;
                child->params = cJSON_Duplicate(c, 1);
                child->remote_part = n->remote_part || n->remote_sup[0];
                const char *on = cJSON_GetStringValue(cJSON_GetObjectItem(c, "on"));
                if (on && !child->remote_part) {
                    /* The subtree as the other supervisor will see it: a
                     * tree whose root has no parent there. Its restart
                     * type stays here, where its parent decides. */
                    snprintf(child->remote_sup, sizeof child->remote_sup, "%s", on);
                    child->subtree_spec = cJSON_Duplicate(c, 1);
                    cJSON_DeleteItemFromObject(child->subtree_spec, "on");
                    cJSON_DeleteItemFromObject(child->subtree_spec, "count");
                    cJSON_DeleteItemFromObject(child->subtree_spec, "restart");
                    cJSON_ReplaceItemInObject(child->subtree_spec, "name",
                                              cJSON_CreateString(child->name));
                }
                n->children[slot++] = child;
            }
        }
    }
    /* Settle per-node settings, then drop the children from each node's
     * params: what is left is what its worker needs. */
    for (int i = 0; i < tree->nnodes; i++) {
        tree_node_t *n = &tree->nodes[i];
        int kids = n->nchildren;
        tree_node_t **saved = n->children;
        n->children = NULL;
        const cJSON *spec_node = n->params;
        const char *run = cJSON_GetStringValue(cJSON_GetObjectItem(spec_node, "run"));
        bool ok;
        n->run = run ? spec_run_kind(run, &ok) : RUN_SUPERVISE;
        const char *strat = cJSON_GetStringValue(cJSON_GetObjectItem(spec_node, "strategy"));
        n->strategy = !strat || !strcmp(strat, "one_for_all") ? STRAT_ONE_FOR_ALL
                      : !strcmp(strat, "one_for_one")         ? STRAT_ONE_FOR_ONE
                                                              : STRAT_REST_FOR_ONE;
        const cJSON *g = cJSON_GetObjectItem(spec_node, "grace_ms");
        const cJSON *k = cJSON_GetObjectItem(spec_node, "kill_after_ms");
        n->grace_ms = g ? (int64_t) g->valuedouble : SPEC_DEFAULT_GRACE_MS;
        n->kill_after_ms = k ? (int64_t) k->valuedouble : SPEC_DEFAULT_KILL_AFTER_MS;
        /* Restarting strategies restart by default; one_for_all only when
         * max_restarts says so. */
        const cJSON *mr = cJSON_GetObjectItem(spec_node, "max_restarts");
        const cJSON *wm = cJSON_GetObjectItem(spec_node, "within_ms");
        n->max_restarts = mr ? (int) mr->valuedouble
                          : n->strategy == STRAT_ONE_FOR_ALL ? 0 : SPEC_DEFAULT_MAX_RESTARTS;
        n->within_ms = wm ? (int64_t) wm->valuedouble : SPEC_DEFAULT_WITHIN_MS;
        int restart = restart_parse(cJSON_GetStringValue(cJSON_GetObjectItem(spec_node, "restart")));
        n->restart = restart < 0 ? RESTART_TRANSIENT : (restart_t) restart;
        n->children = saved;
        n->nchildren = kids;
        cJSON_DeleteItemFromObject(n->params, "children");
        cJSON_DeleteItemFromObject(n->params, "count");
        cJSON_DeleteItemFromObject(n->params, "timeout_ms");
        cJSON_ReplaceItemInObject(n->params, "name", cJSON_CreateString(n->name));
    }
    return tree;
}

int spec_refuse_nul(const cJSON *spec, const char *pointer, spec_err_t *err)
{
    /* Walk the pointer down the nodes: "/children/N" steps become the
     * child's name, the rest names the key inside the node. */
    char path[256] = "(root)";
    const cJSON *node = spec;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    if (cJSON_IsString(name) && env_name_valid(name->valuestring, TREE_NAME_MAX))
        snprintf(path, sizeof path, "%s", name->valuestring);
    const char *p = pointer ? pointer : "";
    int index;
    int used;
    while (strncmp(p, "/children/", 10) == 0 && sscanf(p + 10, "%d%n", &index, &used) == 1 &&
           (p[10 + used] == '/' || p[10 + used] == 0)) {
        node = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(node, "children"), index);
        if (!node)
            break;
        name = cJSON_GetObjectItemCaseSensitive(node, "name");
        size_t n = strlen(path);
        if (cJSON_IsString(name) && env_name_valid(name->valuestring, TREE_NAME_MAX))
            snprintf(path + n, sizeof path - n, "/%s", name->valuestring);
        else
            snprintf(path + n, sizeof path - n, "/children[%d]", index);
        p += 10 + used;
    }
    return s_fail(err, path,
                  "%s: a string holds \\u0000 (NUL), which arbor refuses: every arbor process "
                  "would read the string only up to it",
                  *p ? p + 1 : "name");
}

tree_t *spec_build_text(const char *text, size_t len, const char *tree_id, uint64_t serial,
                        const char *supervisor, const spec_limits_t *limits, spec_err_t *err)
{
    const char *end = NULL;
    cJSON *spec = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!spec) {
        s_fail(err, "(spec)", "not valid JSON near byte %ld",
               end ? (long) (end - text) : 0L);
        return NULL;
    }
    char pointer[256];
    if (jnul_find(text, len, pointer, sizeof pointer) >= 0) {
        spec_refuse_nul(spec, pointer, err);
        cJSON_Delete(spec);
        return NULL;
    }
    tree_t *tree = spec_build(spec, tree_id, serial, supervisor, limits, err);
    cJSON_Delete(spec);
    return tree;
}
