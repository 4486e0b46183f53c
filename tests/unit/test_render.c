/* arborctl's pure parts: report rendering, event lines, exit-code mapping,
 * spec parsing. Each test reads as a usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "render.h"
#include "specfile.h"

static cJSON *s_json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

static int s_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static int s_lines(const char *text)
{
    return s_count(text, "\n");
}

/* root -> spawner-0 (ChildrenFailed) -> errorer-1 (ValueError), sleeper-0
 * cancelled; spawner-1 cancelled. */
static const char *NESTED =
    "{\"tree\":\"t1\",\"supervisor\":\"sup1\",\"status\":\"failed\",\"duration_ms\":2104,"
    "\"root\":{\"name\":\"root\",\"path\":\"root\",\"pid\":100,\"status\":\"failed\","
    " \"phase\":\"exited\",\"exit\":{\"code\":1,\"signal\":null},"
    " \"error\":{\"type\":\"ChildrenFailed\",\"message\":\"1 child failed\",\"phase\":\"children_exited\"},"
    " \"escalation\":null,\"phases\":[{\"phase\":\"spawned\",\"t_ms\":0}],"
    " \"children\":["
    "  {\"name\":\"spawner-0\",\"path\":\"root/spawner-0\",\"pid\":101,\"status\":\"failed\","
    "   \"phase\":\"exited\",\"exit\":{\"code\":1,\"signal\":null},"
    "   \"error\":{\"type\":\"ChildrenFailed\",\"message\":\"1 child failed\"},\"escalation\":null,"
    "   \"phases\":[],\"children\":["
    "     {\"name\":\"sleeper-0\",\"path\":\"root/spawner-0/sleeper-0\",\"pid\":103,"
    "      \"status\":\"cancelled\",\"phase\":\"exited\",\"exit\":{\"code\":0,\"signal\":null},"
    "      \"error\":null,\"escalation\":null,\"phases\":[],\"children\":[]},"
    "     {\"name\":\"errorer-1\",\"path\":\"root/spawner-0/errorer-1\",\"pid\":104,"
    "      \"status\":\"failed\",\"phase\":\"exited\",\"exit\":{\"code\":1,\"signal\":null},"
    "      \"error\":{\"type\":\"ValueError\",\"message\":\"boom\",\"phase\":\"running\","
    "                 \"stderr\":\"line1\\nline2\\n\\nline3\\nline4\\nlast line\\n\"},"
    "      \"escalation\":null,\"phases\":[],\"children\":[]}]},"
    "  {\"name\":\"spawner-1\",\"path\":\"root/spawner-1\",\"pid\":102,\"status\":\"cancelled\","
    "   \"phase\":\"exited\",\"exit\":{\"code\":null,\"signal\":\"SIGTERM\"},\"error\":null,"
    "   \"escalation\":null,\"phases\":[],\"children\":[]}]}}";

static void test_nested_failed_report(void **state)
{
    (void) state;
    cJSON *r = s_json(NESTED);
    char *text = render_report(r, false);
    assert_non_null(text);
    /* header */
    assert_non_null(strstr(text, "tree t1  failed  in 2.10 s  on sup1\n"));
    /* the tree, drawn */
    assert_non_null(strstr(text, "\nroot  failed  pid 100  exited  exit 1  ChildrenFailed: 1 child "
                                 "failed (in phase children_exited)\n"));
    assert_non_null(strstr(text, "\n├── spawner-0  failed  pid 101  exited  exit 1  "
                                 "ChildrenFailed: 1 child failed\n"));
    assert_non_null(strstr(text, "\n│   ├── sleeper-0  cancelled  pid 103  exited  exit 0\n"));
    assert_non_null(strstr(text, "\n│   └── errorer-1  failed  pid 104  exited  exit 1  "
                                 "ValueError: boom (in phase running)\n"));
    assert_non_null(strstr(text, "\n└── spawner-1  cancelled  pid 102  exited  SIGTERM\n"));
    /* the last 3 non-empty stderr lines, under the failing leaf */
    assert_null(strstr(text, "line2"));
    assert_non_null(strstr(text, "\n│           stderr| line3\n│           stderr| line4\n"
                                 "│           stderr| last line\n"));
    /* summary */
    assert_non_null(strstr(text, "\n5 nodes: 3 failed, 2 cancelled\n"));
    assert_int_equal(s_lines(text), 1 + 5 + 3 + 1);
    assert_null(strchr(text, '\033'));
    free(text);
    cJSON_Delete(r);
}

static void test_killed_with_escalation(void **state)
{
    (void) state;
    cJSON *r = s_json(
        "{\"tree\":\"t2\",\"supervisor\":\"s\",\"status\":\"cancelled\",\"duration_ms\":812,"
        "\"root\":{\"name\":\"root\",\"path\":\"root\",\"pid\":1,\"status\":\"cancelled\","
        "\"phase\":\"exited\",\"exit\":{\"code\":0,\"signal\":null},\"error\":null,"
        "\"escalation\":null,\"children\":["
        "{\"name\":\"hanger\",\"path\":\"root/hanger\",\"pid\":2,\"status\":\"killed\","
        "\"phase\":\"kill_sent\",\"exit\":{\"code\":null,\"signal\":\"SIGKILL\"},\"error\":null,"
        "\"escalation\":{\"stuck_phase\":\"cleanup\",\"signals\":[\"SIGTERM\",\"SIGKILL\"]},"
        "\"phases\":[],\"children\":[]}]}}");
    char *text = render_report(r, false);
    assert_non_null(strstr(text, "tree t2  cancelled  in 812 ms  on s\n"));
    assert_non_null(strstr(text, "\n└── hanger  killed  pid 2  kill_sent  SIGKILL\n"
                                 "        stuck in cleanup; sent SIGTERM, SIGKILL\n"));
    assert_non_null(strstr(text, "\n2 nodes: 1 killed, 1 cancelled\n"));
    free(text);
    cJSON_Delete(r);
}

static void test_spawn_failed(void **state)
{
    (void) state;
    cJSON *r = s_json(
        "{\"tree\":\"t3\",\"supervisor\":\"s\",\"status\":\"failed\",\"duration_ms\":3,"
        "\"root\":{\"name\":\"prog\",\"path\":\"prog\",\"pid\":null,\"status\":\"spawn_failed\","
        "\"phase\":null,\"exit\":{\"code\":null,\"signal\":null},"
        "\"error\":{\"type\":\"SpawnFailed\",\"message\":\"execve /nope: No such file or directory\","
        "\"phase\":\"spawned\"},\"escalation\":null,\"phases\":[],\"children\":[]}}");
    char *text = render_report(r, false);
    assert_non_null(strstr(text, "\nprog  spawn_failed  SpawnFailed: execve /nope: No such file or "
                                 "directory (in phase spawned)\n"));
    assert_null(strstr(text, "pid"));
    assert_non_null(strstr(text, "\n1 node: 1 spawn_failed\n"));
    free(text);
    cJSON_Delete(r);
}

/* A node placed on another supervisor ("on") says which one ran it: its pid
 * is that supervisor's host's. */
static void test_placed_node_names_its_supervisor(void **state)
{
    (void) state;
    cJSON *r = s_json(
        "{\"tree\":\"sup1.ab\",\"supervisor\":\"sup1\",\"status\":\"running\","
        "\"root\":{\"name\":\"root\",\"path\":\"root\",\"pid\":10,\"status\":\"running\","
        "\"phase\":\"running\",\"children\":["
        "{\"name\":\"there\",\"path\":\"root/there\",\"pid\":7,\"status\":\"running\","
        "\"phase\":\"running\",\"supervisor\":\"sup2\",\"children\":["
        "{\"name\":\"x\",\"path\":\"root/there/x\",\"pid\":8,\"status\":\"running\","
        "\"phase\":\"running\",\"children\":[]}]}]}}");
    char *text = render_report(r, false);
    assert_non_null(strstr(text, "\nroot  running  pid 10  running\n"));
    assert_non_null(strstr(text, "\n└── there  running  on sup2  pid 7  running\n"));
    assert_non_null(strstr(text, "\n    └── x  running  pid 8  running\n"));
    assert_int_equal(s_count(text, " on sup2"), 1);
    free(text);
    cJSON_Delete(r);
}

static void test_odd_json_does_not_crash(void **state)
{
    (void) state;
    char *text = render_report(NULL, false);
    assert_non_null(strstr(text, "no report"));
    free(text);
    static const char *odd[] = {
        "[]", "{}", "{\"root\":7}", "{\"root\":{}}", "{\"status\":3,\"root\":{\"children\":{}}}",
        "{\"root\":{\"name\":5,\"exit\":\"x\",\"error\":\"boom\",\"escalation\":[1],"
        "\"children\":[1,null,{\"children\":[[]]}]}}",
        "{\"root\":{\"error\":{\"type\":1,\"message\":null,\"stderr\":\"\\n\\n\"},"
        "\"escalation\":{\"signals\":\"SIGKILL\"}}}",
        "{\"root\":{\"error\":{\"stderr\":\"no newline at all\"}}}",
    };
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        cJSON *r = s_json(odd[i]);
        text = render_report(r, i % 2);
        assert_non_null(text);
        assert_true(strlen(text) > 0);
        free(text);
        cJSON_Delete(r);
    }
    cJSON *r = s_json("{\"root\":{\"escalation\":{\"signals\":\"SIGKILL\"}}}");
    text = render_report(r, false);
    assert_non_null(strstr(text, "tree ?  ?  on ?\n?  ?\n"));
    assert_non_null(strstr(text, "did not exit in time; sent no signal"));
    free(text);
    cJSON_Delete(r);
}

static void test_control_characters_are_neutralised(void **state)
{
    (void) state;
    cJSON *r = s_json("{\"root\":{\"name\":\"a\\u001b[2Jb\",\"status\":\"failed\","
                      "\"error\":{\"type\":\"E\",\"message\":\"x\\ny\\rz\"}}}");
    char *text = render_report(r, false);
    assert_null(strchr(text, '\033'));
    assert_non_null(strstr(text, "a?[2Jb  failed  E: x?y?z\n"));
    free(text);
    cJSON_Delete(r);
}

static void test_colour_only_when_asked(void **state)
{
    (void) state;
    cJSON *r = s_json(NESTED);
    char *plain = render_report(r, false);
    char *colour = render_report(r, true);
    assert_null(strchr(plain, '\033'));
    assert_non_null(strstr(colour, "\033[31mfailed\033[0m"));
    assert_non_null(strstr(colour, "\033[33mcancelled\033[0m"));
    free(plain);
    free(colour);
    cJSON_Delete(r);
    /* NO_COLOR wins even on a terminal; a non-terminal never gets colour. */
    setenv("NO_COLOR", "1", 1);
    assert_false(render_colour_wanted(0));
    unsetenv("NO_COLOR");
    FILE *f = tmpfile();
    assert_false(render_colour_wanted(fileno(f)));
    fclose(f);
    assert_string_equal(render_status_colour("killed"), "\033[35m");
    assert_string_equal(render_status_colour("ok"), "\033[32m");
    assert_string_equal(render_status_colour("running"), "");
    assert_string_equal(render_status_colour(NULL), "");
}

/* 10 x 10 x 10 under a root: 1111 nodes, one line each, no extra lines. */
static void test_big_tree_is_one_line_per_node(void **state)
{
    (void) state;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", "root");
    cJSON_AddStringToObject(root, "status", "ok");
    cJSON *l1 = cJSON_AddArrayToObject(root, "children");
    for (int i = 0; i < 10; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "name", "a");
        cJSON_AddStringToObject(a, "status", "ok");
        cJSON *l2 = cJSON_AddArrayToObject(a, "children");
        for (int j = 0; j < 10; j++) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "name", "b");
            cJSON_AddStringToObject(b, "status", "ok");
            cJSON *l3 = cJSON_AddArrayToObject(b, "children");
            for (int k = 0; k < 10; k++) {
                cJSON *c = cJSON_CreateObject();
                cJSON_AddStringToObject(c, "name", "c");
                cJSON_AddStringToObject(c, "status", "ok");
                cJSON_AddNumberToObject(c, "pid", 1000 + k);
                cJSON_AddItemToArray(l3, c);
            }
            cJSON_AddItemToArray(l2, b);
        }
        cJSON_AddItemToArray(l1, a);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "status", "ok");
    cJSON_AddItemToObject(r, "root", root);
    char *text = render_report(r, false);
    assert_int_equal(s_lines(text), 1 + 1111 + 1);
    assert_non_null(strstr(text, "\n1111 nodes: 1111 ok\n"));
    assert_non_null(strstr(text, "\n    └── b  ok\n        ├── c  ok  pid 1000\n"));
    free(text);
    cJSON_Delete(r);
}

static void test_deep_tree_is_cut(void **state)
{
    (void) state;
    cJSON *r = cJSON_CreateObject();
    cJSON *node = cJSON_AddObjectToObject(r, "root");
    for (int i = 0; i < RENDER_MAX_DEPTH + 10; i++) {
        cJSON_AddStringToObject(node, "name", "n");
        cJSON *kids = cJSON_AddArrayToObject(node, "children");
        cJSON *kid = cJSON_CreateObject();
        cJSON_AddItemToArray(kids, kid);
        node = kid;
    }
    char *text = render_report(r, false);
    assert_non_null(strstr(text, "(11 deeper nodes not shown)"));
    assert_non_null(strstr(text, "\n" "267 nodes: 267 other\n"));
    free(text);
    cJSON_Delete(r);
}

static void test_event_lines(void **state)
{
    (void) state;
    cJSON *e = s_json("{\"topic\":\"tree/t1\",\"tree\":\"t1\",\"kind\":\"phase\","
                      "\"path\":\"root/a\",\"phase\":\"running\",\"t_ms\":15}");
    char *line = render_event(e, "12:00:01.234", false);
    assert_string_equal(line, "12:00:01.234  t1  root/a  phase running  +15 ms\n");
    free(line);
    cJSON_Delete(e);
    e = s_json("{\"tree\":\"t1\",\"kind\":\"status\",\"path\":\"root/a\",\"status\":\"failed\"}");
    line = render_event(e, "T", true);
    assert_string_equal(line, "T  t1  root/a  status \033[31mfailed\033[0m\n");
    free(line);
    cJSON_Delete(e);
    e = s_json("{\"tree\":\"t1\",\"kind\":\"done\",\"status\":\"cancelled\"}");
    line = render_event(e, "T", false);
    assert_string_equal(line, "T  t1  -  tree cancelled\n");
    free(line);
    cJSON_Delete(e);
    e = s_json("[1]");
    line = render_event(e, NULL, false);
    assert_string_equal(line, "  ?  -  event\n");
    free(line);
    cJSON_Delete(e);
}

static void test_tables(void **state)
{
    (void) state;
    cJSON *p = s_json("{\"peers\":[{\"name\":\"sup1\",\"role\":\"supervisor\",\"idle_ms\":12},"
                      "{\"name\":\"x\"}]}");
    char *text = render_peers(p);
    assert_non_null(strstr(text, "NAME"));
    assert_non_null(strstr(text, "sup1"));
    assert_non_null(strstr(text, "supervisor"));
    assert_int_equal(s_lines(text), 3);
    free(text);
    cJSON_Delete(p);
    cJSON *rows = s_json("[{\"supervisor\":\"s\",\"tree\":\"t\",\"status\":\"running\","
                         "\"root\":\"root\"},{}]");
    text = render_trees(rows, false);
    assert_int_equal(s_lines(text), 3);
    assert_non_null(strstr(text, "running"));
    free(text);
    cJSON_Delete(rows);
}

/* The screen column at which needle starts in line (first match): UTF-8
 * continuation bytes and colour sequences take none. */
static size_t s_column(const char *line, const char *needle)
{
    const char *at = strstr(line, needle);
    assert_non_null(at);
    size_t col = 0;
    for (const char *p = line; p < at; p++) {
        if (*p == '\033') { /* ESC [ ... m */
            while (p < at && *p != 'm')
                p++;
            continue;
        }
        col += ((unsigned char) *p & 0xC0) != 0x80;
    }
    return col;
}

/* arborctl list: columns sized from the rows (ids are longer than any fixed
 * width), a placed subtree's "└ " and colours padded by what shows. */
static void test_trees_columns_line_up(void **state)
{
    (void) state;
    cJSON *rows = s_json(
        "[{\"supervisor\":\"sup1\",\"tree\":\"sup1.0123456789abcdef\",\"status\":\"running\","
        "  \"root\":\"root\"},"
        " {\"supervisor\":\"supervisor-number-two\",\"tree\":\"sup1.0123456789abcdef.2.0\","
        "  \"placed_in\":\"sup1.0123456789abcdef\",\"status\":\"running\",\"root\":\"there\"},"
        " {\"supervisor\":\"s\",\"tree\":\"s.1\",\"status\":\"failed\",\"root\":\"r\"}]");
    for (int colour = 0; colour < 2; colour++) {
        char *text = render_trees(rows, colour);
        char *lines[4];
        char *save = NULL;
        int n = 0;
        for (char *l = strtok_r(text, "\n", &save); l && n < 4; l = strtok_r(NULL, "\n", &save))
            lines[n++] = l;
        assert_int_equal(n, 4);
        /* TREE starts after the longest supervisor name and one space */
        size_t tree_col = strlen("supervisor-number-two") + 1;
        assert_int_equal(s_column(lines[0], "TREE"), tree_col);
        assert_int_equal(s_column(lines[1], "sup1.0123"), tree_col);
        assert_int_equal(s_column(lines[2], "\u2514 sup1.0123"), tree_col);
        assert_int_equal(s_column(lines[3], "s.1"), tree_col);
        /* STATUS after the longest tree cell, "└ " counted as 2 columns */
        size_t status_col = tree_col + strlen("\u2514 ") - 2 + strlen("sup1.0123456789abcdef.2.0") + 1;
        assert_int_equal(s_column(lines[0], "STATUS"), status_col);
        assert_int_equal(s_column(lines[1], "running"), status_col);
        assert_int_equal(s_column(lines[2], "running"), status_col);
        assert_int_equal(s_column(lines[3], "failed"), status_col);
        /* ROOT after the longest status, colour or not */
        size_t root_col = status_col + strlen("running") + 1;
        assert_int_equal(s_column(lines[0], "ROOT"), root_col);
        assert_int_equal(s_column(lines[1], "root"), root_col);
        assert_int_equal(s_column(lines[2], "there"), root_col);
        assert_int_equal(s_column(lines[3], " r") + 1, root_col);
        assert_true((strchr(lines[3], '\033') != NULL) == colour);
        free(text);
    }
    cJSON_Delete(rows);
}

static void test_exit_codes(void **state)
{
    (void) state;
    assert_int_equal(exitcode_tree("ok"), 0);
    assert_int_equal(exitcode_tree("running"), 0);
    assert_int_equal(exitcode_tree("failed"), 1);
    assert_int_equal(exitcode_tree("lost"), 1);
    assert_int_equal(exitcode_tree("cancelled"), 4);
    assert_int_equal(exitcode_tree("weird"), 1);
    assert_int_equal(exitcode_tree(NULL), 1);
    assert_int_equal(EXIT_USAGE, 2);
    assert_int_equal(EXIT_UNREACHABLE, 3);
    assert_int_equal(exitcode_node("killed"), 4);
    assert_int_equal(exitcode_node("cancelled"), 4);
    assert_int_equal(exitcode_node("spawn_failed"), 1);
    assert_int_equal(exitcode_node("pending"), 0);
    assert_false(exitcode_tree_ended("running"));
    assert_false(exitcode_tree_ended(NULL));
    assert_true(exitcode_tree_ended("lost"));
    assert_false(exitcode_node_ended("pending"));
    assert_true(exitcode_node_ended("killed"));
}

static void test_specfile_parse_errors(void **state)
{
    (void) state;
    char err[256];
    const char *bad = "{\n  \"name\": \"a\",\n  \"run\": sleep\n}";
    assert_null(specfile_parse(bad, strlen(bad), err, sizeof err));
    assert_non_null(strstr(err, "line 3, column 10"));
    const char *cut = "{\"name\": \"a\",\n";
    assert_null(specfile_parse(cut, strlen(cut), err, sizeof err));
    assert_non_null(strstr(err, "unexpected end of input"));
    assert_null(specfile_parse("[1]", 3, err, sizeof err));
    assert_non_null(strstr(err, "must be a JSON object"));
    assert_null(specfile_parse("", 0, err, sizeof err));
    cJSON *ok = specfile_parse("{\"name\":\"r\"}  ", 14, err, sizeof err);
    assert_non_null(ok);
    cJSON_Delete(ok);
    assert_null(specfile_load("/nonexistent/spec.json", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/spec.json: No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_failed_report),
        cmocka_unit_test(test_killed_with_escalation),
        cmocka_unit_test(test_spawn_failed),
        cmocka_unit_test(test_placed_node_names_its_supervisor),
        cmocka_unit_test(test_odd_json_does_not_crash),
        cmocka_unit_test(test_control_characters_are_neutralised),
        cmocka_unit_test(test_colour_only_when_asked),
        cmocka_unit_test(test_big_tree_is_one_line_per_node),
        cmocka_unit_test(test_deep_tree_is_cut),
        cmocka_unit_test(test_event_lines),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_trees_columns_line_up),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_specfile_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
