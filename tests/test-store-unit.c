/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of daemon/store.c on temporary SQLite files and on databases
 * of a private PostgreSQL server (tests/pg-server.c), without a bus:
 * migrations and reopening, the generation counter, all-or-nothing batches,
 * every lookup, CRLs, and what two handles on one file see of each other.
 *
 * What the store supports (and these tests hold it to): a Store handle is
 * used by one thread at a time (SQLITE_OPEN_NOMUTEX, its prepared statements
 * and parsed-certificate cache are its own). Several handles, in threads or
 * processes, may share a file: a reader sees only committed batches, whole,
 * and is not held up by a writer (WAL); writers take turns (a second
 * store_begin() waits up to 5 s for the first to end). The generation
 * counts the changes committed through its own handle only; another
 * handle's commits do not move it. */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/err.h>

#include "certificate.h"
#include "db.h"
#include "pg-server.h"
#include "pki.h"
#include "store.h"
#include "strv.h"

/* For a connection or an answer of the test's own server. */
#define TIMEOUT_USEC (60ULL * 1000000ULL)

static char dir[] = "/tmp/smimed-store-test.XXXXXX";
static DbBackend backend;
static PgServer *server;
static PkiCert *root, *intermediate;
static EVP_PKEY *leaf_key;

static int setup(void **state) {
        (void) state;
        if (!mkdtemp(dir))
                return -1;
        root = pki_root_ca("Store Root");
        intermediate = root ? pki_intermediate_ca("Store Intermediate", root) : NULL;
        leaf_key = pki_key_ec(); /* fast to sign with, and certificates need not differ in keys */
        if (pg_server_start(&server) < 0)
                return -1;
        return intermediate && leaf_key ? 0 : -1;
}

static int teardown(void **state) {
        char cmd[256];

        (void) state;
        server = pg_server_free(server);
        root = pki_cert_free(root);
        intermediate = pki_cert_free(intermediate);
        EVP_PKEY_free(leaf_key);
        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

/* The backend the running test uses: each test runs on an SQLite file and
 * on a database of a PostgreSQL server of this test's own. */
static int on_sqlite(void **state) {
        (void) state;
        backend = DB_SQLITE;
        return 0;
}

static int on_postgresql(void **state) {
        (void) state;
        backend = DB_POSTGRESQL;
        return 0;
}

static bool is_conninfo(const char *where) {
        return strncmp(where, "host=", 5) == 0;
}

static int open_db(const char *where, Db **ret, char **ret_message) {
        if (is_conninfo(where))
                return db_open_postgresql(where, NULL, TIMEOUT_USEC, ret, ret_message);
        return db_open_sqlite(where, ret, ret_message);
}

/* A new, empty store for each use: a file name in the scratch directory,
 * or a new database's connection string. */
static char *new_path(const char *name) {
        static unsigned counter;
        char *path;

        if (backend == DB_POSTGRESQL) {
                _cleanup_(db_closep) Db *admin = NULL;
                _cleanup_free_ char *message = NULL, *create = NULL;

                assert_int_equal(db_open_postgresql(server->conninfo, NULL, TIMEOUT_USEC, &admin, &message), 0);
                assert_true(asprintf(&create, "CREATE DATABASE %s_%u", name, counter) > 0);
                assert_int_equal(db_exec(admin, create), 0);
                assert_true(asprintf(&path, "host=%s dbname=%s_%u user=postgres", server->dir, name, counter++) > 0);
                return path;
        }
        assert_true(asprintf(&path, "%s/%s-%u.db", dir, name, counter++) > 0);
        return path;
}

static int open_store_at(const char *path, Store **ret, char **ret_message) {
        Db *db = NULL;
        int r;

        if (!is_conninfo(path))
                return store_open(path, ret, ret_message);
        r = open_db(path, &db, ret_message);
        if (r < 0)
                return r;
        return store_open_db(db, ret, ret_message);
}

static Store *open_store(const char *path) {
        _cleanup_free_ char *message = NULL;
        Store *s = NULL;
        int r;

        r = open_store_at(path, &s, &message);
        if (r < 0)
                fail_msg("store_open(%s): %s", path, strempty(message));
        assert_null(message);
        return s;
}

static int schema_version(const char *path) {
        _cleanup_(db_closep) Db *db = NULL;
        _cleanup_free_ char *message = NULL;
        int v = -1;

        assert_int_equal(open_db(path, &db, &message), 0);
        assert_int_equal(db_get_schema_version(db, &v), 0);
        return v;
}

static void set_schema_version(const char *path, int version) {
        _cleanup_(db_closep) Db *db = NULL;
        _cleanup_free_ char *message = NULL;

        assert_int_equal(open_db(path, &db, &message), 0);
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(db_set_schema_version(db, version), 0);
        assert_int_equal(db_commit(db), 0);
}

/* A leaf for addresses (NULL-terminated), issued by the intermediate,
 * NotBefore not_before_days from now. */
static PkiCert *make_leaf(const char *const *addresses, int not_before_days, uint64_t serial) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = addresses && addresses[0] ? addresses[0] : "Nobody";
        o.san_emails = addresses;
        o.key = leaf_key;
        o.not_before_days = not_before_days;
        o.serial = serial;
        c = pki_cert_new(&o, intermediate);
        if (!c)
                fail_msg("pki_cert_new failed: %s", ERR_error_string(ERR_get_error(), NULL));
        return c;
}

static CertInfo *info_of(const PkiCert *c) {
        CertInfo *info;

        assert_int_equal(cert_info_new(c->x509, &info), 0);
        return info;
}

/* Adds the certificates as one committed batch. */
static void add_batch(Store *s, const PkiCert *const *certs, size_t n, bool trusted) {
        assert_int_equal(store_begin(s), 0);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(cert_info_freep) CertInfo *info = info_of(certs[i]);
                bool added;

                assert_int_equal(store_add_certificate(s, info, trusted, &added), 0);
        }
        assert_int_equal(store_commit(s), 0);
}

static void add_one(Store *s, const PkiCert *c, bool trusted) {
        add_batch(s, &c, 1, trusted);
}

static uint64_t count(Store *s) {
        uint64_t n;

        assert_int_equal(store_count_certificates(s, &n), 0);
        return n;
}

static void assert_has(Store *s, const PkiCert *c, bool expected) {
        char fingerprint[65];

        assert_int_equal(pki_cert_fingerprint(c, fingerprint), 0);
        assert_int_equal(store_get_certificate(s, fingerprint, NULL, NULL), expected ? 0 : -ENOENT);
}

static void assert_fingerprints(char **l, const PkiCert *const *expected, size_t n) {
        char fingerprint[65];

        assert_non_null(l);
        assert_int_equal(strv_length(l), n);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(pki_cert_fingerprint(expected[i], fingerprint), 0);
                assert_string_equal(l[i], fingerprint);
        }
}

/* ---- opening ---- */

static void test_migrations_and_reopen(void **state) {
        _cleanup_free_ char *path = new_path("migrate");
        static const char *const addresses[] = { "alice@example.com", NULL };
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(addresses, -1, 0);
        int version;

        (void) state;
        /* An empty file, as the tmpfiles snippet or an admin may leave it;
         * an empty database. */
        if (backend == DB_SQLITE)
                assert_int_equal(pki_write_file(path, "", 0), 0);
        {
                _cleanup_(store_freep) Store *s = open_store(path);

                add_one(s, leaf, false);
        }
        version = schema_version(path);
        assert_true(version >= 1);

        /* Reopened: nothing migrates again (no commit), the contents stay. */
        for (int i = 0; i < 2; i++) {
                _cleanup_(store_freep) Store *s = open_store(path);

                assert_int_equal(store_generation(s), 0);
                assert_int_equal(count(s), 1);
                assert_has(s, leaf, true);
                assert_int_equal(schema_version(path), version);
        }
}

/* store_list_certificates() and store_count_listed(): pages in the order of
 * NotAfter, then fingerprint; each filter in SQL; keyset paging. */
static void list_all(Store *s, const StoreListFilter *f, uint64_t offset, uint64_t limit, StoreListRow **rows,
                     size_t *n) {
        StoreListPage page = {.offset = offset, .limit = limit};

        assert_int_equal(store_list_certificates(s, f, &page, rows, n), 0);
}

static uint64_t count_listed(Store *s, const StoreListFilter *f) {
        uint64_t n;

        assert_int_equal(store_count_listed(s, f, &n), 0);
        return n;
}

static void test_list(void **state) {
        _cleanup_free_ char *path = new_path("list");
        static const char *const alice[] = {"alice@example.com", NULL}, *const bob[] = {"bob@example.org", NULL},
                                 *const carol[] = {"carol@example.com", "c_100%@example.net", NULL};
        _cleanup_(pki_cert_freep) PkiCert *a = make_leaf(alice, -1, 0), *b = make_leaf(bob, -2, 0),
                                          *c = make_leaf(carol, -3, 0);
        _cleanup_(store_freep) Store *s = open_store(path);
        const PkiCert *const certs[] = {intermediate, a, b, c};
        StoreListFilter f = STORE_LIST_FILTER_ALL;
        StoreListRow *rows = NULL, *all = NULL;
        size_t n = 0, n_all = 0;
        time_t now = time(NULL);

        (void) state;
        add_batch(s, certs, ELEMENTSOF(certs), false);

        list_all(s, &f, 0, 100, &all, &n_all);
        assert_int_equal(n_all, 4);
        assert_int_equal(count_listed(s, &f), 4);
        for (size_t i = 1; i < n_all; i++)
                assert_true(all[i - 1].not_after < all[i].not_after ||
                            (all[i - 1].not_after == all[i].not_after &&
                             strcmp(all[i - 1].fingerprint, all[i].fingerprint) < 0));
        assert_true(all[n_all - 1].is_ca); /* the intermediate outlives the leaves */

        /* Pages of 3 and keyset paging give the same rows. */
        list_all(s, &f, 3, 3, &rows, &n);
        assert_int_equal(n, 1);
        assert_string_equal(rows[0].fingerprint, all[3].fingerprint);
        store_list_rows_free(rows, n);
        {
                StoreListPage page = {
                        .after_not_after = all[1].not_after, .after_fingerprint = all[1].fingerprint, .limit = 10};

                assert_int_equal(store_list_certificates(s, &f, &page, &rows, &n), 0);
                assert_int_equal(n, 2);
                assert_string_equal(rows[0].fingerprint, all[2].fingerprint);
                assert_non_null(rows[0].der);
                assert_true(rows[0].der_size > 0);
                store_list_rows_free(rows, n);
        }

        f.address_prefix = "al";
        assert_int_equal(count_listed(s, &f), 1);
        f.address_prefix = "c_100%";
        assert_int_equal(count_listed(s, &f), 1);
        f.address_prefix = "c_1000";
        assert_int_equal(count_listed(s, &f), 0);
        f.address_prefix = "%";
        assert_int_equal(count_listed(s, &f), 0);
        f.address_prefix = "carol@example.com";
        list_all(s, &f, 0, 10, &rows, &n);
        assert_int_equal(n, 1);
        store_list_rows_free(rows, n);

        f = STORE_LIST_FILTER_ALL;
        f.is_ca = 1;
        assert_int_equal(count_listed(s, &f), 1);
        f.is_ca = 0;
        assert_int_equal(count_listed(s, &f), 3);

        f = STORE_LIST_FILTER_ALL;
        f.expiring_before = now + 30 * 86400;
        assert_int_equal(count_listed(s, &f), 0);
        f.expiring_before = now + 400 * 86400;
        assert_int_equal(count_listed(s, &f), 3);
        f.address_prefix = "bob";
        assert_int_equal(count_listed(s, &f), 1);

        store_list_rows_free(all, n_all);
}

static void test_open_refusals(void **state) {
        _cleanup_free_ char *future = new_path("future"), *garbage = new_path("garbage");
        _cleanup_free_ char *missing = NULL;

        (void) state;
        /* A schema newer than this smimed knows. */
        set_schema_version(future, 9999);
        {
                _cleanup_free_ char *message = NULL;
                Store *s = NULL;

                assert_int_equal(open_store_at(future, &s, &message), -EPROTONOSUPPORT);
                assert_null(s);
                assert_non_null(message);
                assert_non_null(strstr(message, "schema version 9999, newer than this smimed knows"));
        }
        assert_int_equal(schema_version(future), 9999);
        if (backend != DB_SQLITE)
                return;

        /* Not a database. */
        assert_int_equal(pki_write_file(garbage, "this is not an SQLite database, not at all, no.\n", 48), 0);
        {
                _cleanup_free_ char *message = NULL;
                Store *s = NULL;

                assert_int_equal(store_open(garbage, &s, &message), -EBADMSG);
                assert_null(s);
                assert_non_null(message);
                assert_non_null(strstr(message, garbage));
        }

        /* A directory that is not there. */
        assert_true(asprintf(&missing, "%s/no/such/dir/store.db", dir) > 0);
        {
                _cleanup_free_ char *message = NULL;
                Store *s = NULL;

                assert_int_equal(store_open(missing, &s, &message), -ENOENT);
                assert_non_null(message);
        }
}

/* ---- the generation ---- */

static void test_generation(void **state) {
        _cleanup_free_ char *path = new_path("generation");
        _cleanup_(store_freep) Store *s = open_store(path);
        static const char *const addresses[] = { "alice@example.com", NULL };
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(addresses, -1, 0);
        _cleanup_(cert_info_freep) CertInfo *info = info_of(leaf);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        PkiCrlOptions crl_options;
        uint64_t g = store_generation(s);
        bool flag;

        (void) state;
        pki_crl_options_init(&crl_options);
        crl = pki_crl_new(intermediate, NULL, 0, &crl_options);
        assert_non_null(crl);

        /* Every committed change moves it... */
        add_one(s, leaf, false);
        assert_int_equal(store_generation(s), ++g);
        assert_int_equal(store_set_trusted(s, info->fingerprint, true), 0);
        assert_int_equal(store_generation(s), ++g);
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_put_crl(s, crl, &flag), 0);
        assert_int_equal(store_commit(s), 0);
        assert_int_equal(store_generation(s), ++g);

        /* ...reads do not... */
        {
                _cleanup_(strv_freep) char **a = NULL, **b = NULL;
                X509 *x = NULL;
                X509_CRL *c = NULL;
                uint64_t n;

                assert_int_equal(store_count_certificates(s, &n), 0);
                assert_int_equal(store_get_certificate(s, info->fingerprint, &x, &flag), 0);
                X509_free(x);
                assert_int_equal(store_find_by_address(s, "alice@example.com", &a), 0);
                assert_int_equal(store_find_by_spki(s, info->spki_sha256, &b), 0);
                assert_int_equal(store_find_by_issuer_serial(s, info->issuer_name_der, info->issuer_name_der_size,
                                                             info->serial, &x),
                                 0);
                X509_free(x);
                assert_int_equal(store_get_crl(s, info->issuer_name_der, info->issuer_name_der_size, &c), 0);
                X509_CRL_free(c);
        }
        assert_int_equal(store_generation(s), g);

        /* ...nor do changes that did not happen: a rollback, an unknown
         * certificate. */
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_remove_certificate(s, info->fingerprint), 0);
        store_rollback(s);
        assert_int_equal(store_generation(s), g);
        assert_has(s, leaf, true);
        assert_int_equal(store_set_trusted(s, "00ff", false), -ENOENT);
        assert_int_equal(store_remove_certificate(s, "00ff"), -ENOENT);
        assert_int_equal(store_generation(s), g);

        assert_int_equal(store_remove_certificate(s, info->fingerprint), 0);
        assert_int_equal(store_generation(s), ++g);
}

/* ---- batches ---- */

static void test_batch_all_or_nothing(void **state) {
        _cleanup_free_ char *path = new_path("batch");
        _cleanup_(store_freep) Store *s = open_store(path);
        static const char *const a1[] = { "one@example.com", NULL }, *const a2[] = { "two@example.com", NULL };
        _cleanup_(pki_cert_freep) PkiCert *kept = make_leaf(a1, -1, 0), *c1 = make_leaf(a1, -2, 0),
                                          *c2 = make_leaf(a2, -1, 0);
        _cleanup_(cert_info_freep) CertInfo *i1 = info_of(c1), *i2 = info_of(c2), *bad = info_of(c2);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        PkiCrlOptions crl_options;
        char *serial;
        uint64_t g;
        bool added, stored;

        (void) state;
        add_one(s, kept, false);
        g = store_generation(s);
        pki_crl_options_init(&crl_options);
        crl = pki_crl_new(intermediate, NULL, 0, &crl_options);
        assert_non_null(crl);

        /* Two good certificates, a CRL, then one the database refuses. */
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_begin(s), -EBUSY); /* one batch at a time */
        assert_int_equal(store_add_certificate(s, i1, false, &added), 0);
        assert_true(added);
        assert_int_equal(store_add_certificate(s, i2, true, &added), 0);
        assert_int_equal(store_put_crl(s, crl, &stored), 0);
        assert_true(stored);
        /* A row the database refuses is an error. It once passed for a
         * certificate already there (INSERT OR IGNORE skips NOT NULL
         * failures too), and the batch went on without it. */
        serial = bad->serial;
        bad->serial = NULL; /* NOT NULL column */
        memcpy(bad->fingerprint, "ff", 3);
        assert_int_equal(store_add_certificate(s, bad, false, &added), -EIO);
        bad->serial = serial;
        store_rollback(s);

        /* As it was. */
        assert_int_equal(store_generation(s), g);
        assert_int_equal(count(s), 1);
        assert_has(s, kept, true);
        assert_has(s, c1, false);
        assert_has(s, c2, false);
        {
                _cleanup_(strv_freep) char **l = NULL;
                X509_CRL *c = NULL;

                assert_int_equal(store_find_by_address(s, "two@example.com", &l), 0);
                assert_int_equal(strv_length(l), 0);
                assert_int_equal(store_get_crl(s, i1->issuer_name_der, i1->issuer_name_der_size, &c), -ENOENT);
        }

        /* The same batch without the bad one goes in whole. */
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_add_certificate(s, i1, false, &added), 0);
        assert_int_equal(store_add_certificate(s, i2, true, &added), 0);
        assert_int_equal(store_commit(s), 0);
        assert_int_equal(store_generation(s), g + 1);
        assert_int_equal(count(s), 3);
}

/* Adding what is there adds nothing; trust is only ever added. */
static void test_add_again_and_trust(void **state) {
        _cleanup_free_ char *path = new_path("trust");
        _cleanup_(store_freep) Store *s = open_store(path);
        _cleanup_(cert_info_freep) CertInfo *info = info_of(root);
        bool added, trusted;

        (void) state;
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_add_certificate(s, info, false, &added), 0);
        assert_true(added);
        assert_int_equal(store_add_certificate(s, info, false, &added), 0);
        assert_false(added);
        assert_int_equal(store_commit(s), 0);
        assert_int_equal(store_get_certificate(s, info->fingerprint, NULL, &trusted), 0);
        assert_false(trusted);

        add_one(s, root, true);
        assert_int_equal(store_get_certificate(s, info->fingerprint, NULL, &trusted), 0);
        assert_true(trusted);
        add_one(s, root, false);
        assert_int_equal(store_get_certificate(s, info->fingerprint, NULL, &trusted), 0);
        assert_true(trusted);

        assert_int_equal(store_set_trusted(s, info->fingerprint, false), 0);
        assert_int_equal(store_get_certificate(s, info->fingerprint, NULL, &trusted), 0);
        assert_false(trusted);
        assert_int_equal(count(s), 1);
}

/* ---- lookups ---- */

static void test_lookups(void **state) {
        _cleanup_free_ char *path = new_path("lookups");
        _cleanup_(store_freep) Store *s = open_store(path);
        static const char *const both[] = { "Alice@Example.com", "alice@work.example", NULL };
        static const char *const alice[] = { "alice@example.com", NULL };
        static const char *const bob[] = { "bob@example.com", NULL };
        _cleanup_(pki_cert_freep) PkiCert *old = make_leaf(both, -30, 0x1234), *new = make_leaf(alice, -3, 0xabcdef),
                                          *b = make_leaf(bob, -10, 0);
        const PkiCert *all[] = { root, intermediate, old, new, b };
        _cleanup_(cert_info_freep) CertInfo *info_old = info_of(old), *info_new = info_of(new);

        (void) state;
        add_batch(s, all, ELEMENTSOF(all), false);

        /* By address: lower-cased, newest NotBefore first. */
        {
                _cleanup_(strv_freep) char **l = NULL;

                assert_int_equal(store_find_by_address(s, "alice@example.com", &l), 0);
                assert_fingerprints(l, (const PkiCert *[]) { new, old }, 2);
                l = strv_free(l);
                assert_int_equal(store_find_by_address(s, "alice@work.example", &l), 0);
                assert_fingerprints(l, (const PkiCert *[]) { old }, 1);
                l = strv_free(l);
                assert_int_equal(store_find_by_address(s, "carol@example.com", &l), 0);
                assert_fingerprints(l, NULL, 0);
                l = strv_free(l);
                /* Everything (the CAs were made 20 and 30 days ago, like "old"). */
                assert_int_equal(store_find_by_address(s, "", &l), 0);
                assert_int_equal(strv_length(l), 5);
                assert_string_equal(l[0], info_new->fingerprint);
                l = strv_free(l);
                assert_int_equal(store_find_by_address(s, NULL, &l), 0);
                assert_int_equal(strv_length(l), 5);
        }

        /* By fingerprint: the same certificate, twice (the second from the cache). */
        for (int i = 0; i < 2; i++) {
                X509 *x = NULL;
                bool trusted = true;

                assert_int_equal(store_get_certificate(s, info_old->fingerprint, &x, &trusted), 0);
                assert_int_equal(X509_cmp(x, old->x509), 0);
                assert_false(trusted);
                X509_free(x);
        }
        assert_int_equal(store_get_certificate(s, "0123", NULL, NULL), -ENOENT);

        /* By issuer and serial (upper-case hex). */
        {
                X509 *x = NULL;

                assert_string_equal(info_new->serial, "ABCDEF");
                assert_int_equal(store_find_by_issuer_serial(s, info_new->issuer_name_der,
                                                             info_new->issuer_name_der_size, "ABCDEF", &x),
                                 0);
                assert_int_equal(X509_cmp(x, new->x509), 0);
                X509_free(x);
                assert_int_equal(store_find_by_issuer_serial(s, info_new->issuer_name_der,
                                                             info_new->issuer_name_der_size, "ABCDEE", &x),
                                 -ENOENT);
                /* The right serial under another issuer name. */
                assert_int_equal(store_find_by_issuer_serial(s, info_new->subject_name_der,
                                                             info_new->subject_name_der_size, "ABCDEF", &x),
                                 -ENOENT);
        }

        /* By public key (the SHA-256 of its SubjectPublicKeyInfo; the store
         * keeps no subjectKeyIdentifier): every leaf here shares one key. */
        {
                _cleanup_(strv_freep) char **l = NULL;

                assert_int_equal(store_find_by_spki(s, info_old->spki_sha256, &l), 0);
                assert_fingerprints(l, (const PkiCert *[]) { new, b, old }, 3);
                l = strv_free(l);
                assert_int_equal(store_find_by_spki(s, "0000", &l), 0);
                assert_int_equal(strv_length(l), 0);
        }
}

typedef struct Seen {
        X509 *expected;
        unsigned n;
        bool trusted;
} Seen;

static int seen_cb(X509 *x509, bool trusted, void *userdata) {
        Seen *seen = userdata;

        assert_int_equal(X509_cmp(x509, seen->expected), 0);
        seen->n++;
        seen->trusted = trusted;
        return 0;
}

static int stop_cb(X509 *x509, bool trusted, void *userdata) {
        (void) x509;
        (void) trusted;
        (*(unsigned *) userdata)++;
        return -ECANCELED;
}

/* Issuers by subject name, with their trust, as validation asks. */
static void test_foreach_by_subject(void **state) {
        _cleanup_free_ char *path = new_path("subject");
        _cleanup_(store_freep) Store *s = open_store(path);
        _cleanup_(cert_info_freep) CertInfo *info = info_of(intermediate);
        _cleanup_(pki_cert_freep) PkiCert *renewed = NULL;
        Seen seen = { .expected = intermediate->x509 };
        unsigned calls = 0;

        (void) state;
        add_one(s, root, true);
        add_one(s, intermediate, false);
        assert_int_equal(store_foreach_by_subject(s, info->subject_name_der, info->subject_name_der_size, seen_cb,
                                                  &seen),
                         0);
        assert_int_equal(seen.n, 1);
        assert_false(seen.trusted);

        seen = (Seen) { .expected = root->x509 };
        assert_int_equal(store_foreach_by_subject(s, info->issuer_name_der, info->issuer_name_der_size, seen_cb,
                                                  &seen),
                         0);
        assert_int_equal(seen.n, 1);
        assert_true(seen.trusted);

        /* Two CAs of one name: both offered; a callback's error stops the walk. */
        renewed = pki_intermediate_ca("Store Intermediate", root);
        assert_non_null(renewed);
        add_one(s, renewed, false);
        assert_int_equal(store_foreach_by_subject(s, info->subject_name_der, info->subject_name_der_size, stop_cb,
                                                  &calls),
                         -ECANCELED);
        assert_int_equal(calls, 1);
}

/* Removing a certificate removes its addresses. */
static void test_remove(void **state) {
        _cleanup_free_ char *path = new_path("remove");
        _cleanup_(store_freep) Store *s = open_store(path);
        static const char *const alice[] = { "alice@example.com", NULL };
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(alice, -1, 0);
        _cleanup_(cert_info_freep) CertInfo *info = info_of(leaf);
        _cleanup_(strv_freep) char **l = NULL;

        (void) state;
        add_one(s, leaf, false);
        assert_int_equal(store_remove_certificate(s, info->fingerprint), 0);
        assert_has(s, leaf, false);
        assert_int_equal(store_find_by_address(s, "alice@example.com", &l), 0);
        assert_int_equal(strv_length(l), 0);
        assert_int_equal(store_remove_certificate(s, info->fingerprint), -ENOENT);
        /* and it can come back */
        add_one(s, leaf, false);
        l = strv_free(l);
        assert_int_equal(store_find_by_address(s, "alice@example.com", &l), 0);
        assert_int_equal(strv_length(l), 1);
}

/* ---- CRLs ---- */

static X509_CRL *crl_at(const PkiCert *ca, int last_update_days, uint64_t revoked) {
        PkiCrlOptions o;
        X509_CRL *crl;

        pki_crl_options_init(&o);
        o.last_update_days = last_update_days;
        crl = pki_crl_new(ca, &revoked, revoked ? 1 : 0, &o);
        assert_non_null(crl);
        return crl;
}

static void put_crl(Store *s, X509_CRL *crl, bool expect_stored) {
        bool stored = !expect_stored;

        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_put_crl(s, crl, &stored), 0);
        assert_int_equal(store_commit(s), 0);
        assert_int_equal(stored, expect_stored);
}

/* The store holds expected as the CRL of issuer, byte for byte. */
static void assert_crl_is(Store *s, const CertInfo *issuer, X509_CRL *expected) {
        _cleanup_free_ unsigned char *a = NULL, *b = NULL;
        size_t na, nb;
        X509_CRL *c = NULL;

        assert_int_equal(store_get_crl(s, issuer->subject_name_der, issuer->subject_name_der_size, &c), 0);
        assert_int_equal(pki_crl_der(c, &a, &na), 0);
        assert_int_equal(pki_crl_der(expected, &b, &nb), 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        X509_CRL_free(c);
}

static void test_crls(void **state) {
        _cleanup_free_ char *path = new_path("crl");
        _cleanup_(store_freep) Store *s = open_store(path);
        _cleanup_(cert_info_freep) CertInfo *ica = info_of(intermediate), *rca = info_of(root);
        _cleanup_(X509_CRL_freep) X509_CRL *older = crl_at(intermediate, -5, 1), *newer = crl_at(intermediate, -1, 2),
                                           *same_time = crl_at(intermediate, -1, 3), *by_root = crl_at(root, -1, 4);
        X509_CRL *c = NULL;

        (void) state;
        assert_int_equal(store_get_crl(s, ica->subject_name_der, ica->subject_name_der_size, &c), -ENOENT);

        put_crl(s, older, true);
        assert_crl_is(s, ica, older);
        /* A newer one replaces it. */
        put_crl(s, newer, true);
        assert_crl_is(s, ica, newer);
        /* An older one, or one of the same lastUpdate, changes nothing. */
        put_crl(s, older, false);
        put_crl(s, same_time, false);
        assert_crl_is(s, ica, newer);
        {
                X509_REVOKED *rev = NULL;
                ASN1_INTEGER *serial = ASN1_INTEGER_new();

                assert_non_null(serial);
                assert_int_equal(ASN1_INTEGER_set_uint64(serial, 2), 1);
                assert_int_equal(store_get_crl(s, ica->subject_name_der, ica->subject_name_der_size, &c), 0);
                assert_int_equal(X509_CRL_get0_by_serial(c, &rev, serial), 1);
                ASN1_INTEGER_free(serial);
                X509_CRL_free(c);
        }

        /* Each issuer has its own. */
        put_crl(s, by_root, true);
        assert_crl_is(s, rca, by_root);
        assert_crl_is(s, ica, newer);
}

/* ---- two handles on one file ---- */

static void test_two_handles(void **state) {
        _cleanup_free_ char *path = new_path("handles");
        _cleanup_(store_freep) Store *writer = open_store(path), *reader = open_store(path);
        static const char *const alice[] = { "alice@example.com", NULL };
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(alice, -1, 0);
        _cleanup_(cert_info_freep) CertInfo *info = info_of(leaf);
        uint64_t g = store_generation(reader);
        bool added;

        (void) state;
        /* A batch in progress is not seen, and does not hold the reader up. */
        assert_int_equal(store_begin(writer), 0);
        assert_int_equal(store_add_certificate(writer, info, false, &added), 0);
        assert_int_equal(count(writer), 1);
        assert_int_equal(count(reader), 0);
        assert_has(reader, leaf, false);
        assert_int_equal(store_commit(writer), 0);

        /* Committed, it is; the reader's generation does not know. */
        assert_int_equal(count(reader), 1);
        assert_has(reader, leaf, true);
        assert_int_equal(store_generation(reader), g);

        /* The reader writes in its turn. */
        assert_int_equal(store_remove_certificate(reader, info->fingerprint), 0);
        assert_int_equal(store_generation(reader), g + 1);
        assert_has(writer, leaf, false);
}

#define BATCHES 20
#define BATCH_SIZE 5

typedef struct Writer {
        const char *path;
        PkiCert **certs;
        int r;
} Writer;

static void *write_batches(void *userdata) {
        Writer *w = userdata;
        _cleanup_free_ char *message = NULL;
        _cleanup_(store_freep) Store *s = NULL;
        int r;

        r = open_store_at(w->path, &s, &message);
        for (size_t b = 0; r >= 0 && b < BATCHES; b++) {
                r = store_begin(s);
                for (size_t i = 0; r >= 0 && i < BATCH_SIZE; i++) {
                        CertInfo *info = NULL;
                        bool added;

                        r = cert_info_new(w->certs[b * BATCH_SIZE + i]->x509, &info);
                        if (r >= 0)
                                r = store_add_certificate(s, info, false, &added);
                        cert_info_free(info);
                }
                if (r >= 0)
                        r = store_commit(s);
                else
                        store_rollback(s);
        }
        w->r = r;
        return NULL;
}

typedef struct Waiter {
        Store *store;
        int r;
        struct timespec done;
} Waiter;

static void *begin_later(void *userdata) {
        Waiter *w = userdata;

        w->r = store_begin(w->store);
        clock_gettime(CLOCK_MONOTONIC, &w->done);
        return NULL;
}

/* A reader in this thread, a writer in another, each with its own handle:
 * every count the reader sees is a whole number of batches, and never
 * goes back. */
static void test_reader_during_writes(void **state) {
        _cleanup_free_ char *path = new_path("threads");
        _cleanup_(store_freep) Store *reader = open_store(path);
        PkiCert *certs[BATCHES * BATCH_SIZE] = {};
        Writer w = { .path = path, .certs = certs };
        uint64_t last = 0, n;
        unsigned reads = 0;
        pthread_t t;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(certs); i++)
                certs[i] = make_leaf(NULL, -1, 0);

        assert_int_equal(pthread_create(&t, NULL, write_batches, &w), 0);
        do {
                assert_int_equal(store_count_certificates(reader, &n), 0);
                if (n % BATCH_SIZE != 0)
                        fail_msg("the reader saw %" PRIu64 " certificates, part of a batch", n);
                assert_true(n >= last);
                last = n;
                reads++;
        } while (n < ELEMENTSOF(certs));
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(w.r, 0);
        assert_true(reads > 0);

        for (size_t i = 0; i < ELEMENTSOF(certs); i++)
                pki_cert_free(certs[i]);
}

/* Writers take turns: a second batch waits for the first to end. */
static void test_writers_take_turns(void **state) {
        _cleanup_free_ char *path = new_path("turns");
        _cleanup_(store_freep) Store *first = open_store(path), *second = open_store(path);
        struct timespec committed;
        Waiter w = { .store = second, .r = 1 };
        pthread_t t;
        long waited_ms;

        (void) state;
        assert_int_equal(store_begin(first), 0);
        assert_int_equal(pthread_create(&t, NULL, begin_later, &w), 0);
        assert_int_equal(nanosleep(&(struct timespec) { .tv_nsec = 300 * 1000 * 1000 }, NULL), 0);
        {
                _cleanup_(cert_info_freep) CertInfo *info = info_of(root);
                bool added;

                assert_int_equal(store_add_certificate(first, info, true, &added), 0);
        }
        clock_gettime(CLOCK_MONOTONIC, &committed);
        assert_int_equal(store_commit(first), 0);
        assert_int_equal(pthread_join(t, NULL), 0);

        assert_int_equal(w.r, 0);
        waited_ms = (w.done.tv_sec - committed.tv_sec) * 1000 + (w.done.tv_nsec - committed.tv_nsec) / 1000000;
        assert_true(waited_ms >= 0); /* it got its turn only after the commit */
        assert_int_equal(count(second), 1);
        store_rollback(second);
}

/* ---- several smimed on one store ---- */

typedef struct Heard {
        char **payloads;
        Db *own;
        unsigned from_own;
} Heard;

static void on_announcement(const char *channel, const char *payload, int sender, void *userdata) {
        Heard *h = userdata;

        assert_string_equal(channel, STORE_CHANNEL);
        if (h->own && sender == db_sender_id(h->own))
                h->from_own++;
        assert_int_equal(strv_extend(&h->payloads, payload), 0);
}

/* Reads what arrived until want announcements are heard (poll, up to 10 s). */
static void hear(Db *listener, Heard *h, size_t want) {
        while (strv_length(h->payloads) < want) {
                struct pollfd p = {.fd = db_fd(listener), .events = POLLIN};

                assert_int_equal(poll(&p, 1, 10000), 1);
                assert_int_equal(db_read_notifications(listener, on_announcement, h), 0);
        }
}

/* PostgreSQL: every change is announced when its batch commits (a batch
 * rolled back says nothing), and another connection hears it in order. */
static void test_announcements(void **state) {
        _cleanup_free_ char *path = new_path("announce"), *message = NULL, *added = NULL, *removed = NULL,
                            *trusted = NULL;
        _cleanup_(store_freep) Store *s = open_store(path);
        _cleanup_(db_closep) Db *listener = NULL;
        static const char *const addresses[] = {"alice@example.com", NULL};
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(addresses, -1, 0), *other = make_leaf(NULL, -1, 0);
        _cleanup_(cert_info_freep) CertInfo *info = info_of(leaf), *other_info = info_of(other);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        PkiCrlOptions crl_options;
        Heard heard = {.own = store_db(s)};
        bool changed;

        (void) state;
        assert_int_equal(open_db(path, &listener, &message), 0);
        assert_int_equal(db_listen(listener, STORE_CHANNEL), 0);

        /* Rolled back: nothing. */
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_add_certificate(s, other_info, false, &changed), 0);
        store_rollback(s);

        add_one(s, leaf, false);
        assert_int_equal(store_set_trusted(s, info->fingerprint, true), 0);
        pki_crl_options_init(&crl_options);
        crl = pki_crl_new(intermediate, NULL, 0, &crl_options);
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_put_crl(s, crl, &changed), 0);
        assert_true(changed);
        assert_int_equal(store_commit(s), 0);
        assert_int_equal(store_remove_certificate(s, info->fingerprint), 0);

        hear(listener, &heard, 4);
        assert_true(asprintf(&added, "added %s", info->fingerprint) > 0);
        assert_true(asprintf(&trusted, "trust %s", info->fingerprint) > 0);
        assert_true(asprintf(&removed, "removed %s", info->fingerprint) > 0);
        assert_int_equal(strv_length(heard.payloads), 4);
        assert_string_equal(heard.payloads[0], added);
        assert_string_equal(heard.payloads[1], trusted);
        assert_string_equal(heard.payloads[2], "crl");
        assert_string_equal(heard.payloads[3], removed);
        assert_int_equal(heard.from_own, 4); /* the writer can tell its own */
        strv_free(heard.payloads);
}

/* What the listener accepts: the five announcements, nothing else. */
static void test_parse_change(void **state) {
        static const char fp[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        _cleanup_free_ char *added = NULL, *short_fp = NULL;
        const char *f = NULL;
        StoreChange c;

        (void) state;
        assert_true(asprintf(&added, "added %s", fp) > 0);
        assert_int_equal(store_parse_change(added, &c, &f), 0);
        assert_int_equal(c, STORE_CHANGE_ADDED);
        assert_string_equal(f, fp);
        assert_int_equal(store_parse_change("crl", &c, &f), 0);
        assert_int_equal(c, STORE_CHANGE_CRL);
        assert_null(f);
        assert_int_equal(store_parse_change("keys", &c, &f), 0);
        assert_int_equal(c, STORE_CHANGE_KEYS);
        assert_true(asprintf(&short_fp, "removed %.63s", fp) > 0);
        assert_int_equal(store_parse_change(short_fp, &c, &f), -EBADMSG);
        assert_int_equal(
                store_parse_change("removed 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", &c, &f),
                -EBADMSG);
        assert_int_equal(store_parse_change("crl extra", &c, &f), -EBADMSG);
        assert_int_equal(store_parse_change("dropped everything", &c, &f), -EBADMSG);
        assert_int_equal(store_parse_change("", &c, &f), -EBADMSG);
}

/* A handle that hears nothing of the others checks the shared generation:
 * another handle's commit moves it, its own reads do not. */
static void test_shared_generation(void **state) {
        _cleanup_free_ char *path = new_path("shared");
        _cleanup_(store_freep) Store *a = open_store(path), *b = open_store(path);
        static const char *const addresses[] = {"alice@example.com", NULL};
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(addresses, -1, 0);
        uint64_t g;

        (void) state;
        g = store_generation(b);
        add_one(a, leaf, false);
        assert_int_equal(store_generation(b), g); /* not checking: it cannot know */
        assert_int_equal(store_check_shared_generation(b, true), 0);
        g = store_generation(b);
        assert_int_equal(store_generation(b), g);
        assert_int_equal(count(b), 1);
        assert_int_equal(store_generation(b), g);
        {
                char fingerprint[65];

                assert_int_equal(pki_cert_fingerprint(leaf, fingerprint), 0);
                assert_int_equal(store_remove_certificate(a, fingerprint), 0);
        }
        assert_true(store_generation(b) > g);
        g = store_generation(b);
        assert_int_equal(store_generation(b), g);
        store_changed_elsewhere(b);
        assert_int_equal(store_generation(b), g + 1);
        assert_int_equal(store_check_shared_generation(b, false), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_migrations_and_reopen, on_sqlite),
                cmocka_unit_test_setup(test_list, on_sqlite),
                cmocka_unit_test_setup(test_open_refusals, on_sqlite),
                cmocka_unit_test_setup(test_generation, on_sqlite),
                cmocka_unit_test_setup(test_batch_all_or_nothing, on_sqlite),
                cmocka_unit_test_setup(test_add_again_and_trust, on_sqlite),
                cmocka_unit_test_setup(test_lookups, on_sqlite),
                cmocka_unit_test_setup(test_foreach_by_subject, on_sqlite),
                cmocka_unit_test_setup(test_remove, on_sqlite),
                cmocka_unit_test_setup(test_crls, on_sqlite),
                cmocka_unit_test_setup(test_two_handles, on_sqlite),
                cmocka_unit_test_setup(test_reader_during_writes, on_sqlite),
                cmocka_unit_test_setup(test_writers_take_turns, on_sqlite),
                cmocka_unit_test_setup(test_migrations_and_reopen, on_postgresql),
                cmocka_unit_test_setup(test_list, on_postgresql),
                cmocka_unit_test_setup(test_open_refusals, on_postgresql),
                cmocka_unit_test_setup(test_generation, on_postgresql),
                cmocka_unit_test_setup(test_batch_all_or_nothing, on_postgresql),
                cmocka_unit_test_setup(test_add_again_and_trust, on_postgresql),
                cmocka_unit_test_setup(test_lookups, on_postgresql),
                cmocka_unit_test_setup(test_foreach_by_subject, on_postgresql),
                cmocka_unit_test_setup(test_remove, on_postgresql),
                cmocka_unit_test_setup(test_crls, on_postgresql),
                cmocka_unit_test_setup(test_two_handles, on_postgresql),
                cmocka_unit_test_setup(test_reader_during_writes, on_postgresql),
                cmocka_unit_test_setup(test_writers_take_turns, on_postgresql),
                cmocka_unit_test_setup(test_announcements, on_postgresql),
                cmocka_unit_test(test_parse_change),
                cmocka_unit_test_setup(test_shared_generation, on_sqlite),
                cmocka_unit_test_setup(test_shared_generation, on_postgresql),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
