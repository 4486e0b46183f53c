/* logs_req, nodelog and logdir: a tree's output lines, fed as the drain
 * delivers them, read back through a "logs" request from a cursor, and
 * written to a log directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logdir.h"
#include "logs_req.h"
#include "nodelog.h"
#include "spec.h"
#include "tree.h"
#include "report_json.h"

static const char s_spec[] = "{\"name\":\"root\",\"children\":["
                             "{\"name\":\"a\",\"children\":[{\"name\":\"x\"}]},"
                             "{\"name\":\"ab\"}]}";

static tree_t *s_tree(void)
{
    spec_err_t err;
    tree_t *t = spec_build_text(s_spec, strlen(s_spec), "t1", 1, "sup1", NULL, &err);
    assert_non_null(t);
    t->started_ms = 1000;
    return t;
}

static void s_out(const nodelog_cfg_t *cfg, tree_t *t, const char *path, logbuf_stream_t stream,
                  const char *text, int64_t now_ms)
{
    tree_node_t *n = tree_find_path(t, path);
    assert_non_null(n);
    nodelog_output(cfg, t, n, stream, text, strlen(text), false, now_ms);
}

/* Ask; the reply's lines as "seq path stream text" joined by '|'. */
static const char *s_ask(tree_t *t, const char *body_json, cJSON **reply)
{
    static char out[8192];
    cJSON *body = cJSON_Parse(body_json);
    const char *code = NULL;
    char err[256] = "";
    *reply = logs_req_reply(t, body, &code, err, sizeof err);
    cJSON_Delete(body);
    if (!*reply) {
        snprintf(out, sizeof out, "error %s: %s", code, err);
        return out;
    }
    out[0] = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(*reply, "lines"))
    {
        size_t used = strlen(out);
        snprintf(out + used, sizeof out - used, "%s%d %s %s %s", used ? "|" : "",
                 (int) cJSON_GetObjectItem(l, "seq")->valuedouble,
                 cJSON_GetObjectItem(l, "path")->valuestring,
                 cJSON_GetObjectItem(l, "stream")->valuestring,
                 cJSON_GetObjectItem(l, "text")->valuestring);
    }
    return out;
}

static double s_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static bool s_true(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItem(o, key));
}

static void test_lines_of_a_tree_in_order(void **state)
{
    (void) state;
    nodelog_cfg_t cfg = NODELOG_CFG_DEFAULT;
    tree_t *t = s_tree();
    s_out(&cfg, t, "root/a", LOGBUF_STDOUT, "a1\n", 1010);
    s_out(&cfg, t, "root/a/x", LOGBUF_STDERR, "x1\nx2 partial", 1020);
    s_out(&cfg, t, "root/ab", LOGBUF_STDOUT, "ab1\n", 1030);
    s_out(&cfg, t, "root/a", LOGBUF_STDERR, "a2\n", 1040);
    cJSON *r;
    /* The whole tree, in the order the lines were completed. */
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\"}", &r),
                        "1 root/a stdout a1|2 root/a/x stderr x1|3 root/ab stdout ab1|"
                        "4 root/a stderr a2");
    assert_int_equal(s_num(r, "next"), 4);
    assert_false(s_true(r, "more"));
    assert_false(s_true(r, "ended"));
    assert_false(s_true(r, "eof"));
    assert_string_equal(cJSON_GetObjectItem(r, "status")->valuestring, "running");
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "lines"), 0);
    assert_int_equal(s_num(first, "t_ms"), 10); /* since the tree started */
    cJSON_Delete(r);
    /* A node and its subtree ("root/ab" is not under "root/a"). */
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\",\"path\":\"root/a\"}", &r),
                        "1 root/a stdout a1|2 root/a/x stderr x1|4 root/a stderr a2");
    assert_string_equal(cJSON_GetObjectItem(r, "node_status")->valuestring, "pending");
    cJSON_Delete(r);
    /* One stream, from a cursor. */
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\",\"stream\":\"stderr\",\"after\":2}", &r),
                        "4 root/a stderr a2");
    cJSON_Delete(r);
    /* Nothing new: the cursor stays. */
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\",\"after\":4}", &r), "");
    assert_int_equal(s_num(r, "next"), 4);
    cJSON_Delete(r);
    /* The pipe closes: the partial last line is a line. */
    tree_node_t *x = tree_find_path(t, "root/a/x");
    nodelog_output(&cfg, t, x, LOGBUF_STDERR, NULL, 0, true, 1050);
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\",\"after\":4}", &r),
                        "5 root/a/x stderr x2 partial");
    cJSON_Delete(r);
    tree_destroy(&t);
}

static void test_report_counts_and_gap(void **state)
{
    (void) state;
    nodelog_cfg_t cfg = {{.max_lines = 2, .max_bytes = 1000, .line_max = 100}, NULL};
    tree_t *t = s_tree();
    s_out(&cfg, t, "root/ab", LOGBUF_STDOUT, "1\n2\n", 1000);
    cJSON *r;
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\"}", &r), "1 root/ab stdout 1|2 root/ab stdout 2");
    assert_false(s_true(r, "gap"));
    cJSON_Delete(r);
    /* A reader at cursor 2 misses line 3 if two more come first. */
    s_out(&cfg, t, "root/ab", LOGBUF_STDOUT, "3\n4\n5\n", 1000);
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\",\"after\":2}", &r),
                        "4 root/ab stdout 4|5 root/ab stdout 5");
    assert_true(s_true(r, "gap"));
    assert_int_equal(s_num(r, "dropped"), 3);
    cJSON_Delete(r);
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\",\"after\":5}", &r), "");
    assert_false(s_true(r, "gap"));
    cJSON_Delete(r);
    /* The report: kept and dropped, for every node. */
    cJSON *rep = s_report(t, 2000);
    const cJSON *root = cJSON_GetObjectItem(rep, "root");
    const cJSON *ab = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "children"), 1);
    const cJSON *logs = cJSON_GetObjectItem(ab, "logs");
    assert_int_equal(s_num(logs, "lines"), 2);
    assert_int_equal(s_num(logs, "dropped"), 3);
    assert_int_equal(s_num(cJSON_GetObjectItem(root, "logs"), "lines"), 0);
    cJSON_Delete(rep);
    tree_destroy(&t);
}

static void test_a_full_reply_says_more(void **state)
{
    (void) state;
    nodelog_cfg_t cfg = {{.max_lines = 5000, .max_bytes = 1 << 20, .line_max = 100}, NULL};
    tree_t *t = s_tree();
    for (int i = 0; i < LOGS_REQ_MAX_LINES + 10; i++)
        s_out(&cfg, t, "root/ab", LOGBUF_STDOUT, "line\n", 1000);
    cJSON *r;
    s_ask(t, "{\"tree\":\"t1\"}", &r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "lines")), LOGS_REQ_MAX_LINES);
    assert_true(s_true(r, "more"));
    assert_int_equal(s_num(r, "next"), LOGS_REQ_MAX_LINES);
    cJSON_Delete(r);
    s_ask(t, "{\"tree\":\"t1\",\"after\":1000}", &r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "lines")), 10);
    assert_false(s_true(r, "more"));
    cJSON_Delete(r);
    tree_destroy(&t);
}

/* Many nodes, lines interleaved: read back page by page, every line once,
 * in seq order (the merge across nodes). */
static void test_many_nodes_merge_in_order(void **state)
{
    (void) state;
    static const char spec[] = "{\"name\":\"root\",\"children\":[{\"name\":\"w\",\"count\":50}]}";
    spec_err_t err;
    tree_t *t = spec_build_text(spec, strlen(spec), "t2", 2, "sup1", NULL, &err);
    assert_non_null(t);
    nodelog_cfg_t cfg = NODELOG_CFG_DEFAULT;
    for (int i = 0; i < 2500; i++) {
        char text[32];
        snprintf(text, sizeof text, "l%d\n", i);
        tree_node_t *n = &t->nodes[1 + (i * 7) % 50];
        nodelog_output(&cfg, t, n, i % 3 ? LOGBUF_STDOUT : LOGBUF_STDERR, text, strlen(text), false,
                       i);
    }
    uint64_t after = 0;
    int seen = 0, pages = 0;
    bool more = true;
    while (more) {
        char body[64];
        snprintf(body, sizeof body, "{\"tree\":\"t2\",\"after\":%llu}", (unsigned long long) after);
        cJSON *req = cJSON_Parse(body), *r;
        const char *code;
        char why[128];
        r = logs_req_reply(t, req, &code, why, sizeof why);
        cJSON_Delete(req);
        assert_non_null(r);
        const cJSON *l;
        cJSON_ArrayForEach(l, cJSON_GetObjectItem(r, "lines"))
        {
            char want[32];
            snprintf(want, sizeof want, "l%d", seen);
            assert_string_equal(cJSON_GetObjectItem(l, "text")->valuestring, want);
            assert_int_equal(s_num(l, "seq"), ++seen);
        }
        more = s_true(r, "more");
        after = (uint64_t) s_num(r, "next");
        pages++;
        cJSON_Delete(r);
    }
    assert_int_equal(seen, 2500);
    assert_int_equal(pages, 3);
    tree_destroy(&t);
}

static void test_text_is_utf8(void **state)
{
    (void) state;
    nodelog_cfg_t cfg = NODELOG_CFG_DEFAULT;
    tree_t *t = s_tree();
    tree_node_t *n = tree_find_path(t, "root");
    /* an invalid byte, a NUL, a truncated sequence, and valid é */
    nodelog_output(&cfg, t, n, LOGBUF_STDOUT, "a\xff" "b\0c\xc3\n\xc3\xa9\n", 10, false, 1000);
    cJSON *r;
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\"}", &r),
                        "1 root stdout a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd|"
                        "2 root stdout \xc3\xa9");
    cJSON_Delete(r);
    tree_destroy(&t);
}

static void test_bad_requests_change_nothing(void **state)
{
    (void) state;
    tree_t *t = s_tree();
    cJSON *r;
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\",\"path\":\"root/zz\"}", &r),
                        "error not_found: tree has no node \"root/zz\"");
    assert_null(r);
    assert_string_equal(s_ask(t, "{\"tree\":\"t1\",\"stream\":\"both\"}", &r),
                        "error bad_request: logs: \"stream\" must be \"stdout\" or \"stderr\"");
    const char *bad[] = {"{\"tree\":\"t1\",\"after\":-1}", "{\"tree\":\"t1\",\"after\":1.5}",
                         "{\"tree\":\"t1\",\"after\":\"3\"}", "{\"tree\":\"t1\",\"path\":7}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_true(strncmp(s_ask(t, bad[i], &r), "error bad_request", 17) == 0);
        assert_null(r);
    }
    tree_destroy(&t);
}

static void test_log_dir_files(void **state)
{
    (void) state;
    char dir[] = "/tmp/arbor-test-logdir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char name[512];
    assert_int_equal(logdir_file_name(dir, "t1", "root/a/x", name, sizeof name), 0);
    char want[600];
    snprintf(want, sizeof want, "%s/t1/root+a+x.log", dir);
    assert_string_equal(name, want);
    /* No way out of DIR through a tree id. */
    assert_int_equal(logdir_file_name(dir, "..", "root", name, sizeof name), 0);
    snprintf(want, sizeof want, "%s/+../root.log", dir);
    assert_string_equal(name, want);
    assert_int_equal(logdir_file_name(dir, "t1", "root", name, 10), -1);
    assert_int_equal(errno, ENAMETOOLONG);

    /* Every line goes to the file, kept in memory or not. */
    nodelog_cfg_t cfg = {{.max_lines = 1, .max_bytes = 100, .line_max = 4}, dir};
    tree_t *t = s_tree();
    s_out(&cfg, t, "root/a/x", LOGBUF_STDOUT, "one\n", 1005);
    s_out(&cfg, t, "root/a/x", LOGBUF_STDERR, "too long\nlast", 1007);
    nodelog_output(&cfg, t, tree_find_path(t, "root/a/x"), LOGBUF_STDERR, NULL, 0, true, 1009);
    snprintf(name, sizeof name, "%s/t1/root+a+x.log", dir);
    FILE *f = fopen(name, "r");
    assert_non_null(f);
    char text[256] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    assert_string_equal(text, "5 stdout one\n7 stderr too  [... 4 bytes cut]\n7 stderr last\n");
    tree_destroy(&t);
    unlink(name);
    snprintf(name, sizeof name, "%s/t1", dir);
    assert_int_equal(rmdir(name), 0);

    /* logdir_check: made if missing, refused if not a directory. */
    snprintf(name, sizeof name, "%s/made", dir);
    assert_int_equal(logdir_check(name), 0);
    assert_int_equal(rmdir(name), 0);
    snprintf(name, sizeof name, "%s/file", dir);
    fclose(fopen(name, "w"));
    assert_int_equal(logdir_check(name), -1);
    assert_int_equal(errno, ENOTDIR);
    unlink(name);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_of_a_tree_in_order),
        cmocka_unit_test(test_report_counts_and_gap),
        cmocka_unit_test(test_a_full_reply_says_more),
        cmocka_unit_test(test_many_nodes_merge_in_order),
        cmocka_unit_test(test_text_is_utf8),
        cmocka_unit_test(test_bad_requests_change_nothing),
        cmocka_unit_test(test_log_dir_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
