/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Two smimed nodes on one certificate store (issue "Cluster"): a real
 * PostgreSQL of the test's own (tests/pg-server.c) and two harnesses, each
 * with its own bus, polkitd, token and smimed, whose [Store] is that
 * server. What one node changes, the other shows with its own D-Bus
 * signals and answers (waited for on its bus, never slept for); a store
 * server that stops fails calls with StoreUnavailable and is used again by
 * itself once it is back; two nodes importing one certificate at once both
 * succeed and it is there once. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cmocka.h>

#include "harness.h"
#include "p11-server.h"
#include "pg-server.h"
#include "certificate.h"
#include "db.h"
#include "pki.h"
#include "store.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"
#include "strv.h"

#define N_NODES 2
/* Ten times longer with smimed under valgrind. */
#define CALL_TIMEOUT_USEC ((getenv("SMIMED_TEST_WRAPPER") ? 600ULL : 60ULL) * 1000000ULL)
/* smimed's [Policy] IOTimeoutSec= in these configs (its default). */
#define CONFIG_IO_TIMEOUT_USEC (60ULL * 1000000ULL)

typedef struct Node {
        Harness *harness;
        char *config;
        sd_bus *bus;
} Node;

static PgServer *server;
static P11Server *token_server;
static Node nodes[N_NODES];
static PkiCert *root;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* A client of one node's bus (the harness's DBUS_SYSTEM_BUS_ADDRESS is the
 * last node's). */
static int node_bus_open(Harness *h, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, h->bus_address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

static PkiCert *leaf(const char *name, const char *address) {
        const char *addresses[] = {address, NULL};
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = name;
        o.san_emails = addresses;
        o.key = pki_key_ec();
        c = pki_cert_new(&o, root);
        EVP_PKEY_free(o.key);
        assert_non_null(c);
        return c;
}

static char *path_of(const PkiCert *c) {
        char fingerprint[65];
        char *path;

        assert_int_equal(pki_cert_fingerprint(c, fingerprint), 0);
        assert_true(asprintf(&path, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", fingerprint) > 0);
        return path;
}

static int import_pem(Node *n, const char *pem, bool trust, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        assert_true(sd_bus_message_new_method_call(n->bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust) >= 0);
        return sd_bus_call(n->bus, m, CALL_TIMEOUT_USEC, e, NULL);
}

static void import_ok(Node *n, const PkiCert *c, bool trust) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *pem = pki_cert_pem(c);

        if (import_pem(n, pem, trust, &e) < 0)
                fail_msg("ImportCertificates: %s: %s", e.name, e.message);
}

/* The encrypt verdict of one node for address: "" when possible, else the reason. */
static char *encrypt_reason(Node *n, const char *address) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *reason = NULL;
        int r;

        r = sd_bus_call_method(n->bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                               "GetCapabilities", &e, &reply, "sasa{sv}", "", 1, address, 0);
        if (r < 0)
                return strdup(e.name);
        assert_true(sd_bus_message_skip(reply, "a{sv}") >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "a{sv}") > 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                const char *key;

                assert_true(sd_bus_message_read(reply, "s", &key) >= 0);
                if (strcmp(key, "reason") == 0)
                        assert_true(sd_bus_message_read(reply, "v", "s", &reason) >= 0);
                else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        assert_non_null(reason);
        return strdup(reason);
}

static void expect_reason(Node *n, const char *address, const char *want) {
        _cleanup_free_ char *got = encrypt_reason(n, address);

        if (strcmp(got, want) != 0)
                fail_msg("encrypt to %s on node %ld: \"%s\", expected \"%s\"", address, (long) (n - nodes), got, want);
}

/* ---- waiting for a node's signals ---- */

typedef struct Watch {
        const char *path; /* the object the signal must be about */
        bool seen;
} Watch;

static int on_object_signal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Watch *w = userdata;
        const char *path;

        (void) error;
        if (sd_bus_message_read(m, "o", &path) >= 0 && strcmp(path, w->path) == 0)
                w->seen = true;
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Watch *w = userdata;

        (void) m;
        (void) error;
        w->seen = true;
        return 0;
}

static void wait_seen(Node *n, Watch *w, const char *what) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;

        while (!w->seen) {
                int r = sd_bus_process(n->bus, NULL);

                assert_true(r >= 0);
                if (r > 0)
                        continue;
                if (now_usec() >= deadline)
                        fail_msg("node %ld never showed %s for %s", (long) (n - nodes), what, w->path);
                assert_true(sd_bus_wait(n->bus, deadline - now_usec()) >= 0);
        }
}

/* A match for InterfacesAdded or InterfacesRemoved of path on node n. */
static sd_bus_slot *watch_object(Node *n, const char *member, Watch *w) {
        sd_bus_slot *slot = NULL;

        /* From whichever ObjectManager the object is under. */
        assert_true(sd_bus_match_signal(n->bus, &slot, SMIMED_BUS_NAME, NULL, "org.freedesktop.DBus.ObjectManager",
                                        member, on_object_signal, w) >= 0);
        return slot;
}

/* ---- the tests ---- */

/* Imported on node 0: node 1 announces the object and can encrypt to it. */
static void test_import_seen_elsewhere(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *alice = leaf("Alice", "alice@example.com");
        _cleanup_free_ char *path = path_of(alice);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        Watch w = {.path = path};

        (void) state;
        expect_reason(&nodes[1], "alice@example.com", "no-certificate");
        slot = watch_object(&nodes[1], "InterfacesAdded", &w);
        import_ok(&nodes[0], alice, false);
        wait_seen(&nodes[1], &w, "InterfacesAdded");
        expect_reason(&nodes[1], "alice@example.com", "");
        expect_reason(&nodes[0], "alice@example.com", "");
}

/* A trust anchor set on node 0 makes the chain valid on node 1. */
static void test_trust_seen_elsewhere(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *other_root = pki_root_ca("Other Root"), *bob = NULL;
        _cleanup_free_ char *root_path = path_of(other_root), *bob_path = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *added = NULL, *changed = NULL;
        const char *addresses[] = {"bob@example.com", NULL};
        PkiCertOptions o;
        Watch seen_bob = {}, seen_trust = {.path = root_path};

        (void) state;
        pki_cert_options_init(&o);
        o.common_name = "Bob";
        o.san_emails = addresses;
        o.key = pki_key_ec();
        bob = pki_cert_new(&o, other_root);
        EVP_PKEY_free(o.key);
        bob_path = path_of(bob);
        seen_bob.path = bob_path;

        added = watch_object(&nodes[1], "InterfacesAdded", &seen_bob);
        import_ok(&nodes[0], other_root, false);
        import_ok(&nodes[0], bob, false);
        wait_seen(&nodes[1], &seen_bob, "InterfacesAdded");
        expect_reason(&nodes[1], "bob@example.com", "untrusted");

        assert_true(sd_bus_match_signal(nodes[1].bus, &changed, SMIMED_BUS_NAME, root_path,
                                        "org.freedesktop.DBus.Properties", "PropertiesChanged", on_properties_changed,
                                        &seen_trust) >= 0);
        if (sd_bus_call_method(nodes[0].bus, SMIMED_BUS_NAME, root_path, SMIMED_CERTIFICATE_INTERFACE, "SetTrusted",
                               &e, NULL, "b", 1) < 0)
                fail_msg("SetTrusted: %s: %s", e.name, e.message);
        wait_seen(&nodes[1], &seen_trust, "PropertiesChanged (Trusted)");
        expect_reason(&nodes[1], "bob@example.com", "");
}

/* A CRL imported on node 0 revokes on node 1: a certificate imported after
 * it shows on node 1, so the CRL's announcement (before it) was heard. */
static void test_crl_seen_elsewhere(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *carol = leaf("Carol", "carol@example.com"),
                                          *marker = leaf("Marker", "marker@example.com");
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *crl_pem = NULL, *marker_path = path_of(marker);
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        uint64_t serial = pki_cert_serial(carol);
        Watch w = {.path = marker_path};
        PkiCrlOptions o;

        (void) state;
        import_ok(&nodes[0], carol, false);
        expect_reason(&nodes[1], "carol@example.com", ""); /* read from the store: no wait */

        pki_crl_options_init(&o);
        crl = pki_crl_new(root, &serial, 1, &o);
        crl_pem = pki_crl_pem(crl);
        assert_non_null(crl_pem);
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                assert_true(sd_bus_message_new_method_call(nodes[0].bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "ImportCRL") >= 0);
                assert_true(sd_bus_message_append_array(m, 'y', crl_pem, strlen(crl_pem)) >= 0);
                assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
                if (sd_bus_call(nodes[0].bus, m, CALL_TIMEOUT_USEC, &e, NULL) < 0)
                        fail_msg("ImportCRL: %s: %s", e.name, e.message);
        }
        slot = watch_object(&nodes[1], "InterfacesAdded", &w);
        import_ok(&nodes[0], marker, false);
        wait_seen(&nodes[1], &w, "InterfacesAdded");
        expect_reason(&nodes[1], "carol@example.com", "revoked");
        expect_reason(&nodes[0], "carol@example.com", "revoked");
}

/* Removed on node 0: node 1 announces it gone and finds it no more. */
static void test_remove_seen_elsewhere(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *dora = leaf("Dora", "dora@example.com");
        _cleanup_free_ char *path = path_of(dora);
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *added = NULL, *removed = NULL;
        Watch seen_added = {.path = path}, seen_removed = {.path = path};

        (void) state;
        added = watch_object(&nodes[1], "InterfacesAdded", &seen_added);
        removed = watch_object(&nodes[1], "InterfacesRemoved", &seen_removed);
        import_ok(&nodes[0], dora, false);
        wait_seen(&nodes[1], &seen_added, "InterfacesAdded");
        if (sd_bus_call_method(nodes[0].bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, "Remove", &e, NULL,
                               NULL) < 0)
                fail_msg("Remove: %s: %s", e.name, e.message);
        wait_seen(&nodes[1], &seen_removed, "InterfacesRemoved");
        expect_reason(&nodes[1], "dora@example.com", "no-certificate");
}

static uint64_t certificate_count(Node *n) {
        _cleanup_free_ char *value = NULL;

        assert_int_equal(harness_get_manager_property(n->bus, "CertificateCount", &value), 0);
        return strtoull(value, NULL, 10);
}

typedef struct Reply {
        bool done;
        char *error;
} Reply;

static int on_import_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Reply *r = userdata;

        (void) error;
        r->done = true;
        if (sd_bus_message_is_method_error(m, NULL))
                r->error = strdup(sd_bus_message_get_error(m)->name);
        return 0;
}

/* Both nodes import one certificate at the same moment: both succeed, and
 * the store holds it once. */
static void test_same_import_at_once(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *erin = leaf("Erin", "erin@example.com");
        _cleanup_free_ char *pem = pki_cert_pem(erin);
        sd_bus_slot *slots[N_NODES] = {};
        Reply replies[N_NODES] = {};
        uint64_t before = certificate_count(&nodes[0]), deadline = now_usec() + HARNESS_TIMEOUT_USEC;

        (void) state;
        for (size_t i = 0; i < N_NODES; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                assert_true(sd_bus_message_new_method_call(nodes[i].bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
                assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
                assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
                assert_true(sd_bus_call_async(nodes[i].bus, &slots[i], m, on_import_reply, &replies[i],
                                              CALL_TIMEOUT_USEC) >= 0);
                assert_true(sd_bus_flush(nodes[i].bus) >= 0);
        }
        for (size_t i = 0; i < N_NODES; i++)
                while (!replies[i].done) {
                        int r = sd_bus_process(nodes[i].bus, NULL);

                        assert_true(r >= 0);
                        if (r > 0)
                                continue;
                        assert_true(now_usec() < deadline);
                        assert_true(sd_bus_wait(nodes[i].bus, deadline - now_usec()) >= 0);
                }
        for (size_t i = 0; i < N_NODES; i++) {
                if (replies[i].error)
                        fail_msg("node %zu: ImportCertificates failed: %s", i, replies[i].error);
                sd_bus_slot_unref(slots[i]);
        }
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_(strv_freep) char **paths = NULL;

                assert_true(sd_bus_call_method(nodes[1].bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                               SMIMED_MANAGER_INTERFACE, "LookupCertificates", &e, &reply, "sa{sv}",
                                               "erin@example.com", 0) >= 0);
                assert_true(sd_bus_message_read_strv(reply, &paths) >= 0);
                assert_int_equal(strv_length(paths), 1);
        }
        assert_int_equal(certificate_count(&nodes[0]), before + 1);
}

/* The store's server stops: a call that needs the store fails with
 * StoreUnavailable, and smimed stays up. It comes back: the next call on
 * node 1 sees what node 0 imported meanwhile, whether or not node 1's
 * notification connection is back yet. */
static void test_store_server_restarts(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *frank = leaf("Frank", "frank@example.com");
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *pem = pki_cert_pem(frank);

        size_t log_from[N_NODES];

        (void) state;
        expect_reason(&nodes[1], "frank@example.com", "no-certificate");
        for (size_t i = 0; i < N_NODES; i++)
                log_from[i] = harness_smimed_log_size(nodes[i].harness);
        assert_int_equal(pg_server_stop(server), 0);

        assert_true(import_pem(&nodes[0], pem, false, &e) < 0);
        assert_string_equal(e.name, SMIMED_ERROR_STORE_UNAVAILABLE);
        sd_bus_error_free(&e);
        expect_reason(&nodes[1], "frank@example.com", SMIMED_ERROR_STORE_UNAVAILABLE);

        assert_int_equal(pg_server_resume(server), 0);
        import_ok(&nodes[0], frank, false);
        expect_reason(&nodes[1], "frank@example.com", "");

        /* Each node listens again by itself (it tries every second): the
         * tests after this one rely on their signals again. */
        for (size_t i = 0; i < N_NODES; i++)
                assert_int_equal(
                        harness_wait_smimed_log(nodes[i].harness, log_from[i], "listening for other nodes' changes"),
                        0);
}

/* ---- a node killed during an import ---- */

/* One query on the store's server from the test's own connection. */
static int64_t store_query_int(const char *sql) {
        _cleanup_(db_closep) Db *db = NULL;
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        _cleanup_free_ char *message = NULL;

        if (db_open_postgresql(server->conninfo, NULL, 10ULL * 1000000ULL, &db, &message) < 0)
                fail_msg("cannot connect to the test's PostgreSQL: %s", strempty(message));
        assert_int_equal(db_prepare(db, sql, &s), 0);
        assert_int_equal(db_step(s, "test query"), 1);
        return db_column_int64(s, 0);
}

static int64_t stored_certificates(void) {
        return store_query_int("SELECT count(*) FROM certificate");
}

/* Another connection's transaction has written (it has an xid) and not ended. */
static bool store_write_in_flight(Db *db) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;

        assert_int_equal(db_prepare(db,
                                    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                    "AND backend_xid IS NOT NULL",
                                    &s),
                         0);
        assert_int_equal(db_step(s, "pg_stat_activity"), 1);
        return db_column_int64(s, 0) > 0;
}

/* n certificates of one EC key for prefix0…prefix<n-1>@example.com, PEM. */
static char *bundle_pem(const char *prefix, unsigned n) {
        EVP_PKEY *key = pki_key_ec();
        BIO *bio = BIO_new(BIO_s_mem());
        char *data, *pem;
        long len;

        assert_non_null(key);
        assert_non_null(bio);
        for (unsigned i = 0; i < n; i++) {
                _cleanup_(pki_cert_freep) PkiCert *c = NULL;
                char address[96];
                const char *addresses[] = {address, NULL};
                PkiCertOptions o;

                snprintf(address, sizeof(address), "%s%u@example.com", prefix, i);
                pki_cert_options_init(&o);
                o.common_name = address;
                o.san_emails = addresses;
                o.key = key;
                c = pki_cert_new(&o, root);
                assert_non_null(c);
                assert_true(PEM_write_bio_X509(bio, c->x509));
        }
        len = BIO_get_mem_data(bio, &data);
        pem = strndup(data, (size_t) len);
        assert_non_null(pem);
        BIO_free(bio);
        EVP_PKEY_free(key);
        return pem;
}

static size_t lookup_count(Node *n, const char *address) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(strv_freep) char **paths = NULL;

        if (sd_bus_call_method(n->bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                               "LookupCertificates", &e, &reply, "sa{sv}", address, 0) < 0)
                fail_msg("LookupCertificates(%s) on node %ld: %s: %s", address, (long) (n - nodes), e.name, e.message);
        assert_true(sd_bus_message_read_strv(reply, &paths) >= 0);
        return strv_length(paths);
}

/* Until the bus has dropped org.smimed1 of a killed smimed (the bus sees
 * its socket close a moment later): the next one could not take it. */
static void wait_name_released(Node *n) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        bool reported = false;

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                uint32_t pid = 0;

                if (sd_bus_call_method(n->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetConnectionUnixProcessID", NULL, &reply, "s", SMIMED_BUS_NAME) < 0)
                        return;
                assert_true(sd_bus_message_read(reply, "u", &pid) >= 0);
                if (!reported) {
                        fprintf(stderr, "org.smimed1 still owned by pid %u after the kill\n", pid);
                        reported = true;
                }
                if (now_usec() >= deadline)
                        fail_msg("org.smimed1 is still owned by pid %u", pid);
                (void) usleep(10000); /* polling the bus's state */
        }
}

static int restart_smimed(Node *n) {
        _cleanup_free_ char *address = NULL, *bus = NULL;
        int r;

        wait_name_released(n);

        /* DBUS_SYSTEM_BUS_ADDRESS is the last started node's: this node's bus instead. */
        if (asprintf(&address, "P11_KIT_SERVER_ADDRESS=%s", token_server->address) < 0 ||
            asprintf(&bus, "DBUS_SYSTEM_BUS_ADDRESS=%s", n->harness->bus_address) < 0)
                return -ENOMEM;
        r = harness_start_smimed(n->harness, n->config, (char *const[]){address, bus, NULL});
        if (r < 0) {
                _cleanup_free_ char *log = harness_read_file(n->harness->smimed_log);
                size_t len = log ? strlen(log) : 0;

                fprintf(stderr, "smimed's log ends:\n%s\n", log ? log + (len > 3000 ? len - 3000 : 0) : "");
        }
        return r;
}

#define BUNDLE_SIZE_DEFAULT 3000U
#define KILL_TRIES 5

/* The bundle imported while the node is killed: SMIMED_TEST_MANY_CERTS
 * (500 under valgrind and ASan, where each certificate costs far more)
 * makes it smaller. */
static unsigned bundle_size(void) {
        const char *e = getenv("SMIMED_TEST_MANY_CERTS");
        unsigned long n = e ? strtoul(e, NULL, 10) : 0;

        return n > 0 && n < BUNDLE_SIZE_DEFAULT ? (unsigned) n : BUNDLE_SIZE_DEFAULT;
}

/* Node 0 is SIGKILLed while its ImportCertificates of a big bundle has
 * written into its open transaction: the store holds none of the bundle,
 * node 1 answers on, and node 0, started again, imports it whole. */
static void test_node_killed_during_import(void **state) {
        _cleanup_(db_closep) Db *watcher = NULL;
        _cleanup_free_ char *message = NULL, *pem = NULL, *first = NULL, *last = NULL;
        const unsigned n_bundle = bundle_size();
        bool interrupted = false;
        int64_t before = 0;

        (void) state;
        assert_int_equal(db_open_postgresql(server->conninfo, NULL, 10ULL * 1000000ULL, &watcher, &message), 0);

        for (unsigned attempt = 0; attempt < KILL_TRIES && !interrupted; attempt++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
                char prefix[32];
                Reply reply = {};
                uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
                bool in_flight = false;
                int64_t after;

                snprintf(prefix, sizeof(prefix), "bundle%u-", attempt);
                free(pem);
                free(first);
                free(last);
                pem = bundle_pem(prefix, n_bundle);
                assert_true(asprintf(&first, "%s0@example.com", prefix) > 0);
                assert_true(asprintf(&last, "%s%u@example.com", prefix, n_bundle - 1) > 0);
                before = stored_certificates();

                assert_true(sd_bus_message_new_method_call(nodes[0].bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
                assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
                assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
                assert_true(sd_bus_call_async(nodes[0].bus, &slot, m, on_import_reply, &reply, CALL_TIMEOUT_USEC) >=
                            0);
                assert_true(sd_bus_flush(nodes[0].bus) >= 0);

                /* Until the import's transaction has written, or it replied first. */
                while (!in_flight && !reply.done) {
                        assert_true(now_usec() < deadline);
                        while (sd_bus_process(nodes[0].bus, NULL) > 0)
                                ;
                        in_flight = store_write_in_flight(watcher);
                }
                if (in_flight && !reply.done)
                        assert_int_equal(harness_kill_smimed(nodes[0].harness, SIGKILL), 128 + SIGKILL);
                slot = sd_bus_slot_unref(slot);
                free(reply.error);

                after = stored_certificates();
                if (after == before + n_bundle) {
                        /* The commit won the race: try again with a new bundle. */
                        fprintf(stderr, "attempt %u: the import committed before the kill\n", attempt);
                        if (nodes[0].harness->smimed_pid <= 0)
                                assert_int_equal(restart_smimed(&nodes[0]), 0);
                        continue;
                }
                /* All or nothing. */
                assert_int_equal(after, before);
                interrupted = true;
        }
        assert_true(interrupted);
        assert_true(nodes[0].harness->smimed_pid <= 0);

        /* Node 1 answers, and knows none of the bundle. */
        assert_int_equal(lookup_count(&nodes[1], first), 0);
        assert_int_equal(lookup_count(&nodes[1], last), 0);
        expect_reason(&nodes[1], "alice@example.com", "");

        /* Node 0 again: the whole bundle. */
        assert_int_equal(restart_smimed(&nodes[0]), 0);
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_(strv_freep) char **paths = NULL;

                assert_true(sd_bus_message_new_method_call(nodes[0].bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
                assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
                assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
                if (sd_bus_call(nodes[0].bus, m, CALL_TIMEOUT_USEC, &e, &reply) < 0)
                        fail_msg("ImportCertificates after the restart: %s: %s", e.name, e.message);
                assert_true(sd_bus_message_read_strv(reply, &paths) >= 0);
                assert_int_equal(strv_length(paths), n_bundle);
        }
        assert_int_equal(stored_certificates(), before + n_bundle);
        assert_int_equal(lookup_count(&nodes[1], first), 1);
        assert_int_equal(lookup_count(&nodes[1], last), 1);
        assert_int_equal(lookup_count(&nodes[0], last), 1);
}

/* ---- PostgreSQL stopped and started under a stream of calls ---- */

typedef struct Stream {
        const char *bus_address;
        const char *revoked, *valid;
        atomic_int phase; /* 0 up, 1 stopped (and starting), 2 up again, 3 end */
        atomic_uint correct[3];
        atomic_uint unavailable[3];
        atomic_uint wrong;
        atomic_ullong slowest_usec;
        char wrong_text[320]; /* the first wrong answer */
} Stream;

/* GetCapabilities(revoked, valid): 1 when both verdicts are right, 0 for
 * StoreUnavailable, -1 (with text) for anything else. */
static int stream_call(sd_bus *bus, Stream *s, char *text, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *want[] = {"revoked", ""};
        unsigned i = 0;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "GetCapabilities");
        if (r >= 0)
                r = sd_bus_message_append(m, "sasa{sv}", "", 2, s->revoked, s->valid, 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, CONFIG_IO_TIMEOUT_USEC + 5ULL * 1000000ULL, &e, &reply);
        if (r < 0) {
                if (sd_bus_error_has_name(&e, SMIMED_ERROR_STORE_UNAVAILABLE))
                        return 0;
                snprintf(text, size, "error %s: %s", e.name ?: strerror(-r), strempty(e.message));
                return -1;
        }
        if (sd_bus_message_skip(reply, "a{sv}") < 0 || sd_bus_message_enter_container(reply, 'a', "a{sv}") <= 0)
                goto bad;
        for (; sd_bus_message_enter_container(reply, 'a', "{sv}") > 0; i++) {
                const char *reason = NULL;

                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        const char *key;

                        if (sd_bus_message_read(reply, "s", &key) < 0)
                                goto bad;
                        if (streq(key, "reason")) {
                                if (sd_bus_message_read(reply, "v", "s", &reason) < 0)
                                        goto bad;
                        } else if (sd_bus_message_skip(reply, "v") < 0)
                                goto bad;
                        if (sd_bus_message_exit_container(reply) < 0)
                                goto bad;
                }
                if (i >= 2 || !reason || !streq(reason, want[i])) {
                        snprintf(text, size, "recipient %u: reason \"%s\", expected \"%s\"", i, strempty(reason),
                                 i < 2 ? want[i] : "(none)");
                        return -1;
                }
                if (sd_bus_message_exit_container(reply) < 0)
                        goto bad;
        }
        if (i != 2) {
                snprintf(text, size, "%u recipients in the answer", i);
                return -1;
        }
        return 1;
bad:
        snprintf(text, size, "an answer that cannot be read");
        return -1;
}

static void *stream_main(void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        Stream *s = userdata;
        Harness fake = {.bus_address = (char *) s->bus_address};

        if (node_bus_open(&fake, &bus) < 0) {
                snprintf(s->wrong_text, sizeof(s->wrong_text), "cannot connect");
                atomic_fetch_add(&s->wrong, 1);
                return NULL;
        }
        for (;;) {
                int phase = atomic_load(&s->phase), r;
                char text[256];
                uint64_t t0 = now_usec(), took;

                if (phase >= 3)
                        break;
                r = stream_call(bus, s, text, sizeof(text));
                took = now_usec() - t0;
                if (took > atomic_load(&s->slowest_usec))
                        atomic_store(&s->slowest_usec, took);
                if (r > 0)
                        atomic_fetch_add(&s->correct[phase], 1);
                else if (r == 0)
                        atomic_fetch_add(&s->unavailable[phase], 1);
                else if (atomic_fetch_add(&s->wrong, 1) == 0)
                        snprintf(s->wrong_text, sizeof(s->wrong_text), "phase %d: %s", phase, text);
        }
        return NULL;
}

/* Polls cond until it holds (up to HARNESS_TIMEOUT_USEC); fails with what otherwise. */
static void wait_stream(Stream *s, bool (*cond)(Stream *s), const char *what) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;

        while (!cond(s)) {
                if (atomic_load(&s->wrong) > 0)
                        fail_msg("a wrong answer: %s", s->wrong_text);
                if (now_usec() >= deadline)
                        fail_msg("the stream of calls never %s", what);
                (void) usleep(2000); /* polling the counters, not a synchronization */
        }
}

static bool stream_started(Stream *s) {
        return atomic_load(&s->correct[0]) >= 5;
}

static bool stream_went_on_while_down(Stream *s) {
        return atomic_load(&s->correct[1]) + atomic_load(&s->unavailable[1]) >= 5;
}

static bool stream_recovered(Stream *s) {
        return atomic_load(&s->correct[2]) >= 10;
}

/* A client keeps asking node 0 about a revoked and a valid certificate
 * while PostgreSQL stops and starts: each answer is right or
 * StoreUnavailable, none hangs past IOTimeoutSec=, and once the server is
 * back the answers are right again with the same smimed. */
static void test_store_server_restarts_under_calls(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *stream_root = pki_root_ca("Stream Root"), *ivan = NULL, *judy = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *root_pem = NULL, *crl_pem = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        Stream s = {.revoked = "ivan@example.com", .valid = "judy@example.com"};
        size_t log_from[N_NODES];
        pid_t smimed_pid = nodes[0].harness->smimed_pid;
        PkiCrlOptions crl_options;
        pthread_t thread;
        uint64_t serial;

        (void) state;
        assert_non_null(stream_root);
        root_pem = pki_cert_pem(stream_root);
        assert_true(import_pem(&nodes[0], root_pem, true, &e) >= 0);
        for (int i = 0; i < 2; i++) {
                const char *addresses[] = {i == 0 ? s.revoked : s.valid, NULL};
                PkiCertOptions o;
                PkiCert *c;

                pki_cert_options_init(&o);
                o.common_name = addresses[0];
                o.san_emails = addresses;
                o.key = pki_key_ec();
                c = pki_cert_new(&o, stream_root);
                EVP_PKEY_free(o.key);
                assert_non_null(c);
                import_ok(&nodes[0], c, false);
                *(i == 0 ? &ivan : &judy) = c;
        }
        serial = pki_cert_serial(ivan);
        pki_crl_options_init(&crl_options);
        crl = pki_crl_new(stream_root, &serial, 1, &crl_options);
        crl_pem = crl ? pki_crl_pem(crl) : NULL;
        assert_non_null(crl_pem);
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                assert_true(sd_bus_message_new_method_call(nodes[0].bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "ImportCRL") >= 0);
                assert_true(sd_bus_message_append_array(m, 'y', crl_pem, strlen(crl_pem)) >= 0);
                assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
                if (sd_bus_call(nodes[0].bus, m, CALL_TIMEOUT_USEC, &e, NULL) < 0)
                        fail_msg("ImportCRL: %s: %s", e.name, e.message);
        }
        expect_reason(&nodes[0], s.revoked, "revoked");
        expect_reason(&nodes[0], s.valid, "");

        for (size_t i = 0; i < N_NODES; i++)
                log_from[i] = harness_smimed_log_size(nodes[i].harness);
        s.bus_address = nodes[0].harness->bus_address;
        assert_int_equal(pthread_create(&thread, NULL, stream_main, &s), 0);
        wait_stream(&s, stream_started, "started");

        assert_int_equal(pg_server_stop(server), 0);
        atomic_store(&s.phase, 1);
        wait_stream(&s, stream_went_on_while_down, "went on while the server was down");
        assert_int_equal(pg_server_resume(server), 0);
        atomic_store(&s.phase, 2);
        wait_stream(&s, stream_recovered, "got right answers after the restart");
        atomic_store(&s.phase, 3);
        assert_int_equal(pthread_join(thread, NULL), 0);

        fprintf(stderr,
                "stream: %u right before; %u right and %u StoreUnavailable while stopped; %u right and %u "
                "StoreUnavailable after; slowest %.1f ms\n",
                atomic_load(&s.correct[0]), atomic_load(&s.correct[1]), atomic_load(&s.unavailable[1]),
                atomic_load(&s.correct[2]), atomic_load(&s.unavailable[2]),
                (double) atomic_load(&s.slowest_usec) / 1000.0);
        if (atomic_load(&s.wrong) > 0)
                fail_msg("a wrong answer: %s", s.wrong_text);
        assert_true(atomic_load(&s.slowest_usec) < CONFIG_IO_TIMEOUT_USEC);
        assert_true(atomic_load(&s.unavailable[1]) > 0);
        /* The same smimed, never restarted. */
        assert_int_equal(nodes[0].harness->smimed_pid, smimed_pid);
        assert_int_equal(kill(smimed_pid, 0), 0);

        for (size_t i = 0; i < N_NODES; i++)
                assert_int_equal(
                        harness_wait_smimed_log(nodes[i].harness, log_from[i], "listening for other nodes' changes"),
                        0);
}

/* smimed --copy-store-from= moves an SQLite store into the shared one, all
 * or nothing: its certificates, trust anchors and CRLs; the running nodes
 * show what came; a second run copies nothing; a broken source copies
 * nothing. */
static void test_copy_store(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *old_root = pki_root_ca("Old Root"), *gina = NULL;
        _cleanup_free_ char *dir = NULL, *store_path = NULL, *garbage = NULL, *out = NULL, *err = NULL,
                            *gina_path = NULL, *want = NULL, *config_text = NULL, *config = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        const char *addresses[] = {"gina@example.com", NULL};
        PkiCrlOptions crl_options;
        PkiCertOptions o;
        Watch w = {};
        int r;

        (void) state;
        pki_cert_options_init(&o);
        o.common_name = "Gina";
        o.san_emails = addresses;
        o.key = pki_key_ec();
        gina = pki_cert_new(&o, old_root);
        EVP_PKEY_free(o.key);
        assert_non_null(gina);
        gina_path = path_of(gina);
        w.path = gina_path;
        pki_crl_options_init(&crl_options);
        crl = pki_crl_new(old_root, NULL, 0, &crl_options);
        assert_non_null(crl);

        /* The old node's SQLite store, as it had it. */
        assert_true(asprintf(&store_path, "%s/old-store.db", nodes[0].harness->dir) > 0);
        {
                _cleanup_(store_freep) Store *old = NULL;
                _cleanup_(cert_info_freep) CertInfo *root_info = NULL, *gina_info = NULL;
                _cleanup_free_ char *message = NULL;
                bool added;

                assert_int_equal(store_open(store_path, &old, &message), 0);
                assert_int_equal(cert_info_new(old_root->x509, &root_info), 0);
                assert_int_equal(cert_info_new(gina->x509, &gina_info), 0);
                assert_int_equal(store_begin(old), 0);
                assert_int_equal(store_add_certificate(old, root_info, true, &added), 0);
                assert_int_equal(store_add_certificate(old, gina_info, false, &added), 0);
                assert_int_equal(store_put_crl(old, crl, &added), 0);
                assert_int_equal(store_commit(old), 0);
        }
        expect_reason(&nodes[1], "gina@example.com", "no-certificate");

        config_text = harness_config_text(nodes[0].harness, NULL);
        config = harness_write_file(nodes[0].harness, "copy.conf", config_text, 0644);
        assert_non_null(config);
        slot = watch_object(&nodes[1], "InterfacesAdded", &w);
        {
                _cleanup_free_ char *config_arg = NULL, *from_arg = NULL;

                assert_true(asprintf(&config_arg, "--config=%s", config) > 0);
                assert_true(asprintf(&from_arg, "--copy-store-from=%s", store_path) > 0);
                r = harness_run(nodes[0].harness, (char *const[]){(char *) SMIMED_BINARY, config_arg, from_arg, NULL},
                                false, &out, &err);
                if (r != 0)
                        fail_msg("smimed --copy-store-from exited with %d: %s%s", r, strempty(out), strempty(err));
                assert_non_null(strstr(out, "Copied 2 certificates (1 made trust anchors) and 1 CRLs from "));
                out = mfree(out);
                err = mfree(err);

                wait_seen(&nodes[1], &w, "InterfacesAdded (copied)");
                expect_reason(&nodes[1], "gina@example.com", "");

                r = harness_run(nodes[0].harness, (char *const[]){(char *) SMIMED_BINARY, config_arg, from_arg, NULL},
                                false, &out, &err);
                assert_int_equal(r, 0);
                assert_non_null(strstr(out, "Copied 0 certificates (0 made trust anchors) and 0 CRLs from "));
                out = mfree(out);
                err = mfree(err);

                /* Not a store: an error, and nothing changes. */
                assert_true(asprintf(&garbage, "%s/garbage.db", nodes[0].harness->dir) > 0);
                assert_int_equal(pki_write_file(garbage, "not a database, not at all, no, it is not.\n", 44), 0);
                from_arg = mfree(from_arg);
                assert_true(asprintf(&from_arg, "--copy-store-from=%s", garbage) > 0);
                r = harness_run(nodes[0].harness, (char *const[]){(char *) SMIMED_BINARY, config_arg, from_arg, NULL},
                                false, &out, &err);
                assert_int_equal(r, 1);
                assert_non_null(strstr(err, garbage));
        }
}

/* A key generated through node 0 in the shared token (p11-kit server):
 * node 1 shows it at once (node 0 announced it through the store), and
 * once its certificate is imported on node 0, node 1 signs with it. */
static void test_key_enrolled_elsewhere(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *m = NULL, *signed_reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(pki_cert_freep) PkiCert *hal = NULL;
        _cleanup_(closep) int input = -1, output = -1;
        static const char message[] = "From: hal@example.com\nTo: dave@example.com\nSubject: from node 1\n"
                                      "Content-Type: text/plain\n\nSigned through the other node.\n";
        const char *addresses[] = {"hal@example.com", NULL};
        const char *key_path = NULL, *csr = NULL, *signer = NULL;
        _cleanup_free_ char *key_path_copy = NULL;
        char fingerprint[65], head[4096] = {};
        Watch w = {};

        (void) state;
        if (sd_bus_call_method(nodes[0].bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                               "GenerateKey", &e, &reply, "sa{sv}", "hal@example.com", 1, "type", "s", "ec-p256") < 0)
                fail_msg("GenerateKey: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_read(reply, "os", &key_path, &csr) > 0);
        key_path_copy = strdup(key_path);
        w.path = key_path_copy;
        slot = watch_object(&nodes[1], "InterfacesAdded", &w);
        /* It may have come before the match: then the object is there already. */
        if (sd_bus_call_method(nodes[1].bus, SMIMED_BUS_NAME, key_path, "org.freedesktop.DBus.Properties", "GetAll",
                               NULL, NULL, "s", SMIMED_KEY_INTERFACE) >= 0)
                w.seen = true;
        wait_seen(&nodes[1], &w, "the new key");

        {
                BIO *bio = BIO_new_mem_buf(csr, -1);
                X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
                PkiCertOptions o;

                assert_non_null(req);
                pki_cert_options_init(&o);
                o.common_name = "Hal";
                o.san_emails = addresses;
                o.key = X509_REQ_get_pubkey(req);
                hal = pki_cert_new(&o, root);
                EVP_PKEY_free(o.key);
                X509_REQ_free(req);
                BIO_free(bio);
        }
        assert_non_null(hal);
        import_ok(&nodes[0], hal, false);
        assert_int_equal(pki_cert_fingerprint(hal, fingerprint), 0);

        input = memfd_create("message", MFD_CLOEXEC);
        output = memfd_create("signed", MFD_CLOEXEC);
        assert_true(input >= 0 && output >= 0);
        assert_int_equal(write(input, message, strlen(message)), (ssize_t) strlen(message));
        assert_int_equal(lseek(input, 0, SEEK_SET), 0);
        assert_true(sd_bus_message_new_method_call(nodes[1].bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "Sign") >= 0);
        assert_true(sd_bus_message_append(m, "shha{sv}", "hal@example.com", input, output, 0) >= 0);
        if (sd_bus_call(nodes[1].bus, m, CALL_TIMEOUT_USEC, &e, &signed_reply) < 0)
                fail_msg("Sign on node 1: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_enter_container(signed_reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(signed_reply, 'e', "sv") > 0) {
                const char *k;

                assert_true(sd_bus_message_read(signed_reply, "s", &k) >= 0);
                if (strcmp(k, "signer") == 0)
                        assert_true(sd_bus_message_read(signed_reply, "v", "s", &signer) >= 0);
                else
                        assert_true(sd_bus_message_skip(signed_reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(signed_reply) >= 0);
        }
        assert_non_null(signer);
        assert_string_equal(signer, fingerprint);
        assert_true(pread(output, head, sizeof(head) - 1, 0) > 0);
        assert_non_null(strstr(head, "multipart/signed"));
}

/* ---- setup ---- */

/* Node 0's harness token, served by p11-kit server to every node. */
static int start_token_server(Harness *h) {
        _cleanup_free_ char *socket_path = NULL, *conf = NULL;

        /* Where smimed, as whom the server runs, may make it. */
        if (asprintf(&socket_path, "%s/p11-kit.sock", h->state_dir) < 0 ||
            asprintf(&conf, "SOFTHSM2_CONF=%s", h->softhsm_conf) < 0)
                return -ENOMEM;
        return p11_server_start("/usr/lib/softhsm/libsofthsm2.so", "pkcs11:token=" HARNESS_TOKEN_LABEL, socket_path,
                                h->smimed_uid, h->smimed_gid, (char *const[]){conf, NULL}, &token_server);
}

/* Each node: its own bus, polkitd and smimed; the shared store and token.
 * The token is not asked again by itself within a test's time: what a node
 * knows of the others' keys is what they announced. */
static int start_node(Node *n) {
        _cleanup_free_ char *text = NULL, *store = NULL, *address = NULL;
        int r;

        r = harness_new(&n->harness);
        if (r < 0)
                return r;
        n->harness->store_connection = strdup(server->conninfo);
        if (!n->harness->store_connection)
                return -ENOMEM;
        if (!token_server) {
                r = start_token_server(n->harness);
                if (r < 0)
                        return r;
        }
        r = harness_start_bus(n->harness);
        if (r < 0)
                return r;
        store = harness_store_section(n->harness);
        if (!store || asprintf(&text,
                               "[Token]\nModule=" P11_KIT_CLIENT_MODULE "\nURI=pkcs11:token=" HARNESS_TOKEN_LABEL
                               "\nPINFile=%s\nRescanIntervalSec=86400\n%s[Policy]\nEnabled=yes\n",
                               nodes[0].harness->pin_file, store) < 0)
                return -ENOMEM;
        n->config = harness_write_file(n->harness, "smimed.conf", text, 0644);
        if (!n->config)
                return -ENOMEM;
        if (asprintf(&address, "P11_KIT_SERVER_ADDRESS=%s", token_server->address) < 0)
                return -ENOMEM;
        r = harness_start_smimed(n->harness, n->config, (char *const[]){address, NULL});
        if (r < 0)
                return r;
        return node_bus_open(n->harness, &n->bus);
}

static int setup(void **state) {
        _cleanup_free_ char *pem = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        (void) state;
        r = pg_server_start(&server);
        if (r < 0)
                return r;
        for (size_t i = 0; i < N_NODES; i++) {
                r = start_node(&nodes[i]);
                if (r < 0) {
                        fprintf(stderr, "node %zu: %s\n", i, strerror(-r));
                        return r;
                }
        }
        root = pki_root_ca("Cluster Root");
        pem = root ? pki_cert_pem(root) : NULL;
        if (!pem)
                return -ENOMEM;
        r = import_pem(&nodes[0], pem, true, &e);
        sd_bus_error_free(&e);
        return r < 0 ? r : 0;
}

static int teardown(void **state) {
        int failed = 0;

        (void) state;
        for (size_t i = 0; i < N_NODES; i++) {
                nodes[i].bus = sd_bus_flush_close_unref(nodes[i].bus);
                if (nodes[i].harness && nodes[i].harness->smimed_pid > 0 &&
                    harness_stop_smimed(nodes[i].harness) != 0) {
                        fprintf(stderr, "node %zu: smimed did not stop cleanly, see %s\n", i,
                                nodes[i].harness->smimed_log);
                        failed = -1;
                }
                nodes[i].harness = harness_free(nodes[i].harness);
                free(nodes[i].config);
        }
        root = pki_cert_free(root);
        token_server = p11_server_free(token_server);
        server = pg_server_free(server);
        return failed;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_import_seen_elsewhere),
                cmocka_unit_test(test_trust_seen_elsewhere),
                cmocka_unit_test(test_crl_seen_elsewhere),
                cmocka_unit_test(test_remove_seen_elsewhere),
                cmocka_unit_test(test_same_import_at_once),
                cmocka_unit_test(test_store_server_restarts),
                cmocka_unit_test(test_node_killed_during_import),
                cmocka_unit_test(test_store_server_restarts_under_calls),
                cmocka_unit_test(test_copy_store),
                cmocka_unit_test(test_key_enrolled_elsewhere),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
