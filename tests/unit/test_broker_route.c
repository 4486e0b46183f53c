/* route and service: the broker's decision for each message, and its
 * answers to messages addressed to "broker", without any socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "registry.h"
#include "route.h"
#include "service.h"
#include "stats.h"
#include "topics.h"

/* route_decide on a fresh envelope's head (head_read, as the broker reads
 * it); returns the action, fills *r. r->dest and r->topic point into the
 * head, so they are copied before it goes. */
static route_action_t s_route(reg_t *reg, const char *sender, const char *type, const char *to,
                              const char *extra, route_t *r)
{
    static char where[256];
    char text[512];
    snprintf(text, sizeof text, "{\"v\":1,\"type\":\"%s\",\"to\":\"%s\",\"id\":5,\"re\":null,"
             "\"body\":{}%s}", type, to, extra ? extra : "");
    head_t head;
    env_err_t err;
    assert_int_equal(head_read(text, strlen(text), &head, &err), 0);
    route_decide(&head, sender, reg, r);
    const char **p = r->dest ? &r->dest : r->topic ? &r->topic : NULL;
    if (p) {
        snprintf(where, sizeof where, "%s", *p);
        *p = where;
    }
    return r->action;
}

static void test_sender_names(void **state)
{
    (void) state;
    char name[ENV_NAME_MAX + 1];
    assert_true(route_sender_valid("sup1", 4, name, sizeof name));
    assert_string_equal(name, "sup1");
    /* ZeroMQ's generated ids: 5 bytes starting with 0. */
    assert_false(route_sender_valid("\0\x6b\x8b\x45\x67", 5, name, sizeof name));
    assert_false(route_sender_valid("a\0b", 3, name, sizeof name));
    assert_false(route_sender_valid("broker", 6, name, sizeof name));
    assert_false(route_sender_valid("", 0, name, sizeof name));
    assert_false(route_sender_valid("bad name", 8, name, sizeof name));
    char big[ENV_NAME_MAX + 1];
    memset(big, 'x', sizeof big);
    assert_false(route_sender_valid(big, sizeof big, name, sizeof name));
    assert_true(route_sender_valid(big, ENV_NAME_MAX, name, sizeof name));
}

static void test_frames_and_size(void **state)
{
    (void) state;
    route_t r;
    assert_true(route_check_frames(1, 100, 4096, &r));
    assert_true(route_check_frames(1, 4096, 4096, &r));
    assert_false(route_check_frames(1, 4097, 4096, &r));
    assert_string_equal(r.code, "too_large");
    assert_false(route_check_frames(2, 10, 4096, &r));
    assert_string_equal(r.code, "bad_envelope");
    assert_false(route_check_frames(0, 0, 4096, &r));
    assert_string_equal(r.code, "bad_envelope");
}

static void test_decode_failures(void **state)
{
    (void) state;
    route_t r;
    env_err_t err;
    assert_null(env_decode("nope", 4, &err));
    route_decode_failed(&err, &r);
    assert_int_equal(r.action, ROUTE_ERROR);
    assert_string_equal(r.code, "bad_json");
    head_t head;
    assert_int_equal(head_read("{\"v\":1}", 7, &head, &err), -1);
    route_decode_failed(&err, &r);
    assert_string_equal(r.code, "bad_envelope");
    assert_string_equal(r.message, "\"type\" must be a short string");
    env_err_set(&err, "weird", "x");
    route_decode_failed(&err, &r);
    assert_string_equal(r.code, "internal");
}

static void test_session_rules(void **state)
{
    (void) state;
    reg_t *reg = reg_new();
    route_t r;
    /* Unregistered: only hello to the broker passes. */
    assert_int_equal(s_route(reg, "a", "hello", "broker", NULL, &r), ROUTE_BROKER);
    assert_int_equal(s_route(reg, "a", "stats", "broker", NULL, &r), ROUTE_ERROR);
    assert_string_equal(r.code, "unknown_session");
    assert_int_equal(s_route(reg, "a", "hello", "b", NULL, &r), ROUTE_ERROR);
    assert_string_equal(r.code, "unknown_session");
    /* A routing id that is not a name never gets a session. */
    assert_int_equal(s_route(reg, NULL, "hello", "broker", NULL, &r), ROUTE_ERROR);
    assert_string_equal(r.code, "unknown_session");
    reg_hello(reg, "a", "client", "1", 0, NULL);
    assert_int_equal(s_route(reg, "a", "stats", "broker", NULL, &r), ROUTE_BROKER);
    reg_destroy(&reg);
}

static void test_destinations(void **state)
{
    (void) state;
    reg_t *reg = reg_new();
    reg_hello(reg, "a", "client", "1", 0, NULL);
    reg_hello(reg, "sup1", "supervisor", "1", 0, NULL);
    route_t r;
    assert_int_equal(s_route(reg, "a", "spawn", "sup1", NULL, &r), ROUTE_FORWARD);
    assert_string_equal(r.dest, "sup1");
    assert_int_equal(s_route(reg, "a", "spawn", "sup2", NULL, &r), ROUTE_ERROR);
    assert_string_equal(r.code, "unknown_destination");
    assert_int_equal(s_route(reg, "a", "event", "topic:tree/7", NULL, &r), ROUTE_PUBLISH);
    assert_string_equal(r.topic, "tree/7");
    assert_int_equal(s_route(reg, "a", "event", "topic:", NULL, &r), ROUTE_ERROR);
    assert_string_equal(r.code, "unknown_destination");
    assert_int_equal(s_route(reg, "a", "event", "topic:a b", NULL, &r), ROUTE_ERROR);
    /* Known types the broker does not handle. */
    assert_int_equal(s_route(reg, "a", "spawn", "broker", NULL, &r), ROUTE_ERROR);
    assert_string_equal(r.code, "bad_request");
    assert_int_equal(s_route(reg, "a", "welcome", "broker", NULL, &r), ROUTE_ERROR);
    assert_true(route_broker_type("unsubscribe"));
    assert_false(route_broker_type("event"));
    reg_destroy(&reg);
}

static void test_spoofed_sender(void **state)
{
    (void) state;
    reg_t *reg = reg_new();
    reg_hello(reg, "a", "client", "1", 0, NULL);
    reg_hello(reg, "b", "client", "1", 0, NULL);
    route_t r;
    assert_int_equal(s_route(reg, "a", "status", "b", ",\"from\":\"a\"", &r), ROUTE_FORWARD);
    assert_int_equal(s_route(reg, "a", "status", "b", ",\"from\":\"b\"", &r), ROUTE_ERROR);
    assert_string_equal(r.code, "spoofed_sender");
    assert_int_equal(s_route(reg, "a", "status", "b", ",\"from\":null", &r), ROUTE_ERROR);
    assert_string_equal(r.code, "spoofed_sender");
    /* Even a hello cannot claim another name. */
    assert_int_equal(s_route(reg, "c", "hello", "broker", ",\"from\":\"a\"", &r), ROUTE_ERROR);
    assert_string_equal(r.code, "spoofed_sender");
    reg_destroy(&reg);
}

/* ---- service ----------------------------------------------------------- */

typedef struct {
    reg_t *reg;
    topics_t *topics;
    stats_t stats;
    svc_t svc;
} s_fix_t;

static int s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof *f);
    f->reg = reg_new();
    f->topics = topics_new();
    f->svc = (svc_t){.reg = f->reg, .topics = f->topics, .stats = &f->stats,
                     .incarnation = "brk1", .heartbeat_ms = 1000, .expiry_ms = 5000};
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    reg_destroy(&f->reg);
    topics_destroy(&f->topics);
    free(f);
    return 0;
}

static void s_serve(s_fix_t *f, const char *sender, const char *type, const char *body,
                    int64_t now, svc_out_t *out)
{
    char text[512];
    snprintf(text, sizeof text, "{\"v\":1,\"type\":\"%s\",\"to\":\"broker\",\"id\":1,\"re\":null,"
             "\"body\":%s}", type, body);
    env_t *env = env_decode(text, strlen(text), NULL);
    assert_non_null(env);
    svc_handle(&f->svc, env, sender, now, out);
    env_destroy(&env);
}

static const char *s_kind(const cJSON *event)
{
    return env_str(event, "kind");
}

static void test_hello_welcome_and_events(void **state)
{
    s_fix_t *f = *state;
    svc_out_t out;
    s_serve(f, "a", "hello", "{\"role\":\"client\",\"incarnation\":\"i1\"}", 10, &out);
    assert_null(out.code);
    assert_string_equal(out.reply, "welcome");
    assert_string_equal(env_str(out.body, "broker"), "brk1");
    assert_int_equal(env_int(out.body, "heartbeat_ms", 0), 1000);
    assert_int_equal(env_int(out.body, "expiry_ms", 0), 5000);
    assert_int_equal(out.nevents, 1);
    assert_string_equal(s_kind(out.events[0]), "peer_joined");
    assert_string_equal(env_str(out.events[0], "role"), "client");
    svc_out_clear(&out);

    /* Same incarnation: welcomed, no event, subscriptions kept. */
    topics_subscribe(f->topics, "a", "tree/");
    s_serve(f, "a", "hello", "{\"role\":\"client\",\"incarnation\":\"i1\"}", 20, &out);
    assert_int_equal(out.nevents, 0);
    assert_int_equal(topics_count(f->topics, "a"), 1);
    svc_out_clear(&out);

    /* New incarnation: its subscriptions gone (tree/ had no other
     * subscriber: interest removed), lost (replaced) + joined. */
    s_serve(f, "a", "hello", "{\"role\":\"client\",\"incarnation\":\"i2\"}", 30, &out);
    assert_int_equal(out.nevents, 3);
    assert_string_equal(s_kind(out.events[0]), "interest");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(out.events[0], "removed"), 0)->valuestring,
                        "tree/");
    assert_string_equal(s_kind(out.events[1]), "peer_lost");
    assert_string_equal(env_str(out.events[1], "reason"), "replaced");
    assert_string_equal(s_kind(out.events[2]), "peer_joined");
    assert_int_equal(topics_count(f->topics, "a"), 0);
    svc_out_clear(&out);
}

static void test_bad_requests(void **state)
{
    s_fix_t *f = *state;
    const char *cases[][2] = {
        {"hello", "{\"role\":\"admin\",\"incarnation\":\"i\"}"},
        /* Workers report over their notify fd: not a broker role. */
        {"hello", "{\"role\":\"worker\",\"incarnation\":\"i\"}"},
        {"hello", "{\"role\":\"client\"}"},
        {"hello", "{\"role\":\"client\",\"incarnation\":7}"},
        {"subscribe", "{}"},
        {"subscribe", "{\"topics\":\"x\"}"},
        {"subscribe", "{\"topics\":[\"ok\",{}]}"},
        {"unsubscribe", "{\"topics\":[\"\"]}"},
    };
    reg_hello(f->reg, "a", "client", "1", 0, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        svc_out_t out;
        s_serve(f, "a", cases[i][0], cases[i][1], 0, &out);
        if (!out.code || strcmp(out.code, "bad_request") != 0)
            fail_msg("%s %s: expected bad_request", cases[i][0], cases[i][1]);
        assert_null(out.reply);
        svc_out_clear(&out);
    }
    /* Nothing half-done: the bad subscribe left no subscription. */
    assert_int_equal(topics_count(f->topics, "a"), 0);
}

static void test_subscribe_unsubscribe(void **state)
{
    s_fix_t *f = *state;
    reg_hello(f->reg, "a", "client", "1", 0, NULL);
    svc_out_t out;
    s_serve(f, "a", "subscribe", "{\"topics\":[\"tree/\",\"peers\"]}", 0, &out);
    assert_string_equal(out.reply, "subscribed");
    char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(out.body, "topics"));
    assert_string_equal(text, "[\"peers\",\"tree/\"]");
    cJSON_free(text);
    svc_out_clear(&out);
    s_serve(f, "a", "unsubscribe", "{\"topics\":[\"peers\"]}", 0, &out);
    text = cJSON_PrintUnformatted(cJSON_GetObjectItem(out.body, "topics"));
    assert_string_equal(text, "[\"tree/\"]");
    cJSON_free(text);
    svc_out_clear(&out);
}

/* The interest a supervisor is told: a snapshot when it subscribes to
 * "interest", then a change only when a tree topic gains its first
 * subscriber or loses its last (unsubscribe, bye). */
static const char *s_first(const cJSON *event, const char *key)
{
    const cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItem(event, key), 0);
    return item ? item->valuestring : NULL;
}

static void test_interest(void **state)
{
    s_fix_t *f = *state;
    svc_out_t out;
    const char *hello = "{\"role\":\"client\",\"incarnation\":\"i1\"}";
    s_serve(f, "c1", "hello", hello, 1, &out);
    svc_out_clear(&out);
    s_serve(f, "c2", "hello", hello, 1, &out);
    svc_out_clear(&out);
    s_serve(f, "sup", "hello", "{\"role\":\"supervisor\",\"incarnation\":\"s1\"}", 1, &out);
    svc_out_clear(&out);

    s_serve(f, "c1", "subscribe", "{\"topics\":[\"tree/t1\",\"peers\"]}", 2, &out);
    assert_int_equal(out.nevents, 1); /* peers is not told */
    assert_string_equal(s_kind(out.events[0]), "interest");
    assert_string_equal(env_str(out.events[0], "topic"), "interest");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(out.events[0], "snapshot")));
    assert_string_equal(s_first(out.events[0], "added"), "tree/t1");
    assert_null(s_first(out.events[0], "removed"));
    assert_null(out.direct);
    svc_out_clear(&out);

    /* A second subscriber of the same topic changes nothing to tell. */
    s_serve(f, "c2", "subscribe", "{\"topics\":[\"tree/t1\"]}", 3, &out);
    assert_int_equal(out.nevents, 0);
    svc_out_clear(&out);

    /* The supervisor's subscription: the snapshot, to it alone. */
    s_serve(f, "sup", "subscribe", "{\"topics\":[\"interest\"]}", 4, &out);
    assert_int_equal(out.nevents, 0);
    assert_non_null(out.direct);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(out.direct, "snapshot")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(out.direct, "added")), 1);
    assert_string_equal(s_first(out.direct, "added"), "tree/t1");
    svc_out_clear(&out);

    /* The last subscriber leaves: removed; not before. */
    s_serve(f, "c1", "unsubscribe", "{\"topics\":[\"tree/t1\"]}", 5, &out);
    assert_int_equal(out.nevents, 0);
    svc_out_clear(&out);
    s_serve(f, "c2", "bye", "{}", 6, &out);
    assert_true(out.nevents >= 1);
    assert_string_equal(s_kind(out.events[0]), "interest");
    assert_string_equal(s_first(out.events[0], "removed"), "tree/t1");
    svc_out_clear(&out);

    /* A peer that expires (broker.c): the same, through svc_drop_peer. */
    topics_subscribe(f->topics, "c1", "tree/t2");
    cJSON *ev = svc_drop_peer(&f->svc, "c1");
    assert_non_null(ev);
    assert_string_equal(s_first(ev, "removed"), "tree/t2");
    cJSON_Delete(ev);
    assert_null(svc_drop_peer(&f->svc, "c1")); /* nothing left to tell */
}

static void test_peers_stats_bye(void **state)
{
    s_fix_t *f = *state;
    reg_hello(f->reg, "b", "supervisor", "i", 100, NULL);
    reg_hello(f->reg, "a", "client", "i", 400, NULL);
    svc_out_t out;
    s_serve(f, "a", "peers", "{}", 1000, &out);
    assert_string_equal(out.reply, "peers");
    cJSON *list = cJSON_GetObjectItem(out.body, "peers");
    assert_int_equal(cJSON_GetArraySize(list), 2);
    cJSON *first = cJSON_GetArrayItem(list, 0);
    assert_string_equal(env_str(first, "name"), "a");
    assert_int_equal(env_int(first, "idle_ms", -1), 600);
    assert_int_equal(env_int(cJSON_GetArrayItem(list, 1), "idle_ms", -1), 900);
    svc_out_clear(&out);

    stats_error(&f->stats, "bad_json");
    stats_error(&f->stats, "bad_json");
    stats_error(&f->stats, "no_such_code"); /* counted as internal */
    f->stats.received = 9;
    s_serve(f, "a", "stats", "{}", 1000, &out);
    assert_string_equal(out.reply, "stats");
    cJSON *counters = cJSON_GetObjectItem(out.body, "counters");
    cJSON *errors = cJSON_GetObjectItem(out.body, "errors");
    assert_int_equal(env_int(counters, "received", -1), 9);
    assert_int_equal(env_int(counters, "errors", -1), 3);
    assert_int_equal(env_int(errors, "bad_json", -1), 2);
    assert_int_equal(env_int(errors, "internal", -1), 1);
    assert_int_equal(env_int(errors, "spoofed_sender", -1), 0);
    assert_int_equal(env_int(out.body, "peers", -1), 2);
    cJSON *roles = cJSON_GetObjectItem(out.body, "peers_by_role");
    assert_int_equal(env_int(roles, "supervisor", -1), 1);
    assert_int_equal(env_int(roles, "client", -1), 1);
    assert_null(cJSON_GetObjectItem(roles, "worker")); /* not a role */
    svc_out_clear(&out);

    topics_subscribe(f->topics, "a", "peers");
    s_serve(f, "a", "bye", "{}", 1000, &out);
    assert_null(out.reply);
    assert_null(out.code);
    assert_int_equal(out.nevents, 1);
    assert_string_equal(env_str(out.events[0], "reason"), "bye");
    assert_null(reg_lookup(f->reg, "a"));
    assert_int_equal(topics_count(f->topics, "a"), 0);
    svc_out_clear(&out);

    s_serve(f, "b", "heartbeat", "{}", 1000, &out);
    assert_null(out.reply);
    assert_null(out.code);
    svc_out_clear(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sender_names),
        cmocka_unit_test(test_frames_and_size),
        cmocka_unit_test(test_decode_failures),
        cmocka_unit_test(test_session_rules),
        cmocka_unit_test(test_destinations),
        cmocka_unit_test(test_spoofed_sender),
        cmocka_unit_test_setup_teardown(test_hello_welcome_and_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_unsubscribe, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peers_stats_bye, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_interest, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
