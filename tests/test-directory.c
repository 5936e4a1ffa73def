/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Recipients' certificates from an LDAP directory ([Directory]), against a
 * real slapd the test starts (tests/ldap-server.c) on ldapi:// and
 * 127.0.0.1. One smimed for the whole file; the tests run in order and use
 * addresses of their own, so the caches of one do not speak for another.
 * test_server_down stops the server, test_reload_ends_rest starts it again. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <openssl/pem.h>

#include "certificate.h"
#include "directory.h"
#include "harness.h"
#include "ldap-server.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "strv.h"

/* Under valgrind everything is slower. */
#define TIMEOUT_SEC (wrapped() ? 10 : 2)
#define MARGIN_USEC (wrapped() ? 5000000ULL : 1500000ULL)

static Harness *harness;
static LdapServer *server;
static char *config_path;
static PkiCert *ca;

static bool wrapped(void) {
        const char *w = getenv("SMIMED_TEST_WRAPPER");

        return w && *w;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static sd_bus *bus_open(void) {
        sd_bus *bus = NULL;

        assert_int_equal(harness_bus_open(&bus), 0);
        return bus;
}

static PkiCert *make_leaf(const char *address) {
        const char *sans[] = {address, NULL};
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = address;
        o.san_emails = sans;
        c = pki_cert_new(&o, ca);
        assert_non_null(c);
        return c;
}

static void import(const PkiCert *c, bool trust) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust) >= 0);
        if (sd_bus_call(bus, m, 0, &e, &reply) < 0)
                fail_msg("ImportCertificates failed: %s: %s", e.name, e.message);
}

/* Puts a person with this certificate (NULL: none) in the directory. */
static void publish(const char *uid, const char *mail, const PkiCert *c, bool smime) {
        _cleanup_free_ unsigned char *der = NULL;
        size_t size = 0;

        if (c)
                assert_int_equal(pki_cert_der(c, &der, &size), 0);
        assert_int_equal(ldap_server_add_person(server, uid, mail, der, size, smime), 0);
}

typedef struct Answer {
        bool possible;
        char *reason;
        char *fingerprint; /* NULL: no certificate */
        bool from_directory;
        uint64_t usec; /* how long the call took */
} Answer;

static void answer_done(Answer *a) {
        free(a->reason);
        free(a->fingerprint);
}

/* GetCapabilities("", [address]) with directory=use_directory (unset when < 0). */
static Answer get_encrypt(sd_bus *bus, const char *address, int use_directory) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *recipients[] = {address, NULL};
        Answer a = {};
        uint64_t start;
        int r;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "GetCapabilities") >= 0);
        assert_true(sd_bus_message_append(m, "s", "") >= 0);
        assert_true(sd_bus_message_append_strv(m, (char **) recipients) >= 0);
        if (use_directory < 0)
                assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        else
                assert_true(sd_bus_message_append(m, "a{sv}", 1, "directory", "b", use_directory) >= 0);
        start = now_usec();
        if (sd_bus_call(bus, m, 60 * 1000000ULL, &e, &reply) < 0)
                fail_msg("GetCapabilities failed: %s: %s", e.name, e.message);
        a.usec = now_usec() - start;

        assert_true(sd_bus_message_skip(reply, "a{sv}") >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "a{sv}") > 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key, *s;
                int b;

                assert_true(sd_bus_message_read(reply, "s", &key) >= 0);
                if (streq(key, "possible")) {
                        assert_true(sd_bus_message_read(reply, "v", "b", &b) >= 0);
                        a.possible = b;
                } else if (streq(key, "from_directory")) {
                        assert_true(sd_bus_message_read(reply, "v", "b", &b) >= 0);
                        a.from_directory = b;
                } else if (streq(key, "reason") || streq(key, "fingerprint")) {
                        assert_true(sd_bus_message_read(reply, "v", "s", &s) >= 0);
                        if (streq(key, "reason"))
                                a.reason = strdup(s);
                        else
                                a.fingerprint = strdup(s);
                } else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        assert_true(r >= 0);
        assert_non_null(a.reason);
        return a;
}

static char *fingerprint_of(const PkiCert *c) {
        char fp[65];

        assert_int_equal(pki_cert_fingerprint(c, fp), 0);
        return strdup(fp);
}

static unsigned searches_for(const char *filter_part) {
        unsigned n = 0;

        assert_int_equal(ldap_server_count_searches(server, filter_part, &n), 0);
        return n;
}

static int setup(void **state) {
        _cleanup_free_ char *extra = NULL, *text = NULL;
        PkiCertOptions o;
        int r;

        (void) state;
        r = ldap_server_start(&server);
        if (r < 0)
                return r;
        r = harness_new(&harness);
        if (r < 0)
                return r;
        r = harness_start_bus(harness);
        if (r < 0)
                return r;
        /* Over TCP, so that a stopped server is one that does not answer. */
        if (asprintf(&extra,
                     "[Directory]\n"
                     "URI=%s\n"
                     "Base=" LDAP_SERVER_SUFFIX "\n"
                     "TimeoutSec=%d\n"
                     "CacheSec=3600\n",
                     server->ldap_uri, TIMEOUT_SEC) < 0)
                return -ENOMEM;
        text = harness_config_text(harness, extra);
        if (!text)
                return -ENOMEM;
        config_path = harness_write_file(harness, "smimed.conf", text, 0644);
        if (!config_path)
                return -1;
        r = harness_start_smimed(harness, config_path, NULL);
        if (r < 0)
                return r;

        pki_cert_options_init(&o);
        o.common_name = "Directory Test CA";
        o.is_ca = true;
        o.not_after_days = 3650;
        ca = pki_cert_new(&o, NULL);
        if (!ca)
                return -ENOMEM;
        import(ca, true);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        server = ldap_server_free(server);
        ca = pki_cert_free(ca);
        config_path = mfree(config_path);
        return 0;
}

/* EncryptData to address; the result, decrypted by openssl cms with the
 * recipient's key, is the message again. */
static void encrypt_and_decrypt(const char *address, const PkiCert *recipient) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *in = NULL, *key = NULL, *cert = NULL, *out = NULL, *err = NULL, *key_pem = NULL,
                            *cert_pem = NULL;
        static const char message[] = "Subject: directory\r\n\r\nfound in LDAP\r\n";
        const char *recipients[] = {address, NULL};
        const void *data;
        size_t size;
        BIO *bio;
        char *p;
        long n;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "EncryptData") >= 0);
        assert_true(sd_bus_message_append_strv(m, (char **) recipients) >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', message, strlen(message)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        if (sd_bus_call(bus, m, 60 * 1000000ULL, &e, &reply) < 0)
                fail_msg("EncryptData to %s failed: %s: %s", address, e.name, e.message);
        assert_true(sd_bus_message_read_array(reply, 'y', &data, &size) >= 0);
        assert_true(size > 0);

        bio = BIO_new(BIO_s_mem());
        assert_non_null(bio);
        assert_true(PEM_write_bio_PrivateKey(bio, recipient->key, NULL, NULL, 0, NULL, NULL) == 1);
        n = BIO_get_mem_data(bio, &p);
        key_pem = strndup(p, (size_t) n);
        BIO_free(bio);
        cert_pem = pki_cert_pem(recipient);
        assert_non_null(key_pem);
        assert_non_null(cert_pem);

        in = harness_write_file(harness, "directory-encrypted.eml", "", 0600);
        assert_non_null(in);
        {
                FILE *f = fopen(in, "we");

                assert_non_null(f);
                assert_int_equal(fwrite(data, 1, size, f), size);
                assert_int_equal(fclose(f), 0);
        }
        key = harness_write_file(harness, "directory-recipient.key", key_pem, 0600);
        cert = harness_write_file(harness, "directory-recipient.pem", cert_pem, 0644);
        assert_non_null(key);
        assert_non_null(cert);
        assert_int_equal(harness_run(harness,
                                     (char *const[]){(char *) "openssl", (char *) "cms", (char *) "-decrypt",
                                                     (char *) "-in", in, (char *) "-inkey", key, (char *) "-recip",
                                                     cert, NULL},
                                     false, &out, &err),
                         0);
        assert_non_null(strstr(out, "found in LDAP"));
}

/* smimectl coverage --to address: its text has text_part, its JSON
 * json_part (NULL: the text must not have "from the directory"). */
static void coverage_says(const char *address, const char *text_part, const char *json_part) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        int r;

        r = harness_run(harness,
                        (char *const[]){(char *) SMIMECTL_BINARY, (char *) "coverage", (char *) "--to",
                                        (char *) address, NULL},
                        false, &out, &err);
        if (r != 0)
                fail_msg("smimectl coverage --to %s exited with %d: %s%s", address, r, strempty(out), strempty(err));
        if (text_part ? !strstr(out, text_part) : !!strstr(out, "from the directory"))
                fail_msg("smimectl coverage --to %s printed:\n%s", address, out);
        out = mfree(out);
        err = mfree(err);
        r = harness_run(harness,
                        (char *const[]){(char *) SMIMECTL_BINARY, (char *) "coverage", (char *) "--json=short",
                                        (char *) "--to", (char *) address, NULL},
                        false, &out, &err);
        assert_int_equal(r, 0);
        if (!strstr(out, json_part))
                fail_msg("smimectl coverage --json=short --to %s printed:\n%s", address, out);
}

/* An address only in the directory: encryption is possible, with its
 * certificate, which is then in the store, marked as from the directory. */
static void test_found_in_directory(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(pki_cert_freep) PkiCert *alice = make_leaf("alice@example.com");
        _cleanup_(pki_cert_freep) PkiCert *bob = make_leaf("bob@example.com");
        _cleanup_free_ char *alice_fp = fingerprint_of(alice), *bob_fp = fingerprint_of(bob);
        _cleanup_(answer_done) Answer local = {}, a = {}, again = {}, b = {};

        (void) state;
        publish("alice", "alice@example.com", alice, true);
        publish("bob", "bob@example.com", bob, false);

        /* directory=false: the store's own answer, and nothing asked. */
        local = get_encrypt(bus, "alice@example.com", false);
        assert_false(local.possible);
        assert_string_equal(local.reason, "no-certificate");
        assert_int_equal(searches_for("(mail=alice@example.com)"), 0);

        a = get_encrypt(bus, "alice@example.com", -1);
        if (!a.possible)
                fail_msg("alice@example.com not possible: %s", a.reason);
        assert_string_equal(a.fingerprint, alice_fp);
        assert_true(a.from_directory);
        assert_int_equal(searches_for("(mail=alice@example.com)"), 1);

        /* Cached in the store: directory=false finds it now, and the
         * directory is not asked again. */
        again = get_encrypt(bus, "alice@example.com", false);
        assert_true(again.possible);
        assert_string_equal(again.fingerprint, alice_fp);
        assert_true(again.from_directory);
        answer_done(&again);
        again = get_encrypt(bus, "alice@example.com", -1);
        assert_true(again.possible);
        assert_int_equal(searches_for("(mail=alice@example.com)"), 1);

        /* userCertificate;binary too. */
        b = get_encrypt(bus, "bob@example.com", -1);
        if (!b.possible)
                fail_msg("bob@example.com not possible: %s", b.reason);
        assert_string_equal(b.fingerprint, bob_fp);
        assert_true(b.from_directory);

        encrypt_and_decrypt("alice@example.com", alice);

        /* smimectl coverage (through libsmimed) says where it came from. */
        coverage_says("alice@example.com", "(from the directory, fetched ", "\"from_directory\":true");
}

/* Encrypt resolves its recipients through the directory too. */
static void test_encrypt_asks_directory(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *carol = make_leaf("carol@example.com");

        (void) state;
        publish("carol", "carol@example.com", carol, true);
        encrypt_and_decrypt("carol@example.com", carol);
        assert_int_equal(searches_for("(mail=carol@example.com)"), 1);
}

/* LookupCertificates(address, filter): the certificate paths found. */
static char **lookup(sd_bus *bus, const char *address, int use_directory) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        char **paths = NULL;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "LookupCertificates") >= 0);
        assert_true(sd_bus_message_append(m, "s", address) >= 0);
        if (use_directory < 0)
                assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        else
                assert_true(sd_bus_message_append(m, "a{sv}", 1, "directory", "b", use_directory) >= 0);
        if (sd_bus_call(bus, m, 60 * 1000000ULL, &e, &reply) < 0)
                fail_msg("LookupCertificates(%s) failed: %s: %s", address, e.name, e.message);
        assert_true(sd_bus_message_read_strv(reply, &paths) >= 0);
        return paths;
}

/* LookupCertificates asks the directory about an address the store cannot
 * serve, unless "directory" is false; what it found is listed. */
static void test_lookup_asks_directory(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(pki_cert_freep) PkiCert *gail = make_leaf("gail@example.com");
        _cleanup_free_ char *gail_fp = fingerprint_of(gail), *want = NULL;
        _cleanup_(strv_freep) char **local = NULL, **found = NULL;

        (void) state;
        publish("gail", "gail@example.com", gail, true);
        local = lookup(bus, "gail@example.com", false);
        assert_int_equal(strv_length(local), 0);
        assert_int_equal(searches_for("(mail=gail@example.com)"), 0);

        found = lookup(bus, "Gail@Example.com", -1);
        assert_true(asprintf(&want, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", gail_fp) > 0);
        assert_int_equal(strv_length(found), 1);
        assert_string_equal(found[0], want);
        assert_int_equal(searches_for("(mail=gail@example.com)"), 1);
}

/* A CA whose CRL distribution point is an ldap:// URL on the test's slapd:
 * FetchCRLs fetches it from there (an anonymous base search of the entry
 * for certificateRevocationList;binary), and the leaf it revokes is
 * revoked. */
static void test_crl_from_ldap(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(pki_cert_freep) PkiCert *crl_ca = NULL, *henry = NULL, *iris = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        _cleanup_free_ char *url = NULL;
        _cleanup_(answer_done) Answer revoked = {}, good = {};
        const char *henry_sans[] = {"henry@example.com", NULL}, *iris_sans[] = {"iris@example.com", NULL};
        PkiCertOptions o;
        PkiCrlOptions crl_options;
        uint64_t serial;
        uint32_t fetched = 0;
        size_t size = 0;

        (void) state;
        /* The DN's commas are %2C: in the certificate's extension a comma
         * would start another name. */
        assert_true(asprintf(&url,
                             "ldap://127.0.0.1:%u/cn=LDAP%%20CRL%%20CA%%2Cdc=example%%2Cdc=com"
                             "?certificateRevocationList;binary",
                             (unsigned) server->port) > 0);
        crl_ca = pki_root_ca("LDAP CRL CA");
        assert_non_null(crl_ca);
        pki_cert_options_init(&o);
        o.crl_uri = url;
        o.common_name = "henry@example.com";
        o.san_emails = henry_sans;
        henry = pki_cert_new(&o, crl_ca);
        o.common_name = "iris@example.com";
        o.san_emails = iris_sans;
        iris = pki_cert_new(&o, crl_ca);
        assert_non_null(henry);
        assert_non_null(iris);

        serial = pki_cert_serial(henry);
        pki_crl_options_init(&crl_options);
        crl = pki_crl_new(crl_ca, &serial, 1, &crl_options);
        assert_non_null(crl);
        assert_int_equal(pki_crl_der(crl, &der, &size), 0);
        assert_int_equal(ldap_server_add_crl(server, "LDAP CRL CA", der, size), 0);

        import(crl_ca, true);
        import(henry, false);
        import(iris, false);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "FetchCRLs", &e,
                               &reply, "a{sv}", 0) < 0)
                fail_msg("FetchCRLs: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_read(reply, "u", &fetched) > 0);
        assert_true(fetched >= 1);
        assert_true(searches_for("base=\"cn=LDAP CRL CA,dc=example,dc=com\" scope=0") >= 1);

        revoked = get_encrypt(bus, "henry@example.com", false);
        assert_false(revoked.possible);
        assert_string_equal(revoked.reason, "revoked");
        good = get_encrypt(bus, "iris@example.com", false);
        assert_true(good.possible);
}

/* An address imported by an admin is served by the store: no search. */
static void test_store_first(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(pki_cert_freep) PkiCert *dave = make_leaf("dave@example.com");
        _cleanup_(answer_done) Answer a = {};

        (void) state;
        import(dave, false);
        publish("dave", "dave@example.com", dave, true);
        a = get_encrypt(bus, "dave@example.com", -1);
        assert_true(a.possible);
        assert_false(a.from_directory);
        assert_int_equal(searches_for("(mail=dave@example.com)"), 0);
        coverage_says("dave@example.com", NULL, "\"from_directory\":false");
}

/* Filter metacharacters in the address are escaped (RFC 4515): a*b is not
 * a wildcard that finds axxb. Of the metacharacters only * can be in an
 * address smimed takes over D-Bus (address_normalize() refuses (, ) and \,
 * and a D-Bus string cannot hold NUL): test_filter_escaping() covers them. */
static void test_escaped(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(pki_cert_freep) PkiCert *star = make_leaf("a*b@example.com");
        _cleanup_(pki_cert_freep) PkiCert *plain = make_leaf("axxb@example.com");
        _cleanup_free_ char *star_fp = fingerprint_of(star);
        _cleanup_(answer_done) Answer a = {}, none = {};

        (void) state;
        publish("star", "a*b@example.com", star, true);
        publish("plain", "axxb@example.com", plain, true);

        a = get_encrypt(bus, "a*b@example.com", -1);
        if (!a.possible)
                fail_msg("a*b@example.com not possible: %s", a.reason);
        assert_string_equal(a.fingerprint, star_fp);
        assert_int_equal(searches_for("(mail=a\\2Ab@example.com)") + searches_for("(mail=a\\2ab@example.com)"), 1);
        /* axxb was not fetched with it: the store alone has nothing for it. */
        none = get_encrypt(bus, "axxb@example.com", false);
        assert_false(none.possible);
        assert_string_equal(none.reason, "no-certificate");
}

/* directory_filter() and directory_search(), what a lookup thread runs,
 * with every metacharacter, against the same slapd. */
static void test_filter_escaping(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *parens = make_leaf("p(x)\\q*@example.com");
        _cleanup_(pki_cert_freep) PkiCert *other = make_leaf("pxq@example.com");
        _cleanup_free_ char *filter = NULL, *message = NULL;
        STACK_OF(X509) *certs = NULL;
        DirectorySettings settings = {
                .uri = server->ldapi_uri,
                .base = LDAP_SERVER_SUFFIX,
                .filter = "(&(objectClass=inetOrgPerson)(mail=%s))",
                .timeout_usec = 5000000,
        };
        char fp[65];

        (void) state;
        assert_int_equal(directory_filter("(mail=%s)", "a*b(c)\\d@x", &filter), 0);
        assert_string_equal(filter, "(mail=a\\2Ab\\28c\\29\\5Cd@x)");
        filter = mfree(filter);
        assert_int_equal(directory_filter("(|(mail=%s)(cn=100%%))", "*", &filter), 0);
        assert_string_equal(filter, "(|(mail=\\2A)(cn=100%))");

        publish("parens", "p(x)\\q*@example.com", parens, true);
        publish("pxq", "pxq@example.com", other, false);
        assert_int_equal(directory_search(&settings, "p(x)\\q*@example.com", &certs, &message), 0);
        assert_int_equal(sk_X509_num(certs), 1);
        assert_int_equal(x509_fingerprint(sk_X509_value(certs, 0), fp), 0);
        {
                _cleanup_free_ char *want = fingerprint_of(parens);

                assert_string_equal(fp, want);
        }
        sk_X509_pop_free(certs, X509_free);
        certs = NULL;
        assert_int_equal(directory_search(&settings, "nobody-at-all@example.com", &certs, &message), -ENOENT);
        assert_null(certs);
}

/* An address the directory does not know is asked for once. */
static void test_negative_cache(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();

        (void) state;
        for (int i = 0; i < 3; i++) {
                _cleanup_(answer_done) Answer a = get_encrypt(bus, "nobody@example.com", -1);

                assert_false(a.possible);
                assert_string_equal(a.reason, "no-certificate");
        }
        assert_int_equal(searches_for("(mail=nobody@example.com)"), 1);
}

/* Writes [Directory] with this CacheSec= (the rest as setup() has it) and
 * reloads smimed. */
static void reload_directory(sd_bus *bus, unsigned cache_sec) {
        _cleanup_free_ char *extra = NULL, *text = NULL, *path = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        assert_true(asprintf(&extra, "[Directory]\nURI=%s\nBase=" LDAP_SERVER_SUFFIX "\nTimeoutSec=%d\nCacheSec=%u\n",
                             server->ldap_uri, TIMEOUT_SEC, cache_sec) > 0);
        text = harness_config_text(harness, extra);
        assert_non_null(text);
        path = harness_write_file(harness, "smimed.conf", text, 0644);
        assert_non_null(path);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Reload", &e, NULL,
                               "") < 0)
                fail_msg("Reload: %s: %s", e.name, e.message);
}

static bool slow_done;
static int slow_error;

static int on_slow_reply(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        (void) userdata;
        (void) error;
        slow_done = true;
        slow_error = sd_bus_message_is_method_error(reply, NULL) ? -EIO : 0;
        return 0;
}

/* A server that takes connections and answers nothing (stopped with
 * SIGSTOP): the store's answer within TimeoutSec=, and other calls meanwhile
 * are not delayed. Then a server that is gone. */
static void test_server_down(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open(), *other = bus_open();
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(answer_done) Answer quick = {}, down = {}, gone = {};
        const char *recipients[] = {"erin@example.com", NULL};
        uint64_t start;
        int r;

        (void) state;
        /* A changed [Directory] makes smimed forget what it learnt, the
         * 30 s rest after a failure of the server included: whatever an
         * earlier case left, the slow call below asks the stopped server. */
        reload_directory(bus, 3599);
        assert_int_equal(ldap_server_pause(server), 0);

        /* The slow call, sent without waiting. */
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "GetCapabilities") >= 0);
        assert_true(sd_bus_message_append(m, "s", "") >= 0);
        assert_true(sd_bus_message_append_strv(m, (char **) recipients) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        start = now_usec();
        assert_true(sd_bus_call_async(bus, NULL, m, on_slow_reply, NULL, 60 * 1000000ULL) >= 0);

        /* Another client meanwhile: answered at once. */
        quick = get_encrypt(other, "dave@example.com", -1);
        assert_true(quick.possible);
        assert_true(quick.usec < MARGIN_USEC);

        /* The slow one: the store's answer, within the timeout. */
        while (!slow_done) {
                r = sd_bus_process(bus, NULL);
                assert_true(r >= 0);
                if (r == 0)
                        assert_true(sd_bus_wait(bus, 100000) >= 0);
                if (now_usec() - start > (uint64_t) TIMEOUT_SEC * 1000000ULL + MARGIN_USEC)
                        fail_msg("no answer within TimeoutSec=%d", TIMEOUT_SEC);
        }
        assert_int_equal(slow_error, 0);
        if (now_usec() - start < (uint64_t) TIMEOUT_SEC * 1000000ULL / 2) {
                _cleanup_free_ char *log = harness_read_file(harness->smimed_log);
                size_t len = log ? strlen(log) : 0;

                fail_msg("the stopped directory was not waited for; smimed's log ends:\n%s",
                         log ? log + (len > 3000 ? len - 3000 : 0) : "");
        }

        down = get_encrypt(other, "erin@example.com", -1);
        assert_false(down.possible);
        assert_string_equal(down.reason, "no-certificate");

        /* Gone altogether: the store's answer at once. */
        assert_int_equal(ldap_server_stop(server), 0);
        gone = get_encrypt(other, "frank@example.com", -1);
        assert_false(gone.possible);
        assert_string_equal(gone.reason, "no-certificate");
        assert_true(gone.usec < (uint64_t) TIMEOUT_SEC * 1000000ULL + MARGIN_USEC);
}

/* After test_server_down, smimed rests 30 s from the failed server: a server
 * back meanwhile is not asked. A reload that changes [Directory], here only
 * CacheSec=, ends the rest, and the next question reaches the server. */
static void test_reload_ends_rest(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(pki_cert_freep) PkiCert *grace = make_leaf("grace@example.com");
        _cleanup_(answer_done) Answer resting = {}, asked = {};
        _cleanup_free_ char *grace_fp = fingerprint_of(grace);

        (void) state;
        assert_int_equal(ldap_server_resume(server), 0);
        publish("grace", "grace@example.com", grace, true);

        resting = get_encrypt(bus, "grace@example.com", -1);
        assert_false(resting.possible);
        assert_string_equal(resting.reason, "no-certificate");
        assert_int_equal(searches_for("(mail=grace@example.com)"), 0);

        reload_directory(bus, 3598);
        asked = get_encrypt(bus, "grace@example.com", -1);
        assert_true(asked.possible);
        assert_true(asked.from_directory);
        assert_string_equal(asked.fingerprint, grace_fp);
        assert_int_equal(searches_for("(mail=grace@example.com)"), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_found_in_directory),    cmocka_unit_test(test_encrypt_asks_directory),
                cmocka_unit_test(test_lookup_asks_directory), cmocka_unit_test(test_crl_from_ldap),
                cmocka_unit_test(test_store_first),           cmocka_unit_test(test_escaped),
                cmocka_unit_test(test_filter_escaping),       cmocka_unit_test(test_negative_cache),
                cmocka_unit_test(test_server_down),           cmocka_unit_test(test_reload_ends_rest),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
