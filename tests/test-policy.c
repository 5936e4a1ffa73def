/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Policy: polkit rules scoping a service user to one address, interactive
 * authorization, and every [Policy] key of smimed.conf, applied by Reload()
 * on one smimed without dropping its clients. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"

static Harness *harness;
static sd_bus *bus;                 /* one client for the whole file: reloads must not drop it */
static char *config_path;
/* leaf and others: the token key, for support@ and for alice@ and interactive@; signer: a key of
 * its own, for incoming mail */
static PkiCert *root, *leaf, *others, *signer;
static char *signer_key_file, *signer_cert_file;

static const char message_text[] = "From: Support <support@example.com>\r\n"
                                   "To: customer@example.com\r\n"
                                   "Subject: policy\r\n"
                                   "Content-Type: text/plain\r\n"
                                   "\r\n"
                                   "Hello.\r\n";

static void write_config(const char *policy_lines) {
        _cleanup_free_ char *text = harness_config_text(harness, policy_lines);

        assert_non_null(text);
        free(config_path);
        config_path = harness_write_file(harness, "smimed.conf", text, 0644);
        assert_non_null(config_path);
}

static void reload_with(const char *policy_lines) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        write_config(policy_lines);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Reload", &e, NULL,
                               NULL) < 0)
                fail_msg("Reload failed: %s: %s", e.name, e.message);
}

static int import_pem(const char *pem, bool trust) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust) >= 0);
        return sd_bus_call(bus, m, 0, NULL, NULL);
}

static int setup(void **state) {
        const char *addresses[] = { "support@example.com", NULL };
        const char *other_addresses[] = { "alice@example.com", "interactive@example.com", NULL };
        const char *signer_addresses[] = { "partner@example.org", NULL };
        _cleanup_free_ char *root_pem = NULL, *leaf_pem = NULL, *others_pem = NULL, *pem = NULL;
        PkiCertOptions o;
        FILE *f;
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

        root = pki_root_ca("Policy Test Root");
        pki_cert_options_init(&o);
        o.common_name = "Support";
        o.san_emails = addresses;
        o.key = pki_public_key_from_pem_file(harness->key_pem);
        leaf = pki_cert_new(&o, root);
        o.common_name = "Others";
        o.san_emails = other_addresses;
        others = pki_cert_new(&o, root);
        EVP_PKEY_free(o.key);

        pki_cert_options_init(&o);
        o.common_name = "Partner";
        o.san_emails = signer_addresses;
        o.key = pki_key_ec();
        signer = pki_cert_new(&o, root);
        EVP_PKEY_free(o.key);
        if (!root || !leaf || !others || !signer)
                return -1;

        root_pem = pki_cert_pem(root);
        leaf_pem = pki_cert_pem(leaf);
        others_pem = pki_cert_pem(others);
        if (import_pem(root_pem, true) < 0 || import_pem(leaf_pem, false) < 0 || import_pem(others_pem, false) < 0)
                return -1;

        /* The partner's key and certificate as files, for openssl cms -sign. */
        assert_true(asprintf(&signer_key_file, "%s/partner.key", harness->dir) > 0);
        assert_true(asprintf(&signer_cert_file, "%s/partner.pem", harness->dir) > 0);
        f = fopen(signer_key_file, "we");
        PEM_write_PrivateKey(f, signer->key, NULL, NULL, 0, NULL, NULL);
        fclose(f);
        pem = pki_cert_pem(signer);
        return pki_write_file(signer_cert_file, pem, strlen(pem));
}

static int teardown(void **state) {
        (void) state;
        bus = sd_bus_flush_close_unref(bus);
        harness = harness_free(harness);
        root = pki_cert_free(root);
        leaf = pki_cert_free(leaf);
        others = pki_cert_free(others);
        signer = pki_cert_free(signer);
        config_path = mfree(config_path);
        signer_key_file = mfree(signer_key_file);
        signer_cert_file = mfree(signer_cert_file);
        return 0;
}

static int memfd_with(const char *data, size_t size) {
        int fd = memfd_create("policy-test", MFD_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, size), (ssize_t) size);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

static char *fd_text(int fd) {
        off_t size = lseek(fd, 0, SEEK_END);
        char *s = calloc(1, (size_t) size + 1);

        assert_int_equal(pread(fd, s, (size_t) size, 0), size);
        return s;
}

typedef struct Outcome {
        int r;
        char error_name[128];
        char error_message[512];
        char signature[64];
        char output[4096];
} Outcome;

/* Sign or Encrypt or Verify on b; fills the outcome. options_sig/args: one {sv}. */
static Outcome call_smime(sd_bus *b, const char *method, const char *sender, const char *input, const char *option,
                          const char *value, bool interactive) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int in = memfd_with(input, strlen(input)), out = memfd_create("out", MFD_CLOEXEC);
        Outcome o = {};

        sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, method);
        if (streq(method, "Sign"))
                sd_bus_message_append(m, "s", sender);
        else if (streq(method, "Encrypt"))
                sd_bus_message_append(m, "as", 1, sender);
        sd_bus_message_append(m, "hh", in, out);
        if (option)
                sd_bus_message_append(m, "a{sv}", 1, option, "s", value);
        else
                sd_bus_message_append(m, "a{sv}", 0);
        sd_bus_message_set_allow_interactive_authorization(m, interactive);

        o.r = sd_bus_call(b, m, 0, &e, &reply);
        if (o.r < 0) {
                snprintf(o.error_name, sizeof(o.error_name), "%s", strempty(e.name));
                snprintf(o.error_message, sizeof(o.error_message), "%s", strempty(e.message));
        } else if (streq(method, "Verify")) {
                const char *k, *v;

                sd_bus_message_enter_container(reply, 'a', "{sv}");
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        sd_bus_message_read(reply, "s", &k);
                        if (streq(k, "signature") && sd_bus_message_read(reply, "v", "s", &v) > 0)
                                snprintf(o.signature, sizeof(o.signature), "%s", v);
                        else
                                sd_bus_message_skip(reply, "v");
                        sd_bus_message_exit_container(reply);
                }
        }
        {
                _cleanup_free_ char *text = fd_text(out);
                snprintf(o.output, sizeof(o.output), "%s", text);
        }
        close(in);
        close(out);
        return o;
}

typedef struct DataAnswer {
        int r;
        char error_name[128];
        char error_message[512];
        char *result; /* NUL-terminated copy */
        size_t size;
        char signer[65];     /* SignData: info "signer" */
        char encryption[32]; /* DecryptData, VerifyData: status */
        char signature[32];
} DataAnswer;

static void data_answer_done(DataAnswer *a) {
        free(a->result);
}

/* method with "ay" message and "a{sv}" options after first (a sender, or a
 * recipient for EncryptData; NULL: none), on b. */
static DataAnswer call_data(sd_bus *b, const char *method, const char *first, const void *message, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        DataAnswer a = {};
        const void *bytes;
        const char *k, *v;
        size_t n;

        assert_true(sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, method) >= 0);
        if (streq(method, "SignData"))
                assert_true(sd_bus_message_append(m, "s", first) >= 0);
        else if (streq(method, "EncryptData"))
                assert_true(sd_bus_message_append(m, "as", 1, first) >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', message, size) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        a.r = sd_bus_call(b, m, 0, &e, &reply);
        if (a.r >= 0)
                a.r = 0;
        if (a.r < 0) {
                snprintf(a.error_name, sizeof(a.error_name), "%s", strempty(e.name));
                snprintf(a.error_message, sizeof(a.error_message), "%s", strempty(e.message));
                return a;
        }
        assert_true(sd_bus_message_read_array(reply, 'y', &bytes, &n) >= 0);
        a.result = calloc(1, n + 1);
        assert_non_null(a.result);
        memcpy(a.result, bytes, n);
        a.size = n;
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                assert_true(sd_bus_message_read(reply, "s", &k) > 0);
                if (streq(k, "signer") && streq(method, "SignData") && sd_bus_message_read(reply, "v", "s", &v) > 0)
                        snprintf(a.signer, sizeof(a.signer), "%s", v);
                else if (streq(k, "encryption") && sd_bus_message_read(reply, "v", "s", &v) > 0)
                        snprintf(a.encryption, sizeof(a.encryption), "%s", v);
                else if (streq(k, "signature") && sd_bus_message_read(reply, "v", "s", &v) > 0)
                        snprintf(a.signature, sizeof(a.signature), "%s", v);
                else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        return a;
}

/* ---- polkit rules, as the unprivileged test user ---- */

static int as_test_user(char *out, size_t size, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus *b = NULL;
        Outcome support, alice, interactive;
        int r;

        (void) userdata;
        if (harness_bus_open(&b) < 0)
                return 2;
        support = call_smime(b, "Sign", "support@example.com", message_text, NULL, NULL, false);
        alice = call_smime(b, "Sign", "alice@example.com", message_text, NULL, NULL, false);
        {
                /* The bytes method is the same action. */
                _cleanup_(data_answer_done) DataAnswer alice_data =
                        call_data(b, "SignData", "alice@example.com", message_text, strlen(message_text));

                if (!streq(alice_data.error_name, alice.error_name))
                        return 3;
        }
        interactive = call_smime(b, "Sign", "interactive@example.com", message_text, NULL, NULL, false);
        r = sd_bus_call_method(b, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "GenerateKey", &e,
                               NULL, "sa{sv}", "support@example.com", 0);
        snprintf(out, size, "%d|%s|%s|%s", support.r >= 0, alice.error_name, interactive.error_name,
                 r < 0 ? strempty(e.name) : "allowed");
        sd_bus_flush_close_unref(b);
        return 0;
}

static void test_rule_scopes_service_user_to_one_address(void **state) {
        _cleanup_free_ char *out = NULL, *log = NULL, *signed_line = NULL, *denied_line = NULL;
        unsigned char md[32];
        char hex[65];
        unsigned len = 0;

        (void) state;
        assert_int_equal(harness_run_as_test_user(harness, as_test_user, NULL, &out), 0);
        assert_string_equal(out, "1|" SD_BUS_ERROR_ACCESS_DENIED "|" SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED
                                 "|" SD_BUS_ERROR_ACCESS_DENIED);

        /* The audit trail has the signature with the caller and a digest of
         * the message, and the denial with the address asked for. */
        assert_int_equal(EVP_Digest(message_text, strlen(message_text), md, &len, EVP_sha256(), NULL), 1);
        for (unsigned i = 0; i < len; i++)
                sprintf(hex + 2 * i, "%02x", md[i]);
        log = harness_read_file(harness->smimed_log);
        assert_true(asprintf(&signed_line, "AUDIT sign outcome=success uid=%u ", (unsigned) harness->test_uid) > 0);
        assert_non_null(strstr(log, signed_line));
        assert_non_null(strstr(log, hex));
        assert_non_null(strstr(log, "address=support@example.com"));
        assert_non_null(strstr(log, "message_id=1bcb0e8fcd0d450aae249525f86340b2"));
        assert_true(asprintf(&denied_line, "AUDIT org.smimed1.sign outcome=denied uid=%u ",
                             (unsigned) harness->test_uid) > 0);
        assert_non_null(strstr(log, denied_line));
        assert_non_null(strstr(log, "address=alice@example.com"));
}

/* ---- [Policy] keys, each applied by Reload() ---- */

static void test_enabled_no(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *k, *reason = NULL;
        Outcome sign, verify;

        (void) state;
        reload_with("Enabled=no\n");
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                       "GetCapabilities", NULL, &reply, "sasa{sv}", "support@example.com", 1,
                                       "alice@example.com", 0) >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                assert_true(sd_bus_message_read(reply, "s", &k) > 0);
                if (streq(k, "reason"))
                        assert_true(sd_bus_message_read(reply, "v", "s", &reason) > 0);
                else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                sd_bus_message_exit_container(reply);
        }
        assert_string_equal(reason, "feature-disabled");

        sign = call_smime(bus, "Sign", "support@example.com", message_text, NULL, NULL, false);
        assert_string_equal(sign.error_name, SMIMED_ERROR_DISABLED);
        verify = call_smime(bus, "Verify", NULL, message_text, NULL, NULL, false);
        assert_string_equal(verify.error_name, SMIMED_ERROR_DISABLED);

        reload_with(NULL);
        sign = call_smime(bus, "Sign", "support@example.com", message_text, NULL, NULL, false);
        assert_true(sign.r >= 0);
}

static char *capability_reason(const char *sender) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *k, *reason = NULL;

        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                       "GetCapabilities", NULL, &reply, "sasa{sv}", sender, 0, 0) >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                assert_true(sd_bus_message_read(reply, "s", &k) > 0);
                if (streq(k, "reason"))
                        assert_true(sd_bus_message_read(reply, "v", "s", &reason) > 0);
                else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                sd_bus_message_exit_container(reply);
        }
        return strdup(strempty(reason));
}

static void test_minimum_rsa_bits(void **state) {
        _cleanup_free_ char *before = capability_reason("support@example.com"), *during = NULL, *after = NULL;

        (void) state;
        assert_string_equal(before, "");
        reload_with("MinimumRSABits=3072\n");
        during = capability_reason("support@example.com"); /* the token key is RSA-2048 */
        assert_string_equal(during, "weak");
        reload_with(NULL);
        after = capability_reason("support@example.com");
        assert_string_equal(after, "");
}

static void test_allowed_digests(void **state) {
        Outcome default_digest, refused, explicit;

        (void) state;
        reload_with("AllowedDigests=sha-512\n");
        default_digest = call_smime(bus, "Sign", "support@example.com", message_text, NULL, NULL, false);
        assert_true(default_digest.r >= 0);
        assert_non_null(strstr(default_digest.output, "micalg=\"sha-512\""));
        refused = call_smime(bus, "Sign", "support@example.com", message_text, "digest", "sha-256", false);
        assert_string_equal(refused.error_name, SMIMED_ERROR_POLICY_VIOLATION);
        assert_non_null(strstr(refused.error_message, "AllowedDigests"));

        reload_with(NULL);
        explicit = call_smime(bus, "Sign", "support@example.com", message_text, "digest", "sha-256", false);
        assert_true(explicit.r >= 0);
        assert_non_null(strstr(explicit.output, "micalg=\"sha-256\""));
}

static void test_default_cipher(void **state) {
        Outcome cbc, gcm;

        (void) state;
        cbc = call_smime(bus, "Encrypt", "support@example.com", message_text, NULL, NULL, false);
        assert_non_null(strstr(cbc.output, "smime-type=enveloped-data"));
        reload_with("DefaultCipher=aes-256-gcm\n");
        gcm = call_smime(bus, "Encrypt", "support@example.com", message_text, NULL, NULL, false);
        assert_non_null(strstr(gcm.output, "smime-type=authEnveloped-data"));
        reload_with(NULL);
}

/* A message from the partner, signed with openssl (digest md), with From. */
static char *partner_message(const char *md, const char *from) {
        _cleanup_free_ char *in = NULL, *out = NULL, *body = NULL, *text = NULL, *signed_text = NULL;
        char *const argv[] = { (char *) "openssl", (char *) "cms", (char *) "-sign", (char *) "-in", NULL,
                               (char *) "-signer", signer_cert_file, (char *) "-inkey", signer_key_file,
                               (char *) "-md", (char *) md, (char *) "-out", NULL, NULL };
        char *args[ELEMENTSOF(argv)];

        assert_true(asprintf(&text, "Content-Type: text/plain\r\n\r\nFrom the partner.\r\n") > 0);
        in = harness_write_file(harness, "partner.txt", text, 0644);
        assert_true(asprintf(&out, "%s/partner-signed.eml", harness->dir) > 0);
        memcpy(args, argv, sizeof(argv));
        args[4] = in;
        args[12] = out;
        assert_int_equal(harness_run(harness, args, false, NULL, NULL), 0);
        signed_text = harness_read_file(out);
        assert_true(asprintf(&body, "From: %s\r\nSubject: partner\r\n%s", from, signed_text) > 0);
        return TAKE_PTR(body);
}

static void test_sha1_signatures(void **state) {
        _cleanup_free_ char *sha1 = partner_message("sha1", "partner@example.org");
        Outcome refused, allowed;

        (void) state;
        refused = call_smime(bus, "Verify", NULL, sha1, NULL, NULL, false);
        assert_string_equal(refused.signature, "weak-algorithm");
        reload_with("AllowSHA1Signatures=yes\n");
        allowed = call_smime(bus, "Verify", NULL, sha1, NULL, NULL, false);
        assert_string_equal(allowed.signature, "valid");
        reload_with(NULL);
}

static void test_require_sender_match(void **state) {
        _cleanup_free_ char *other = partner_message("sha256", "someone.else@example.org");
        Outcome strict, relaxed;

        (void) state;
        strict = call_smime(bus, "Verify", NULL, other, NULL, NULL, false);
        assert_string_equal(strict.signature, "sender-mismatch");
        reload_with("RequireSenderMatch=no\n");
        relaxed = call_smime(bus, "Verify", NULL, other, NULL, NULL, false);
        assert_string_equal(relaxed.signature, "valid");
        reload_with(NULL);
}

static void test_auto_import(void **state) {
        _cleanup_free_ char *message = partner_message("sha256", "partner@example.org");
        _cleanup_free_ char *count_before = NULL, *count_off = NULL, *count_on = NULL;
        Outcome v;

        (void) state;
        reload_with("AutoImportCertificates=no\n");
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &count_before), 0);
        v = call_smime(bus, "Verify", NULL, message, NULL, NULL, false);
        assert_string_equal(v.signature, "valid");
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &count_off), 0);
        assert_string_equal(count_before, count_off);

        reload_with(NULL); /* AutoImportCertificates=yes by default */
        v = call_smime(bus, "Verify", NULL, message, NULL, NULL, false);
        assert_string_equal(v.signature, "valid");
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &count_on), 0);
        assert_int_equal(strtoull(count_on, NULL, 10), strtoull(count_before, NULL, 10) + 1);
}

/* Decrypting is a use of a private key: on record with key and digest. */
static void test_decrypt_is_audited(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *log = NULL, *line = NULL;
        Outcome encrypted;
        int in, out;

        (void) state;
        encrypted = call_smime(bus, "Encrypt", "support@example.com", message_text, NULL, NULL, false);
        assert_true(encrypted.r >= 0);
        in = memfd_with(encrypted.output, strlen(encrypted.output));
        out = memfd_create("out", MFD_CLOEXEC);
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Decrypt",
                                       NULL, &reply, "hha{sv}", in, out, 0) >= 0);
        close(in);
        close(out);

        log = harness_read_file(harness->smimed_log);
        assert_true(asprintf(&line, "AUDIT decrypt outcome=success uid=0 pid=%d ", (int) getpid()) > 0);
        assert_non_null(strstr(log, line));
        assert_non_null(strstr(log, "key=" HARNESS_KEY_ID_HEX " address="));
        assert_non_null(strstr(log, "message_id=eed11e565f89429690b055459b26f44d"));
}

/* Decrypt with verify=false does not call a signed message unsigned. */
static void test_decrypt_without_verifying(void **state) {
        _cleanup_free_ char *message = partner_message("sha256", "partner@example.org");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *k, *signature = NULL;
        int in = memfd_with(message, strlen(message)), out = memfd_create("out", MFD_CLOEXEC);

        (void) state;
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Decrypt",
                                       NULL, &reply, "hha{sv}", in, out, 1, "verify", "b", 0) >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                assert_true(sd_bus_message_read(reply, "s", &k) > 0);
                if (streq(k, "signature"))
                        assert_true(sd_bus_message_read(reply, "v", "s", &signature) > 0);
                else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                sd_bus_message_exit_container(reply);
        }
        assert_string_equal(signature, "not-verified");
        close(in);
        close(out);
}

/* smimed must not change the client's pipes: O_NONBLOCK stays off on the
 * descriptors the client keeps (the same open files smimed got). */
static void test_client_pipes_stay_blocking(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int in[2], out[2];

        (void) state;
        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        assert_int_equal(write(in[1], message_text, strlen(message_text)), (ssize_t) strlen(message_text));
        close(in[1]);

        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Encrypt",
                                       NULL, &reply, "ashha{sv}", 1, "support@example.com", in[0], out[1], 0) >= 0);
        assert_int_equal(fcntl(in[0], F_GETFL) & O_NONBLOCK, 0);
        assert_int_equal(fcntl(out[1], F_GETFL) & O_NONBLOCK, 0);
        assert_int_equal(fcntl(out[0], F_GETFL) & O_NONBLOCK, 0);
        close(in[0]);
        close(out[0]);
        close(out[1]);
}

typedef struct SignAnswer {
        bool done;
        int r;
        char signer[65];
} SignAnswer;

static int on_sign_answer(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        SignAnswer *a = userdata;
        const char *k, *v;

        (void) ret_error;
        a->done = true;
        a->r = sd_bus_message_is_method_error(reply, NULL) ? -sd_bus_message_get_errno(reply) : 0;
        if (a->r < 0 || sd_bus_message_enter_container(reply, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                sd_bus_message_read(reply, "s", &k);
                if (streq(k, "signer") && sd_bus_message_read(reply, "v", "s", &v) > 0)
                        snprintf(a->signer, sizeof(a->signer), "%s", v);
                else
                        sd_bus_message_skip(reply, "v");
                sd_bus_message_exit_container(reply);
        }
        return 0;
}

/* The certificate polkit was asked about is the one that signs: a newer
 * certificate for the sender imported while the message is still being
 * read does not take its place. */
static void test_signer_fixed_when_asked(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *imported = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *head = NULL, *newer_pem = NULL;
        const char *addresses[] = {"support@example.com", NULL};
        char leaf_fingerprint[65], newer_fingerprint[65];
        const char *newer_path;
        SignAnswer answer = {};
        PkiCertOptions o;
        PkiCert *newer;
        size_t size = 128 * 1024;
        int in[2], out = memfd_create("out", MFD_CLOEXEC);

        (void) state;
        pki_cert_options_init(&o);
        o.common_name = "Support, newer";
        o.san_emails = addresses;
        o.not_before_days = 0;
        o.key = pki_public_key_from_pem_file(harness->key_pem);
        newer = pki_cert_new(&o, root);
        EVP_PKEY_free(o.key);
        assert_non_null(newer);
        assert_int_equal(pki_cert_fingerprint(leaf, leaf_fingerprint), 0);
        assert_int_equal(pki_cert_fingerprint(newer, newer_fingerprint), 0);

        /* Sign starts, and reads the first part of the message (more than a
         * pipe holds: the write returns only once smimed reads). */
        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        assert_true(out >= 0);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "Sign") >= 0);
        assert_true(sd_bus_message_append(m, "shha{sv}", "support@example.com", in[0], out, 0) >= 0);
        assert_true(sd_bus_call_async(bus, &slot, m, on_sign_answer, &answer, 0) >= 0);
        assert_true(sd_bus_flush(bus) >= 0);
        close(in[0]);
        head = malloc(size);
        assert_non_null(head);
        strcpy(head, "Subject: fixed signer\r\n\r\n");
        for (size_t i = strlen(head); i < size; i++)
                head[i] = (i % 64 == 62) ? '\r' : (i % 64 == 63) ? '\n' : 'x';
        assert_int_equal(write(in[1], head, size), (ssize_t) size);

        /* Meanwhile a newer certificate for the sender, with the same key. */
        newer_pem = pki_cert_pem(newer);
        assert_true(sd_bus_message_new_method_call(bus, &imported, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        sd_bus_message_unref(m);
        m = imported;
        imported = NULL;
        assert_true(sd_bus_message_append_array(m, 'y', newer_pem, strlen(newer_pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        assert_true(sd_bus_call(bus, m, 0, NULL, &imported) >= 0);
        assert_true(sd_bus_message_read(imported, "ao", 1, &newer_path) >= 0);

        close(in[1]);
        while (!answer.done) {
                int r = sd_bus_process(bus, NULL);

                assert_true(r >= 0);
                if (r == 0)
                        assert_true(sd_bus_wait(bus, UINT64_MAX) >= 0);
        }
        assert_int_equal(answer.r, 0);
        assert_string_equal(answer.signer, leaf_fingerprint);

        /* Asked now, the newer one signs: the test would see a swap. */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int in2 = memfd_with(message_text, strlen(message_text)), out2 = memfd_create("out", MFD_CLOEXEC);
                SignAnswer later = {};

                assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                               "Sign", NULL, &reply, "shha{sv}", "support@example.com", in2, out2,
                                               0) >= 0);
                on_sign_answer(reply, &later, NULL);
                assert_string_equal(later.signer, newer_fingerprint);
                close(in2);
                close(out2);
        }
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, newer_path, SMIMED_CERTIFICATE_INTERFACE, "Remove", NULL,
                                       NULL, NULL) >= 0);
        close(out);
        pki_cert_free(newer);
}

static void test_max_message_size(void **state) {
        char *big = malloc(200 * 1024);
        Outcome refused;

        (void) state;
        reload_with("MaxMessageSize=100K\n");
        strcpy(big, "Subject: big\r\n\r\n");
        memset(big + strlen(big), 'x', 150 * 1024);
        big[16 + 150 * 1024] = '\0';
        refused = call_smime(bus, "Encrypt", "support@example.com", big, NULL, NULL, false);
        assert_string_equal(refused.error_name, SMIMED_ERROR_INVALID_MESSAGE);
        assert_non_null(strstr(refused.error_message, "MaxMessageSize"));
        reload_with(NULL);
        free(big);
}

/* ---- SignData, EncryptData, DecryptData, VerifyData: no fds ---- */

/* A message signed with SignData verifies with openssl cms, and with
 * VerifyData; one encrypted with EncryptData decrypts with DecryptData:
 * the same jobs as the fd methods, with the bytes in the calls. */
static void test_data_methods(void **state) {
        _cleanup_(data_answer_done) DataAnswer signed_msg = {}, verified = {}, encrypted = {}, decrypted = {};
        _cleanup_free_ char *signed_file = NULL, *root_file = NULL, *root_pem = NULL, *content = NULL;
        char leaf_fingerprint[65];
        char *argv[] = {(char *) "openssl", (char *) "cms", (char *) "-verify",  (char *) "-in", NULL,
                        (char *) "-CAfile", NULL,           (char *) "-purpose", (char *) "any", NULL};

        (void) state;
        assert_int_equal(pki_cert_fingerprint(leaf, leaf_fingerprint), 0);

        signed_msg = call_data(bus, "SignData", "support@example.com", message_text, strlen(message_text));
        if (signed_msg.r < 0)
                fail_msg("SignData: %s: %s", signed_msg.error_name, signed_msg.error_message);
        assert_string_equal(signed_msg.signer, leaf_fingerprint);
        assert_non_null(strstr(signed_msg.result, "multipart/signed"));

        signed_file = harness_write_file(harness, "data-signed.eml", signed_msg.result, 0644);
        root_pem = pki_cert_pem(root);
        root_file = harness_write_file(harness, "data-root.pem", root_pem, 0644);
        assert_non_null(signed_file);
        assert_non_null(root_file);
        argv[4] = signed_file;
        argv[6] = root_file;
        assert_int_equal(harness_run(harness, argv, false, &content, NULL), 0);
        assert_non_null(strstr(content, "Hello."));

        verified = call_data(bus, "VerifyData", NULL, signed_msg.result, signed_msg.size);
        assert_int_equal(verified.r, 0);
        assert_string_equal(verified.signature, "valid");
        assert_non_null(strstr(verified.result, "Hello."));

        /* The same saved from an mbox, with its envelope line first. */
        {
                _cleanup_(data_answer_done) DataAnswer from_mbox = {};
                _cleanup_free_ char *mbox = NULL;

                assert_true(asprintf(&mbox, "From support@example.com Sat Dec  5 10:00:00 2026\n%s",
                                     signed_msg.result) > 0);
                from_mbox = call_data(bus, "VerifyData", NULL, mbox, strlen(mbox));
                if (from_mbox.r < 0)
                        fail_msg("VerifyData with an mbox line: %s: %s", from_mbox.error_name,
                                 from_mbox.error_message);
                assert_string_equal(from_mbox.signature, "valid");
        }

        encrypted = call_data(bus, "EncryptData", "support@example.com", message_text, strlen(message_text));
        assert_int_equal(encrypted.r, 0);
        assert_non_null(strstr(encrypted.result, "application/pkcs7-mime"));
        assert_null(strstr(encrypted.result, "Hello."));
        decrypted = call_data(bus, "DecryptData", NULL, encrypted.result, encrypted.size);
        assert_int_equal(decrypted.r, 0);
        assert_string_equal(decrypted.encryption, "encrypted");
        assert_non_null(strstr(decrypted.result, "Hello."));
        /* The decrypted content is the whole reply, byte for byte. */
        assert_int_equal(decrypted.size, strlen(decrypted.result));
        assert_string_equal(decrypted.result + decrypted.size - strlen("Hello.\r\n"), "Hello.\r\n");

        /* Not S/MIME: the message comes back as it came, every byte of it. */
        {
                _cleanup_(data_answer_done) DataAnswer plain = {};

                plain = call_data(bus, "VerifyData", NULL, message_text, strlen(message_text));
                assert_int_equal(plain.r, 0);
                assert_string_equal(plain.signature, "not-signed");
                assert_int_equal(plain.size, strlen(message_text));
                assert_memory_equal(plain.result, message_text, plain.size);
        }
}

/* Bytes over [Policy] MaxDataSize= are refused before anything is done,
 * with the limit named. */
static void test_max_data_size(void **state) {
        _cleanup_(data_answer_done) DataAnswer refused = {}, taken = {};
        char big[3000];

        (void) state;
        reload_with("MaxDataSize=2K\n");
        memset(big, 'x', sizeof(big));
        memcpy(big, "Subject: big\r\n\r\n", 16);
        refused = call_data(bus, "SignData", "support@example.com", big, sizeof(big));
        assert_string_equal(refused.error_name, SMIMED_ERROR_LIMITS_EXCEEDED);
        assert_non_null(strstr(refused.error_message, "MaxDataSize="));
        assert_non_null(strstr(refused.error_message, "(Sign)"));
        taken = call_data(bus, "SignData", "support@example.com", message_text, strlen(message_text));
        assert_int_equal(taken.r, 0);
        reload_with(NULL);
}

/* The examples a mail app developer starts from (examples/), run as the
 * unprivileged test user (whom the harness's rule lets sign and decrypt as
 * support@): capabilities, sign and verify, encrypt to support@ and a
 * customer, decrypt; Ruby through the *Data methods (ruby-dbus passes no
 * fds), Python with fds. */
static void run_example(const char *interpreter, const char *script) {
        static const char *const customer_addresses[] = {"customer@example.net", NULL};
        static bool customer_imported;
        _cleanup_free_ char *message_file = NULL, *out = NULL, *err = NULL, *signer_line = NULL, *key_line = NULL;
        char leaf_fingerprint[65];
        char *argv[] = {(char *) interpreter,
                        (char *) script,
                        (char *) "support@example.com",
                        NULL,
                        (char *) "support@example.com",
                        (char *) "customer@example.net",
                        NULL};
        int r;

        if (!customer_imported) {
                _cleanup_(pki_cert_freep) PkiCert *customer = NULL;
                _cleanup_free_ char *pem = NULL;
                PkiCertOptions o;

                pki_cert_options_init(&o);
                o.common_name = "Customer";
                o.san_emails = (const char **) customer_addresses;
                o.key = pki_key_ec();
                customer = pki_cert_new(&o, root);
                EVP_PKEY_free(o.key);
                assert_non_null(customer);
                pem = pki_cert_pem(customer);
                assert_true(import_pem(pem, false) >= 0);
                customer_imported = true;
        }

        assert_int_equal(pki_cert_fingerprint(leaf, leaf_fingerprint), 0);
        message_file = harness_write_file(harness, "example-message.eml", message_text, 0644);
        assert_non_null(message_file);
        argv[3] = message_file;
        r = harness_run(harness, argv, true, &out, &err);
        if (r != 0)
                fail_msg("%s exited with %d: %s%s", script, r, strempty(out), strempty(err));
        assert_true(asprintf(&signer_line, "signer: %s\n", leaf_fingerprint) > 0);
        assert_true(asprintf(&key_line, "decrypted-with: %s\n", HARNESS_KEY_ID_HEX) > 0);
        const char *expected[] = {
                "can-sign: true\n",
                "can-encrypt: support@example.com true \n",
                "can-encrypt: customer@example.net true \n",
                signer_line,
                "signed-type: Content-Type: multipart/signed\n",
                "signature: valid\n",
                "content-matches: true\n",
                "recipients: 2\n",
                "encrypted-type: Content-Type: application/pkcs7-mime\n",
                "encryption: encrypted\n",
                key_line,
                "decrypted-matches: true\n",
                "error: " SMIMED_ERROR_NO_CERTIFICATE "\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                if (!strstr(out, expected[i]))
                        fail_msg("%s: no line \"%.*s\" in:\n%s%s", script, (int) strlen(expected[i]) - 1, expected[i],
                                 out, strempty(err));
}

static void test_ruby_example(void **state) {
        (void) state;
        run_example("ruby", SMIMED_SOURCE_ROOT "/examples/smimed-data.rb");
}

static void test_python_example(void **state) {
        (void) state;
        run_example("python3", SMIMED_SOURCE_ROOT "/examples/smimed-fds.py");
}

/* openssl cms -encrypt without -text encrypts a body without a header
 * section: it decrypts as a text/plain body, not as an invalid message. */
static void test_headerless_content(void **state) {
        _cleanup_(data_answer_done) DataAnswer decrypted = {};
        _cleanup_free_ char *plain = NULL, *leaf_file = NULL, *leaf_pem = NULL, *out = NULL, *err = NULL,
                            *encrypted = NULL;
        char *argv[] = {(char *) "openssl",
                        (char *) "cms",
                        (char *) "-encrypt",
                        (char *) "-aes-256-cbc",
                        (char *) "-in",
                        NULL,
                        (char *) "-out",
                        NULL,
                        NULL,
                        NULL};
        const char *body;

        (void) state;
        plain = harness_write_file(harness, "headerless.txt", "Just a line of text.\nAnd another.\n", 0644);
        leaf_pem = pki_cert_pem(leaf);
        leaf_file = harness_write_file(harness, "support.pem", leaf_pem, 0644);
        assert_true(asprintf(&out, "%s/headerless.eml", harness->dir) > 0);
        argv[5] = plain;
        argv[7] = out;
        argv[8] = leaf_file;
        if (harness_run(harness, argv, false, NULL, &err) != 0)
                fail_msg("openssl cms -encrypt failed: %s", strempty(err));
        encrypted = harness_read_file(out);
        assert_non_null(encrypted);

        decrypted = call_data(bus, "DecryptData", NULL, encrypted, strlen(encrypted));
        if (decrypted.r < 0)
                fail_msg("DecryptData: %s: %s", decrypted.error_name, decrypted.error_message);
        assert_string_equal(decrypted.encryption, "encrypted");
        /* The outer header fields (here none), the empty line, then the text as it was. */
        body = strncmp(decrypted.result, "\r\n", 2) == 0 ? decrypted.result : strstr(decrypted.result, "\r\n\r\n");
        if (!body)
                fail_msg("no header section in: %s", decrypted.result);
        assert_non_null(strstr(body, "Just a line of text."));
        assert_non_null(strstr(body, "And another."));
        assert_null(strstr(decrypted.result, "application/pkcs7-mime"));
}

static size_t lookup_count(const char *address) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        size_t n = 0;

        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                       "LookupCertificates", NULL, &reply, "sa{sv}", address, 0) >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "o") > 0);
        while (sd_bus_message_read(reply, "o", &path) > 0)
                n++;
        return n;
}

/* application/pkcs7-mime; smime-type=certs-only: a correspondent's
 * certificates, sent to be written to. The one that validates is stored
 * (and on the audit trail), a self-signed stranger is not; the message
 * comes back neither encrypted nor signed. */
static void test_certs_only(void **state) {
        _cleanup_(data_answer_done) DataAnswer opened = {};
        _cleanup_(pki_cert_freep) PkiCert *carrier = NULL, *stranger = NULL;
        _cleanup_free_ char *bundle_pem = NULL, *pem1 = NULL, *pem2 = NULL, *bundle_file = NULL, *der_file = NULL,
                            *base64 = NULL, *message = NULL, *err = NULL, *log = NULL;
        const char *carrier_addresses[] = {"carrier@example.org", NULL};
        const char *stranger_addresses[] = {"stranger@example.org", NULL};
        char *crl2pkcs7[] = {(char *) "openssl",
                             (char *) "crl2pkcs7",
                             (char *) "-nocrl",
                             (char *) "-certfile",
                             NULL,
                             (char *) "-outform",
                             (char *) "DER",
                             (char *) "-out",
                             NULL,
                             NULL};
        char *b64[] = {(char *) "openssl", (char *) "base64", (char *) "-in", NULL, NULL};
        char carrier_fingerprint[65];
        size_t log_start = harness_smimed_log_size(harness);
        PkiCertOptions o;

        (void) state;
        pki_cert_options_init(&o);
        o.common_name = "Carrier";
        o.san_emails = carrier_addresses;
        carrier = pki_cert_new(&o, root);
        pki_cert_options_init(&o);
        o.common_name = "Stranger";
        o.san_emails = stranger_addresses;
        o.key = pki_key_ec();
        stranger = pki_cert_new(&o, NULL);
        EVP_PKEY_free(o.key);
        assert_non_null(carrier);
        assert_non_null(stranger);
        assert_int_equal(pki_cert_fingerprint(carrier, carrier_fingerprint), 0);
        assert_int_equal(lookup_count("carrier@example.org"), 0);

        pem1 = pki_cert_pem(carrier);
        pem2 = pki_cert_pem(stranger);
        assert_true(asprintf(&bundle_pem, "%s%s", pem1, pem2) > 0);
        bundle_file = harness_write_file(harness, "certs-only.pem", bundle_pem, 0644);
        assert_true(asprintf(&der_file, "%s/certs-only.p7c", harness->dir) > 0);
        crl2pkcs7[4] = bundle_file;
        crl2pkcs7[8] = der_file;
        if (harness_run(harness, crl2pkcs7, false, NULL, &err) != 0)
                fail_msg("openssl crl2pkcs7 failed: %s", strempty(err));
        b64[3] = der_file;
        assert_int_equal(harness_run(harness, b64, false, &base64, NULL), 0);
        assert_true(asprintf(&message,
                             "From: carrier@example.org\n"
                             "Subject: my certificate\n"
                             "MIME-Version: 1.0\n"
                             "Content-Type: application/pkcs7-mime; smime-type=certs-only; name=smime.p7c\n"
                             "Content-Transfer-Encoding: base64\n"
                             "Content-Disposition: attachment; filename=smime.p7c\n"
                             "\n%s",
                             base64) > 0);

        opened = call_data(bus, "VerifyData", NULL, message, strlen(message));
        if (opened.r < 0)
                fail_msg("VerifyData of a certs-only message: %s: %s", opened.error_name, opened.error_message);
        assert_string_equal(opened.signature, "not-signed");
        assert_non_null(strstr(opened.result, "certs-only"));
        assert_int_equal(lookup_count("carrier@example.org"), 1);
        assert_int_equal(lookup_count("stranger@example.org"), 0);

        log = harness_read_file(harness->smimed_log);
        assert_non_null(log);
        assert_non_null(strstr(log + log_start, "AUDIT auto-import outcome=success"));
        assert_non_null(strstr(log + log_start, carrier_fingerprint));
}

typedef struct PipeDrain {
        int fd;
        size_t size;
} PipeDrain;

static void *drain_pipe(void *userdata) {
        PipeDrain *d = userdata;
        char buf[65536];
        ssize_t n;

        while ((n = read(d->fd, buf, sizeof(buf))) > 0)
                d->size += (size_t) n;
        return NULL;
}

/* A blocking client that reads its output pipe while it waits for the
 * reply (a thread here) gets a result of more than a MiB: smimed writes
 * during the call, not after it. */
static void test_pipe_output_read_during_call(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        size_t size = 1024 * 1024 + 17;
        _cleanup_free_ char *text = malloc(size + 64);
        PipeDrain drain = {};
        pthread_t reader;
        int in, out[2];

        (void) state;
        assert_non_null(text);
        strcpy(text, "Subject: big\r\n\r\n");
        for (size_t i = strlen(text); i < size; i++)
                text[i] = (i % 70 == 68) ? '\r' : (i % 70 == 69) ? '\n' : 'y';
        in = memfd_with(text, size);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        drain.fd = out[0];
        assert_int_equal(pthread_create(&reader, NULL, drain_pipe, &drain), 0);

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Sign", &e, &reply,
                               "shha{sv}", "support@example.com", in, out[1], 0) < 0)
                fail_msg("Sign to a pipe: %s: %s", e.name, e.message);
        close(out[1]); /* smimed's copy is closed with the job: the reader sees the end */
        assert_int_equal(pthread_join(reader, NULL), 0);
        close(out[0]);
        close(in);
        assert_true(drain.size > size);
        /* Every byte smimed says it wrote came through the pipe. */
        {
                const char *k;
                uint64_t written = 0;

                assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        assert_true(sd_bus_message_read(reply, "s", &k) > 0);
                        if (streq(k, "size"))
                                assert_true(sd_bus_message_read(reply, "v", "t", &written) > 0);
                        else
                                assert_true(sd_bus_message_skip(reply, "v") >= 0);
                        assert_true(sd_bus_message_exit_container(reply) >= 0);
                }
                assert_int_equal(drain.size, written);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rule_scopes_service_user_to_one_address),
                cmocka_unit_test(test_enabled_no),
                cmocka_unit_test(test_minimum_rsa_bits),
                cmocka_unit_test(test_allowed_digests),
                cmocka_unit_test(test_default_cipher),
                cmocka_unit_test(test_auto_import), /* first: the partner is not in the store yet */
                cmocka_unit_test(test_sha1_signatures),
                cmocka_unit_test(test_require_sender_match),
                cmocka_unit_test(test_decrypt_is_audited),
                cmocka_unit_test(test_client_pipes_stay_blocking),
                cmocka_unit_test(test_decrypt_without_verifying),
                cmocka_unit_test(test_max_message_size),
                cmocka_unit_test(test_signer_fixed_when_asked),
                cmocka_unit_test(test_data_methods),
                cmocka_unit_test(test_max_data_size),
                cmocka_unit_test(test_ruby_example),
                cmocka_unit_test(test_python_example),
                cmocka_unit_test(test_headerless_content),
                cmocka_unit_test(test_certs_only),
                cmocka_unit_test(test_pipe_output_read_during_call),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
