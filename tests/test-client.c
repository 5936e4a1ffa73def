/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of what smimed keeps per client: the limits on calls and
 * spool space, and the turns of queued work. No bus. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client.h"

static ClientTable *table(sd_event *e, unsigned per_client, unsigned per_user, unsigned total) {
        ClientTable *t = NULL;

        assert_int_equal(client_table_new(e, &t), 0);
        client_table_set_limits(t, &(ClientLimits) {
                                           .max_calls_per_client = per_client,
                                           .max_calls_per_user = per_user,
                                           .max_calls = total,
                                           .spool_quota_per_client = 1000,
                                           .spool_quota = 1500,
                                   });
        return t;
}

static void expect_refused(ClientTable *t, const char *sender, uid_t uid, uint64_t serial, const char *key) {
        _cleanup_free_ char *message = NULL;

        assert_int_equal(client_call_begin(t, sender, uid, serial, &message), -EUSERS);
        assert_non_null(message);
        if (!strstr(message, key))
                fail_msg("\"%s\" does not name %s", message, key);
}

static void test_limits(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(client_table_freep) ClientTable *t = NULL;

        (void) state;
        assert_int_equal(sd_event_new(&e), 0);
        t = table(e, 3, 4, 6);

        for (uint64_t serial = 1; serial <= 3; serial++)
                assert_int_equal(client_call_begin(t, ":1.1", 1000, serial, NULL), 1);
        /* The same call dispatched again (after polkit) is not counted twice. */
        assert_int_equal(client_call_begin(t, ":1.1", 1000, 2, NULL), 0);
        expect_refused(t, ":1.1", 1000, 4, "MaxCallsPerClient");
        assert_int_equal(client_calls(t, ":1.1"), 3U);

        /* Another connection of the same user: the user's limit. */
        assert_int_equal(client_call_begin(t, ":1.2", 1000, 1, NULL), 1);
        expect_refused(t, ":1.2", 1000, 2, "MaxCallsPerUser");

        /* Other users: everyone's limit. */
        assert_int_equal(client_call_begin(t, ":1.3", 1001, 1, NULL), 1);
        assert_int_equal(client_call_begin(t, ":1.3", 1001, 2, NULL), 1);
        expect_refused(t, ":1.4", 1002, 1, "MaxCalls=");
        assert_int_equal(client_table_calls(t), 6U);

        /* A call that ends makes room; ending one never begun changes nothing. */
        client_call_end(t, ":1.1", 99);
        client_call_end(t, ":1.1", 1);
        assert_int_equal(client_table_calls(t), 5U);
        assert_int_equal(client_call_begin(t, ":1.4", 1002, 1, NULL), 1);

        /* A client that leaves takes its calls out of every count. */
        assert_int_equal(client_table_forget(t, ":1.1"), 0U);
        assert_int_equal(client_calls(t, ":1.1"), 0U);
        assert_int_equal(client_table_calls(t), 4U);
        assert_int_equal(client_call_begin(t, ":1.2", 1000, 2, NULL), 1);
        client_call_end(t, ":1.1", 2); /* after it left: nothing */
        assert_int_equal(client_table_calls(t), 5U);
}

static void test_spool_quota(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(client_table_freep) ClientTable *t = NULL;
        _cleanup_free_ char *m1 = NULL, *m2 = NULL;

        (void) state;
        assert_int_equal(sd_event_new(&e), 0);
        t = table(e, 10, 10, 10);
        assert_int_equal(client_call_begin(t, ":1.1", 1000, 1, NULL), 1);
        assert_int_equal(client_call_begin(t, ":1.2", 1001, 1, NULL), 1);

        assert_int_equal(client_spool_charge(t, ":1.1", 600, NULL), 0);
        assert_int_equal(client_spool_charge(t, ":1.1", 401, &m1), -EDQUOT);
        assert_non_null(strstr(m1, "SpoolQuotaPerClient"));
        assert_int_equal(client_spool_charge(t, ":1.1", 400, NULL), 0);
        assert_int_equal(client_spool_charge(t, ":1.2", 501, &m2), -EDQUOT);
        assert_non_null(strstr(m2, "SpoolQuota="));
        assert_int_equal(client_spool_charge(t, ":1.2", 500, NULL), 0);
        assert_int_equal(client_table_spooled(t), 1500U);

        /* Given back after the client left, the total still falls. */
        assert_int_equal(client_table_forget(t, ":1.1"), 0U);
        assert_int_equal(client_table_spooled(t), 1500U);
        client_spool_release(t, ":1.1", 1000);
        assert_int_equal(client_table_spooled(t), 500U);
        client_spool_release(t, ":1.2", 500);
        assert_int_equal(client_table_spooled(t), 0U);
}

typedef struct Ran {
        char order[64];
        size_t n;
        unsigned freed;
} Ran;

typedef struct Item {
        Ran *ran;
        char name;
} Item;

static void run_item(void *userdata) {
        Item *i = userdata;

        i->ran->order[i->ran->n++] = i->name;
}

static void free_item(void *userdata) {
        Item *i = userdata;

        i->ran->freed++;
        free(i);
}

static void queue(ClientTable *t, const char *sender, Ran *ran, char name) {
        Item *i = calloc(1, sizeof(Item));

        assert_non_null(i);
        *i = (Item) { ran, name };
        assert_int_equal(client_queue_work(t, sender, run_item, i, free_item), 0);
}

static void test_turns(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(client_table_freep) ClientTable *t = NULL;
        Ran ran = {};

        (void) state;
        assert_int_equal(sd_event_new(&e), 0);
        t = table(e, 10, 10, 10);
        for (uint64_t s = 1; s <= 4; s++)
                assert_int_equal(client_call_begin(t, ":1.1", 1000, s, NULL), 1);
        assert_int_equal(client_call_begin(t, ":1.2", 1001, 1, NULL), 1);
        assert_int_equal(client_call_begin(t, ":1.3", 1002, 1, NULL), 1);
        assert_int_equal(client_call_begin(t, ":1.4", 1003, 1, NULL), 1);

        /* A flood from one client, then one call each from two others: they
         * take turns, so the others wait for one of the flood's, not all. */
        queue(t, ":1.1", &ran, 'a');
        queue(t, ":1.1", &ran, 'b');
        queue(t, ":1.1", &ran, 'c');
        queue(t, ":1.2", &ran, 'X');
        queue(t, ":1.3", &ran, 'Y');
        queue(t, ":1.4", &ran, 'Z');
        assert_int_equal(client_table_forget(t, ":1.4"), 1U); /* left: its work is dropped, not run */
        assert_int_equal(ran.freed, 1U);
        while (ran.n < 5)
                assert_true(sd_event_run(e, 0) > 0);
        assert_memory_equal(ran.order, "aXYbc", 5);
        assert_int_equal(sd_event_run(e, 0), 0); /* nothing more: the source is off */
        assert_int_equal(ran.freed, 6U);

        /* Work only for a call that is counted. */
        assert_int_equal(client_queue_work(t, ":1.9", run_item, NULL, NULL), -ENOENT);
}

/* A long job (ListCertificates' status scan) runs in turns: each turn
 * queues the next. A call that came during a turn goes before that next
 * turn, not after it. */
typedef struct Scan {
        ClientTable *table;
        Ran *ran;
        unsigned turns_left;
        bool arrived; /* a call came during the turn */
        bool call_queued;
} Scan;

static void run_scan_turn(void *userdata) {
        Scan *s = userdata;

        s->ran->order[s->ran->n++] = 's';
        s->arrived = true;
        if (--s->turns_left > 0)
                assert_int_equal(client_queue_work(s->table, ":1.1", run_scan_turn, s, NULL), 0);
}

/* What reading the bus does: the call that arrived gets in line. */
static void read_bus(unsigned budget, void *userdata) {
        Scan *s = userdata;

        (void) budget;
        if (s->arrived && !s->call_queued) {
                s->call_queued = true;
                queue(s->table, ":1.2", s->ran, 'X');
        }
}

static void test_requeued_after_arrivals(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(client_table_freep) ClientTable *t = NULL;
        Ran ran = {};
        Scan scan = {.ran = &ran, .turns_left = 3};

        (void) state;
        assert_int_equal(sd_event_new(&e), 0);
        t = table(e, 10, 10, 10);
        scan.table = t;
        client_table_set_before_turn(t, read_bus, &scan);
        assert_int_equal(client_call_begin(t, ":1.1", 1000, 1, NULL), 1);
        assert_int_equal(client_call_begin(t, ":1.2", 1001, 1, NULL), 1);

        assert_int_equal(client_queue_work(t, ":1.1", run_scan_turn, &scan, NULL), 0);
        while (ran.n < 4)
                assert_true(sd_event_run(e, 0) > 0);
        assert_memory_equal(ran.order, "sXss", 4);
        assert_int_equal(sd_event_run(e, 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_spool_quota),
                cmocka_unit_test(test_turns),
                cmocka_unit_test(test_requeued_after_arrivals),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
