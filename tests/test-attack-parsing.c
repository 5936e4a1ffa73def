/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The structure attacks that worked against smimed, replayed against the
 * real daemon (private bus, polkitd, SoftHSM2 token): as the unprivileged
 * test user, Verify of an opaque signed message with 60,000
 * digestAlgorithms (it crashed libcrypto), over-limit signerInfos and
 * certificates, Decrypt with over-limit recipientInfos, a signer
 * certificate with 150,000 addresses; as root, ImportPKCS12 of a file whose
 * MAC asks for 100,000,000 iterations. Each is refused with the limit named
 * (or, for addresses, judged on the first 256), and smimed answers
 * afterwards. The messages are real ones with one SET repeated
 * (tests/cms-edit.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/pkcs12.h>

#include "cms-edit.h"
#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"
#include "strv.h"

#define CALL_TIMEOUT_USEC HARNESS_TIMEOUT_USEC
#define ENTITY "Content-Type: text/plain; charset=us-ascii\r\n\r\nAn attack, replayed.\r\n"
#define HEADERS "From: Alice Example <alice@example.org>\nTo: Bob Reader <bob@example.org>\nSubject: attack\n"
#define SAN_FLOOD 150000U
#define P12_PASS "attack secret"

static Harness *harness;
static sd_bus *bus;
static PkiCert *root, *alice, *bob;

/* ---- messages ---- */

typedef struct Der {
        unsigned char *data;
        size_t size;
} Der;

static void der_done(Der *d) {
        OPENSSL_free(d->data);
        *d = (Der) {};
}

/* Opaque signed-data by signer. */
static Der signed_der(const PkiCert *signer) {
        BIO *in = BIO_new_mem_buf(ENTITY, -1);
        CMS_ContentInfo *cms;
        Der d = {};

        assert_non_null(in);
        cms = CMS_sign(signer->x509, signer->key, NULL, in, CMS_BINARY);
        assert_non_null(cms);
        assert_int_equal(cms_edit_der(cms, NULL, &d.data, &d.size), 0);
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        return d;
}

static Der enveloped_der(const PkiCert *recipient) {
        STACK_OF(X509) *to = sk_X509_new_null();
        BIO *in = BIO_new_mem_buf(ENTITY, -1);
        CMS_ContentInfo *cms;
        Der d = {};

        assert_non_null(to);
        assert_non_null(in);
        assert_true(sk_X509_push(to, recipient->x509) > 0);
        cms = CMS_encrypt(to, in, EVP_aes_256_cbc(), CMS_BINARY);
        assert_non_null(cms);
        assert_int_equal(cms_edit_der(cms, NULL, &d.data, &d.size), 0);
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        sk_X509_free(to);
        return d;
}

/* The MIME message around base with set repeated to n elements. */
static char *attack_message(const Der *base, CmsEditSet set, size_t n, const char *smime_type) {
        _cleanup_(der_done) Der d = {};
        char *text;

        assert_int_equal(cms_edit_repeat(base->data, base->size, set, n, &d.data, &d.size), 0);
        text = cms_edit_pkcs7_mime(HEADERS, smime_type, d.data, d.size);
        assert_non_null(text);
        return text;
}

/* ---- calls as the test user ---- */

typedef struct Call {
        const char *method;
        const char *text;
} Call;

#define TAIL_SIZE 128

typedef struct Verdicts {
        char signature[64], encryption[64];
        char message_tail[TAIL_SIZE]; /* the end of "signature_message" */
} Verdicts;

/* The status dict: its "signature", "encryption", "signature_message". */
static int read_verdicts(sd_bus_message *m, Verdicts *v) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *k, *s;

                r = sd_bus_message_read(m, "s", &k);
                if (r >= 0 && (streq(k, "signature") || streq(k, "encryption") || streq(k, "signature_message"))) {
                        r = sd_bus_message_read(m, "v", "s", &s);
                        if (r < 0)
                                break;
                        if (streq(k, "signature"))
                                snprintf(v->signature, sizeof(v->signature), "%s", s);
                        else if (streq(k, "encryption"))
                                snprintf(v->encryption, sizeof(v->encryption), "%s", s);
                        else
                                snprintf(v->message_tail, sizeof(v->message_tail), "%s",
                                         s + (strlen(s) >= TAIL_SIZE ? strlen(s) - (TAIL_SIZE - 1) : 0));
                } else if (r >= 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        return r;
}

/* In the child, as HARNESS_TEST_USER: method on the message, from a memfd.
 * Writes "error|<name>|<message>" or "status|<signature>|<encryption>|<the
 * end of the signature message>". */
static int call_as_user(char *out, size_t size, void *userdata) {
        const Call *c = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(closep) int in = memfd_create("attack-in", MFD_CLOEXEC), output = memfd_create("attack-out",
                                                                                                MFD_CLOEXEC);
        Verdicts v = {};
        size_t len = strlen(c->text);

        if (in < 0 || output < 0 || write(in, c->text, len) != (ssize_t) len || lseek(in, 0, SEEK_SET) != 0)
                return 2;
        if (harness_bus_open(&b) < 0)
                return 3;
        if (sd_bus_call_method(b, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, c->method, &e,
                               &reply, "hha{sv}", in, output, 0) < 0) {
                snprintf(out, size, "error|%s|%s", strempty(e.name), strempty(e.message));
                return 0;
        }
        if (read_verdicts(reply, &v) < 0)
                return 4;
        snprintf(out, size, "status|%s|%s|%s", v.signature, v.encryption, v.message_tail);
        return 0;
}

static bool endswith(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && streq(s + n - k, suffix);
}

static char *as_test_user(const char *method, const char *text) {
        Call c = { .method = method, .text = text };
        char *out = NULL;

        assert_int_equal(harness_run_as_test_user(harness, call_as_user, &c, &out), 0);
        assert_non_null(out);
        return out;
}

/* smimed is running, answers Ping and still does its work. */
static void expect_alive(const char *what) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL, e2 = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *stat_path = NULL, *stat = NULL;
        const char *state;

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", &e,
                               NULL, "") < 0)
                fail_msg("%s: smimed does not answer Ping: %s: %s", what, e.name, e.message);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "GetCapabilities",
                               &e2, &reply, "sasa{sv}", "", 1, "bob@example.org", 0) < 0)
                fail_msg("%s: GetCapabilities failed: %s: %s", what, e2.name, e2.message);

        /* The same process as before: "pid (comm) S …", not a zombie. */
        assert_true(asprintf(&stat_path, "/proc/%d/stat", (int) harness->smimed_pid) > 0);
        stat = harness_read_file(stat_path);
        if (!stat)
                fail_msg("%s: smimed (pid %d) is gone, see %s", what, (int) harness->smimed_pid, harness->smimed_log);
        state = strrchr(stat, ')');
        assert_non_null(state);
        if (state[2] == 'Z')
                fail_msg("%s: smimed (pid %d) exited, see %s", what, (int) harness->smimed_pid, harness->smimed_log);
}

/* out is "error|org.smimed1.Error.InvalidMessage|…" and the message
 * carries each of the needles. */
static void expect_invalid_message(const char *out, const char *const *needles, const char *what) {
        _cleanup_free_ char *want = NULL;

        assert_true(asprintf(&want, "error|%s|", SMIMED_ERROR_INVALID_MESSAGE) > 0);
        if (strncmp(out, want, strlen(want)) != 0)
                fail_msg("%s: got \"%s\", expected %s", what, out, SMIMED_ERROR_INVALID_MESSAGE);
        for (const char *const *n = needles; *n; n++)
                if (!strstr(out, *n))
                        fail_msg("%s: \"%s\" does not say \"%s\"", what, out, *n);
}

/* ---- the attacks ---- */

static void test_sixty_thousand_digest_algorithms(void **state) {
        _cleanup_(der_done) Der base = signed_der(alice);
        _cleanup_free_ char *text = attack_message(&base, CMS_EDIT_DIGEST_ALGORITHMS, 60000, "signed-data");
        _cleanup_free_ char *out = NULL;
        const char *const needles[] = { "60000 digest algorithms", "at most 16", "SMIME_MAX_DIGEST_ALGORITHMS",
                                        NULL };

        assert_true(strlen(text) > 1000000); /* the 1 MB message of the report */
        out = as_test_user("Verify", text);
        expect_invalid_message(out, needles, "60,000 digestAlgorithms");
        expect_alive("after 60,000 digestAlgorithms");
}

static void test_too_many_signer_infos(void **state) {
        _cleanup_(der_done) Der base = signed_der(alice);
        _cleanup_free_ char *text = attack_message(&base, CMS_EDIT_SIGNER_INFOS, 17, "signed-data");
        _cleanup_free_ char *out = as_test_user("Verify", text);
        const char *const needles[] = { "17 signerInfos", "SMIME_MAX_SIGNER_INFOS", NULL };

        expect_invalid_message(out, needles, "17 signerInfos");
        expect_alive("after 17 signerInfos");
}

static void test_too_many_certificates(void **state) {
        _cleanup_(der_done) Der base = signed_der(alice);
        _cleanup_free_ char *text = attack_message(&base, CMS_EDIT_CERTIFICATES, 65, "signed-data");
        _cleanup_free_ char *out = as_test_user("Verify", text);
        const char *const needles[] = { "65 certificates", "SMIME_MAX_CERTIFICATES", NULL };

        expect_invalid_message(out, needles, "65 certificates");
        expect_alive("after 65 certificates");
}

static void test_too_many_recipient_infos(void **state) {
        _cleanup_(der_done) Der base = enveloped_der(bob);
        _cleanup_free_ char *text = attack_message(&base, CMS_EDIT_RECIPIENT_INFOS, 1025, "enveloped-data");
        _cleanup_free_ char *out = as_test_user("Decrypt", text);
        const char *const needles[] = { "1025 recipientInfos", "SMIME_MAX_RECIPIENT_INFOS", NULL };

        expect_invalid_message(out, needles, "1025 recipientInfos");
        expect_alive("after 1025 recipientInfos");
}

/* A valid signer whose certificate has 150,000 addresses: only the first
 * 256 count, so From: SAN #300 is not the signer's. sender-mismatch also
 * says the chain is valid, and its message lists the addresses that
 * count, in order: the last is SAN #256. */
static void test_address_flood(void **state) {
        _cleanup_(strv_freep) char **sans = NULL;
        _cleanup_(pki_cert_freep) PkiCert *flood = NULL;
        _cleanup_(der_done) Der d = {};
        _cleanup_free_ char *text = NULL, *out = NULL;
        const char *want = "status|sender-mismatch|not-encrypted|";
        PkiCertOptions o;

        sans = calloc(SAN_FLOOD + 1, sizeof(char *));
        assert_non_null(sans);
        for (unsigned i = 0; i < SAN_FLOOD; i++)
                assert_true(asprintf(&sans[i], "san%06u@example.org", i + 1) > 0);
        pki_cert_options_init(&o);
        o.common_name = "Flood Signer";
        o.san_emails = (const char *const *) sans;
        o.key = pki_key_ec();
        flood = pki_cert_new(&o, root);
        EVP_PKEY_free(o.key);
        assert_non_null(flood);
        d = signed_der(flood);
        assert_true(d.size > 3000000);
        text = cms_edit_pkcs7_mime("From: <san000300@example.org>\nTo: <bob@example.org>\nSubject: flood\n",
                                   "signed-data", d.data, d.size);
        assert_non_null(text);

        out = as_test_user("Verify", text);
        if (strncmp(out, want, strlen(want)) != 0)
                fail_msg("From: SAN #300: got \"%s\", expected sender-mismatch", out);
        if (!endswith(out, ", san000255@example.org, san000256@example.org."))
                fail_msg("From: SAN #300: the addresses that count end \"%s\", not with SAN #256", out);
        expect_alive("after a signer with 150,000 addresses");
}

/* As root (ImportPKCS12 needs manage-keys): refused before the 100,000,000
 * iterations run, nothing enrolled or stored. */
static void test_pkcs12_mac_iterations(void **state) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *keys_before = NULL, *certs_before = NULL, *keys_after = NULL, *certs_after = NULL;
        _cleanup_(closep) int fd = memfd_create("attack.p12", MFD_CLOEXEC);
        const ASN1_INTEGER *iter = NULL;
        unsigned char *der = NULL;
        PKCS12 *p12;
        int len;

        p12 = PKCS12_create(P12_PASS, "attack", alice->key, alice->x509, NULL, 0, 0, 2048, 2048, 0);
        assert_non_null(p12);
        /* Made cheaply; then it asks for 100,000,000 (its MAC no longer matches). */
        PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
        assert_non_null(iter);
        assert_int_equal(ASN1_INTEGER_set_int64((ASN1_INTEGER *) iter, 100000000), 1);
        len = i2d_PKCS12(p12, &der);
        PKCS12_free(p12);
        assert_true(len > 0);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, der, (size_t) len), len);
        OPENSSL_free(der);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);

        assert_int_equal(harness_get_manager_property(bus, "KeyCount", &keys_before), 0);
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &certs_before), 0);

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "ImportPKCS12", &e,
                               NULL, "hsa{sv}", fd, P12_PASS, 0) >= 0)
                fail_msg("ImportPKCS12 of a MAC with 100,000,000 iterations succeeded");
        if (!streq(e.name, SMIMED_ERROR_INVALID_FORMAT) || !strstr(e.message, "100000000 key-derivation iterations") ||
            !strstr(e.message, "SMIME_MAX_PKCS12_ITERATIONS"))
                fail_msg("ImportPKCS12: got %s: %s", e.name, e.message);

        assert_int_equal(harness_get_manager_property(bus, "KeyCount", &keys_after), 0);
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &certs_after), 0);
        assert_string_equal(keys_after, keys_before);
        assert_string_equal(certs_after, certs_before);
        expect_alive("after a PKCS#12 file of 100,000,000 iterations");
}

/* Last: a clean stop (exit 0), and under SMIMED_TEST_WRAPPER a clean
 * valgrind report. */
static void test_clean_stop(void **state) {
        int status = harness_stop_smimed(harness);

        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
}

/* ---- setup ---- */

static void import_trusted(const PkiCert *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", 1) >= 0);
        if (sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, NULL) < 0)
                fail_msg("ImportCertificates failed: %s: %s", e.name, e.message);
}

static PkiCert *party(const char *name, const char *address) {
        const char *san[] = { address, NULL };
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = name;
        o.san_emails = san;
        o.key = pki_key_ec();
        c = pki_cert_new(&o, root);
        EVP_PKEY_free(o.key);
        return c;
}

static int setup(void **state) {
        _cleanup_free_ char *text = NULL, *config = NULL;
        int r;

        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r < 0)
                return r;
        text = harness_config_text(harness, NULL);
        config = text ? harness_write_file(harness, "smimed.conf", text, 0644) : NULL;
        if (!config)
                return -ENOMEM;
        r = harness_start_smimed(harness, config, NULL);
        if (r >= 0)
                r = harness_bus_open(&bus);
        if (r < 0)
                return r;

        root = pki_root_ca("Attack Test Root");
        if (!root)
                return -EIO;
        alice = party("Alice Example", "alice@example.org");
        bob = party("Bob Reader", "bob@example.org");
        if (!alice || !bob)
                return -EIO;
        import_trusted(root);
        return 0;
}

static int teardown(void **state) {
        bus = sd_bus_flush_close_unref(bus);
        harness = harness_free(harness);
        root = pki_cert_free(root);
        alice = pki_cert_free(alice);
        bob = pki_cert_free(bob);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sixty_thousand_digest_algorithms),
                cmocka_unit_test(test_too_many_signer_infos),
                cmocka_unit_test(test_too_many_certificates),
                cmocka_unit_test(test_too_many_recipient_infos),
                cmocka_unit_test(test_address_flood),
                cmocka_unit_test(test_pkcs12_mac_iterations),
                cmocka_unit_test(test_clean_stop),
        };

        /* SMIMED_TEST_FILTER=test_address* runs some of them. */
        if (getenv("SMIMED_TEST_FILTER"))
                cmocka_set_test_filter(getenv("SMIMED_TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
