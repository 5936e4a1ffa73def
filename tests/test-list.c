/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ListCertificates on a real smimed: paging, total, each filter and filters
 * combined, statuses of expired, revoked and untrusted certificates, bad
 * filters; and smimectl list --limit/--status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "strv.h"

#define N_GOOD 23
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_DAY (86400ULL * USEC_PER_SEC)

static Harness *harness;
static sd_bus *bus;
static char *config_path;
static PkiCert *root, *untrusted_root, *good[N_GOOD], *expired, *revoked, *stranger;
static char revoked_fp[65], expired_fp[65], stranger_fp[65];

typedef struct Row {
        char *path, *fingerprint, *subject, *issuer, *status;
        char **addresses;
        uint64_t not_after;
        int trusted, is_ca, has_private_key;
} Row;

typedef struct Page {
        Row *rows;
        size_t n;
        uint64_t total;
} Page;

static void page_done(Page *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->rows[i].path);
                free(p->rows[i].fingerprint);
                free(p->rows[i].subject);
                free(p->rows[i].issuer);
                free(p->rows[i].status);
                strv_free(p->rows[i].addresses);
        }
        free(p->rows);
        *p = (Page){};
}

static PkiCert *leaf_for(const char *cn, const char *email, int not_after_days, const PkiCert *issuer) {
        const char *sans[] = {email, NULL};
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = cn;
        o.san_emails = sans;
        o.key = pki_key_ec();
        o.not_before_days = not_after_days < 0 ? not_after_days - 30 : -1;
        o.not_after_days = not_after_days;
        c = pki_cert_new(&o, issuer);
        EVP_PKEY_free(o.key);
        return c;
}

static int import(const void *data, size_t len, bool trust) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', data, len) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", trust) >= 0);
        r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0)
                fail_msg("ImportCertificates: %s: %s", e.name, e.message);
        return r;
}

static void import_cert(const PkiCert *c, bool trust) {
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        import(pem, strlen(pem), trust);
}

/* Calls ListCertificates with the filter built by append (may be NULL). */
static int list(void (*append)(sd_bus_message *m, void *userdata), void *userdata, Page *ret, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        Page p = {};
        int r;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ListCertificates") >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        if (append)
                append(m, userdata);
        assert_true(sd_bus_message_close_container(m) >= 0);
        r = sd_bus_call(bus, m, 0, e, &reply);
        if (r < 0)
                return r;
        assert_true(sd_bus_message_has_signature(reply, "a(osassstsbbb)t"));
        assert_true(sd_bus_message_enter_container(reply, 'a', "(osassstsbbb)") > 0);
        while (sd_bus_message_enter_container(reply, 'r', "osassstsbbb") > 0) {
                const char *path, *fp, *subject, *issuer, *status;
                Row *row;

                p.rows = reallocarray(p.rows, p.n + 1, sizeof(Row));
                assert_non_null(p.rows);
                row = &p.rows[p.n++];
                *row = (Row){};
                assert_true(sd_bus_message_read(reply, "os", &path, &fp) > 0);
                assert_true(sd_bus_message_read_strv(reply, &row->addresses) > 0);
                assert_true(sd_bus_message_read(reply, "sstsbbb", &subject, &issuer, &row->not_after, &status,
                                                &row->trusted, &row->is_ca, &row->has_private_key) > 0);
                row->path = strdup(path);
                row->fingerprint = strdup(fp);
                row->subject = strdup(subject);
                row->issuer = strdup(issuer);
                row->status = strdup(status);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        assert_true(sd_bus_message_exit_container(reply) >= 0);
        assert_true(sd_bus_message_read(reply, "t", &p.total) > 0);
        *ret = p;
        return 0;
}

typedef struct Filter {
        uint64_t offset;
        uint32_t limit;
        const char *status, *address;
        uint64_t expiring_before;
        int ca; /* 0 none, 1 only CAs, 2 only others */
} Filter;

static void append_filter(sd_bus_message *m, void *userdata) {
        const Filter *f = userdata;

        if (f->offset)
                assert_true(sd_bus_message_append(m, "{sv}", "offset", "t", f->offset) >= 0);
        if (f->limit)
                assert_true(sd_bus_message_append(m, "{sv}", "limit", "u", f->limit) >= 0);
        if (f->status)
                assert_true(sd_bus_message_append(m, "{sv}", "status", "s", f->status) >= 0);
        if (f->address)
                assert_true(sd_bus_message_append(m, "{sv}", "address", "s", f->address) >= 0);
        if (f->expiring_before)
                assert_true(sd_bus_message_append(m, "{sv}", "expiring-before", "t", f->expiring_before) >= 0);
        if (f->ca > 0)
                assert_true(sd_bus_message_append(m, "{sv}", "ca", "b", f->ca == 1) >= 0);
}

static void list_ok(Filter f, Page *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (list(append_filter, &f, ret, &e) < 0)
                fail_msg("ListCertificates: %s: %s", e.name, e.message);
}

#define FILTER(...) ((Filter){__VA_ARGS__})

static const Row *find(const Page *p, const char *fp) {
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->rows[i].fingerprint, fp))
                        return &p->rows[i];
        return NULL;
}

static uint64_t n_all(void) {
        return 2 /* roots */ + N_GOOD + 3;
}

static int setup(void **state) {
        _cleanup_free_ char *text = NULL, *crl_pem = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        PkiCrlOptions co;
        uint64_t serial;
        char name[64], email[64];
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r < 0)
                return r;
        text = harness_config_text(harness, NULL);
        config_path = harness_write_file(harness, "smimed.conf", text, 0644);
        if (!config_path)
                return -1;
        r = harness_start_smimed(harness, config_path, NULL);
        if (r < 0)
                return r;
        r = harness_bus_open(&bus);
        if (r < 0)
                return r;

        root = pki_root_ca("List Root");
        untrusted_root = pki_root_ca("Unknown Root");
        if (!root || !untrusted_root)
                return -1;
        import_cert(root, true);
        for (int i = 0; i < N_GOOD; i++) {
                snprintf(name, sizeof(name), "User %02d", i);
                snprintf(email, sizeof(email), "%s%02d@example.com", i % 2 ? "Odd" : "even", i);
                good[i] = leaf_for(name, email, 100 + 10 * i, root);
                if (!good[i])
                        return -1;
                import_cert(good[i], false);
        }
        expired = leaf_for("Expired", "expired@example.com", -5, root);
        revoked = leaf_for("Revoked", "revoked@example.com", 400, root);
        stranger = leaf_for("Stranger", "stranger@example.org", 50, untrusted_root);
        if (!expired || !revoked || !stranger)
                return -1;
        import_cert(expired, false);
        import_cert(revoked, false);
        import_cert(stranger, false);
        import_cert(untrusted_root, false);
        pki_cert_fingerprint(expired, expired_fp);
        pki_cert_fingerprint(revoked, revoked_fp);
        pki_cert_fingerprint(stranger, stranger_fp);

        pki_crl_options_init(&co);
        serial = pki_cert_serial(revoked);
        crl = pki_crl_new(root, &serial, 1, &co);
        crl_pem = crl ? pki_crl_pem(crl) : NULL;
        if (!crl_pem)
                return -1;
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "ImportCRL") >= 0);
                assert_true(sd_bus_message_append_array(m, 'y', crl_pem, strlen(crl_pem)) >= 0);
                assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
                if (sd_bus_call(bus, m, 0, &e, NULL) < 0)
                        fail_msg("ImportCRL: %s: %s", e.name, e.message);
        }
        return 0;
}

static int teardown(void **state) {
        (void) state;
        bus = sd_bus_flush_close_unref(bus);
        pki_cert_free(root);
        pki_cert_free(untrusted_root);
        pki_cert_free(expired);
        pki_cert_free(revoked);
        pki_cert_free(stranger);
        for (int i = 0; i < N_GOOD; i++)
                pki_cert_free(good[i]);
        free(config_path);
        harness = harness_free(harness);
        return 0;
}

/* Pages of 5 cover every certificate exactly once, in NotAfter order. */
static void test_paging(void **state) {
        _cleanup_(strv_freep) char **seen = calloc(1, sizeof(char *));
        uint64_t last = 0;

        (void) state;
        for (uint64_t offset = 0;; offset += 5) {
                Page p = {};

                list_ok(FILTER(.offset = offset, .limit = 5), &p);
                assert_int_equal(p.total, n_all());
                for (size_t i = 0; i < p.n; i++) {
                        assert_false(strv_contains(seen, p.rows[i].fingerprint));
                        assert_int_equal(strv_extend(&seen, p.rows[i].fingerprint), 0);
                        assert_true(p.rows[i].not_after >= last);
                        last = p.rows[i].not_after;
                        assert_true(strncmp(p.rows[i].path, SMIMED_CERTIFICATE_PATH_PREFIX "/",
                                            strlen(SMIMED_CERTIFICATE_PATH_PREFIX) + 1) == 0);
                }
                page_done(&p);
                if (offset >= n_all())
                        break;
        }
        assert_int_equal(strv_length(seen), n_all());
}

static void test_default_limit_and_rows(void **state) {
        Page p = {};
        const Row *r;

        (void) state;
        list_ok(FILTER(), &p);
        assert_int_equal(p.n, n_all()); /* under the default limit of 100 */
        r = find(&p, revoked_fp);
        assert_non_null(r);
        assert_string_equal(r->status, "revoked");
        assert_string_equal(r->addresses[0], "revoked@example.com");
        assert_non_null(strstr(r->subject, "CN=Revoked"));
        assert_non_null(strstr(r->issuer, "CN=List Root"));
        assert_false(r->is_ca);
        assert_false(r->trusted);
        r = find(&p, expired_fp);
        assert_string_equal(r->status, "expired");
        r = find(&p, stranger_fp);
        assert_string_equal(r->status, "untrusted");
        page_done(&p);
}

static void test_status_filter(void **state) {
        Page p = {};

        (void) state;
        list_ok(FILTER(.status = "revoked"), &p);
        assert_int_equal(p.total, 1);
        assert_int_equal(p.n, 1);
        assert_string_equal(p.rows[0].fingerprint, revoked_fp);
        page_done(&p);

        list_ok(FILTER(.status = "expired"), &p);
        assert_int_equal(p.total, 1);
        assert_string_equal(p.rows[0].fingerprint, expired_fp);
        page_done(&p);

        list_ok(FILTER(.status = "untrusted"), &p);
        assert_int_equal(p.total, 2); /* the stranger and its unknown root */
        assert_non_null(find(&p, stranger_fp));
        page_done(&p);

        /* The good leaves and the root; paged, the total stays. */
        list_ok(FILTER(.status = "valid", .offset = 20, .limit = 3), &p);
        assert_int_equal(p.total, N_GOOD + 1);
        assert_int_equal(p.n, 3);
        for (size_t i = 0; i < p.n; i++)
                assert_string_equal(p.rows[i].status, "valid");
        page_done(&p);
}

static void test_other_filters(void **state) {
        uint64_t now = (uint64_t) time(NULL) * USEC_PER_SEC;
        Page p = {};

        (void) state;
        /* Case-insensitive prefix; the good odd ones are "odd01…". */
        list_ok(FILTER(.address = "ODD"), &p);
        assert_int_equal(p.total, N_GOOD / 2);
        for (size_t i = 0; i < p.n; i++)
                assert_true(strncmp(p.rows[i].addresses[0], "odd", 3) == 0);
        page_done(&p);

        list_ok(FILTER(.address = "stranger@example.org"), &p);
        assert_int_equal(p.total, 1);
        page_done(&p);

        list_ok(FILTER(.address = "%"), &p); /* no wildcard */
        assert_int_equal(p.total, 0);
        page_done(&p);

        /* NotAfter within 60 days: the expired one and the stranger. */
        list_ok(FILTER(.expiring_before = now + 60 * USEC_PER_DAY), &p);
        assert_int_equal(p.total, 2);
        assert_non_null(find(&p, expired_fp));
        assert_non_null(find(&p, stranger_fp));
        page_done(&p);

        list_ok(FILTER(.ca = 1), &p);
        assert_int_equal(p.total, 2);
        for (size_t i = 0; i < p.n; i++)
                assert_true(p.rows[i].is_ca);
        page_done(&p);

        /* Combined: even addresses, expiring within 195 days, valid: good[0,2,4,6,8]. */
        list_ok(FILTER(.address = "even", .expiring_before = now + 195 * USEC_PER_DAY, .status = "valid", .limit = 2),
                &p);
        assert_int_equal(p.total, 5);
        assert_int_equal(p.n, 2);
        page_done(&p);
}

static void expect_invalid(Filter f, const char *needle) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        Page p = {};

        assert_true(list(append_filter, &f, &p, &e) < 0);
        assert_string_equal(e.name, "org.smimed1.Error.InvalidArgument");
        if (!strstr(e.message, needle))
                fail_msg("\"%s\" does not say \"%s\"", e.message, needle);
}

static void append_unknown(sd_bus_message *m, void *userdata) {
        (void) userdata;
        assert_true(sd_bus_message_append(m, "{sv}", "colour", "s", "blue") >= 0);
}

static void append_wrong_type(sd_bus_message *m, void *userdata) {
        (void) userdata;
        assert_true(sd_bus_message_append(m, "{sv}", "limit", "s", "ten") >= 0);
}

static void test_bad_filters(void **state) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL, e2 = SD_BUS_ERROR_NULL;
        Page p = {};

        (void) state;
        expect_invalid(FILTER(.status = "shiny"), "Unknown status \"shiny\"");
        expect_invalid(FILTER(.limit = 1001), "limit");
        assert_true(list(append_unknown, NULL, &p, &e) < 0);
        assert_string_equal(e.name, "org.smimed1.Error.InvalidArgument");
        assert_non_null(strstr(e.message, "colour"));
        assert_true(list(append_wrong_type, NULL, &p, &e2) < 0);
        assert_string_equal(e2.name, "org.smimed1.Error.InvalidArgument");
}

static void test_smimectl_list(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
        char *limit_argv[] = {(char *) SMIMECTL_BINARY, (char *) "list", (char *) "--limit", (char *) "3", NULL};
        char *status_argv[] = {(char *) SMIMECTL_BINARY, (char *) "list",   (char *) "--status",
                               (char *) "revoked",       (char *) "--json", NULL};
        size_t lines = 0;

        (void) state;
        assert_int_equal(harness_run(harness, limit_argv, false, &out, &err), 0);
        for (const char *c = out; *c; c++)
                lines += *c == '\n';
        /* The header, 3 rows, and "3 of N" */
        assert_int_equal(lines, 5);
        assert_non_null(strstr(out, "3 of 28"));

        assert_int_equal(harness_run(harness, status_argv, false, &out2, &err2), 0);
        assert_non_null(strstr(out2, revoked_fp));
        assert_non_null(strstr(out2, "revoked"));
        assert_null(strstr(out2, expired_fp));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_paging),        cmocka_unit_test(test_default_limit_and_rows),
                cmocka_unit_test(test_status_filter), cmocka_unit_test(test_other_filters),
                cmocka_unit_test(test_bad_filters),   cmocka_unit_test(test_smimectl_list),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
