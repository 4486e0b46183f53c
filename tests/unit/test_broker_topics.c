/* topics: subscriptions and who receives a message on a topic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topics.h"

typedef struct {
    char got[512]; /* receivers, sorted, comma-separated */
    char names[16][32];
    int n;
} s_recv_t;

static int s_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void s_collect(const char *peer, void *arg)
{
    s_recv_t *r = arg;
    snprintf(r->names[r->n++], 32, "%s", peer);
}

/* Receivers of a message on topic, as "a,b,c". */
static const char *s_match(topics_t *t, const char *topic, s_recv_t *r)
{
    memset(r, 0, sizeof *r);
    size_t n = topics_match(t, topic, s_collect, r);
    assert_int_equal(n, (size_t) r->n);
    qsort(r->names, (size_t) r->n, sizeof r->names[0], s_cmp);
    for (int i = 0; i < r->n; i++) {
        strcat(r->got, i ? "," : "");
        strcat(r->got, r->names[i]);
    }
    return r->got;
}

static void test_exact_and_prefix(void **state)
{
    (void) state;
    topics_t *t = topics_new();
    assert_int_equal(topics_subscribe(t, "all", "tree/"), 0);
    assert_int_equal(topics_subscribe(t, "one", "tree/42"), 0);
    assert_int_equal(topics_subscribe(t, "near", "tree/4"), 0); /* not a '/' prefix */
    assert_int_equal(topics_subscribe(t, "deep", "tree/42/"), 0);
    s_recv_t r;
    assert_string_equal(s_match(t, "tree/42", &r), "all,one");
    assert_string_equal(s_match(t, "tree/4", &r), "all,near");
    assert_string_equal(s_match(t, "tree/42/x", &r), "all,deep");
    assert_string_equal(s_match(t, "tree/", &r), "all");
    assert_string_equal(s_match(t, "tree", &r), "");
    assert_string_equal(s_match(t, "peers", &r), "");
    topics_destroy(&t);
    assert_null(t);
}

static void test_each_peer_once(void **state)
{
    (void) state;
    topics_t *t = topics_new();
    topics_subscribe(t, "both", "tree/");
    topics_subscribe(t, "both", "tree/42");
    topics_subscribe(t, "both", "tree/42"); /* twice: harmless */
    topics_subscribe(t, "other", "tree/42");
    s_recv_t r;
    assert_string_equal(s_match(t, "tree/42", &r), "both,other");
    assert_int_equal(topics_count(t, "both"), 2);
    topics_destroy(&t);
}

static void test_unsubscribe_and_drop(void **state)
{
    (void) state;
    topics_t *t = topics_new();
    topics_subscribe(t, "a", "peers");
    topics_subscribe(t, "a", "tree/");
    topics_subscribe(t, "b", "peers");
    topics_unsubscribe(t, "a", "peers");
    topics_unsubscribe(t, "a", "never-subscribed");
    s_recv_t r;
    assert_string_equal(s_match(t, "peers", &r), "b");
    cJSON *list = topics_list(t, "a");
    assert_int_equal(cJSON_GetArraySize(list), 1);
    assert_string_equal(cJSON_GetArrayItem(list, 0)->valuestring, "tree/");
    cJSON_Delete(list);
    topics_drop_peer(t, "b");
    assert_string_equal(s_match(t, "peers", &r), "");
    assert_int_equal(topics_count(t, "b"), 0);
    list = topics_list(t, "nobody");
    assert_int_equal(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    topics_destroy(&t);
}

static void test_list_sorted(void **state)
{
    (void) state;
    topics_t *t = topics_new();
    topics_subscribe(t, "a", "z");
    topics_subscribe(t, "a", "b/");
    topics_subscribe(t, "a", "m");
    cJSON *list = topics_list(t, "a");
    char *text = cJSON_PrintUnformatted(list);
    assert_string_equal(text, "[\"b/\",\"m\",\"z\"]");
    cJSON_free(text);
    cJSON_Delete(list);
    topics_destroy(&t);
}

static void test_validity_and_limits(void **state)
{
    (void) state;
    assert_true(topics_valid("tree/abc-1"));
    assert_false(topics_valid(""));
    assert_false(topics_valid(NULL));
    assert_false(topics_valid("has space"));
    assert_false(topics_valid("tab\t"));
    char long_topic[TOPICS_NAME_MAX + 2];
    memset(long_topic, 't', sizeof long_topic - 1);
    long_topic[sizeof long_topic - 1] = 0;
    assert_false(topics_valid(long_topic));
    long_topic[TOPICS_NAME_MAX] = 0;
    assert_true(topics_valid(long_topic));

    topics_t *t = topics_new();
    errno = 0;
    assert_int_equal(topics_subscribe(t, "a", "bad topic"), -1);
    assert_int_equal(errno, EINVAL);
    char name[32];
    for (int i = 0; i < TOPICS_PER_PEER_MAX; i++) {
        snprintf(name, sizeof name, "t%d", i);
        assert_int_equal(topics_subscribe(t, "a", name), 0);
    }
    assert_int_equal(topics_subscribe(t, "a", "one-more"), -1);
    assert_int_equal(errno, E2BIG);
    assert_int_equal(topics_subscribe(t, "a", "t0"), 0); /* already held: fine */
    topics_drop_peer(t, "a");
    assert_int_equal(topics_count(t, "a"), 0);
    topics_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_and_prefix),   cmocka_unit_test(test_each_peer_once),
        cmocka_unit_test(test_unsubscribe_and_drop), cmocka_unit_test(test_list_sorted),
        cmocka_unit_test(test_validity_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
