/* fuzz_spec: the tree spec parser and validator (supervisor/spec.c), which
 * every spawn request reaches before anything is forked.
 *
 * Each input is the text of a spec. It is parsed with small limits (depth 6,
 * 300 nodes) from a copy that ends at an unreadable page, so that reading
 * past the text (ours or cJSON's, which is not instrumented) is a crash.
 * A refused spec must say where and why; an accepted one must be a
 * consistent tree within the limits (every node reachable once from the
 * root, breadth-first, unique valid sibling names, paths that match), and
 * its report (report_text) must be valid JSON and hold every node. And
 * every text that is a JSON object is also read as the fork-server reads a
 * spawn payload (forkserver/payload.h, with jscan): it must read what cJSON
 * reads, member by member, two levels deep.
 *
 * Run with tests/fuzz/run.sh; corpus in tests/fuzz/corpus/spec. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "env.h"
#include "report.h"
#include "payload.h"
#include "spec.h"
#include "tree.h"

#define S_ARENA (1u << 20)
#define S_MAX_DEPTH 6
#define S_MAX_NODES 300

static char *s_arena; /* S_ARENA bytes, then a PROT_NONE page */

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_spec: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void s_setup(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, S_ARENA + (size_t) page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(map + S_ARENA, (size_t) page, PROT_NONE) != 0)
        s_die("cannot map the guarded arena", NULL);
    s_arena = map;
}

static int s_depth(const tree_node_t *n)
{
    int d = 1;
    for (; n->parent; n = n->parent)
        d++;
    return d;
}

static int s_count_report(const cJSON *node)
{
    int n = 1;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(node, "children"))
        n += s_count_report(c);
    return n;
}

static void s_check_tree(const tree_t *t)
{
    if (t->nnodes < 1 || t->nnodes > S_MAX_NODES)
        s_die("accepted a tree over the node limit", NULL);
    int reached = 1; /* the root */
    for (int i = 0; i < t->nnodes; i++) {
        const tree_node_t *n = &t->nodes[i];
        if (n->idx != i || !n->path || !n->params)
            s_die("a node was left unset", n->path);
        if (!env_name_valid(n->name, TREE_NAME_MAX))
            s_die("accepted an invalid node name", n->name);
        if (s_depth(n) > S_MAX_DEPTH)
            s_die("accepted a tree over the depth limit", n->path);
        if ((i == 0) != (n->parent == NULL))
            s_die("a node other than the root has no parent", n->path);
        if (n->parent) {
            char want[512];
            snprintf(want, sizeof want, "%s/%s", n->parent->path, n->name);
            if (strcmp(want, n->path) != 0)
                s_die("a path is not parent/name", n->path);
            if (n->parent->idx >= i)
                s_die("a parent comes after its child (not breadth-first)", n->path);
        }
        for (int k = 0; k < n->nchildren; k++) {
            const tree_node_t *c = n->children[k];
            if (!c || c < t->nodes || c >= t->nodes + t->nnodes || c->parent != n)
                s_die("a child pointer is wrong", n->path);
            for (int j = 0; j < k; j++)
                if (strcmp(n->children[j]->name, c->name) == 0)
                    s_die("accepted two siblings with one name", c->path);
            reached++;
        }
    }
    if (reached != t->nnodes)
        s_die("not every node is reachable once from the root", NULL);
    char *text = report_text(t, 0, NULL);
    if (!text)
        s_die("no report", NULL);
    cJSON *report = cJSON_Parse(text);
    if (!report)
        s_die("the report is not valid JSON", NULL);
    if (s_count_report(cJSON_GetObjectItemCaseSensitive(report, "root")) != t->nnodes)
        s_die("the report does not hold every node", NULL);
    free(text);
    cJSON_Delete(report);
}

/* What the fork-server reads of a payload with jscan (payload.h) is what
 * cJSON reads of it, for every member of an object jscan accepts, one
 * level down too (a spec's argv, env, rlimits): kind, strings as C reads
 * them, numbers, how many members or elements. */
typedef struct {
    const cJSON *obj; /* the same container, as cJSON read it */
    int n;
} s_pl_walk_t;

static void s_pl_same(const pl_t *v, const cJSON *c, int depth);

static void s_pl_member(const jscan_span_t *key, const jscan_span_t *value, void *arg)
{
    s_pl_walk_t *w = arg;
    const cJSON *c = cJSON_GetArrayItem(w->obj, w->n++);
    if (!c)
        s_die("payload.h saw more members than cJSON", NULL);
    if (key) {
        char *name = pl_dup(key);
        if (!name || strcmp(name, c->string ? c->string : "") != 0)
            s_die("payload.h read a member name cJSON did not", NULL);
        free(name);
    }
    s_pl_same(value, c, 1);
}

static void s_pl_same(const pl_t *v, const cJSON *c, int depth)
{
    static const int kinds[] = {[JSCAN_OBJECT] = cJSON_Object, [JSCAN_ARRAY] = cJSON_Array,
                                [JSCAN_STRING] = cJSON_String, [JSCAN_NUMBER] = cJSON_Number,
                                [JSCAN_TRUE] = cJSON_True,     [JSCAN_FALSE] = cJSON_False,
                                [JSCAN_NULL] = cJSON_NULL};
    if ((c->type & 0xFF) != kinds[v->kind])
        s_die("payload.h and cJSON read a value of different kinds", NULL);
    if (v->kind == JSCAN_STRING) {
        char *text = pl_dup(v);
        if (!text || strcmp(text, c->valuestring) != 0)
            s_die("payload.h decoded a string otherwise than cJSON", NULL);
        free(text);
    }
    if (v->kind == JSCAN_NUMBER && jscan_number(v) != c->valuedouble)
        s_die("payload.h read a number otherwise than cJSON", NULL);
    if ((v->kind == JSCAN_OBJECT || v->kind == JSCAN_ARRAY) && depth < 2) {
        s_pl_walk_t w = {c, 0};
        pl_each(v, s_pl_member, &w);
        if (w.n != cJSON_GetArraySize(c))
            s_die("payload.h saw fewer members than cJSON", NULL);
    }
}

static void s_payload_agrees(const char *text, size_t size)
{
    pl_t root;
    if (!pl_parse(text, size, &root))
        return;
    cJSON *c = cJSON_ParseWithLength(text, size);
    if (!c)
        s_die("jscan accepted an object cJSON cannot parse", NULL);
    s_pl_same(&root, c, 0);
    cJSON_Delete(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_arena)
        s_setup();
    if (size > S_ARENA)
        return 0;
    char *text = s_arena + S_ARENA - size;
    if (size)
        memcpy(text, data, size);
    s_payload_agrees(text, size);
    spec_limits_t limits = {.max_depth = S_MAX_DEPTH, .max_nodes = S_MAX_NODES};
    spec_err_t err;
    memset(&err, 0, sizeof err);
    tree_t *t = spec_build_text(text, size, "fuzz", 1, "sup", &limits, &err);
    if (!t) {
        if (!err.path[0] || !err.message[0])
            s_die("refused a spec without saying where and why", NULL);
        return 0;
    }
    s_check_tree(t);
    tree_destroy(&t);
    return 0;
}
