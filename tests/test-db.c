/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The SQL layer under the certificate store (daemon/db.h), each test run
 * on SQLite and on a real PostgreSQL server of the test's own: the same
 * SQL must mean the same on both. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "db.h"
#include "pg-server.h"

/* For a connection or an answer of the test's own server. */
#define TIMEOUT_USEC (60ULL * 1000000ULL)

static PgServer *server;
static char scratch[] = "/tmp/smimed-test-db-XXXXXX";
static unsigned n_files;

static const DbBackend sqlite_backend = DB_SQLITE, postgresql_backend = DB_POSTGRESQL;

/* A fresh, empty database of the backend the test runs on. */
static Db *open_db(void **state) {
        DbBackend backend = *(const DbBackend *) *state;
        _cleanup_free_ char *message = NULL, *path = NULL;
        Db *db = NULL;
        int r;

        if (backend == DB_SQLITE) {
                assert_true(asprintf(&path, "%s/%u.sqlite", scratch, n_files++) > 0);
                r = db_open_sqlite(path, &db, &message);
        } else
                r = db_open_postgresql(server->conninfo, NULL, TIMEOUT_USEC, &db, &message);
        if (r < 0)
                fail_msg("cannot open the database: %s", message ?: strerror(-r));
        if (backend == DB_POSTGRESQL)
                assert_int_equal(db_exec(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"), 0);
        assert_int_equal(db_backend(db), backend);
        return db;
}

static const char schema[] = "CREATE TABLE item ("
                             "  name TEXT PRIMARY KEY NOT NULL,"
                             "  data BLOB,"
                             "  number INTEGER NOT NULL"
                             ") WITHOUT ROWID;"
                             "CREATE INDEX item_number ON item(number);";

static void insert(Db *db, const char *name, const void *data, size_t size, int64_t number) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;

        assert_int_equal(db_prepare(db, "INSERT INTO item (name, data, number) VALUES ($1, $2, $3)", &s), 0);
        assert_int_equal(db_bind_text(s, 1, name), 0);
        if (data)
                assert_int_equal(db_bind_blob(s, 2, data, size), 0);
        else
                assert_int_equal(db_bind_null(s, 2), 0);
        assert_int_equal(db_bind_int64(s, 3, number), 0);
        assert_int_equal(db_step_done(s, "inserting"), 0);
        assert_int_equal(db_changes(s), 1);
}

static int count(Db *db) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;

        assert_int_equal(db_prepare(db, "SELECT count(*) FROM item", &s), 0);
        assert_int_equal(db_step(s, "counting"), 1);
        return (int) db_column_int64(s, 0);
}

/* Blobs with NULs, 64-bit numbers either side of 2^31, NULLs, UTF-8, a
 * parameter used twice and out of order, rows in order. */
static void test_values(void **state) {
        _cleanup_(db_closep) Db *db = open_db(state);
        static const unsigned char blob[] = {0x30, 0x00, 0x82, 0xff, 0x00, 0x01};
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        const void *p;
        size_t size;

        assert_int_equal(db_exec_schema(db, schema), 0);
        insert(db, "a", blob, sizeof(blob), INT64_C(253402300799000000));
        insert(db, "b-é", NULL, 0, -5);
        insert(db, "c", "", 0, INT64_C(3000000000));

        assert_int_equal(db_prepare(db,
                                    "SELECT name, data, number FROM item WHERE number > $2 OR name = $1 OR "
                                    "lower(name) = lower($1) ORDER BY number",
                                    &s),
                         0);
        assert_int_equal(db_bind_text(s, 1, "B-é"), 0);
        assert_int_equal(db_bind_int64(s, 2, INT64_C(2999999999)), 0);

        assert_int_equal(db_step(s, "selecting"), 1);
        assert_string_equal(db_column_text(s, 0), "b-é");
        assert_true(db_column_is_null(s, 1));
        p = db_column_blob(s, 1, &size);
        assert_int_equal(size, 0);
        (void) p;
        assert_int_equal(db_column_int64(s, 2), -5);

        assert_int_equal(db_step(s, "selecting"), 1);
        assert_string_equal(db_column_text(s, 0), "c");
        assert_false(db_column_is_null(s, 1));
        (void) db_column_blob(s, 1, &size);
        assert_int_equal(size, 0);
        assert_int_equal(db_column_int64(s, 2), INT64_C(3000000000));

        assert_int_equal(db_step(s, "selecting"), 1);
        assert_string_equal(db_column_text(s, 0), "a");
        p = db_column_blob(s, 1, &size);
        assert_int_equal(size, sizeof(blob));
        assert_memory_equal(p, blob, sizeof(blob));
        assert_int_equal(db_column_int64(s, 2), INT64_C(253402300799000000));

        assert_int_equal(db_step(s, "selecting"), 0);
}

/* ON CONFLICT DO NOTHING changes nothing; a plain duplicate is -EEXIST and
 * the connection goes on; UPDATE and DELETE count their rows; a statement
 * is reused with new parameters. */
static void test_conflicts_and_changes(void **state) {
        _cleanup_(db_closep) Db *db = open_db(state);

        assert_int_equal(db_exec_schema(db, schema), 0);
        insert(db, "a", "x", 1, 1);
        insert(db, "b", "y", 1, 2);
        {
                _cleanup_(db_statement_resetp) DbStatement *s = NULL;

                assert_int_equal(db_prepare(db,
                                            "INSERT INTO item (name, data, number) VALUES ($1, $2, $3) "
                                            "ON CONFLICT (name) DO NOTHING",
                                            &s),
                                 0);
                assert_int_equal(db_bind_text(s, 1, "a"), 0);
                assert_int_equal(db_bind_blob(s, 2, "z", 1), 0);
                assert_int_equal(db_bind_int64(s, 3, 9), 0);
                assert_int_equal(db_step_done(s, "inserting"), 0);
                assert_int_equal(db_changes(s), 0);
        }
        {
                _cleanup_(db_statement_resetp) DbStatement *s = NULL;

                assert_int_equal(db_prepare(db, "INSERT INTO item (name, data, number) VALUES ($1, $2, $3)", &s), 0);
                assert_int_equal(db_bind_text(s, 1, "b"), 0);
                assert_int_equal(db_bind_blob(s, 2, "z", 1), 0);
                assert_int_equal(db_bind_int64(s, 3, 9), 0);
                assert_int_equal(db_step_done(s, "inserting"), -EEXIST);
        }
        {
                _cleanup_(db_statement_resetp) DbStatement *s = NULL;

                assert_int_equal(db_prepare(db, "UPDATE item SET number = number + $1", &s), 0);
                assert_int_equal(db_bind_int64(s, 1, 10), 0);
                assert_int_equal(db_step_done(s, "updating"), 0);
                assert_int_equal(db_changes(s), 2);
        }
        {
                _cleanup_(db_statement_resetp) DbStatement *s = NULL;

                assert_int_equal(db_prepare(db, "DELETE FROM item WHERE number = $1", &s), 0);
                assert_int_equal(db_bind_int64(s, 1, 12), 0);
                assert_int_equal(db_step_done(s, "deleting"), 0);
                assert_int_equal(db_changes(s), 1);
        }
        assert_int_equal(count(db), 1);
        /* The same statement again, from the cache. */
        insert(db, "c", "w", 1, 3);
        assert_int_equal(count(db), 2);
}

/* A rolled back transaction leaves nothing; a committed one stays; a
 * statement held twice is refused. */
static void test_transactions(void **state) {
        _cleanup_(db_closep) Db *db = open_db(state);
        _cleanup_(db_statement_resetp) DbStatement *held = NULL;
        DbStatement *again = NULL;

        assert_int_equal(db_exec_schema(db, schema), 0);
        assert_int_equal(db_begin(db), 0);
        assert_true(db_in_transaction(db));
        assert_int_equal(db_begin(db), -EBUSY);
        insert(db, "a", "x", 1, 1);
        db_rollback(db);
        assert_false(db_in_transaction(db));
        assert_int_equal(count(db), 0);

        assert_int_equal(db_begin(db), 0);
        insert(db, "a", "x", 1, 1);
        assert_int_equal(db_commit(db), 0);
        assert_int_equal(count(db), 1);

        assert_int_equal(db_prepare(db, "SELECT name FROM item", &held), 0);
        assert_int_equal(db_prepare(db, "SELECT name FROM item", &again), -EBUSY);
}

/* Schema versions start at 0 and are set inside the migration's
 * transaction, under the migration lock. */
static void test_schema_version(void **state) {
        _cleanup_(db_closep) Db *db = open_db(state);
        int version = -1;

        assert_int_equal(db_begin(db), 0);
        assert_int_equal(db_lock_transaction(db, 42), 0);
        assert_int_equal(db_get_schema_version(db, &version), 0);
        assert_int_equal(version, 0);
        assert_int_equal(db_exec_schema(db, schema), 0);
        assert_int_equal(db_set_schema_version(db, 3), 0);
        assert_int_equal(db_commit(db), 0);
        assert_int_equal(db_get_schema_version(db, &version), 0);
        assert_int_equal(version, 3);
        assert_int_equal(db_set_schema_version(db, 4), -EINVAL); /* outside a transaction */
}

/* PostgreSQL: the migration lock is held until the transaction ends. */
static void test_lock_excludes_others(void **state) {
        _cleanup_(db_closep) Db *a = open_db(state), *b = NULL;
        _cleanup_free_ char *message = NULL;

        assert_int_equal(db_open_postgresql(server->conninfo, NULL, TIMEOUT_USEC, &b, &message), 0);
        assert_int_equal(db_begin(a), 0);
        assert_int_equal(db_lock_transaction(a, 7), 0);
        {
                _cleanup_(db_statement_resetp) DbStatement *s = NULL;

                assert_int_equal(db_prepare(b, "SELECT pg_try_advisory_xact_lock($1)", &s), 0);
                assert_int_equal(db_bind_int64(s, 1, 7), 0);
                assert_int_equal(db_step(s, "trying the lock"), 1);
                assert_int_equal(db_column_int64(s, 0), 0);
        }
        assert_int_equal(db_commit(a), 0);
        {
                _cleanup_(db_statement_resetp) DbStatement *s = NULL;

                assert_int_equal(db_prepare(b, "SELECT pg_try_advisory_xact_lock($1)", &s), 0);
                assert_int_equal(db_bind_int64(s, 1, 7), 0);
                assert_int_equal(db_step(s, "trying the lock"), 1);
                assert_int_equal(db_column_int64(s, 0), 1);
        }
}

static int select_one(Db *db) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(db, "SELECT number FROM item WHERE name = $1", &s);
        if (r < 0)
                return r;
        assert_int_equal(db_bind_text(s, 1, "a"), 0);
        r = db_step(s, "selecting");
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        return (int) db_column_int64(s, 0);
}

/* PostgreSQL: the server ends the connection (an admin, a failover), or
 * stops and comes back: a statement outside a transaction runs again on a
 * new connection, its statements prepared again; inside one it fails with
 * -ENOTCONN; while the server is down every call fails so, and none hangs. */
static void test_reconnect(void **state) {
        _cleanup_(db_closep) Db *db = open_db(state), *admin = NULL;
        _cleanup_free_ char *message = NULL;

        assert_int_equal(db_exec_schema(db, schema), 0);
        insert(db, "a", "x", 1, 5);
        assert_int_equal(select_one(db), 5);

        assert_int_equal(db_open_postgresql(server->conninfo, NULL, TIMEOUT_USEC, &admin, &message), 0);
        assert_int_equal(db_exec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"),
                         0);
        admin = db_close(admin);
        /* Outside a transaction: run again on a new connection, unnoticed. */
        assert_int_equal(select_one(db), 5);

        /* Inside one: the transaction is gone, and the caller hears so. */
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(db_open_postgresql(server->conninfo, NULL, TIMEOUT_USEC, &admin, &message), 0);
        assert_int_equal(db_exec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"),
                         0);
        admin = db_close(admin);
        assert_int_equal(select_one(db), -ENOTCONN);
        db_rollback(db);
        assert_int_equal(select_one(db), 5);

        assert_int_equal(pg_server_stop(server), 0);
        assert_int_equal(select_one(db), -ENOTCONN);
        assert_int_equal(select_one(db), -ENOTCONN); /* still down: no crash, no hang */
        assert_int_equal(pg_server_resume(server), 0);
        assert_int_equal(select_one(db), 5);
}

/* PostgreSQL: a server that takes the connection and never answers (here
 * its process for this connection is stopped): the call fails with
 * -ENOTCONN once the timeout has passed, and the next one, the server
 * answering again, works on a new connection. */
static void test_no_answer(void **state) {
        _cleanup_(db_closep) Db *setup_db = open_db(state), *db = NULL;
        _cleanup_free_ char *message = NULL;
        struct timespec before, after;
        pid_t backend;
        long waited_ms;

        assert_int_equal(db_exec_schema(setup_db, schema), 0);
        insert(setup_db, "a", "x", 1, 5);
        assert_int_equal(db_open_postgresql(server->conninfo, NULL, 1000000, &db, &message), 0);
        assert_int_equal(select_one(db), 5);

        backend = db_sender_id(db);
        assert_true(backend > 0);
        assert_int_equal(kill(backend, SIGSTOP), 0);
        clock_gettime(CLOCK_MONOTONIC, &before);
        assert_int_equal(select_one(db), -ENOTCONN);
        clock_gettime(CLOCK_MONOTONIC, &after);
        assert_int_equal(kill(backend, SIGCONT), 0);
        waited_ms = (after.tv_sec - before.tv_sec) * 1000 + (after.tv_nsec - before.tv_nsec) / 1000000;
        assert_true(waited_ms >= 900);      /* it did wait for its timeout */
        assert_true(waited_ms < 30 * 1000); /* and not for ever */

        assert_int_equal(select_one(db), 5);
        assert_true(db_sender_id(db) != backend);
}

/* A server that is not there: a clear message, no connection. */
static void test_no_server(void **state) {
        _cleanup_free_ char *message = NULL, *conninfo = NULL;
        Db *db = NULL;

        (void) state;
        assert_true(asprintf(&conninfo, "host=%s/nowhere dbname=postgres user=postgres connect_timeout=2", scratch) >
                    0);
        assert_int_equal(db_open_postgresql(conninfo, "secret-password", TIMEOUT_USEC, &db, &message), -ENOTCONN);
        assert_null(db);
        assert_non_null(message);
        assert_non_null(strstr(message, "Cannot connect to the certificate store"));
        assert_null(strstr(message, "secret-password"));
}

typedef struct Heard {
        char payload[64];
        int sender;
        unsigned n;
} Heard;

static void on_notification(const char *channel, const char *payload, int sender, void *userdata) {
        Heard *h = userdata;

        assert_string_equal(channel, "smimed_test");
        snprintf(h->payload, sizeof(h->payload), "%s", payload);
        h->sender = sender;
        h->n++;
}

/* Waits (poll on the socket, up to 10 s) until a notification arrives. */
static void wait_heard(Db *listener, Heard *heard) {
        unsigned before = heard->n;

        while (heard->n == before) {
                struct pollfd p = {.fd = db_fd(listener), .events = POLLIN};

                assert_true(p.fd >= 0);
                assert_int_equal(poll(&p, 1, 10000), 1);
                assert_int_equal(db_read_notifications(listener, on_notification, heard), 0);
        }
}

/* PostgreSQL: a notification reaches another connection when its
 * transaction commits, never when it rolls back, naming its sender. */
static void test_notifications(void **state) {
        _cleanup_(db_closep) Db *sender = open_db(state), *listener = NULL;
        _cleanup_free_ char *message = NULL;
        Heard heard = {};

        assert_int_equal(db_open_postgresql(server->conninfo, NULL, TIMEOUT_USEC, &listener, &message), 0);
        assert_int_equal(db_listen(listener, "smimed_test"), 0);

        assert_int_equal(db_begin(sender), 0);
        assert_int_equal(db_notify(sender, "smimed_test", "rolled back"), 0);
        db_rollback(sender);
        assert_int_equal(db_begin(sender), 0);
        assert_int_equal(db_notify(sender, "smimed_test", "added 00ff"), 0);
        assert_int_equal(db_commit(sender), 0);

        wait_heard(listener, &heard);
        assert_int_equal(heard.n, 1);
        assert_string_equal(heard.payload, "added 00ff");
        assert_int_equal(heard.sender, db_sender_id(sender));
        assert_true(heard.sender != db_sender_id(listener));
}

/* SQLite has no notifications: announcing is harmless, listening refused. */
static void test_no_notifications_on_sqlite(void **state) {
        _cleanup_(db_closep) Db *db = open_db(state);

        assert_int_equal(db_notify(db, "smimed_test", "added 00ff"), 0);
        assert_int_equal(db_listen(db, "smimed_test"), -EOPNOTSUPP);
        assert_int_equal(db_fd(db), -EOPNOTSUPP);
}

static int setup(void **state) {
        (void) state;
        if (!mkdtemp(scratch))
                return -1;
        return pg_server_start(&server) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        char command[128];

        (void) state;
        server = pg_server_free(server);
        snprintf(command, sizeof(command), "rm -rf %s", scratch);
        return system(command) == 0 ? 0 : -1;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_prestate(test_values, (void *) &sqlite_backend),
                cmocka_unit_test_prestate(test_values, (void *) &postgresql_backend),
                cmocka_unit_test_prestate(test_conflicts_and_changes, (void *) &sqlite_backend),
                cmocka_unit_test_prestate(test_conflicts_and_changes, (void *) &postgresql_backend),
                cmocka_unit_test_prestate(test_transactions, (void *) &sqlite_backend),
                cmocka_unit_test_prestate(test_transactions, (void *) &postgresql_backend),
                cmocka_unit_test_prestate(test_schema_version, (void *) &sqlite_backend),
                cmocka_unit_test_prestate(test_schema_version, (void *) &postgresql_backend),
                cmocka_unit_test_prestate(test_lock_excludes_others, (void *) &postgresql_backend),
                cmocka_unit_test_prestate(test_reconnect, (void *) &postgresql_backend),
                cmocka_unit_test_prestate(test_no_answer, (void *) &postgresql_backend),
                cmocka_unit_test(test_no_server),
                cmocka_unit_test_prestate(test_notifications, (void *) &postgresql_backend),
                cmocka_unit_test_prestate(test_no_notifications_on_sqlite, (void *) &sqlite_backend),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
