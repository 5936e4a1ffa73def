/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Certificates about to expire ([Policy] ExpiryWarningDays=): the
 * Manager's ExpiringCertificates counts them and follows imports, removals
 * and reloads; smimectl status shows the count; the daily journal record
 * (EXPIRING … on stderr in tests) is written for each of them, and only
 * for them, when smimed starts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>

#include "harness.h"
#include "macro.h"
#include "pki.h"
#include "smimed-bus-names.h"

#define EXPIRY_MESSAGE_ID "6c3d0e5b2f0a4b1e9d7a8c41f5e2b903"

static Harness *harness;
static sd_bus *bus;
static char *config_path;
static PkiCert *root, *soon, *later, *gone, *soon_too;
static char soon_fp[65], later_fp[65], gone_fp[65], soon_too_fp[65];

static PkiCert *leaf(const char *email, int not_after_days) {
        const char *sans[] = {email, NULL};
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = email;
        o.san_emails = sans;
        o.key = pki_key_ec();
        o.not_before_days = not_after_days < 0 ? not_after_days - 30 : -1;
        o.not_after_days = not_after_days;
        c = pki_cert_new(&o, root);
        EVP_PKEY_free(o.key);
        return c;
}

static void import_cert(const PkiCert *c, bool trust) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", trust) >= 0);
        if (sd_bus_call(bus, m, 0, &e, NULL) < 0)
                fail_msg("ImportCertificates: %s: %s", e.name, e.message);
}

static char *expiring(void) {
        char *s = NULL;

        assert_int_equal(harness_get_manager_property(bus, "ExpiringCertificates", &s), 0);
        return s;
}

static void write_config(const char *extra) {
        _cleanup_free_ char *text = harness_config_text(harness, extra);

        free(config_path);
        config_path = harness_write_file(harness, "smimed.conf", text, 0644);
        assert_non_null(config_path);
}

static void reload(void) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Reload", &e, NULL,
                               "") < 0)
                fail_msg("Reload: %s: %s", e.name, e.message);
}

static int setup(void **state) {
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r < 0)
                return r;
        write_config(NULL);
        r = harness_start_smimed(harness, config_path, NULL);
        if (r >= 0)
                r = harness_bus_open(&bus);
        if (r < 0)
                return r;
        root = pki_root_ca("Expiry Root");
        if (!root)
                return -1;
        soon = leaf("soon@example.com", 10);
        later = leaf("later@example.com", 100);
        gone = leaf("gone@example.com", -2);
        soon_too = leaf("soon.too@example.com", 20);
        if (!soon || !later || !gone || !soon_too || pki_cert_fingerprint(soon, soon_fp) < 0 ||
            pki_cert_fingerprint(later, later_fp) < 0 || pki_cert_fingerprint(gone, gone_fp) < 0 ||
            pki_cert_fingerprint(soon_too, soon_too_fp) < 0)
                return -1;
        return 0;
}

static int teardown(void **state) {
        (void) state;
        sd_bus_flush_close_unref(bus);
        pki_cert_free(root);
        pki_cert_free(soon);
        pki_cert_free(later);
        pki_cert_free(gone);
        pki_cert_free(soon_too);
        free(config_path);
        harness_free(harness);
        return 0;
}

/* The count: a CA, a certificate expiring later and an expired one do not
 * count; the one expiring in 10 days does, announced by PropertiesChanged;
 * reloads move the window. */
static void test_count(void **state) {
        _cleanup_(property_watch_freep) PropertyWatch *w = NULL, *days = NULL;
        _cleanup_free_ char *zero = NULL, *one = NULL, *two = NULL, *off = NULL, *back = NULL, *default_days = NULL,
                            *days_after = NULL;

        (void) state;
        zero = expiring();
        assert_string_equal(zero, "0");
        import_cert(root, true);
        import_cert(later, false);
        import_cert(gone, false);
        one = expiring();
        assert_string_equal(one, "0");

        assert_int_equal(harness_watch_manager_property(bus, "ExpiringCertificates", &w), 0);
        import_cert(soon, false);
        assert_int_equal(harness_watch_wait(w, "1"), 0);

        /* a window of 200 days takes in the one expiring in 100; the window
         * itself is a property, announced when a reload changes it */
        assert_int_equal(harness_get_manager_property(bus, "ExpiryWarningDays", &default_days), 0);
        assert_string_equal(default_days, "30");
        assert_int_equal(harness_watch_manager_property(bus, "ExpiryWarningDays", &days), 0);
        write_config("[Policy]\nExpiryWarningDays=200\n");
        reload();
        assert_int_equal(harness_watch_wait(days, "200"), 0);
        assert_int_equal(harness_get_manager_property(bus, "ExpiryWarningDays", &days_after), 0);
        assert_string_equal(days_after, "200");
        two = expiring();
        assert_string_equal(two, "2");
        /* 0 turns it off */
        write_config("[Policy]\nExpiryWarningDays=0\n");
        reload();
        off = expiring();
        assert_string_equal(off, "0");
        write_config(NULL);
        reload();
        back = expiring();
        assert_string_equal(back, "1");
}

/* smimectl status says how many, in text and JSON. */
static void test_status(void **state) {
        _cleanup_free_ char *out = NULL, *json = NULL;

        (void) state;
        assert_int_equal(
                harness_run(harness, (char *[]){(char *) SMIMECTL_BINARY, (char *) "status", NULL}, false, &out, NULL),
                0);
        if (!strstr(out, "Expiring: 1 certificate(s) soon"))
                fail_msg("smimectl status does not show the certificate expiring soon:\n%s", out);
        assert_int_equal(harness_run(harness,
                                     (char *[]){(char *) SMIMECTL_BINARY, (char *) "status", (char *) "--json", NULL},
                                     false, &json, NULL),
                         0);
        assert_non_null(strstr(json, "\"expiring_count\":1"));
}

/* Started again, smimed announces each certificate about to expire, with
 * the MESSAGE_ID the catalog explains, and no other. */
static void test_announced_at_start(void **state) {
        _cleanup_free_ char *log = NULL, *line = NULL, *line_too = NULL;
        size_t from;

        (void) state;
        import_cert(soon_too, false);
        assert_int_equal(harness_stop_smimed(harness), 0);
        from = harness_smimed_log_size(harness);
        assert_int_equal(harness_start_smimed(harness, config_path, NULL), 0);
        assert_true(asprintf(&line, "EXPIRING fingerprint=%s address=soon@example.com", soon_fp) > 0);
        assert_true(asprintf(&line_too, "EXPIRING fingerprint=%s address=soon.too@example.com", soon_too_fp) > 0);
        assert_int_equal(harness_wait_smimed_log(harness, from, line), 0);
        assert_int_equal(harness_wait_smimed_log(harness, from, line_too), 0);

        log = harness_read_file(harness->smimed_log);
        assert_non_null(log);
        assert_non_null(strstr(log + from, "message_id=" EXPIRY_MESSAGE_ID));
        assert_null(strstr(log + from, later_fp));
        assert_null(strstr(log + from, gone_fp));
        /* once each */
        assert_null(strstr(strstr(log + from, line) + 1, line));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_count),
                cmocka_unit_test(test_status),
                cmocka_unit_test(test_announced_at_start),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
