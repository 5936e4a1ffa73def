/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Key enrollment over the bus: PKCS#12 import and key generation into a real
 * SoftHSM2 token, checked through PKCS#11 directly (not through smimed), with
 * the openssl command line as the CA and the PKCS#12 producer. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "harness.h"
#include "hexdecoct.h"
#include "smimed-bus-names.h"
#include "smimed-error.h"
#include "smimed.h"
#include "strv.h"
#include "xml-tags.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"

static Harness *harness;
static sd_bus *bus;
static char *ca_key, *ca_cert;

/* openssl ARGS…, in the scratch directory; must succeed. */
static void openssl(const char *first, ...) {
        char *argv[40] = { (char *) "openssl", (char *) first };
        _cleanup_free_ char *err = NULL;
        size_t n = 2;
        va_list ap;
        int r;

        va_start(ap, first);
        while (n < ELEMENTSOF(argv) - 1 && (argv[n] = va_arg(ap, char *)))
                n++;
        va_end(ap);
        argv[n] = NULL;

        r = harness_run(harness, argv, false, NULL, &err);
        if (r != 0)
                fail_msg("openssl %s failed (%d): %s", first, r, err);
}

static char *path(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", harness->dir, name) > 0);
        return p;
}

static int setup(void **state) {
        _cleanup_free_ char *text = NULL, *config = NULL;
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r < 0)
                return r;
        text = harness_config_text(harness, NULL);
        config = harness_write_file(harness, "smimed.conf", text, 0644);
        r = harness_start_smimed(harness, config, NULL);
        if (r < 0)
                return r;
        r = harness_bus_open(&bus);
        if (r < 0)
                return r;

        /* A CA, made with the openssl command line. */
        ca_key = path("ca.key");
        ca_cert = path("ca.pem");
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert, "-days", "365",
                "-subj", "/CN=Key Test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign", NULL);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        bus = sd_bus_flush_close_unref(bus);
        harness = harness_free(harness);
        ca_key = mfree(ca_key);
        ca_cert = mfree(ca_cert);
        return 0;
}

/* A leaf for address made by the CA for the key in key_file. */
static char *issue(const char *name, const char *key_file, const char *address, const char *usage) {
        _cleanup_free_ char *csr = NULL, *ext = NULL, *ext_text = NULL, *subject = NULL;
        char *cert = path(name);

        csr = path("issue.csr");
        assert_true(asprintf(&subject, "/CN=%s", address) > 0);
        assert_true(asprintf(&ext_text,
                             "[leaf]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,%s\n"
                             "extendedKeyUsage=emailProtection\nsubjectAltName=email:%s\n",
                             usage, address) > 0);
        ext = harness_write_file(harness, "leaf.cnf", ext_text, 0644);
        openssl("req", "-new", "-key", key_file, "-out", csr, "-subj", subject, NULL);
        openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
                "-days", "30", "-extfile", ext, "-extensions", "leaf", NULL);
        return cert;
}

/* A PKCS#12 file for address with a fresh key of the kind given. */
static char *make_pkcs12(const char *name, const char *address, const char *algorithm, bool legacy) {
        _cleanup_free_ char *key = NULL, *cert = NULL, *key_name = NULL, *cert_name = NULL;
        char *p12 = path(name);

        assert_true(asprintf(&key_name, "%s.key", name) > 0);
        assert_true(asprintf(&cert_name, "%s.pem", name) > 0);
        key = path(key_name);
        if (streq(algorithm, "ec"))
                openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key, NULL);
        else
                openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key, NULL);
        cert = issue(cert_name, key, address, streq(algorithm, "ec") ? "keyAgreement" : "keyEncipherment");
        if (legacy)
                openssl("pkcs12", "-export", "-legacy", "-inkey", key, "-in", cert, "-certfile", ca_cert, "-passout",
                        "pass:p12 secret", "-out", p12, NULL);
        else
                openssl("pkcs12", "-export", "-inkey", key, "-in", cert, "-certfile", ca_cert, "-passout",
                        "pass:p12 secret", "-out", p12, NULL);
        return p12;
}

typedef struct CallResult {
        int r;
        char *error_name;
        char *error_message;
        char *key_path;
        char *csr;
        char **certificates;
} CallResult;

static void call_result_done(CallResult *c) {
        free(c->error_name);
        free(c->error_message);
        free(c->key_path);
        free(c->csr);
        strv_free(c->certificates);
        *c = (CallResult) {};
}

static void capture_error(CallResult *c, int r, const sd_bus_error *e) {
        c->r = r;
        if (r < 0 && e->name) {
                c->error_name = strdup(e->name);
                c->error_message = strdup(strempty(e->message));
        }
}

static CallResult import_pkcs12_on(sd_bus *b, const char *file, const char *passphrase) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        CallResult c = {};
        const char *key;
        int fd, r;

        fd = open(file, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        r = sd_bus_call_method(b, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "ImportPKCS12", &e,
                               &reply, "hsa{sv}", fd, passphrase, 0);
        close(fd);
        capture_error(&c, r, &e);
        if (r >= 0) {
                assert_true(sd_bus_message_read(reply, "o", &key) > 0);
                c.key_path = strdup(key);
                assert_true(sd_bus_message_read_strv(reply, &c.certificates) >= 0);
        }
        return c;
}

static CallResult import_pkcs12(const char *file, const char *passphrase) {
        return import_pkcs12_on(bus, file, passphrase);
}

static CallResult generate_key_on(sd_bus *b, const char *address, const char *type, const char *subject) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        CallResult c = {};
        const char *key, *csr;
        int r;

        assert_true(sd_bus_message_new_method_call(b, &call, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "GenerateKey") >= 0);
        assert_true(sd_bus_message_append(call, "s", address) >= 0);
        assert_true(sd_bus_message_open_container(call, 'a', "{sv}") >= 0);
        if (type)
                assert_true(sd_bus_message_append(call, "{sv}", "type", "s", type) >= 0);
        if (subject)
                assert_true(sd_bus_message_append(call, "{sv}", "subject", "s", subject) >= 0);
        assert_true(sd_bus_message_close_container(call) >= 0);
        r = sd_bus_call(b, call, 120 * 1000000ULL, &e, &reply);
        capture_error(&c, r, &e);
        if (r >= 0) {
                assert_true(sd_bus_message_read(reply, "os", &key, &csr) > 0);
                c.key_path = strdup(key);
                c.csr = strdup(csr);
        }
        return c;
}

static void import_certificate(const char *file, bool trust) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_free_ char *data = harness_read_file(file);

        assert_non_null(data);
        assert_true(sd_bus_message_new_method_call(bus, &call, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(call, 'y', data, strlen(data)) >= 0);
        if (trust)
                assert_true(sd_bus_message_append(call, "a{sv}", 1, "trust", "b", 1) >= 0);
        else
                assert_true(sd_bus_message_append(call, "a{sv}", 0) >= 0);
        if (sd_bus_call(bus, call, 0, &e, &reply) < 0)
                fail_msg("ImportCertificates failed: %s: %s", e.name, e.message);
}

static uint64_t key_count(void) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(harness_get_manager_property(bus, "KeyCount", &s), 0);
        return strtoull(s, NULL, 10);
}

/* Every certificate path in the store, as one string to compare. */
static char *store_listing(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **paths = NULL;
        char *joined = NULL;
        size_t len = 0;

        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                       "LookupCertificates", NULL, &reply, "sa{sv}", "", 0) >= 0);
        assert_true(sd_bus_message_read_strv(reply, &paths) >= 0);
        for (char **p = paths; p && *p; p++)
                len += strlen(*p) + 1;
        joined = calloc(len + 1, 1);
        assert_non_null(joined);
        for (char **p = paths; p && *p; p++) {
                strcat(joined, *p);
                strcat(joined, "\n");
        }
        return joined;
}

static bool capability_possible(const char *sender) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int possible = -1;

        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                       "GetCapabilities", NULL, &reply, "sasa{sv}", sender, 0, 0) >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                const char *k;

                assert_true(sd_bus_message_read(reply, "s", &k) > 0);
                if (streq(k, "possible"))
                        assert_true(sd_bus_message_read(reply, "v", "b", &possible) > 0);
                else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        assert_true(possible >= 0);
        return possible;
}

/* ---- the token seen through PKCS#11 directly, not through smimed ---- */

typedef struct Direct {
        CK_FUNCTION_LIST *module;
        CK_SESSION_HANDLE session;
} Direct;

static void direct_open(Direct *d) {
        CK_SLOT_ID slots[16];
        CK_ULONG n = ELEMENTSOF(slots);

        d->module = p11_kit_module_load(SOFTHSM_MODULE, 0);
        assert_non_null(d->module);
        assert_int_equal(p11_kit_module_initialize(d->module), CKR_OK);
        assert_int_equal(d->module->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
        for (CK_ULONG i = 0; i < n; i++) {
                CK_TOKEN_INFO info;

                assert_int_equal(d->module->C_GetTokenInfo(slots[i], &info), CKR_OK);
                if (memcmp(info.label, HARNESS_TOKEN_LABEL, strlen(HARNESS_TOKEN_LABEL)) != 0)
                        continue;
                assert_int_equal(d->module->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &d->session),
                                 CKR_OK);
                assert_int_equal(d->module->C_Login(d->session, CKU_USER, (CK_UTF8CHAR *) harness->pin,
                                                    strlen(harness->pin)),
                                 CKR_OK);
                return;
        }
        fail_msg("token " HARNESS_TOKEN_LABEL " not found");
}

static void direct_close(Direct *d) {
        d->module->C_Logout(d->session);
        d->module->C_CloseSession(d->session);
        p11_kit_module_finalize(d->module);
        p11_kit_module_release(d->module);
}

/* Objects of class with CKA_ID id (hex, NULL for any id). */
static CK_ULONG direct_count(Direct *d, CK_OBJECT_CLASS class, const char *id_hex, CK_OBJECT_HANDLE *ret) {
        _cleanup_free_ unsigned char *id = NULL;
        CK_ATTRIBUTE template[2] = { { CKA_CLASS, &class, sizeof(class) } };
        CK_OBJECT_HANDLE objects[64];
        CK_ULONG n = 0, count = 0;
        size_t id_size = 0;

        if (id_hex) {
                assert_int_equal(unhexmem(id_hex, &id, &id_size), 0);
                template[1] = (CK_ATTRIBUTE) { CKA_ID, id, id_size };
        }
        assert_int_equal(d->module->C_FindObjectsInit(d->session, template, id_hex ? 2 : 1), CKR_OK);
        do {
                assert_int_equal(d->module->C_FindObjects(d->session, objects, ELEMENTSOF(objects), &n), CKR_OK);
                if (n > 0 && ret && count == 0)
                        *ret = objects[0];
                count += n;
        } while (n > 0);
        d->module->C_FindObjectsFinal(d->session);
        return count;
}

static bool direct_bool(Direct *d, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type) {
        CK_BBOOL value = CK_FALSE;
        CK_ATTRIBUTE a = { type, &value, sizeof(value) };

        assert_int_equal(d->module->C_GetAttributeValue(d->session, o, &a, 1), CKR_OK);
        return value;
}

static const char *id_of(const char *key_path) {
        const char *slash = strrchr(key_path, '/');

        assert_non_null(slash);
        return slash + 1;
}

/* The private key with this id is in the token the way the issue asks. */
static void expect_protected_key(const char *id, bool generated, CK_KEY_TYPE type) {
        CK_OBJECT_HANDLE key = 0, cert = 0;
        unsigned char secret[1024];
        CK_ATTRIBUTE a = { type == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE, secret, sizeof(secret) };
        CK_KEY_TYPE kt = 0;
        CK_ATTRIBUTE t = { CKA_KEY_TYPE, &kt, sizeof(kt) };
        Direct d = {};
        CK_RV rv;

        direct_open(&d);
        assert_int_equal(direct_count(&d, CKO_PRIVATE_KEY, id, &key), 1);
        assert_int_equal(d.module->C_GetAttributeValue(d.session, key, &t, 1), CKR_OK);
        assert_int_equal(kt, type);

        /* The secret part cannot be read out. */
        rv = d.module->C_GetAttributeValue(d.session, key, &a, 1);
        assert_int_equal(rv, CKR_ATTRIBUTE_SENSITIVE);
        assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);

        assert_true(direct_bool(&d, key, CKA_TOKEN));
        assert_true(direct_bool(&d, key, CKA_PRIVATE));
        assert_true(direct_bool(&d, key, CKA_SENSITIVE));
        assert_false(direct_bool(&d, key, CKA_EXTRACTABLE));
        assert_true(direct_bool(&d, key, CKA_NEVER_EXTRACTABLE) == generated);
        assert_true(direct_bool(&d, key, CKA_ALWAYS_SENSITIVE) == generated);
        assert_true(direct_bool(&d, key, CKA_SIGN));
        assert_true(direct_bool(&d, key, type == CKK_RSA ? CKA_DECRYPT : CKA_DERIVE));

        /* The public half sits beside it, and for an import the certificate too. */
        assert_int_equal(direct_count(&d, CKO_PUBLIC_KEY, id, NULL), 1);
        if (!generated)
                assert_int_equal(direct_count(&d, CKO_CERTIFICATE, id, &cert), 1);
        direct_close(&d);
}

static void test_import_rsa_pkcs12(void **state) {
        _cleanup_free_ char *p12 = make_pkcs12("rsa.p12", "rsa.user@example.com", "rsa", false);
        _cleanup_(call_result_done) CallResult c = {}, again = {};
        uint64_t before = key_count();

        (void) state;
        c = import_pkcs12(p12, "p12 secret");
        if (c.r < 0)
                fail_msg("ImportPKCS12 failed: %s: %s", c.error_name, c.error_message);
        assert_int_equal(strv_length(c.certificates), 2); /* the leaf and the CA from the chain */
        assert_int_equal(key_count(), before + 1);
        expect_protected_key(id_of(c.key_path), false, CKK_RSA);

        /* The address can sign once its root is trusted. */
        import_certificate(ca_cert, true);
        assert_true(capability_possible("rsa.user@example.com"));

        /* Again: harmless, the same key, nothing added. */
        again = import_pkcs12(p12, "p12 secret");
        assert_true(again.r >= 0);
        assert_string_equal(again.key_path, c.key_path);
        assert_int_equal(key_count(), before + 1);
}

static void test_import_ec_legacy_pkcs12(void **state) {
        _cleanup_free_ char *p12 = make_pkcs12("ec-legacy.p12", "ec.user@example.com", "ec", true);
        _cleanup_(call_result_done) CallResult c = {};

        (void) state;
        c = import_pkcs12(p12, "p12 secret");
        if (c.r < 0)
                fail_msg("ImportPKCS12 of a legacy file failed: %s: %s", c.error_name, c.error_message);
        expect_protected_key(id_of(c.key_path), false, CKK_EC);
        import_certificate(ca_cert, true);
        assert_true(capability_possible("ec.user@example.com"));
}

/* A failed import leaves token and store as they were. */
static void expect_import_refused(const char *file, const char *passphrase, const char *error_name,
                                  const char *message_part) {
        _cleanup_free_ char *store_before = store_listing(), *store_after = NULL;
        _cleanup_(call_result_done) CallResult c = {};
        CK_ULONG objects_before[3], objects_after[3];
        static const CK_OBJECT_CLASS classes[] = { CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE };
        uint64_t keys_before = key_count();
        Direct d = {};

        direct_open(&d);
        for (size_t i = 0; i < ELEMENTSOF(classes); i++)
                objects_before[i] = direct_count(&d, classes[i], NULL, NULL);
        direct_close(&d);

        c = import_pkcs12(file, passphrase);
        assert_true(c.r < 0);
        if (!streq_ptr(c.error_name, error_name))
                fail_msg("expected %s, got %s: %s", error_name, c.error_name, c.error_message);
        if (!strstr(c.error_message, message_part))
                fail_msg("expected \"%s\" in \"%s\"", message_part, c.error_message);

        store_after = store_listing();
        assert_string_equal(store_before, store_after);
        assert_int_equal(key_count(), keys_before);
        direct_open(&d);
        for (size_t i = 0; i < ELEMENTSOF(classes); i++)
                objects_after[i] = direct_count(&d, classes[i], NULL, NULL);
        direct_close(&d);
        assert_memory_equal(objects_before, objects_after, sizeof(objects_before));
}

static void test_import_failures_change_nothing(void **state) {
        _cleanup_free_ char *p12 = make_pkcs12("bad.p12", "bad.user@example.com", "rsa", false);
        _cleanup_free_ char *corrupt = NULL, *no_key = NULL, *no_cert = NULL, *data = NULL;
        struct stat st;
        FILE *f;

        (void) state;
        expect_import_refused(p12, "wrong passphrase", SMIMED_ERROR_BAD_PASSPHRASE, "passphrase");

        /* The same file cut short: not PKCS#12 any more. */
        corrupt = path("corrupt.p12");
        assert_int_equal(stat(p12, &st), 0);
        data = malloc((size_t) st.st_size);
        f = fopen(p12, "re");
        assert_int_equal(fread(data, 1, (size_t) st.st_size, f), (size_t) st.st_size);
        fclose(f);
        f = fopen(corrupt, "we");
        fwrite(data, 1, (size_t) st.st_size / 2, f);
        fclose(f);
        expect_import_refused(corrupt, "p12 secret", SMIMED_ERROR_INVALID_FORMAT, "not a PKCS#12");

        /* Its middle overwritten: the integrity check (MAC) fails, as with a wrong passphrase. */
        memset(data + st.st_size / 3, 0x5a, (size_t) st.st_size / 3);
        f = fopen(corrupt, "we");
        fwrite(data, 1, (size_t) st.st_size, f);
        fclose(f);
        expect_import_refused(corrupt, "p12 secret", SMIMED_ERROR_BAD_PASSPHRASE, "damaged");

        /* Certificates only. */
        no_key = path("no-key.p12");
        openssl("pkcs12", "-export", "-nokeys", "-in", ca_cert, "-passout", "pass:p12 secret", "-out", no_key, NULL);
        expect_import_refused(no_key, "p12 secret", SMIMED_ERROR_NO_PRIVATE_KEY, "no private key");

        /* A key without its certificate. */
        no_cert = path("no-cert.p12");
        openssl("pkcs12", "-export", "-nocerts", "-inkey", ca_key, "-passout", "pass:p12 secret", "-out", no_cert,
                NULL);
        expect_import_refused(no_cert, "p12 secret", SMIMED_ERROR_NO_CERTIFICATE, "not its certificate");

        /* Not PKCS#12 at all. */
        expect_import_refused(ca_cert, "p12 secret", SMIMED_ERROR_INVALID_FORMAT, "not a PKCS#12");
}

/* A wrong passphrase reaches the library and smimectl as BadPassphrase and
 * its errno of the table (the daemon once sent -EBADR while the library
 * mapped the name to -EBADE). */
static void test_wrong_passphrase_through_the_client(void **state) {
        _cleanup_free_ char *p12 = make_pkcs12("client-bad.p12", "client.bad@example.com", "rsa", false);
        _cleanup_free_ char *wrong = NULL, *out = NULL, *err = NULL, *tail = NULL;
        _cleanup_(smimed_error_done) smimed_error e = {};
        uint64_t before = key_count();
        smimed *s = NULL;
        int fd, r;

        (void) state;
        assert_int_equal(smimed_connect_address(harness->bus_address, &s, &e), 0);
        fd = open(p12, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        r = smimed_import_pkcs12_fd(s, fd, "wrong passphrase", NULL, NULL, &e);
        close(fd);
        assert_int_equal(r, -EBADE);
        assert_int_equal(r, -smimed_error_to_errno(SMIMED_ERR_BAD_PASSPHRASE));
        assert_string_equal(e.name, SMIMED_ERROR_BAD_PASSPHRASE);
        assert_int_equal(smimed_error_from_name(e.name), SMIMED_ERR_BAD_PASSPHRASE);
        assert_non_null(strstr(e.message, "passphrase"));
        smimed_close(s);

        wrong = harness_write_file(harness, "wrong-passphrase", "wrong passphrase\n", 0600);
        r = harness_run(harness,
                        (char *[]) { (char *) SMIMECTL_BINARY, (char *) "import-key", p12, (char *) "--passphrase-file",
                                     wrong, NULL },
                        false, &out, &err);
        assert_int_equal(r, 1);
        assert_true(asprintf(&tail, " (%s)\n", SMIMED_ERROR_BAD_PASSPHRASE) > 0);
        if (strlen(err) < strlen(tail) || !streq(err + strlen(err) - strlen(tail), tail) || !strstr(err, "passphrase"))
                fail_msg("expected one line ending \"%s\" on stderr, got: %s", tail, err);
        assert_int_equal(key_count(), before);
}

/* What an admin gets wrong first: a PKCS#12 file given to import (told to
 * use import-key), and import-key with nothing on standard input (told the
 * passphrase is missing, not that it is wrong). Nothing is enrolled. */
static void test_smimectl_pkcs12_mistakes(void **state) {
        _cleanup_free_ char *p12 = make_pkcs12("mistake.p12", "mistake.user@example.com", "rsa", false);
        _cleanup_free_ char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
        uint64_t before = key_count();
        int r;

        (void) state;
        r = harness_run(harness, (char *[]){(char *) SMIMECTL_BINARY, (char *) "import", p12, NULL}, false, &out,
                        &err);
        assert_int_equal(r, 1);
        if (!strstr(err, "PKCS#12") || !strstr(err, "smimectl import-key") ||
            !strstr(err, SMIMED_ERROR_INVALID_FORMAT))
                fail_msg("smimectl import of a PKCS#12 file: %s", err);

        /* The harness runs it with /dev/null on standard input. */
        r = harness_run(harness, (char *[]){(char *) SMIMECTL_BINARY, (char *) "import-key", p12, NULL}, false, &out2,
                        &err2);
        assert_int_equal(r, 1);
        if (!strstr(err2, "passphrase from standard input: it is empty") || strstr(err2, SMIMED_ERROR_BAD_PASSPHRASE))
                fail_msg("smimectl import-key with empty standard input: %s", err2);
        assert_int_equal(key_count(), before);
}

/* Runs argv (from the scratch directory's view); its status, stdout and stderr. */
static int run_out(char *const *argv, char **ret_out, char **ret_err) {
        int r = harness_run(harness, argv, false, ret_out, ret_err);

        assert_true(r >= 0);
        return r;
}

/* "openssl x509|req -in FILE -noout -OPTION": its one line of output. */
static char *openssl_field(const char *kind, const char *file, const char *option) {
        char *out = NULL;

        if (run_out((char *[]){(char *) "openssl", (char *) kind, (char *) "-in", (char *) file, (char *) "-noout",
                               (char *) option, NULL},
                    &out, NULL) != 0)
                fail_msg("openssl %s %s %s failed", kind, option, file);
        return out;
}

/* A certificate made with a key in the token is renewed: smimectl renew
 * makes a new key and a request with the certificate's subject, addresses
 * and key type; once the CA's certificate for it is imported, signing uses
 * it; the old key still decrypts mail sent to the old certificate, and
 * remove-key keeps it unless --force. */
static void test_renew(void **state) {
        const char *address = "renew.user@example.com";
        _cleanup_free_ char *p12 = make_pkcs12("renew.p12", address, "ec", false);
        _cleanup_free_ char *old_pem = path("renew.p12.pem"), *csr = path("renew.csr"), *new_pem = path("renewed.pem"),
                            *message = NULL, *old_mail = path("to-old.eml"), *signed_mail = path("renew-signed.eml"),
                            *signer = path("renew-signer.pem"), *ext = NULL;
        _cleanup_free_ char *out = NULL, *err = NULL, *old_subject = NULL, *csr_subject = NULL, *csr_text = NULL,
                            *new_fp = NULL, *signer_fp = NULL, *old_id = NULL, *new_id = NULL, *dec = NULL,
                            *rm_err = NULL, *none_err = NULL, *sign_err = NULL, *outgoing = NULL;
        _cleanup_(call_result_done) CallResult c = {};
        uint64_t before;

        (void) state;
        c = import_pkcs12(p12, "p12 secret");
        if (c.r < 0)
                fail_msg("ImportPKCS12: %s: %s", c.error_name, c.error_message);
        old_id = strdup(id_of(c.key_path));

        /* mail sent to the old certificate, before the renewal */
        message = harness_write_file(harness, "renew-message.eml",
                                     "From: alice@example.com\r\nTo: renew.user@example.com\r\nSubject: old\r\n\r\n"
                                     "Sent to the old certificate.\r\n",
                                     0644);
        assert_int_equal(run_out((char *[]){(char *) SMIMECTL_BINARY, (char *) "encrypt", (char *) "--to",
                                            (char *) address, message, (char *) "-o", old_mail, NULL},
                                 NULL, NULL),
                         0);

        /* nothing to renew for an address without a key */
        assert_int_equal(
                run_out((char *[]){(char *) SMIMECTL_BINARY, (char *) "renew", (char *) "nobody@example.com", NULL},
                        NULL, &none_err),
                1);
        assert_non_null(strstr(none_err, "nothing to renew"));

        before = key_count();
        if (run_out((char *[]){(char *) SMIMECTL_BINARY, (char *) "renew", (char *) address, (char *) "-o", csr, NULL},
                    &out, &err) != 0)
                fail_msg("smimectl renew: %s", err);
        assert_int_equal(key_count(), before + 1);
        assert_int_equal(strncmp(err, "Generated key ", 14), 0);
        new_id = strndup(err + 14, strcspn(err + 14, "\n"));
        assert_string_not_equal(new_id, old_id);

        /* the request: the same subject and address, the same kind of key */
        old_subject = openssl_field("x509", old_pem, "-subject");
        csr_subject = openssl_field("req", csr, "-subject");
        assert_string_equal(csr_subject, old_subject);
        csr_text = openssl_field("req", csr, "-text");
        assert_non_null(strstr(csr_text, "email:renew.user@example.com"));
        assert_non_null(strstr(csr_text, "prime256v1"));

        /* the CA issues it, for longer than the old one */
        ext = harness_write_file(harness, "renew.cnf",
                                 "[leaf]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\n"
                                 "extendedKeyUsage=emailProtection\nsubjectAltName=email:renew.user@example.com\n",
                                 0644);
        openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", new_pem,
                "-days", "90", "-extfile", ext, "-extensions", "leaf", NULL);
        assert_int_equal(run_out((char *[]){(char *) SMIMECTL_BINARY, (char *) "import", new_pem, NULL}, NULL, NULL),
                         0);

        /* signing uses the new certificate */
        outgoing = harness_write_file(harness, "renew-outgoing.eml",
                                      "From: renew.user@example.com\r\nTo: alice@example.com\r\nSubject: new\r\n\r\n"
                                      "Signed with the renewed key.\r\n",
                                      0644);
        if (run_out((char *[]){(char *) SMIMECTL_BINARY, (char *) "sign", (char *) "--from", (char *) address,
                               outgoing, (char *) "-o", signed_mail, NULL},
                    NULL, &sign_err) != 0)
                fail_msg("smimectl sign after the renewal: %s", sign_err);
        openssl("cms", "-verify", "-noverify", "-in", signed_mail, "-signer", signer, "-out", "/dev/null", NULL);
        new_fp = openssl_field("x509", new_pem, "-fingerprint");
        signer_fp = openssl_field("x509", signer, "-fingerprint");
        assert_string_equal(signer_fp, new_fp);

        /* the old key still opens old mail */
        if (run_out((char *[]){(char *) SMIMECTL_BINARY, (char *) "decrypt", old_mail, NULL}, &dec, NULL) != 0 ||
            !strstr(dec, "Sent to the old certificate."))
                fail_msg("mail to the old certificate does not decrypt after the renewal:\n%s", strempty(dec));

        /* remove-key keeps the old key while its certificate is current */
        before = key_count();
        assert_int_equal(
                run_out((char *[]){(char *) SMIMECTL_BINARY, (char *) "remove-key", old_id, NULL}, NULL, &rm_err), 1);
        if (!strstr(rm_err, "--force") || !strstr(rm_err, "only key"))
                fail_msg("remove-key of the old key: %s", rm_err);
        assert_int_equal(key_count(), before);
        assert_int_equal(
                run_out((char *[]){(char *) SMIMECTL_BINARY, (char *) "remove-key", old_id, (char *) "--force", NULL},
                        NULL, NULL),
                0);
        assert_int_equal(key_count(), before - 1);
}

static void test_import_from_a_pipe(void **state) {
        _cleanup_free_ char *p12 = make_pkcs12("pipe.p12", "pipe.user@example.com", "rsa", false);
        _cleanup_free_ char *data = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct stat st;
        int fds[2];
        FILE *f;

        (void) state;
        assert_int_equal(stat(p12, &st), 0);
        data = malloc((size_t) st.st_size);
        f = fopen(p12, "re");
        assert_int_equal(fread(data, 1, (size_t) st.st_size, f), (size_t) st.st_size);
        fclose(f);

        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        assert_int_equal(write(fds[1], data, (size_t) st.st_size), st.st_size);
        close(fds[1]);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "ImportPKCS12", &e,
                               &reply, "hsa{sv}", fds[0], "p12 secret", 0) < 0)
                fail_msg("ImportPKCS12 through a pipe failed: %s: %s", e.name, e.message);
        close(fds[0]);
}

/* ImportPKCS12Data: the file's bytes in the call, for clients without fds.
 * A wrong passphrase is BadPassphrase and enrolls nothing; the right one
 * enrolls the key with its certificate. */
static void test_import_pkcs12_data(void **state) {
        _cleanup_free_ char *p12 = make_pkcs12("data.p12", "data.user@example.com", "rsa", false);
        _cleanup_free_ char *data = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL, *bad = NULL;
        _cleanup_(strv_freep) char **certificates = NULL;
        uint64_t before = key_count();
        const char *key;
        struct stat st;
        FILE *f;

        (void) state;
        assert_int_equal(stat(p12, &st), 0);
        data = malloc((size_t) st.st_size);
        f = fopen(p12, "re");
        assert_int_equal(fread(data, 1, (size_t) st.st_size, f), (size_t) st.st_size);
        fclose(f);

        assert_true(sd_bus_message_new_method_call(bus, &bad, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportPKCS12Data") >= 0);
        assert_true(sd_bus_message_append_array(bad, 'y', data, (size_t) st.st_size) >= 0);
        assert_true(sd_bus_message_append(bad, "sa{sv}", "wrong passphrase", 0) >= 0);
        assert_true(sd_bus_call(bus, bad, 0, &e, NULL) < 0);
        assert_string_equal(e.name, SMIMED_ERROR_BAD_PASSPHRASE);
        assert_int_equal(key_count(), before);

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportPKCS12Data") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', data, (size_t) st.st_size) >= 0);
        assert_true(sd_bus_message_append(m, "sa{sv}", "p12 secret", 0) >= 0);
        sd_bus_error_free(&e);
        if (sd_bus_call(bus, m, 0, &e, &reply) < 0)
                fail_msg("ImportPKCS12Data failed: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_read(reply, "o", &key) > 0);
        assert_int_equal(strncmp(key, SMIMED_KEY_PATH_PREFIX "/", strlen(SMIMED_KEY_PATH_PREFIX) + 1), 0);
        assert_true(sd_bus_message_read_strv(reply, &certificates) >= 0);
        assert_true(strv_length(certificates) >= 1);
        assert_int_equal(key_count(), before + 1);
}

/* Generate in the token, have the CA sign the request, import: the address
 * can sign. */
static void generate_and_enroll(const char *address, const char *type, CK_KEY_TYPE ck_type) {
        _cleanup_(call_result_done) CallResult c = {};
        _cleanup_free_ char *csr = NULL, *cert = NULL, *text = NULL, *name = NULL, *cert_name = NULL;
        char *const verify[] = { (char *) "openssl", (char *) "req", (char *) "-in", NULL, (char *) "-verify",
                                 (char *) "-noout", (char *) "-text", NULL };
        char *argv[ELEMENTSOF(verify)];
        uint64_t before = key_count();

        c = generate_key_on(bus, address, type, "CN=Generated User,O=Example");
        if (c.r < 0)
                fail_msg("GenerateKey failed: %s: %s", c.error_name, c.error_message);
        assert_int_equal(key_count(), before + 1);
        expect_protected_key(id_of(c.key_path), true, ck_type);

        assert_true(asprintf(&name, "%s.csr", type) > 0);
        csr = harness_write_file(harness, name, c.csr, 0644);
        memcpy(argv, verify, sizeof(verify));
        argv[3] = csr;
        assert_int_equal(harness_run(harness, argv, false, &text, NULL), 0);
        assert_non_null(strstr(text, "Subject: CN = Generated User, O = Example"));
        assert_non_null(strstr(text, address));
        assert_non_null(strstr(text, "E-mail Protection"));
        assert_non_null(strstr(text, "Digital Signature"));

        assert_false(capability_possible(address)); /* no certificate yet */

        assert_true(asprintf(&cert_name, "%s.pem", type) > 0);
        cert = path(cert_name);
        openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
                "-days", "30", "-copy_extensions", "copyall", NULL);
        import_certificate(ca_cert, true);
        import_certificate(cert, false);
        assert_true(capability_possible(address));
}

static void test_generate_rsa(void **state) {
        (void) state;
        generate_and_enroll("gen.rsa@example.com", "rsa-2048", CKK_RSA);
}

static void test_generate_ec(void **state) {
        (void) state;
        generate_and_enroll("gen.ec@example.com", "ec-p256", CKK_EC);
}

static void test_generate_bad_arguments(void **state) {
        _cleanup_(call_result_done) CallResult a = {}, b = {}, c = {};
        uint64_t before = key_count();

        (void) state;
        a = generate_key_on(bus, "not an address", NULL, NULL);
        assert_string_equal(a.error_name, SMIMED_ERROR_INVALID_ARGUMENT);
        b = generate_key_on(bus, "x@example.com", "rsa-1024", NULL);
        assert_string_equal(b.error_name, SMIMED_ERROR_INVALID_ARGUMENT);
        assert_non_null(strstr(b.error_message, "rsa-1024"));
        c = generate_key_on(bus, "x@example.com", NULL, "no equals sign");
        assert_string_equal(c.error_name, SMIMED_ERROR_INVALID_ARGUMENT);
        assert_int_equal(key_count(), before);
}

static void test_key_objects_and_remove(void **state) {
        _cleanup_(call_result_done) CallResult c = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *xml_file = NULL, *want = NULL, *have = NULL;
        const char *s, *xml;
        uint32_t bits;
        uint64_t before;
        Direct d = {};

        (void) state;
        c = generate_key_on(bus, "remove.me@example.com", "ec-p384", NULL);
        assert_true(c.r >= 0);
        before = key_count();

        assert_true(sd_bus_get_property_string(bus, SMIMED_BUS_NAME, c.key_path, SMIMED_KEY_INTERFACE, "Label", NULL,
                                               (char **) &s) >= 0);
        assert_string_equal(s, "remove.me@example.com");
        free((char *) s);
        assert_true(sd_bus_get_property_trivial(bus, SMIMED_BUS_NAME, c.key_path, SMIMED_KEY_INTERFACE, "Bits", NULL,
                                                'u', &bits) >= 0);
        assert_int_equal(bits, 384);
        assert_true(sd_bus_get_property_string(bus, SMIMED_BUS_NAME, c.key_path, SMIMED_KEY_INTERFACE, "URI", NULL,
                                               (char **) &s) >= 0);
        assert_non_null(strstr(s, "token=" HARNESS_TOKEN_LABEL));
        assert_non_null(strstr(s, "type=private"));
        free((char *) s);

        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, c.key_path, "org.freedesktop.DBus.Introspectable",
                                       "Introspect", NULL, &reply, NULL) >= 0);
        assert_true(sd_bus_message_read(reply, "s", &xml) > 0);
        xml_file = harness_read_file(SMIMED_SOURCE_ROOT "/dbus/org.smimed1.Key.xml");
        want = xml_canonical_element(xml_file, "interface", SMIMED_KEY_INTERFACE);
        have = xml_canonical_element(xml, "interface", SMIMED_KEY_INTERFACE);
        assert_non_null(want);
        assert_non_null(have);
        if (!streq(want, have))
                fail_msg("dbus/org.smimed1.Key.xml does not match:\n%s---\n%s", want, have);

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, c.key_path, SMIMED_KEY_INTERFACE, "Remove", &e, NULL, NULL) < 0)
                fail_msg("Remove failed: %s: %s", e.name, e.message);
        assert_int_equal(key_count(), before - 1);
        direct_open(&d);
        assert_int_equal(direct_count(&d, CKO_PRIVATE_KEY, id_of(c.key_path), NULL), 0);
        assert_int_equal(direct_count(&d, CKO_PUBLIC_KEY, id_of(c.key_path), NULL), 0);
        direct_close(&d);
}

/* The keys' own ObjectManager: GetManagedObjects on /org/smimed1/key lists
 * exactly the token's keys, no certificate; their InterfacesAdded/Removed
 * come from it. */
static void managed_keys(char ***ret_paths) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **paths = calloc(1, sizeof(char *));
        const char *path, *interface;

        assert_non_null(paths);
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_KEY_PATH_PREFIX,
                                       "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", NULL, &reply,
                                       NULL) >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}") > 0) {
                assert_true(sd_bus_message_read(reply, "o", &path) > 0);
                assert_true(strncmp(path, SMIMED_KEY_PATH_PREFIX "/", strlen(SMIMED_KEY_PATH_PREFIX) + 1) == 0);
                assert_int_equal(strv_extend(&paths, path), 0);
                assert_true(sd_bus_message_enter_container(reply, 'a', "{sa{sv}}") > 0);
                while (sd_bus_message_enter_container(reply, 'e', "sa{sv}") > 0) {
                        assert_true(sd_bus_message_read(reply, "s", &interface) > 0);
                        assert_true(!streq(interface, SMIMED_CERTIFICATE_INTERFACE));
                        assert_true(sd_bus_message_skip(reply, "a{sv}") >= 0);
                        assert_true(sd_bus_message_exit_container(reply) >= 0);
                }
                assert_true(sd_bus_message_exit_container(reply) >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        *ret_paths = TAKE_PTR(paths);
}

static void test_key_object_manager(void **state) {
        _cleanup_(object_watch_freep) ObjectWatch *watch = NULL;
        _cleanup_(call_result_done) CallResult c = {};
        _cleanup_(strv_freep) char **paths = NULL, **after = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        (void) state;
        assert_int_equal(harness_watch_objects(bus, SMIMED_KEY_INTERFACE, &watch), 0);
        c = generate_key_on(bus, "managed@example.com", "ec-p256", NULL);
        assert_true(c.r >= 0);
        assert_int_equal(harness_objects_wait(watch, c.key_path, true), 0);

        managed_keys(&paths);
        assert_int_equal(strv_length(paths), key_count());
        assert_true(strv_contains(paths, c.key_path));
        assert_true(strv_contains(paths, SMIMED_KEY_PATH_PREFIX "/" HARNESS_KEY_ID_HEX));

        /* smimectl keys (smimed_list_keys(), one GetManagedObjects): every
         * key once, with its algorithm. */
        {
                _cleanup_free_ char *out = NULL, *id_field = NULL;
                const char *id = strrchr(c.key_path, '/') + 1;
                size_t n = 0;

                assert_int_equal(
                        run_out((char *[]){(char *) SMIMECTL_BINARY, (char *) "keys", (char *) "--json=short", NULL},
                                &out, NULL),
                        0);
                for (const char *p = out; (p = strstr(p, "\"id\":")); p++)
                        n++;
                if (n != key_count())
                        fail_msg("smimectl keys listed %zu keys, the token has %zu:\n%s", n, (size_t) key_count(),
                                 out);
                assert_true(asprintf(&id_field, "\"id\":\"%s\"", id) > 0);
                assert_non_null(strstr(out, id_field));
                assert_non_null(strstr(out, "\"algorithm\":\"ec\""));
        }

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, c.key_path, SMIMED_KEY_INTERFACE, "Remove", &e, NULL, NULL) < 0)
                fail_msg("Remove failed: %s: %s", e.name, e.message);
        assert_int_equal(harness_objects_wait(watch, c.key_path, false), 0);
        managed_keys(&after);
        assert_int_equal(strv_length(after), strv_length(paths) - 1);
        assert_false(strv_contains(after, c.key_path));
}

typedef struct DenialArgs {
        const char *p12;
        const char *key_path;
} DenialArgs;

static int denied_as_test_user(char *out, size_t size, void *userdata) {
        DenialArgs *a = userdata;
        _cleanup_(call_result_done) CallResult import = {}, generate = {};
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus *b = NULL;
        int r;

        if (harness_bus_open(&b) < 0)
                return 2;
        import = import_pkcs12_on(b, a->p12, "p12 secret");
        generate = generate_key_on(b, "denied@example.com", "ec-p256", NULL);
        r = sd_bus_call_method(b, SMIMED_BUS_NAME, a->key_path, SMIMED_KEY_INTERFACE, "Remove", &e, NULL, NULL);
        snprintf(out, size, "%s|%s|%s", strempty(import.error_name), strempty(generate.error_name),
                 r < 0 ? strempty(e.name) : "");
        sd_bus_flush_close_unref(b);
        return 0;
}

static void test_unprivileged_user_is_denied(void **state) {
        _cleanup_free_ char *p12 = make_pkcs12("denied.p12", "denied@example.com", "rsa", false), *out = NULL;
        _cleanup_(call_result_done) CallResult c = {};
        DenialArgs a = { .p12 = p12 };
        uint64_t before;

        (void) state;
        /* The PKCS#12 file must be readable by the test user to be passed at all. */
        assert_int_equal(chmod(p12, 0644), 0);
        c = generate_key_on(bus, "keep.me@example.com", "ec-p256", NULL);
        assert_true(c.r >= 0);
        a.key_path = c.key_path;
        before = key_count();

        assert_int_equal(harness_run_as_test_user(harness, denied_as_test_user, &a, &out), 0);
        assert_string_equal(out, SD_BUS_ERROR_ACCESS_DENIED "|" SD_BUS_ERROR_ACCESS_DENIED "|"
                                 SD_BUS_ERROR_ACCESS_DENIED);
        assert_int_equal(key_count(), before);
}

static int on_reply_count(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        (void) m, (void) error;
        (*(int *) userdata)++;
        return 0;
}

/* Slow token work (RSA-4096 key generation) runs on the workers: while it is
 * in flight, the loop still answers lookups and capability questions. */
static void test_loop_answers_during_key_generation(void **state) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *g1 = NULL, *g2 = NULL, *caps = NULL, *lookup = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m1 = NULL, *m2 = NULL;
        int generated = 0, answered = 0, generated_when_answered = -1;

        (void) state;
        for (int i = 0; i < 2; i++) {
                sd_bus_message **m = i == 0 ? &m1 : &m2;

                assert_true(sd_bus_message_new_method_call(bus, m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "GenerateKey") >= 0);
                assert_true(sd_bus_message_append(*m, "sa{sv}", i == 0 ? "slow1@example.com" : "slow2@example.com", 1,
                                                  "type", "s", "rsa-4096") >= 0);
                assert_true(sd_bus_call_async(bus, i == 0 ? &g1 : &g2, *m, on_reply_count, &generated,
                                              300 * 1000000ULL) >= 0);
        }
        assert_true(sd_bus_call_method_async(bus, &caps, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                             SMIMED_MANAGER_INTERFACE, "GetCapabilities", on_reply_count, &answered,
                                             "sasa{sv}", "rsa.user@example.com", 1, "ec.user@example.com", 0) >= 0);
        assert_true(sd_bus_call_method_async(bus, &lookup, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                             SMIMED_MANAGER_INTERFACE, "LookupCertificates", on_reply_count, &answered,
                                             "sa{sv}", "", 0) >= 0);

        while (generated < 2) {
                int r = sd_bus_process(bus, NULL);

                assert_true(r >= 0);
                if (answered == 2 && generated_when_answered < 0)
                        generated_when_answered = generated;
                if (r == 0)
                        assert_true(sd_bus_wait(bus, UINT64_MAX) >= 0);
        }
        /* Both questions were answered before either key was ready. */
        assert_int_equal(generated_when_answered, 0);
}

/* The audit trail: every change to keys, and every denial, with the caller. */
static void test_audit_trail(void **state) {
        _cleanup_free_ char *log = harness_read_file(harness->smimed_log), *denied = NULL;
        _cleanup_(call_result_done) CallResult c = {};
        _cleanup_free_ char *expected = NULL, *log2 = NULL;

        (void) state;
        assert_non_null(log);
        assert_non_null(strstr(log, "AUDIT import-pkcs12 outcome=success uid=0 pid="));
        assert_non_null(strstr(log, "AUDIT import-pkcs12 outcome=failed uid=0"));
        assert_non_null(strstr(log, "AUDIT generate-key outcome=success uid=0"));
        assert_non_null(strstr(log, "address=gen.rsa@example.com"));
        assert_non_null(strstr(log, "AUDIT remove-key outcome=success uid=0"));
        assert_non_null(strstr(log, "message_id=a69543b737c247d5aa7aa1126bfe1763"));

        /* The denials of test_unprivileged_user_is_denied, with the test user's uid. */
        assert_true(asprintf(&denied, "AUDIT org.smimed1.manage-keys outcome=denied uid=%u ",
                             (unsigned) harness->test_uid) > 0);
        assert_non_null(strstr(log, denied));

        /* A new event appears with the key it concerns. */
        c = generate_key_on(bus, "audited@example.com", "ec-p256", NULL);
        assert_true(c.r >= 0);
        assert_true(asprintf(&expected, "AUDIT generate-key outcome=success uid=0 pid=%d unit=", (int) getpid()) > 0);
        log2 = harness_read_file(harness->smimed_log);
        assert_non_null(strstr(log2, expected));
        assert_non_null(strstr(log2, id_of(c.key_path)));
}

/* Last: a clean stop (exit 0), and under SMIMED_TEST_WRAPPER a clean valgrind report. */
static void test_clean_stop(void **state) {
        int status;

        (void) state;
        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_import_rsa_pkcs12),
                cmocka_unit_test(test_import_ec_legacy_pkcs12),
                cmocka_unit_test(test_import_failures_change_nothing),
                cmocka_unit_test(test_wrong_passphrase_through_the_client),
                cmocka_unit_test(test_smimectl_pkcs12_mistakes),
                cmocka_unit_test(test_renew),
                cmocka_unit_test(test_import_from_a_pipe),
                cmocka_unit_test(test_import_pkcs12_data),
                cmocka_unit_test(test_generate_rsa),
                cmocka_unit_test(test_generate_ec),
                cmocka_unit_test(test_generate_bad_arguments),
                cmocka_unit_test(test_key_objects_and_remove),
                cmocka_unit_test(test_key_object_manager),
                cmocka_unit_test(test_unprivileged_user_is_denied),
                cmocka_unit_test(test_loop_answers_during_key_generation),
                cmocka_unit_test(test_audit_trail),
                cmocka_unit_test(test_clean_stop),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
