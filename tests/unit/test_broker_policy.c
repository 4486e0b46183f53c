/* policy: who may send what to whom (docs/SECURITY.md). Each test is one
 * rule, read as "role sends type to destination (its role): allowed?". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "policy.h"

static char s_why[256];

static bool s_allows(const char *role, const char *name, const char *type, const char *to,
                     const char *to_role)
{
    policy_msg_t m = {.role = role, .name = name, .type = type, .to = to, .to_role = to_role};
    s_why[0] = 0;
    bool ok = policy_allows(&m, s_why, sizeof s_why);
    if (!ok)
        assert_true(strlen(s_why) > 0); /* a refusal always says why */
    return ok;
}

static bool s_identity(const char *key_role, const char *key_name, const char *name,
                       const char *role)
{
    s_why[0] = 0;
    bool ok = policy_identity(key_role, key_name, name, role, s_why, sizeof s_why);
    if (!ok)
        assert_true(strlen(s_why) > 0);
    return ok;
}

static void test_clients_spawn_and_cancel(void **state)
{
    (void) state;
    assert_true(s_allows("client", "ctl-1", "spawn", "sup1", "supervisor"));
    assert_true(s_allows("client", "ctl-1", "cancel", "sup1", "supervisor"));
    assert_true(s_allows("client", "ctl-1", "status", "sup1", "supervisor"));
    assert_true(s_allows("client", "ctl-1", "list", "sup1", "supervisor"));
    assert_true(s_allows("client", "ctl-1", "stats", "sup1", "supervisor"));
    /* A supervisor places a subtree ("on") on another supervisor. */
    assert_true(s_allows("supervisor", "sup2", "spawn", "sup1", "supervisor"));
    assert_true(s_allows("supervisor", "sup2", "cancel", "sup1", "supervisor"));
    /* Nobody else spawns or cancels. */
    assert_false(s_allows("supervisor", "sup2", "spawn", "ctl-1", "client"));
    assert_non_null(strstr(s_why, "only clients"));
}

/* Workers report over their notify fd, never through the broker: "worker"
 * is not a role. A peer that claimed it (the registry refuses its hello)
 * could send nothing, and nothing goes to one. */
static void test_a_worker_is_not_a_role(void **state)
{
    (void) state;
    const char *types[] = {"hello", "heartbeat", "peers", "subscribe", "status", "event"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        assert_false(s_allows("worker", "sup1.t.1", types[i], "broker", NULL));
        assert_non_null(strstr(s_why, "not a role"));
        assert_false(s_allows("worker", "sup1.t.1", types[i], "sup1", "supervisor"));
        assert_false(s_allows("worker", "sup1.t.1", types[i], "topic:tree/t", NULL));
        /* Not even its own supervisor reaches a peer registered as one. */
        assert_false(s_allows("supervisor", "sup1", types[i], "sup1.t.1", "worker"));
        assert_non_null(strstr(s_why, "not a role"));
        assert_non_null(strstr(s_why, "sup1.t.1")); /* names the destination */
        assert_false(s_allows("client", "ctl-1", types[i], "sup1.t.1", "worker"));
    }
    /* No role at all: refused too. */
    assert_false(s_allows(NULL, "x", "hello", "broker", NULL));
    assert_false(s_allows("client", "ctl-1", "status", "x", NULL));
    /* With CURVE no key registers one, not even its supervisor's. */
    assert_false(s_identity("supervisor", "sup1", "sup1.t.3", "worker"));
    assert_non_null(strstr(s_why, "unknown role"));
    assert_false(s_identity("supervisor", NULL, "supX.t.1", "worker"));
    assert_false(s_identity("client", "alice", "alice.t.1", "worker"));
    /* And a key whose certificate says "worker" registers nothing. */
    assert_false(s_identity("worker", "sup1", "sup1", "supervisor"));
    assert_false(s_identity("worker", "sup1", "sup1.t.1", "client"));
    assert_false(s_identity("worker", "", "sup1.t.1", "worker"));
}

static void test_supervisor_answers_and_events(void **state)
{
    (void) state;
    const char *answers[] = {"spawned", "report", "cancelling", "trees", "event"};
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        assert_true(s_allows("supervisor", "sup1", answers[i], "ctl-1", "client"));
        /* A client cannot fake a supervisor's answer to another client. */
        assert_false(s_allows("client", "ctl-2", answers[i], "ctl-1", "client"));
    }
    assert_true(s_allows("supervisor", "sup1", "error", "ctl-1", "client"));
    assert_true(s_allows("supervisor", "sup1", "stats", "ctl-1", "client"));
}

/* logs is a request (to a supervisor) and an answer (from one). */
static void test_logs_request_and_answer(void **state)
{
    (void) state;
    assert_true(s_allows("client", "ctl-1", "logs", "sup1", "supervisor"));
    assert_true(s_allows("supervisor", "sup1", "logs", "ctl-1", "client"));
    assert_false(s_allows("client", "ctl-2", "logs", "ctl-1", "client"));
}

static void test_topics(void **state)
{
    (void) state;
    assert_true(s_allows("supervisor", "sup1", "event", "topic:tree/t1", NULL));
    /* Tree events come from supervisors only: a fake "done" could end a
     * client's wait. */
    assert_false(s_allows("client", "ctl-1", "event", "topic:tree/t1", NULL));
    /* "peers" is the broker's: nobody else publishes on it. */
    assert_false(s_allows("supervisor", "sup1", "event", "topic:peers", NULL));
}

static void test_broker_messages(void **state)
{
    (void) state;
    const char *roles[] = {"client", "supervisor"};
    for (size_t i = 0; i < 2; i++) {
        assert_true(s_allows(roles[i], "x", "hello", "broker", NULL));
        assert_true(s_allows(roles[i], "x", "heartbeat", "broker", NULL));
        assert_true(s_allows(roles[i], "x", "bye", "broker", NULL));
        assert_true(s_allows(roles[i], "x", "peers", "broker", NULL));
    }
    assert_true(s_allows("client", "ctl-1", "subscribe", "broker", NULL));
    assert_true(s_allows("client", "ctl-1", "unsubscribe", "broker", NULL));
    assert_true(s_allows("supervisor", "sup1", "subscribe", "broker", NULL));
}

static void test_other_traffic_between_clients_and_supervisors(void **state)
{
    (void) state;
    /* Types without a rule (e.g. a new query) flow between clients and
     * supervisors. */
    assert_true(s_allows("client", "ctl-1", "status", "ctl-2", "client"));
    assert_true(s_allows("supervisor", "sup1", "status", "ctl-1", "client"));
    assert_true(s_allows("client", "ctl-1", "subscribed", "sup1", "supervisor"));
}

static void test_owns(void **state)
{
    (void) state;
    assert_true(policy_owns("sup1", "sup1.t.1"));
    assert_true(policy_owns("sup1", "sup1.x"));
    assert_false(policy_owns("sup1", "sup1"));
    assert_false(policy_owns("sup1", "sup1."));
    assert_false(policy_owns("sup1", "sup10.t.1"));
    assert_false(policy_owns("", "x.y"));
    assert_false(policy_owns(NULL, "x.y"));
}

static void test_identity_supervisor_key(void **state)
{
    (void) state;
    assert_true(s_identity("supervisor", "sup1", "sup1", "supervisor"));
    /* Not another supervisor, not a client, not a name under its own. */
    assert_false(s_identity("supervisor", "sup1", "sup2", "supervisor"));
    assert_non_null(strstr(s_why, "sup1"));
    assert_false(s_identity("supervisor", "sup1", "sup1.ctl-1", "client"));
    assert_false(s_identity("supervisor", "sup1", "sup1.t.3", "supervisor"));
}

static void test_identity_client_key(void **state)
{
    (void) state;
    assert_true(s_identity("client", "alice", "alice", "client"));
    assert_true(s_identity("client", "alice", "alice.ctl-12-ab", "client"));
    assert_false(s_identity("client", "alice", "bob.ctl-12-ab", "client"));
    assert_false(s_identity("client", "alice", "alicex", "client"));
    /* A client key never registers a supervisor. */
    assert_false(s_identity("client", "alice", "alice", "supervisor"));
    /* No role in the certificate: a client. */
    assert_true(s_identity("", "alice", "alice.1", "client"));
    assert_true(s_identity(NULL, "alice", "alice.1", "client"));
    assert_false(s_identity(NULL, "alice", "alice", "supervisor"));
}

static void test_identity_unnamed_keys_and_odd_roles(void **state)
{
    (void) state;
    /* Without a name the key keeps its role but may take any name. */
    assert_true(s_identity("client", "", "anything", "client"));
    assert_true(s_identity("supervisor", NULL, "supX", "supervisor"));
    /* A broker's key, or a role nobody knows, registers nothing. */
    assert_false(s_identity("broker", "broker", "broker", "client"));
    assert_false(s_identity("admin", "root", "root", "supervisor"));
    assert_false(s_identity("client", "alice", "alice", "king"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clients_spawn_and_cancel),
        cmocka_unit_test(test_a_worker_is_not_a_role),
        cmocka_unit_test(test_supervisor_answers_and_events),
        cmocka_unit_test(test_logs_request_and_answer),
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_broker_messages),
        cmocka_unit_test(test_other_traffic_between_clients_and_supervisors),
        cmocka_unit_test(test_owns),
        cmocka_unit_test(test_identity_supervisor_key),
        cmocka_unit_test(test_identity_client_key),
        cmocka_unit_test(test_identity_unnamed_keys_and_odd_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
