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
    assert_false(s_allows("worker", "sup1.t.1", "spawn", "sup1", "supervisor"));
    assert_false(s_allows("worker", "sup1.t.1", "cancel", "sup1", "supervisor"));
}

static void test_workers_report_to_their_own_supervisor_only(void **state)
{
    (void) state;
    assert_true(s_allows("worker", "sup1.t7.3", "node_phase", "sup1", "supervisor"));
    /* Another supervisor: refused, and the reason names both. */
    assert_false(s_allows("worker", "sup1.t7.3", "node_phase", "sup2", "supervisor"));
    assert_non_null(strstr(s_why, "sup2"));
    assert_non_null(strstr(s_why, "sup1.t7.3"));
    /* A prefix of the name that is not followed by a dot is not the owner. */
    assert_false(s_allows("worker", "sup10.t.1", "node_phase", "sup1", "supervisor"));
    /* The owner must be a supervisor. */
    assert_false(s_allows("worker", "sup1.t.1", "node_phase", "sup1", "client"));
    /* A worker sends nothing else to anyone... */
    assert_false(s_allows("worker", "sup1.t.1", "report", "ctl-1", "client"));
    assert_false(s_allows("worker", "sup1.t.1", "status", "sup1", "supervisor"));
    assert_false(s_allows("worker", "sup1.t.1", "node_phase", "sup1.t.2", "worker"));
    /* ...and publishes nothing. */
    assert_false(s_allows("worker", "sup1.t.1", "event", "topic:tree/t", NULL));
}

static void test_node_phase_only_from_workers(void **state)
{
    (void) state;
    /* A client (or supervisor) named like a worker is still not one. */
    assert_false(s_allows("client", "sup1.t.1", "node_phase", "sup1", "supervisor"));
    assert_non_null(strstr(s_why, "only workers"));
    assert_false(s_allows("supervisor", "sup2", "node_phase", "sup1", "supervisor"));
}

static void test_only_its_supervisor_talks_to_a_worker(void **state)
{
    (void) state;
    assert_true(s_allows("supervisor", "sup1", "node_cancel", "sup1.t.4", "worker"));
    assert_true(s_allows("supervisor", "sup1", "node_children_exited", "sup1.t.4", "worker"));
    /* Another supervisor, a client: refused. */
    assert_false(s_allows("supervisor", "sup2", "node_cancel", "sup1.t.4", "worker"));
    assert_false(s_allows("client", "ctl-1", "node_cancel", "sup1.t.4", "worker"));
    assert_false(s_allows("client", "ctl-1", "status", "sup1.t.4", "worker"));
    /* node_cancel to a peer that is not a worker: refused whoever sends it. */
    assert_false(s_allows("client", "ctl-1", "node_cancel", "sup1", "supervisor"));
    assert_false(s_allows("supervisor", "sup1", "node_children_exited", "ctl-1", "client"));
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
    assert_false(s_allows("worker", "sup1.t.1", "logs", "sup1", "supervisor"));
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
    const char *roles[] = {"client", "supervisor", "worker"};
    for (size_t i = 0; i < 3; i++) {
        assert_true(s_allows(roles[i], "x", "hello", "broker", NULL));
        assert_true(s_allows(roles[i], "x", "heartbeat", "broker", NULL));
        assert_true(s_allows(roles[i], "x", "bye", "broker", NULL));
        assert_true(s_allows(roles[i], "x", "peers", "broker", NULL));
    }
    assert_true(s_allows("client", "ctl-1", "subscribe", "broker", NULL));
    /* A worker (a user program) does not get to watch every tree. */
    assert_false(s_allows("worker", "sup1.t.1", "subscribe", "broker", NULL));
    assert_false(s_allows("worker", "sup1.t.1", "unsubscribe", "broker", NULL));
}

static void test_other_traffic_between_clients_and_supervisors(void **state)
{
    (void) state;
    /* Types without a rule (e.g. a new query) flow between clients and
     * supervisors, never from or to workers. */
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

static bool s_identity(const char *key_role, const char *key_name, const char *name,
                       const char *role)
{
    s_why[0] = 0;
    bool ok = policy_identity(key_role, key_name, name, role, s_why, sizeof s_why);
    if (!ok)
        assert_true(strlen(s_why) > 0);
    return ok;
}

static void test_identity_supervisor_key(void **state)
{
    (void) state;
    assert_true(s_identity("supervisor", "sup1", "sup1", "supervisor"));
    /* Its workers share its key, under its name only. */
    assert_true(s_identity("supervisor", "sup1", "sup1.t.3", "worker"));
    assert_false(s_identity("supervisor", "sup1", "sup2.t.3", "worker"));
    assert_false(s_identity("supervisor", "sup1", "sup1", "worker"));
    /* Not another supervisor, not a client. */
    assert_false(s_identity("supervisor", "sup1", "sup2", "supervisor"));
    assert_non_null(strstr(s_why, "sup1"));
    assert_false(s_identity("supervisor", "sup1", "sup1.ctl-1", "client"));
}

static void test_identity_client_key(void **state)
{
    (void) state;
    assert_true(s_identity("client", "alice", "alice", "client"));
    assert_true(s_identity("client", "alice", "alice.ctl-12-ab", "client"));
    assert_false(s_identity("client", "alice", "bob.ctl-12-ab", "client"));
    assert_false(s_identity("client", "alice", "alicex", "client"));
    /* A client key never registers a supervisor or a worker. */
    assert_false(s_identity("client", "alice", "alice", "supervisor"));
    assert_false(s_identity("client", "alice", "alice.t.1", "worker"));
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
    assert_true(s_identity("supervisor", NULL, "supX.t.1", "worker"));
    /* A broker's key, or a role nobody knows, registers nothing. */
    assert_false(s_identity("broker", "broker", "broker", "client"));
    assert_false(s_identity("admin", "root", "root", "supervisor"));
    assert_false(s_identity("client", "alice", "alice", "king"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clients_spawn_and_cancel),
        cmocka_unit_test(test_workers_report_to_their_own_supervisor_only),
        cmocka_unit_test(test_node_phase_only_from_workers),
        cmocka_unit_test(test_only_its_supervisor_talks_to_a_worker),
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
