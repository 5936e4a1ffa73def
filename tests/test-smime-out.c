/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Outgoing S/MIME over the bus: Sign and Encrypt on a real smimed with a
 * SoftHSM2 token, checked from the other side by the openssl command line
 * (cms -verify, cms -decrypt, cms -cmsout -print). The CA, the keys, the
 * certificates and the CRL are made with the openssl command line too. */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "harness.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"
#include "strv.h"

#define CALL_TIMEOUT_USEC (120ULL * 1000000ULL)

static Harness *harness;
static sd_bus *bus;

/* ---- small things ---- */

typedef struct Buffer {
        char *data; /* NUL-terminated for convenience; may hold NULs */
        size_t len;
} Buffer;

static void buffer_done(Buffer *b) {
        free(b->data);
        *b = (Buffer){};
}

static char *path(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", harness->dir, name) > 0);
        return p;
}

static Buffer read_file(const char *file) {
        Buffer b = {};
        struct stat st;
        int fd = open(file, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                fail_msg("cannot open %s: %m", file);
        assert_int_equal(fstat(fd, &st), 0);
        b.data = malloc((size_t) st.st_size + 1);
        assert_non_null(b.data);
        while (b.len < (size_t) st.st_size) {
                ssize_t n = read(fd, b.data + b.len, (size_t) st.st_size - b.len);

                assert_true(n > 0);
                b.len += (size_t) n;
        }
        b.data[b.len] = '\0';
        close(fd);
        return b;
}

static void write_all(int fd, const void *p, size_t n) {
        const char *c = p;

        while (n > 0) {
                ssize_t k = write(fd, c, n);

                assert_true(k > 0);
                c += k;
                n -= (size_t) k;
        }
}

static char *write_file(const char *name, const void *data, size_t len) {
        char *p = path(name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        write_all(fd, data, len);
        close(fd);
        return p;
}

/* A memfd holding data, positioned at its start; -1 on failure (usable in
 * the test user's child, where cmocka's asserts are not). */
static int memfd_with(const void *data, size_t len) {
        const char *c = data;
        int fd = memfd_create("smime-input", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        if (fd < 0)
                return -1;
        while (len > 0) {
                ssize_t k = write(fd, c, len);

                if (k <= 0) {
                        close(fd);
                        return -1;
                }
                c += k;
                len -= (size_t) k;
        }
        if (lseek(fd, 0, SEEK_SET) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* LF line ends → CRLF (for what the canonical form must hold). */
static char *crlf(const char *s) {
        char *out = malloc(strlen(s) * 2 + 1), *o = out;

        assert_non_null(out);
        for (; *s; s++) {
                if (*s == '\n' && (o == out || o[-1] != '\r'))
                        *o++ = '\r';
                *o++ = *s;
        }
        *o = '\0';
        return out;
}

/* The number (from 1) of the first line that ends in a bare LF; 0 when
 * every line ends in CRLF. */
static size_t first_bare_lf(const Buffer *b) {
        size_t line = 1;

        for (size_t i = 0; i < b->len; i++)
                if (b->data[i] == '\n') {
                        if (i == 0 || b->data[i - 1] != '\r')
                                return line;
                        line++;
                }
        return 0;
}

static bool seven_bit(const char *p, size_t len) {
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) p[i] >= 0x80 || p[i] == '\0')
                        return false;
        return true;
}

/* ---- the openssl command line ---- */

static int openssl_va(char **ret_out, char **ret_err, const char *first, va_list ap) {
        char *argv[48] = {(char *) "openssl", (char *) first};
        size_t n = 2;

        while (n < ELEMENTSOF(argv) - 1 && (argv[n] = va_arg(ap, char *)))
                n++;
        argv[n] = NULL;
        return harness_run(harness, argv, false, ret_out, ret_err);
}

/* openssl ARGS…: its exit status, with stdout and stderr. */
static int openssl_status(char **ret_out, char **ret_err, const char *first, ...) {
        va_list ap;
        int r;

        va_start(ap, first);
        r = openssl_va(ret_out, ret_err, first, ap);
        va_end(ap);
        return r;
}

/* openssl ARGS…; must succeed. */
static void openssl(const char *first, ...) {
        _cleanup_free_ char *err = NULL;
        va_list ap;
        int r;

        va_start(ap, first);
        r = openssl_va(NULL, &err, first, ap);
        va_end(ap);
        if (r != 0)
                fail_msg("openssl %s failed (%d): %s", first, r, err);
}

/* SHA-256 of the DER certificate in a PEM file, lower-case hex. */
static char *fingerprint_of(const char *pem) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        char *hex;
        FILE *f = fopen(pem, "re");
        X509 *x;

        assert_non_null(f);
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        assert_non_null(x);
        assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
        X509_free(x);
        hex = calloc(2 * n + 1, 1);
        assert_non_null(hex);
        for (unsigned i = 0; i < n; i++)
                sprintf(hex + 2 * i, "%02x", md[i]);
        return hex;
}

static int count_substrings(const char *s, const char *needle) {
        int n = 0;

        for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* ---- CAs and identities ---- */

typedef struct Ca {
        char *key, *cert, *config;
        char *chain; /* this CA's certificate and those above it, PEM */
        char *fingerprint;
        const struct Ca *parent;
} Ca;

typedef struct Identity {
        const char *address;
        char *key, *cert, *fingerprint;
        const Ca *issuer;
} Identity;

static Ca ca, sub_ca, other_ca;
/* alice (RSA) and erin (EC) have their keys in the token; the others are
 * certificates only: bob, dave (RSA), carol (EC) to encrypt to; old
 * (expired), gone (revoked later), stranger (from a CA smimed does not know),
 * dave also as a signer whose key is not in the token; ivan (RSA, key in
 * the token) has his certificate from an intermediate CA under ca. */
static Identity alice = {"alice@example.com"}, erin = {"erin@example.com"}, bob = {"bob@example.com"},
                carol = {"carol@example.com"}, dave = {"dave@example.com"}, old = {"old@example.com"},
                gone = {"gone@example.com"}, stranger = {"stranger@example.com"}, ivan = {"ivan@example.com"};
static Identity *const identities[] = {&alice, &erin, &bob, &carol, &dave, &old, &gone, &stranger, &ivan};
static char *old_not_after; /* YYYY-MM-DD of old's expiry */

/* A root CA, or an intermediate one issued by parent. */
static void make_ca(Ca *c, const char *name, const char *cn, const Ca *parent) {
        _cleanup_free_ char *dir_name = NULL, *dir = NULL, *text = NULL, *subject = NULL, *key_name = NULL,
                            *cert_name = NULL, *cnf_name = NULL, *index = NULL, *serial = NULL, *crlnumber = NULL;

        assert_true(asprintf(&dir_name, "%s.db", name) > 0);
        assert_true(asprintf(&key_name, "%s.key", name) > 0);
        assert_true(asprintf(&cert_name, "%s.pem", name) > 0);
        assert_true(asprintf(&cnf_name, "%s.cnf", name) > 0);
        assert_true(asprintf(&subject, "/CN=%s", cn) > 0);
        dir = path(dir_name);
        assert_int_equal(mkdir(dir, 0700), 0);
        c->key = path(key_name);
        c->cert = path(cert_name);
        if (!parent)
                openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", c->key, "-out", c->cert, "-days",
                        "365", "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign", NULL);
        else {
                static const char ext_text[] = "[sub]\nbasicConstraints=critical,CA:TRUE\n"
                                               "keyUsage=critical,keyCertSign,cRLSign\n"
                                               "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";
                _cleanup_free_ char *csr = path("issue.csr"), *ext = write_file("sub.cnf", ext_text, strlen(ext_text));

                openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", c->key, "-out", csr, "-subj",
                        subject, NULL);
                openssl("ca", "-batch", "-notext", "-config", parent->config, "-in", csr, "-out", c->cert, "-extfile",
                        ext, "-extensions", "sub", NULL);
        }
        c->parent = parent;
        c->fingerprint = fingerprint_of(c->cert);
        {
                _cleanup_free_ char *chain_name = NULL;
                _cleanup_(buffer_done) Buffer own = read_file(c->cert), above = {};
                char *text_chain;

                if (parent)
                        above = read_file(parent->chain);
                assert_true(asprintf(&text_chain, "%s%s", own.data, strempty(above.data)) > 0);
                assert_true(asprintf(&chain_name, "%s-chain.pem", name) > 0);
                c->chain = write_file(chain_name, text_chain, strlen(text_chain));
                free(text_chain);
        }

        assert_true(asprintf(&index, "%s/index.txt", dir_name) > 0);
        assert_true(asprintf(&serial, "%s/serial", dir_name) > 0);
        assert_true(asprintf(&crlnumber, "%s/crlnumber", dir_name) > 0);
        free(write_file(index, "", 0));
        free(write_file(serial, "1000\n", 5));
        free(write_file(crlnumber, "1000\n", 5));

        /* A minimal `openssl ca` setup: issues, revokes, makes CRLs. */
        assert_true(asprintf(&text,
                             "[ca]\ndefault_ca = this_ca\n"
                             "[this_ca]\n"
                             "database = %1$s/index.txt\nnew_certs_dir = %1$s\nserial = %1$s/serial\n"
                             "crlnumber = %1$s/crlnumber\ncertificate = %2$s\nprivate_key = %3$s\n"
                             "default_md = sha256\ndefault_days = 30\ndefault_crl_days = 30\n"
                             "policy = policy_any\nunique_subject = no\nemail_in_dn = no\n"
                             "[policy_any]\ncommonName = supplied\n",
                             dir, c->cert, c->key) > 0);
        c->config = write_file(cnf_name, text, strlen(text));
}

static void ca_done(Ca *c) {
        free(c->key);
        free(c->cert);
        free(c->config);
        free(c->chain);
        free(c->fingerprint);
        *c = (Ca){};
}

/* Dates for `openssl ca -startdate/-enddate`, days from now. */
static void asn1_date(int days, char out[16], char ymd[11]) {
        time_t t = time(NULL) + (time_t) days * 86400;
        struct tm tm;

        assert_non_null(gmtime_r(&t, &tm));
        /* UTCTime, YYMMDDHHMMSSZ. */
        assert_true(snprintf(out, 16, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday,
                             tm.tm_hour, tm.tm_min, tm.tm_sec) == 13);
        if (ymd)
                assert_true(strftime(ymd, 11, "%Y-%m-%d", &tm) > 0);
}

/* A key of algorithm ("rsa" or "ec") and a certificate from c for it. */
static void make_identity(Identity *id, const Ca *c, const char *algorithm, const char *usage, const char *start,
                          const char *end) {
        _cleanup_free_ char *key_name = NULL, *cert_name = NULL, *csr = NULL, *ext = NULL, *ext_text = NULL,
                            *subject = NULL;
        const char *local_end = strchr(id->address, '@');
        int len = (int) (local_end - id->address);

        assert_true(asprintf(&key_name, "%.*s.key", len, id->address) > 0);
        assert_true(asprintf(&cert_name, "%.*s.pem", len, id->address) > 0);
        id->key = path(key_name);
        id->cert = path(cert_name);
        if (streq(algorithm, "ec"))
                openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", id->key, NULL);
        else
                openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", id->key, NULL);

        csr = path("issue.csr");
        assert_true(asprintf(&subject, "/CN=%s", id->address) > 0);
        assert_true(asprintf(&ext_text,
                             "[leaf]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,%s\n"
                             "extendedKeyUsage=emailProtection\nsubjectAltName=email:%s\n"
                             "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
                             usage, id->address) > 0);
        ext = write_file("leaf.cnf", ext_text, strlen(ext_text));
        openssl("req", "-new", "-key", id->key, "-out", csr, "-subj", subject, NULL);
        if (start)
                openssl("ca", "-batch", "-notext", "-config", c->config, "-in", csr, "-out", id->cert, "-extfile", ext,
                        "-extensions", "leaf", "-startdate", start, "-enddate", end, NULL);
        else
                openssl("ca", "-batch", "-notext", "-config", c->config, "-in", csr, "-out", id->cert, "-extfile", ext,
                        "-extensions", "leaf", NULL);
        id->fingerprint = fingerprint_of(id->cert);
        id->issuer = c;
}

static void identity_done(Identity *id) {
        id->key = mfree(id->key);
        id->cert = mfree(id->cert);
        id->fingerprint = mfree(id->fingerprint);
}

static void import_pkcs12(const Identity *id) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *p12 = NULL, *name = NULL;
        int fd;

        assert_true(asprintf(&name, "%s.p12", id->address) > 0);
        p12 = path(name);
        openssl("pkcs12", "-export", "-inkey", id->key, "-in", id->cert, "-certfile", id->issuer->chain, "-passout",
                "pass:p12 secret", "-out", p12, NULL);
        fd = open(p12, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "ImportPKCS12", &e,
                               &reply, "hsa{sv}", fd, "p12 secret", 0) < 0)
                fail_msg("ImportPKCS12 of %s failed: %s: %s", id->address, e.name, e.message);
        close(fd);
}

static void import_certificate(const char *file, bool trust) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(buffer_done) Buffer data = read_file(file);

        assert_true(sd_bus_message_new_method_call(bus, &call, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(call, 'y', data.data, data.len) >= 0);
        assert_true(sd_bus_message_append(call, "a{sv}", trust ? 1 : 0, "trust", "b", 1) >= 0);
        if (sd_bus_call(bus, call, 0, &e, &reply) < 0)
                fail_msg("ImportCertificates of %s failed: %s: %s", file, e.name, e.message);
}

static uint32_t import_crl(const char *file) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(buffer_done) Buffer data = read_file(file);
        uint32_t count = 0;

        assert_true(sd_bus_message_new_method_call(bus, &call, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCRL") >= 0);
        assert_true(sd_bus_message_append_array(call, 'y', data.data, data.len) >= 0);
        assert_true(sd_bus_message_append(call, "a{sv}", 0) >= 0);
        if (sd_bus_call(bus, call, 0, &e, &reply) < 0)
                fail_msg("ImportCRL failed: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_read(reply, "u", &count) > 0);
        return count;
}

static char *smimed_config(const char *extra) {
        _cleanup_free_ char *text = harness_config_text(harness, extra);
        char *config;

        assert_non_null(text);
        config = harness_write_file(harness, "smimed.conf", text, 0644);
        assert_non_null(config);
        return config;
}

/* Whether smimed still answers on the bus (no asserts: used before a
 * repair). */
static bool smimed_answers(void) {
        return sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL,
                                  NULL, NULL) >= 0;
}

/* After smimed has died: reaps it and starts it again on the current
 * configuration, so that the tests after this one have a daemon. Returns
 * how it ended. */
static int revive_smimed(void) {
        _cleanup_free_ char *config = path("smimed.conf");
        int status = harness_stop_smimed(harness);

        assert_int_equal(harness_start_smimed(harness, config, NULL), 0);
        return status;
}

static int setup(void **state) {
        _cleanup_free_ char *config = NULL;
        char start[16], end[16], ymd[11];
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r < 0)
                return r;
        config = smimed_config(NULL);
        r = harness_start_smimed(harness, config, NULL);
        if (r < 0)
                return r;
        r = harness_bus_open(&bus);
        if (r < 0)
                return r;

        make_ca(&ca, "ca", "Mail Test CA", NULL);
        make_ca(&sub_ca, "sub-ca", "Mail Sub CA", &ca);
        make_ca(&other_ca, "other-ca", "Unknown CA", NULL);

        make_identity(&alice, &ca, "rsa", "digitalSignature,keyEncipherment", NULL, NULL);
        make_identity(&erin, &ca, "ec", "digitalSignature,keyAgreement", NULL, NULL);
        make_identity(&bob, &ca, "rsa", "digitalSignature,keyEncipherment", NULL, NULL);
        make_identity(&carol, &ca, "ec", "digitalSignature,keyAgreement", NULL, NULL);
        make_identity(&dave, &ca, "rsa", "digitalSignature,keyEncipherment", NULL, NULL);
        make_identity(&gone, &ca, "rsa", "digitalSignature,keyEncipherment", NULL, NULL);
        asn1_date(-60, start, NULL);
        asn1_date(-30, end, ymd);
        old_not_after = strdup(ymd);
        make_identity(&old, &ca, "rsa", "digitalSignature,keyEncipherment", start, end);
        make_identity(&stranger, &other_ca, "rsa", "digitalSignature,keyEncipherment", NULL, NULL);
        make_identity(&ivan, &sub_ca, "rsa", "digitalSignature,keyEncipherment", NULL, NULL);

        import_pkcs12(&alice);
        import_pkcs12(&erin);
        import_pkcs12(&ivan); /* brings the intermediate CA into the store */
        import_certificate(ca.cert, true);
        for (size_t i = 2; i < ELEMENTSOF(identities); i++)
                if (identities[i] != &ivan)
                        import_certificate(identities[i]->cert, false);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        bus = sd_bus_flush_close_unref(bus);
        harness = harness_free(harness);
        for (size_t i = 0; i < ELEMENTSOF(identities); i++)
                identity_done(identities[i]);
        ca_done(&ca);
        ca_done(&sub_ca);
        ca_done(&other_ca);
        old_not_after = mfree(old_not_after);
        return 0;
}

/* ---- Sign and Encrypt over the bus ---- */

typedef struct Options {
        const char *digest, *cipher, *sign_as, *sender;
        bool opaque, pss, oaep;
} Options;

typedef struct Outcome {
        int r;
        char *error_name, *error_message;
        char *signer;
        char **recipients;
        int sender_included; /* -1: not in the result */
        bool has_size;
        uint64_t size;
} Outcome;

static void outcome_done(Outcome *o) {
        free(o->error_name);
        free(o->error_message);
        free(o->signer);
        strv_free(o->recipients);
        *o = (Outcome){};
}

static int append_options(sd_bus_message *m, const Options *o) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");

        if (r >= 0 && o && o->digest)
                r = sd_bus_message_append(m, "{sv}", "digest", "s", o->digest);
        if (r >= 0 && o && o->cipher)
                r = sd_bus_message_append(m, "{sv}", "cipher", "s", o->cipher);
        if (r >= 0 && o && o->sign_as)
                r = sd_bus_message_append(m, "{sv}", "sign_as", "s", o->sign_as);
        if (r >= 0 && o && o->sender)
                r = sd_bus_message_append(m, "{sv}", "sender", "s", o->sender);
        if (r >= 0 && o && o->opaque)
                r = sd_bus_message_append(m, "{sv}", "opaque", "b", 1);
        if (r >= 0 && o && o->pss)
                r = sd_bus_message_append(m, "{sv}", "pss", "b", 1);
        if (r >= 0 && o && o->oaep)
                r = sd_bus_message_append(m, "{sv}", "oaep", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* Sign (recipients NULL) as sender, or Encrypt to recipients. */
static int new_smime_call(sd_bus *b, const char *sender, char **recipients, int input, int output, const Options *o,
                          sd_bus_message **ret) {
        sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           recipients ? "Encrypt" : "Sign");
        if (r >= 0)
                r = recipients ? sd_bus_message_append_strv(m, recipients) : sd_bus_message_append(m, "s", sender);
        if (r >= 0)
                r = sd_bus_message_append(m, "hh", input, output);
        if (r >= 0)
                r = append_options(m, o);
        if (r < 0) {
                sd_bus_message_unref(m);
                return r;
        }
        *ret = m;
        return 0;
}

static int read_result(sd_bus_message *reply, Outcome *c) {
        int r;

        c->sender_included = -1;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *k, *s;
                int b;

                r = sd_bus_message_read(reply, "s", &k);
                if (r < 0)
                        return r;
                if (streq(k, "signer")) {
                        r = sd_bus_message_read(reply, "v", "s", &s);
                        if (r >= 0 && !(c->signer = strdup(s)))
                                r = -ENOMEM;
                } else if (streq(k, "recipients")) {
                        r = sd_bus_message_enter_container(reply, 'v', "as");
                        if (r >= 0)
                                r = sd_bus_message_read_strv(reply, &c->recipients);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                } else if (streq(k, "sender_included")) {
                        r = sd_bus_message_read(reply, "v", "b", &b);
                        c->sender_included = b;
                } else if (streq(k, "size")) {
                        r = sd_bus_message_read(reply, "v", "t", &c->size);
                        c->has_size = true;
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        return r;
}

/* No cmocka asserts in here: the test user's child calls it too. */
/* The same, sealed against any change, as libsmimed passes a message. */
static int sealed_memfd_with(const void *data, size_t len) {
        int fd = memfd_with(data, len);

        assert_true(fd >= 0);
        assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL), 0);
        return fd;
}

static Outcome smime_call_on(sd_bus *b, const char *sender, char **recipients, int input, int output,
                             const Options *o) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        Outcome c = {.sender_included = -1};

        c.r = new_smime_call(b, sender, recipients, input, output, o, &call);
        if (c.r < 0)
                return c;
        c.r = sd_bus_call(b, call, CALL_TIMEOUT_USEC, &e, &reply);
        if (c.r < 0) {
                c.error_name = strdup(strempty(e.name));
                c.error_message = strdup(strempty(e.message));
                return c;
        }
        c.r = read_result(reply, &c);
        return c;
}

/* input → method → the file output_name (its path in *ret_output_path); the
 * reply must come only once all of the output is in the file. */
static Outcome smime_call(const char *sender, char **recipients, const void *input, size_t input_len, const Options *o,
                          const char *output_name, char **ret_output_path) {
        _cleanup_free_ char *out_path = path(output_name);
        Outcome c;
        int in, out;
        struct stat st;

        in = memfd_with(input, input_len);
        assert_true(in >= 0);
        out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(out >= 0);
        c = smime_call_on(bus, sender, recipients, in, out, o);
        close(in);
        assert_int_equal(fstat(out, &st), 0);
        close(out);
        if (c.r >= 0) {
                /* The reply comes once the output is written: all of it is there now. */
                assert_true(c.has_size);
                assert_true(st.st_size > 0);
                assert_int_equal((uint64_t) st.st_size, c.size);
        }
        if (ret_output_path)
                *ret_output_path = TAKE_PTR(out_path);
        return c;
}

static void expect_success(const Outcome *c, const char *what) {
        if (c->r < 0)
                fail_msg("%s failed (%d): %s: %s", what, c->r, strempty(c->error_name), strempty(c->error_message));
}

static Outcome sign_file(const char *sender, const char *message, const Options *o, const char *output_name,
                         char **ret_output_path) {
        Outcome c = smime_call(sender, NULL, message, strlen(message), o, output_name, ret_output_path);

        expect_success(&c, "Sign");
        return c;
}

static Outcome encrypt_file(char **recipients, const char *message, const Options *o, const char *output_name,
                            char **ret_output_path) {
        Outcome c = smime_call(NULL, recipients, message, strlen(message), o, output_name, ret_output_path);

        expect_success(&c, "Encrypt");
        return c;
}

/* ---- reading what came out ---- */

/* The header block at the start of text: each field with its folded lines
 * (line ends as they are, without the last), and where the body starts. */
typedef struct Fields {
        char *raw[64];
        size_t n;
        size_t body;
} Fields;

static void fields_done(Fields *f) {
        for (size_t i = 0; i < f->n; i++)
                free(f->raw[i]);
        *f = (Fields){};
}

static Fields parse_fields(const char *text, size_t len) {
        Fields f = {};
        size_t i = 0;

        while (i < len) {
                size_t end = i, next;

                while (end < len && text[end] != '\n')
                        end++;
                next = end < len ? end + 1 : end;
                if (end > i && text[end - 1] == '\r')
                        end--;
                if (end == i) { /* the empty line */
                        f.body = next;
                        return f;
                }
                if ((text[i] == ' ' || text[i] == '\t') && f.n > 0) {
                        char *joined;

                        assert_true(asprintf(&joined, "%s\n%.*s", f.raw[f.n - 1], (int) (end - i), text + i) > 0);
                        free(f.raw[f.n - 1]);
                        f.raw[f.n - 1] = joined;
                } else {
                        assert_true(f.n < ELEMENTSOF(f.raw));
                        f.raw[f.n++] = strndup(text + i, end - i);
                }
                i = next;
        }
        f.body = len;
        return f;
}

static bool field_is(const char *raw, const char *name) {
        size_t n = strlen(name);

        return strncasecmp(raw, name, n) == 0 && raw[n] == ':';
}

/* The value of the first field called name, unfolded and trimmed; NULL
 * when there is none. */
static char *field_value(const Fields *f, const char *name) {
        for (size_t i = 0; i < f->n; i++) {
                const char *v;
                char *value, *o;

                if (!field_is(f->raw[i], name))
                        continue;
                v = f->raw[i] + strlen(name) + 1;
                value = malloc(strlen(v) + 1);
                assert_non_null(value);
                o = value;
                for (; *v; v++)
                        if (*v != '\r' && *v != '\n')
                                *o++ = *v;
                *o = '\0';
                while (o > value && (o[-1] == ' ' || o[-1] == '\t'))
                        *--o = '\0';
                o = value;
                while (*o == ' ' || *o == '\t')
                        o++;
                memmove(value, o, strlen(o) + 1);
                return value;
        }
        return NULL;
}

/* A parameter of a header value ("multipart/signed; micalg=sha-256"), quotes
 * removed; NULL when absent. */
static char *parameter(const char *value, const char *name) {
        size_t n = strlen(name);

        for (const char *p = strchr(value, ';'); p; p = strchr(p + 1, ';')) {
                const char *q = p + 1, *end;

                while (*q == ' ' || *q == '\t')
                        q++;
                if (strncasecmp(q, name, n) != 0 || q[n] != '=')
                        continue;
                q += n + 1;
                if (*q == '"') {
                        end = strchr(q + 1, '"');
                        assert_non_null(end);
                        return strndup(q + 1, (size_t) (end - q - 1));
                }
                end = q + strcspn(q, "; \t");
                return strndup(q, (size_t) (end - q));
        }
        return NULL;
}

/* The media type of a Content-Type value, lower-case. */
static char *media_type(const char *value) {
        char *t = strndup(value, strcspn(value, "; \t"));

        assert_non_null(t);
        for (char *c = t; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        return t;
}

typedef struct Part {
        const char *start;
        size_t len;
} Part;

/* The body parts of a multipart body, each without the line end that
 * belongs to the delimiter after it (RFC 2046 5.1.1). */
static size_t multipart_split(const char *body, size_t len, const char *boundary, Part *parts, size_t max) {
        _cleanup_free_ char *delimiter = NULL;
        const char *p = body, *end = body + len;
        size_t n = 0, dlen;

        assert_true(asprintf(&delimiter, "--%s", boundary) > 0);
        dlen = strlen(delimiter);

        /* The first delimiter, at the start of a line. */
        for (;;) {
                p = memmem(p, (size_t) (end - p), delimiter, dlen);
                assert_non_null(p);
                if (p == body || p[-1] == '\n')
                        break;
                p++;
        }
        for (;;) {
                const char *start, *next;

                p += dlen;
                if (end - p >= 2 && p[0] == '-' && p[1] == '-')
                        return n; /* the close delimiter */
                p = memchr(p, '\n', (size_t) (end - p));
                assert_non_null(p);
                start = ++p;
                for (next = start;; next++) {
                        next = memmem(next, (size_t) (end - next), delimiter, dlen);
                        assert_non_null(next);
                        if (next > start && next[-1] == '\n')
                                break;
                }
                assert_true(n < max);
                parts[n].start = start;
                parts[n].len = (size_t) (next - 1 - start);
                if (parts[n].len > 0 && start[parts[n].len - 1] == '\r')
                        parts[n].len--;
                n++;
                p = next;
        }
}

static Buffer base64_decode(const char *text, size_t len) {
        EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
        Buffer b = {};
        int n = 0, total;

        assert_non_null(ctx);
        b.data = malloc(len + 1);
        assert_non_null(b.data);
        EVP_DecodeInit(ctx);
        assert_true(EVP_DecodeUpdate(ctx, (unsigned char *) b.data, &n, (const unsigned char *) text, (int) len) >= 0);
        total = n;
        assert_int_equal(EVP_DecodeFinal(ctx, (unsigned char *) b.data + total, &n), 1);
        total += n;
        EVP_ENCODE_CTX_free(ctx);
        b.len = (size_t) total;
        b.data[b.len] = '\0';
        return b;
}

/* openssl cms -verify: must succeed. Returns the signed content; the
 * signer's certificate goes to the file signer_name, the certificates of
 * the message to certs_name. */
static Buffer verify_ok(const char *signed_path, const char *content_name, const char *signer_name,
                        const char *certs_name) {
        _cleanup_free_ char *content = path(content_name), *signer = path(signer_name), *certs = path(certs_name),
                            *err = NULL;
        int r;

        r = openssl_status(NULL, &err, "cms", "-verify", "-in", signed_path, "-CAfile", ca.cert, "-out", content,
                           "-signer", signer, "-certsout", certs, NULL);
        if (r != 0)
                fail_msg("openssl cms -verify of %s failed (%d): %s", signed_path, r, err);
        assert_non_null(strstr(err, "Verification successful"));
        return read_file(content);
}

/* openssl cms -decrypt with the recipient's own key: must succeed. */
static Buffer decrypt_ok(const char *encrypted_path, const Identity *id, const char *plain_name) {
        _cleanup_free_ char *plain = path(plain_name), *err = NULL;
        int r;

        r = openssl_status(NULL, &err, "cms", "-decrypt", "-in", encrypted_path, "-inkey", id->key, "-recip", id->cert,
                           "-out", plain, NULL);
        if (r != 0)
                fail_msg("openssl cms -decrypt of %s with the key of %s failed (%d): %s", encrypted_path, id->address,
                         r, err);
        return read_file(plain);
}

static char *cms_print(const char *file) {
        char *out = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = openssl_status(&out, &err, "cms", "-cmsout", "-print", "-in", file, NULL);
        if (r != 0)
                fail_msg("openssl cms -cmsout -print of %s failed (%d): %s", file, r, err);
        return out;
}

/* The algorithm names under every "label:" of `openssl cms -cmsout -print`
 * output ("digestAlgorithm", "signatureAlgorithm", "keyEncryptionAlgorithm",
 * "contentEncryptionAlgorithm"), in order, joined by spaces. */
static char *printed_algorithms(const char *printed, const char *label) {
        _cleanup_free_ char *key = NULL;
        char *joined = strdup("");
        const char *p = printed;

        assert_non_null(joined);
        assert_true(asprintf(&key, " %s: \n", label) > 0);
        while ((p = strstr(p, key))) {
                const char *a = strstr(p + strlen(key), "algorithm: "), *end;
                char *more;

                assert_non_null(a);
                a += strlen("algorithm: ");
                end = a + strcspn(a, " \n");
                assert_true(asprintf(&more, "%s%s%.*s", joined, joined[0] ? " " : "", (int) (end - a), a) > 0);
                free(joined);
                joined = more;
                p = end;
        }
        return joined;
}

static char *algorithms_of(const char *file, const char *label) {
        _cleanup_free_ char *printed = cms_print(file);

        return printed_algorithms(printed, label);
}

/* The top-level header block of an S/MIME output file. */
static char *output_content_type(const char *file) {
        _cleanup_(buffer_done) Buffer b = read_file(file);
        _cleanup_(fields_done) Fields f = parse_fields(b.data, b.len);
        char *v = field_value(&f, "Content-Type");

        assert_non_null(v);
        return v;
}

/* ---- messages ---- */

#define SIMPLE_HEADERS                                                                                                \
        "From: Alice <alice@example.com>\n"                                                                           \
        "To: Bob <bob@example.com>\n"                                                                                 \
        "Subject: Quarterly numbers\n"                                                                                \
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"                                                                     \
        "Message-ID: <q1-2024@example.com>\n"                                                                         \
        "MIME-Version: 1.0\n"                                                                                         \
        "Content-Type: text/plain; charset=us-ascii\n"                                                                \
        "\n"
#define SIMPLE_BODY "Hello Bob,\nthe numbers are attached.\n\n-- \nAlice\n"

/* The entity's body, after its header block, must be body in CRLF form. */
/* The same message from erin (smimed signs only as the From: the signer's
 * certificate carries). */
#define ERIN_HEADERS                                                                                                  \
        "From: Erin <erin@example.com>\n"                                                                             \
        "To: Bob <bob@example.com>\n"                                                                                 \
        "Subject: Quarterly numbers\n"                                                                                \
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"                                                                     \
        "Message-ID: <q1-2024@example.com>\n"                                                                         \
        "MIME-Version: 1.0\n"                                                                                         \
        "Content-Type: text/plain; charset=us-ascii\n"                                                                \
        "\n"

static void expect_simple_content(const Buffer *content) {
        _cleanup_(fields_done) Fields f = parse_fields(content->data, content->len);
        _cleanup_free_ char *want = crlf(SIMPLE_BODY), *type = field_value(&f, "Content-Type");

        assert_non_null(type);
        assert_string_equal(type, "text/plain; charset=us-ascii");
        assert_int_equal(content->len - f.body, strlen(want));
        assert_memory_equal(content->data + f.body, want, strlen(want));
}

/* A signed output: multipart/signed with micalg, or opaque signed-data;
 * verifies; the signer is the one the reply names and the one expected;
 * the message carries the signer's certificate and not the root. */
static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorts the strings and joins them with spaces: a set to compare. */
static char *join_sorted(char **l, size_t n) {
        char *joined = strdup("");

        assert_non_null(joined);
        qsort(l, n, sizeof(char *), compare_strings);
        for (size_t i = 0; i < n; i++) {
                char *more;

                assert_true(asprintf(&more, "%s%s%s", joined, i > 0 ? " " : "", l[i]) > 0);
                free(joined);
                joined = more;
        }
        return joined;
}

/* The fingerprints of the certificates in a PEM file, as a set. */
static char *certificates_in(const char *pem) {
        char *fps[16], *joined;
        size_t n = 0;
        FILE *f = fopen(pem, "re");
        X509 *x;

        assert_non_null(f);
        while (n < ELEMENTSOF(fps) && (x = PEM_read_X509(f, NULL, NULL, NULL))) {
                unsigned char md[EVP_MAX_MD_SIZE];
                unsigned int len = 0;

                assert_int_equal(X509_digest(x, EVP_sha256(), md, &len), 1);
                X509_free(x);
                fps[n] = calloc(2 * len + 1, 1);
                assert_non_null(fps[n]);
                for (unsigned i = 0; i < len; i++)
                        sprintf(fps[n] + 2 * i, "%02x", md[i]);
                n++;
        }
        fclose(f);
        joined = join_sorted(fps, n);
        for (size_t i = 0; i < n; i++)
                free(fps[i]);
        return joined;
}

/* One SMIMECapabilities signed attribute, OpenSSL's standard list, which
 * smimed encodes once and adds to each signature: AES-256-CBC first. */
static void expect_smime_capabilities(const char *file) {
        _cleanup_free_ char *printed = cms_print(file);
        const char *attr = strstr(printed, "object: S/MIME Capabilities (1.2.840.113549.1.9.15)"), *next;

        if (!attr)
                fail_msg("no SMIMECapabilities attribute in the signature of %s", file);
        assert_null(strstr(attr + 1, "object: S/MIME Capabilities"));
        next = strstr(attr + 1, "object: ");
        for (const char *const *c = (const char *const[]){":aes-256-cbc", ":aes-192-cbc", ":aes-128-cbc", NULL}; *c;
             c++) {
                const char *at = strstr(attr, *c);

                if (!at || (next && at > next))
                        fail_msg("SMIMECapabilities of %s without %s", file, *c + 1);
        }
        assert_true(strstr(attr, ":aes-256-cbc") < strstr(attr, ":aes-128-cbc"));
}

static Buffer expect_signed(const char *file, const Outcome *c, const Identity *signer, const char *micalg) {
        _cleanup_free_ char *type = output_content_type(file), *mt = media_type(type), *signer_fp = NULL,
                            *signer_pem = path("signer.pem"), *certs_pem = path("certs.pem");
        Buffer content;

        if (micalg) {
                _cleanup_free_ char *protocol = parameter(type, "protocol"), *m = parameter(type, "micalg");

                assert_string_equal(mt, "multipart/signed");
                assert_non_null(protocol);
                assert_string_equal(protocol, "application/pkcs7-signature");
                if (!m)
                        fail_msg("no micalg in \"%s\"", type);
                assert_string_equal(m, micalg);
        } else {
                _cleanup_free_ char *smime_type = parameter(type, "smime-type");

                assert_string_equal(mt, "application/pkcs7-mime");
                assert_non_null(smime_type);
                assert_string_equal(smime_type, "signed-data");
        }

        content = verify_ok(file, "content.eml", "signer.pem", "certs.pem");
        expect_smime_capabilities(file);
        signer_fp = fingerprint_of(signer_pem);
        assert_string_equal(signer_fp, signer->fingerprint);
        assert_non_null(c->signer);
        assert_true(strcasecmp(c->signer, signer->fingerprint) == 0);

        /* The signer's certificate and the CAs above it, without the root. */
        {
                _cleanup_free_ char *want = NULL, *have = certificates_in(certs_pem);
                char *fps[16] = {signer->fingerprint};
                size_t n = 1;

                for (const Ca *a = signer->issuer; a && a->parent && n < ELEMENTSOF(fps); a = a->parent)
                        fps[n++] = a->fingerprint;
                want = join_sorted(fps, n);
                if (!streq(have, want))
                        fail_msg("certificates in the signature: %s, expected %s", have, want);
        }
        return content;
}

static Buffer expect_enveloped(const char *file, const char *smime_type) {
        _cleanup_free_ char *type = output_content_type(file), *mt = media_type(type),
                            *st = parameter(type, "smime-type");
        Buffer raw = read_file(file);

        assert_string_equal(mt, "application/pkcs7-mime");
        assert_non_null(st);
        assert_string_equal(st, smime_type);
        return raw;
}

/* ---- 1. interop ---- */

static void sign_and_check(const Identity *signer, const Options *o, const char *micalg) {
        _cleanup_(outcome_done) Outcome c = {};
        _cleanup_(buffer_done) Buffer content = {};
        _cleanup_free_ char *out = NULL, *message = NULL;

        assert_true(asprintf(&message,
                             "From: %s\nTo: bob@example.com\nSubject: signed\nMIME-Version: 1.0\n"
                             "Content-Type: text/plain; charset=us-ascii\n\n" SIMPLE_BODY,
                             signer->address) > 0);
        c = sign_file(signer->address, message, o, "signed.eml", &out);
        assert_null(c.recipients);
        content = expect_signed(out, &c, signer, o && o->opaque ? NULL : micalg);
        expect_simple_content(&content);
}

static void test_sign_rsa(void **state) {
        (void) state;
        sign_and_check(&alice, NULL, "sha-256");
}

static void test_sign_ec(void **state) {
        (void) state;
        sign_and_check(&erin, NULL, "sha-256");
}

/* A signer under an intermediate CA: the signature carries the
 * intermediate (openssl, which knows only the root, must build the chain)
 * and not the root. */
static void test_sign_with_intermediate(void **state) {
        Options opaque = {.opaque = true};

        (void) state;
        sign_and_check(&ivan, NULL, "sha-256");
        sign_and_check(&ivan, &opaque, NULL);
}

static void test_sign_digests(void **state) {
        static const char *const digests[][2] = {
                {"sha-256", "sha256"},
                {"sha-384", "sha384"},
                {"sha-512", "sha512"},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(digests); i++) {
                const Identity *signers[] = {&alice, &erin};

                for (size_t s = 0; s < ELEMENTSOF(signers); s++) {
                        _cleanup_free_ char *file = path("signed.eml"), *used = NULL;
                        Options o = {.digest = digests[i][0]};

                        sign_and_check(signers[s], &o, digests[i][0]);
                        /* The digest really used, as the SignerInfo says. */
                        used = algorithms_of(file, "digestAlgorithm");
                        assert_string_equal(used, digests[i][1]);
                }
        }
}

static void test_sign_opaque(void **state) {
        Options o = {.opaque = true};

        (void) state;
        sign_and_check(&alice, &o, NULL);
        sign_and_check(&erin, &o, NULL);
}

static void test_sign_pss(void **state) {
        _cleanup_free_ char *file = path("signed.eml"), *pss = NULL, *pss_384 = NULL, *plain = NULL;
        Options o = {.pss = true}, o384 = {.pss = true, .digest = "sha-384"};

        (void) state;
        sign_and_check(&alice, &o, "sha-256");
        pss = algorithms_of(file, "signatureAlgorithm");
        assert_string_equal(pss, "rsassaPss");

        sign_and_check(&alice, &o384, "sha-384");
        pss_384 = algorithms_of(file, "signatureAlgorithm");
        assert_string_equal(pss_384, "rsassaPss");

        /* Without the option: PKCS#1 v1.5. */
        sign_and_check(&alice, NULL, "sha-256");
        plain = algorithms_of(file, "signatureAlgorithm");
        assert_string_equal(plain, "rsaEncryption");
}

static void test_encrypt_three_recipients(void **state) {
        char *recipients[] = {(char *) bob.address, (char *) dave.address, (char *) carol.address, NULL};
        const Identity *ids[] = {&bob, &dave, &carol};
        _cleanup_(outcome_done) Outcome c = {};
        _cleanup_free_ char *out = NULL, *content_alg = NULL, *key_algs = NULL;
        _cleanup_(buffer_done) Buffer raw = {};

        (void) state;
        c = encrypt_file(recipients, SIMPLE_HEADERS SIMPLE_BODY, NULL, "encrypted.eml", &out);
        raw = expect_enveloped(out, "enveloped-data");
        assert_null(c.signer);
        assert_int_equal(c.sender_included, 0);
        assert_int_equal(strv_length(c.recipients), 3);
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                _cleanup_(buffer_done) Buffer plain = decrypt_ok(out, ids[i], "plain.eml");

                assert_true(strcasecmp(c.recipients[i], ids[i]->fingerprint) == 0);
                expect_simple_content(&plain);
        }

        /* Not to anyone else: alice's key does not open it. */
        {
                _cleanup_free_ char *err = NULL, *plain = path("plain.eml");

                assert_int_not_equal(openssl_status(NULL, &err, "cms", "-decrypt", "-in", out, "-inkey", alice.key,
                                                    "-recip", alice.cert, "-out", plain, NULL),
                                     0);
        }

        /* The default cipher is AES-256-CBC; RSA recipients get PKCS#1 v1.5,
         * the EC one ECDH: one RecipientInfo each, in order. */
        content_alg = algorithms_of(out, "contentEncryptionAlgorithm");
        assert_string_equal(content_alg, "aes-256-cbc");
        key_algs = algorithms_of(out, "keyEncryptionAlgorithm");
        if (strncmp(key_algs, "rsaEncryption rsaEncryption dhSinglePass-", 41) != 0 ||
            count_substrings(key_algs, " ") != 2)
                fail_msg("RecipientInfos: %s", key_algs);
}

static void test_encrypt_ciphers(void **state) {
        static const struct {
                const char *cipher, *smime_type, *printed;
        } table[] = {
                {"aes-256-cbc", "enveloped-data", "aes-256-cbc"},
                {"aes-128-cbc", "enveloped-data", "aes-128-cbc"},
                {"aes-256-gcm", "authEnveloped-data", "aes-256-gcm"},
                {"aes-128-gcm", "authEnveloped-data", "aes-128-gcm"},
        };
        char *recipients[] = {(char *) bob.address, (char *) carol.address, NULL};

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_(outcome_done) Outcome c = {};
                _cleanup_free_ char *out = NULL, *used = NULL;
                _cleanup_(buffer_done) Buffer raw = {}, plain_bob = {}, plain_carol = {};
                Options o = {.cipher = table[i].cipher};

                c = encrypt_file(recipients, SIMPLE_HEADERS SIMPLE_BODY, &o, "encrypted.eml", &out);
                raw = expect_enveloped(out, table[i].smime_type);
                used = algorithms_of(out, "contentEncryptionAlgorithm");
                assert_string_equal(used, table[i].printed);
                plain_bob = decrypt_ok(out, &bob, "plain.eml");
                expect_simple_content(&plain_bob);
                plain_carol = decrypt_ok(out, &carol, "plain.eml");
                expect_simple_content(&plain_carol);
        }
}

static void test_encrypt_oaep(void **state) {
        char *recipients[] = {(char *) bob.address, (char *) carol.address, NULL};
        _cleanup_(outcome_done) Outcome c = {};
        _cleanup_free_ char *out = NULL, *key_algs = NULL;
        _cleanup_(buffer_done) Buffer raw = {}, plain_bob = {}, plain_carol = {};
        Options o = {.oaep = true};

        (void) state;
        c = encrypt_file(recipients, SIMPLE_HEADERS SIMPLE_BODY, &o, "encrypted.eml", &out);
        raw = expect_enveloped(out, "enveloped-data");
        /* RSA-OAEP for bob; carol's EC key stays with ECDH. */
        key_algs = algorithms_of(out, "keyEncryptionAlgorithm");
        if (strncmp(key_algs, "rsaesOaep dhSinglePass-", 23) != 0 || count_substrings(key_algs, " ") != 1)
                fail_msg("RecipientInfos: %s", key_algs);
        plain_bob = decrypt_ok(out, &bob, "plain.eml");
        expect_simple_content(&plain_bob);
        plain_carol = decrypt_ok(out, &carol, "plain.eml");
        expect_simple_content(&plain_carol);
}

static void test_sign_then_encrypt(void **state) {
        const Identity *signers[] = {&alice, &erin};
        const char *messages[] = {SIMPLE_HEADERS SIMPLE_BODY, ERIN_HEADERS SIMPLE_BODY};

        (void) state;
        for (size_t s = 0; s < ELEMENTSOF(signers); s++) {
                char *recipients[] = {(char *) bob.address, NULL};
                _cleanup_(outcome_done) Outcome c = {};
                _cleanup_free_ char *out = NULL, *inner_path = NULL, *type = NULL;
                _cleanup_(buffer_done) Buffer raw = {}, inner = {}, content = {}, own = {};
                Options o = {.sign_as = signers[s]->address, .digest = "sha-384"};

                c = encrypt_file(recipients, messages[s], &o, "encrypted.eml", &out);
                raw = expect_enveloped(out, "enveloped-data");
                assert_non_null(c.signer);
                assert_true(strcasecmp(c.signer, signers[s]->fingerprint) == 0);
                /* sign_as implies sender. */
                assert_int_equal(c.sender_included, 1);
                assert_true(strcasecmp(c.recipients[0], bob.fingerprint) == 0);

                inner = decrypt_ok(out, &bob, "inner.eml");
                inner_path = path("inner.eml");
                {
                        _cleanup_(fields_done) Fields f = parse_fields(inner.data, inner.len);
                        _cleanup_free_ char *m = NULL;

                        type = field_value(&f, "Content-Type");
                        assert_non_null(type);
                        m = parameter(type, "micalg");
                        assert_non_null(m);
                        assert_string_equal(m, "sha-384");
                }
                content = verify_ok(inner_path, "content.eml", "signer.pem", "certs.pem");
                expect_simple_content(&content);
                {
                        _cleanup_free_ char *signer_pem = path("signer.pem"), *fp = fingerprint_of(signer_pem);

                        assert_string_equal(fp, signers[s]->fingerprint);
                }

                /* The sender's own key opens the sent copy. */
                own = decrypt_ok(out, signers[s], "own.eml");
                assert_int_equal(own.len, inner.len);
                assert_memory_equal(own.data, inner.data, inner.len);
        }
}

static void test_encrypt_sender_copy(void **state) {
        char *recipients[] = {(char *) bob.address, NULL};
        _cleanup_(outcome_done) Outcome c = {};
        _cleanup_free_ char *out = NULL;
        _cleanup_(buffer_done) Buffer raw = {}, plain_bob = {}, plain_alice = {};
        Options o = {.sender = alice.address};

        (void) state;
        c = encrypt_file(recipients, SIMPLE_HEADERS SIMPLE_BODY, &o, "encrypted.eml", &out);
        raw = expect_enveloped(out, "enveloped-data");
        assert_int_equal(c.sender_included, 1);
        assert_null(c.signer);
        assert_non_null(c.recipients);
        assert_true(strcasecmp(c.recipients[0], bob.fingerprint) == 0);
        plain_bob = decrypt_ok(out, &bob, "plain.eml");
        expect_simple_content(&plain_bob);
        plain_alice = decrypt_ok(out, &alice, "plain.eml");
        expect_simple_content(&plain_alice);
}

/* The reply comes after the output is written, also through a pipe that
 * fills up: a message larger than a pipe's buffer. */
typedef struct AsyncCall {
        bool done;
        Outcome outcome;
} AsyncCall;

static int on_async_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        AsyncCall *a = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        (void) error;
        a->done = true;
        a->outcome.sender_included = -1;
        if (e) {
                a->outcome.r = -EIO;
                a->outcome.error_name = strdup(strempty(e->name));
                a->outcome.error_message = strdup(strempty(e->message));
        } else
                a->outcome.r = read_result(m, &a->outcome);
        return 0;
}

static void test_sign_to_a_pipe(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(buffer_done) Buffer content = {};
        _cleanup_free_ char *message = NULL, *received = NULL, *file = NULL, *body = NULL, *want = NULL;
        AsyncCall a = {};
        size_t size = 0, allocated = 1 << 20, len = 0;
        bool eof = false;
        int in, fds[2];

        (void) state;
        /* 300 KiB of text, more than a pipe holds. */
        body = malloc(300 * 1024 + 100);
        assert_non_null(body);
        for (int i = 0; len < 300 * 1024; i++)
                len += (size_t) sprintf(body + len, "line %06d of a long message, with some text after it.\n", i);
        assert_true(asprintf(&message,
                             "From: alice@example.com\nSubject: long\nMIME-Version: 1.0\n"
                             "Content-Type: text/plain; charset=us-ascii\n\n%s",
                             body) > 0);

        in = memfd_with(message, strlen(message));
        assert_true(in >= 0);
        /* A blocking pipe, as a shell would give; only our end does not block. */
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
        assert_int_equal(new_smime_call(bus, alice.address, NULL, in, fds[1], NULL, &call), 0);
        close(in);
        close(fds[1]); /* the message holds its own copy; smimed gets it */
        assert_true(sd_bus_call_async(bus, NULL, call, on_async_reply, &a, CALL_TIMEOUT_USEC) >= 0);
        call = sd_bus_message_unref(call);

        received = malloc(allocated);
        assert_non_null(received);
        while (!a.done || !eof) {
                struct pollfd p[2] = {
                        {.fd = fds[0], .events = POLLIN},
                        {.fd = sd_bus_get_fd(bus), .events = (short) sd_bus_get_events(bus)},
                };
                ssize_t n;
                int r;

                r = sd_bus_process(bus, NULL);
                assert_true(r >= 0);
                if (r > 0)
                        continue;
                for (;;) {
                        if (allocated - size < 65536) {
                                allocated *= 2;
                                received = realloc(received, allocated);
                                assert_non_null(received);
                        }
                        n = read(fds[0], received + size, allocated - size);
                        if (n > 0) {
                                size += (size_t) n;
                                continue;
                        }
                        if (n == 0)
                                eof = true;
                        else
                                assert_int_equal(errno, EAGAIN);
                        break;
                }
                if (a.done) {
                        /* Everything was written before the reply was sent. */
                        expect_success(&a.outcome, "Sign to a pipe");
                        assert_int_equal(size, a.outcome.size);
                }
                if (a.done && eof)
                        break;
                r = poll(eof ? p + 1 : p, eof ? 1 : 2, (int) (CALL_TIMEOUT_USEC / 1000));
                assert_true(r > 0);
        }
        close(fds[0]);

        file = write_file("piped.eml", received, size);
        content = expect_signed(file, &a.outcome, &alice, "sha-256");
        want = crlf(body);
        {
                _cleanup_(fields_done) Fields f = parse_fields(content.data, content.len);

                assert_int_equal(content.len - f.body, strlen(want));
                assert_memory_equal(content.data + f.body, want, strlen(want));
        }
        outcome_done(&a.outcome);
}

/* Every line of what smimed writes ends in CRLF: headers, MIME structure
 * and the base64 of the CMS objects alike. */
static void expect_crlf_only(const char *file, const char *what) {
        _cleanup_(buffer_done) Buffer b = read_file(file);
        size_t line = first_bare_lf(&b);

        if (line > 0) {
                const char *p = b.data;

                for (size_t i = 1; i < line; i++)
                        p = strchr(p, '\n') + 1;
                fail_msg("%s: line %zu ends in a bare LF: \"%.*s\"", what, line, (int) strcspn(p, "\n"), p);
        }
}

static void test_output_line_ends(void **state) {
        char *recipients[] = {(char *) bob.address, (char *) carol.address, NULL};
        _cleanup_(outcome_done) Outcome s = {}, o = {}, e = {}, g = {}, se = {};
        _cleanup_free_ char *signed_out = NULL, *opaque_out = NULL, *cbc_out = NULL, *gcm_out = NULL, *both_out = NULL,
                            *inner = NULL;
        _cleanup_(buffer_done) Buffer plain = {};
        Options opaque = {.opaque = true}, gcm = {.cipher = "aes-256-gcm"}, sign_too = {.sign_as = alice.address};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;

        (void) state;
        s = sign_file(alice.address, m, NULL, "lines-signed.eml", &signed_out);
        o = sign_file(alice.address, m, &opaque, "lines-opaque.eml", &opaque_out);
        e = encrypt_file(recipients, m, NULL, "lines-cbc.eml", &cbc_out);
        g = encrypt_file(recipients, m, &gcm, "lines-gcm.eml", &gcm_out);
        se = encrypt_file(recipients, m, &sign_too, "lines-both.eml", &both_out);
        plain = decrypt_ok(both_out, &bob, "lines-inner.eml");
        inner = path("lines-inner.eml");

        expect_crlf_only(signed_out, "multipart/signed");
        expect_crlf_only(opaque_out, "opaque signed-data");
        expect_crlf_only(cbc_out, "enveloped-data");
        expect_crlf_only(gcm_out, "authEnveloped-data");
        expect_crlf_only(inner, "the signed message inside enveloped-data");
}

/* ---- 2. outer headers ---- */

/* Outer fields in an unusual order, Content-* fields between them, a
 * folded Subject. */
#define MIXED_HEADERS                                                                                                 \
        "Subject: Outer fields\n"                                                                                     \
        "  stay outside, folded\n"                                                                                    \
        "Content-Type: text/plain; charset=us-ascii; x-mark=in\n"                                                     \
        "From: Alice <alice@example.com>\n"                                                                           \
        "MIME-Version: 1.0\n"                                                                                         \
        "Date: Tue, 02 Jan 2024 11:12:13 +0100\n"                                                                     \
        "Content-Transfer-Encoding: 7bit\n"                                                                           \
        "To: Bob <bob@example.com>, carol@example.com\n"                                                              \
        "Message-ID: <outer-order@example.com>\n"                                                                     \
        "content-language: en\n"                                                                                      \
        "\n"

static void expect_outer_headers(const char *file, const char *expected_type) {
        static const char *const outer[] = {"Subject", "From", "Date", "To", "Message-ID"};
        _cleanup_(buffer_done) Buffer raw = read_file(file);
        _cleanup_(fields_done) Fields in = parse_fields(MIXED_HEADERS, strlen(MIXED_HEADERS)),
                                      out = parse_fields(raw.data, raw.len);
        _cleanup_free_ char *type = NULL, *mt = NULL;
        size_t i;

        /* The outer fields first, in the input's order, exactly as they were
         * (line ends aside). */
        for (i = 0; i < ELEMENTSOF(outer); i++) {
                const char *want = NULL;
                _cleanup_free_ char *have = NULL;

                for (size_t k = 0; k < in.n; k++)
                        if (field_is(in.raw[k], outer[i]))
                                want = in.raw[k];
                assert_non_null(want);
                assert_true(i < out.n);
                have = strdup(out.raw[i]);
                /* CRLF folding in the output, LF in the input. */
                for (char *s = have, *d = have;; s++) {
                        if (*s != '\r')
                                *d++ = *s;
                        if (!*s)
                                break;
                }
                if (!streq(have, want))
                        fail_msg("outer field %zu: expected \"%s\", got \"%s\"", i, want, have);
        }
        /* Then MIME-Version and the S/MIME Content-Type; no Content-* field of
         * the input among the outer ones. */
        assert_true(field_is(out.raw[i], "MIME-Version"));
        for (size_t k = 0; k < out.n; k++) {
                if (k < i)
                        assert_false(strncasecmp(out.raw[k], "Content-", 8) == 0);
                for (size_t j = 0; j < in.n; j++)
                        if (strncasecmp(in.raw[j], "Content-", 8) == 0 && streq(out.raw[k], in.raw[j]))
                                fail_msg("the input's \"%s\" is among the outer fields", in.raw[j]);
                assert_null(strstr(out.raw[k], "x-mark=in"));
                assert_false(field_is(out.raw[k], "Content-Language"));
        }
        {
                size_t versions = 0;

                for (size_t k = 0; k < out.n; k++)
                        versions += field_is(out.raw[k], "MIME-Version");
                assert_int_equal(versions, 1);
        }
        type = field_value(&out, "Content-Type");
        assert_non_null(type);
        mt = media_type(type);
        assert_string_equal(mt, expected_type);
}

/* The entity inside: the Content-* fields of the input, none of the outer. */
static void expect_inner_fields(const Buffer *content) {
        _cleanup_(fields_done) Fields f = parse_fields(content->data, content->len);
        _cleanup_free_ char *type = field_value(&f, "Content-Type"), *language = field_value(&f, "Content-Language");
        _cleanup_free_ char *want = crlf(SIMPLE_BODY);

        assert_non_null(type);
        assert_string_equal(type, "text/plain; charset=us-ascii; x-mark=in");
        assert_non_null(language);
        assert_string_equal(language, "en");
        for (size_t k = 0; k < f.n; k++) {
                assert_false(field_is(f.raw[k], "From"));
                assert_false(field_is(f.raw[k], "To"));
                assert_false(field_is(f.raw[k], "Subject"));
                assert_false(field_is(f.raw[k], "Date"));
                assert_false(field_is(f.raw[k], "Message-ID"));
        }
        assert_int_equal(content->len - f.body, strlen(want));
        assert_memory_equal(content->data + f.body, want, strlen(want));
}

static void test_outer_headers_signed(void **state) {
        _cleanup_(outcome_done) Outcome c = {}, opaque = {};
        _cleanup_(buffer_done) Buffer content = {}, opaque_content = {};
        _cleanup_free_ char *out = NULL;
        Options o = {.opaque = true};

        (void) state;
        c = sign_file(alice.address, MIXED_HEADERS SIMPLE_BODY, NULL, "signed.eml", &out);
        expect_outer_headers(out, "multipart/signed");
        content = expect_signed(out, &c, &alice, "sha-256");
        expect_inner_fields(&content);

        out = mfree(out);
        opaque = sign_file(alice.address, MIXED_HEADERS SIMPLE_BODY, &o, "signed.eml", &out);
        expect_outer_headers(out, "application/pkcs7-mime");
        opaque_content = expect_signed(out, &opaque, &alice, NULL);
        expect_inner_fields(&opaque_content);
}

/* A bare MIME entity (no outer fields): the output starts with
 * MIME-Version, the entity is signed as it is. */
static void test_bare_entity(void **state) {
        static const char entity[] = "Content-Type: text/plain; charset=us-ascii\n\n" SIMPLE_BODY;
        _cleanup_(outcome_done) Outcome c = {};
        _cleanup_(buffer_done) Buffer content = {}, raw = {};
        _cleanup_free_ char *out = NULL;

        (void) state;
        c = sign_file(alice.address, entity, NULL, "signed.eml", &out);
        raw = read_file(out);
        if (strncmp(raw.data, "MIME-Version: 1.0\r\n", 19) != 0)
                fail_msg("the output starts with \"%.40s\"", raw.data);
        content = expect_signed(out, &c, &alice, "sha-256");
        expect_simple_content(&content);
}

static void test_outer_headers_encrypted(void **state) {
        char *recipients[] = {(char *) bob.address, NULL};
        _cleanup_(outcome_done) Outcome c = {};
        _cleanup_(buffer_done) Buffer plain = {};
        _cleanup_free_ char *out = NULL;

        (void) state;
        c = encrypt_file(recipients, MIXED_HEADERS SIMPLE_BODY, NULL, "encrypted.eml", &out);
        expect_outer_headers(out, "application/pkcs7-mime");
        plain = decrypt_ok(out, &bob, "plain.eml");
        expect_inner_fields(&plain);
}

/* ---- 3. 8-bit text and binary attachments ---- */

#define UTF8_TEXT                                                                                                     \
        "Gr\xc3\xbc\xc3\x9f"                                                                                          \
        "e, \xe6\x97\xa5\xe6\x9c\xac\nzweite Zeile\n"

/* multipart/mixed with an 8bit UTF-8 text part and the bytes 0..255 as an
 * attachment, in base64 or binary; CRLF line ends when binary (the
 * only way binary can travel), LF otherwise. */
static Buffer mixed_message(bool binary) {
        unsigned char bytes[256];
        char b64[400];
        _cleanup_free_ char *head = NULL, *text = NULL;
        FILE *f;
        Buffer b = {};

        for (int i = 0; i < 256; i++)
                bytes[i] = (unsigned char) i;
        assert_true(EVP_EncodeBlock((unsigned char *) b64, bytes, 256) > 0);

        f = open_memstream(&b.data, &b.len);
        assert_non_null(f);
        text = binary ? crlf(UTF8_TEXT) : strdup(UTF8_TEXT);
        assert_true(asprintf(&head, "From: Alice <alice@example.com>\n"
                                    "To: Bob <bob@example.com>\n"
                                    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n"
                                    "MIME-Version: 1.0\n"
                                    "Content-Type: multipart/mixed; boundary=\"=-part-boundary-=\"\n"
                                    "\n"
                                    "This is a multi-part message in MIME format.\n"
                                    "--=-part-boundary-=\n"
                                    "Content-Type: text/plain; charset=utf-8\n"
                                    "Content-Transfer-Encoding: 8bit\n"
                                    "\n") > 0);
        if (binary) {
                _cleanup_free_ char *h = crlf(head);

                fputs(h, f);
        } else
                fputs(head, f);
        fputs(text, f);
        fputs(binary ? "\r\n--=-part-boundary-=\r\n"
                       "Content-Type: application/octet-stream\r\n"
                       "Content-Disposition: attachment; filename=\"bytes.bin\"\r\n"
                       "Content-Transfer-Encoding: binary\r\n\r\n"
                     : "\n--=-part-boundary-=\n"
                       "Content-Type: application/octet-stream\n"
                       "Content-Disposition: attachment; filename=\"bytes.bin\"\n"
                       "Content-Transfer-Encoding: base64\n\n",
              f);
        if (binary)
                fwrite(bytes, 1, sizeof(bytes), f);
        else
                for (size_t i = 0; i < strlen(b64); i += 76)
                        fprintf(f, "%s%.76s", i > 0 ? "\n" : "", b64 + i);
        fputs(binary ? "\r\n--=-part-boundary-=--\r\n" : "\n--=-part-boundary-=--\n", f);
        assert_int_equal(fclose(f), 0);
        return b;
}

/* Finds each part in the entity, decodes it, compares with the original. */
static void expect_parts_intact(const Buffer *content) {
        _cleanup_(fields_done) Fields top = parse_fields(content->data, content->len);
        _cleanup_free_ char *type = field_value(&top, "Content-Type"), *mt = NULL, *boundary = NULL,
                            *want_text = crlf(UTF8_TEXT);
        Part parts[8];
        size_t n;
        bool seen_text = false, seen_bytes = false;

        assert_true(seven_bit(content->data, content->len));
        assert_non_null(type);
        mt = media_type(type);
        assert_string_equal(mt, "multipart/mixed");
        boundary = parameter(type, "boundary");
        assert_non_null(boundary);

        n = multipart_split(content->data + top.body, content->len - top.body, boundary, parts, ELEMENTSOF(parts));
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(fields_done) Fields f = parse_fields(parts[i].start, parts[i].len);
                _cleanup_free_ char *ptype = field_value(&f, "Content-Type"), *cte = NULL, *pmt = NULL;
                _cleanup_(buffer_done) Buffer decoded = {};

                assert_non_null(ptype);
                pmt = media_type(ptype);
                cte = field_value(&f, "Content-Transfer-Encoding");
                if (!cte || strcasecmp(cte, "base64") != 0)
                        fail_msg("part %zu (%s) is not base64 inside: %s", i, pmt, strempty(cte));
                decoded = base64_decode(parts[i].start + f.body, parts[i].len - f.body);
                if (streq(pmt, "text/plain")) {
                        _cleanup_free_ char *charset = parameter(ptype, "charset");

                        assert_non_null(charset);
                        assert_true(strcasecmp(charset, "utf-8") == 0);
                        if (decoded.len != strlen(want_text) || memcmp(decoded.data, want_text, decoded.len) != 0)
                                fail_msg("the text part decodes to \"%.*s\" (%zu bytes), expected \"%s\" (%zu bytes)",
                                         (int) decoded.len, decoded.data, decoded.len, want_text, strlen(want_text));
                        seen_text = true;
                } else {
                        _cleanup_free_ char *disposition = field_value(&f, "Content-Disposition"), *name = NULL;

                        assert_string_equal(pmt, "application/octet-stream");
                        assert_non_null(disposition);
                        name = parameter(disposition, "filename");
                        assert_non_null(name);
                        assert_string_equal(name, "bytes.bin");
                        if (decoded.len != 256)
                                fail_msg("the attachment decodes to %zu bytes, expected 256", decoded.len);
                        for (int b = 0; b < 256; b++)
                                if ((unsigned char) decoded.data[b] != b)
                                        fail_msg("attachment byte %d is 0x%02x", b, (unsigned char) decoded.data[b]);
                        seen_bytes = true;
                }
        }
        assert_true(seen_text);
        assert_true(seen_bytes);
}

static void parts_survive(bool binary) {
        char *recipients[] = {(char *) bob.address, (char *) carol.address, NULL};
        _cleanup_(buffer_done) Buffer message = mixed_message(binary), signed_content = {}, plain_bob = {},
                                      plain_carol = {}, inner = {}, inner_content = {};
        _cleanup_(outcome_done) Outcome s = {}, e = {}, se = {};
        _cleanup_free_ char *signed_out = NULL, *encrypted_out = NULL, *both_out = NULL, *inner_path = NULL;
        Options sign_too = {.sign_as = alice.address};

        s = smime_call(alice.address, NULL, message.data, message.len, NULL,
                       binary ? "parts-bin-signed.eml" : "parts-b64-signed.eml", &signed_out);
        expect_success(&s, "Sign");
        signed_content = expect_signed(signed_out, &s, &alice, "sha-256");
        expect_parts_intact(&signed_content);

        e = smime_call(NULL, recipients, message.data, message.len, NULL,
                       binary ? "parts-bin-encrypted.eml" : "parts-b64-encrypted.eml", &encrypted_out);
        expect_success(&e, "Encrypt");
        plain_bob = decrypt_ok(encrypted_out, &bob, "plain.eml");
        expect_parts_intact(&plain_bob);
        plain_carol = decrypt_ok(encrypted_out, &carol, "plain.eml");
        expect_parts_intact(&plain_carol);

        se = smime_call(NULL, recipients, message.data, message.len, &sign_too,
                        binary ? "parts-bin-both.eml" : "parts-b64-both.eml", &both_out);
        expect_success(&se, "Encrypt with sign_as");
        inner = decrypt_ok(both_out, &carol, binary ? "parts-bin-inner.eml" : "parts-b64-inner.eml");
        inner_path = path(binary ? "parts-bin-inner.eml" : "parts-b64-inner.eml");
        inner_content = verify_ok(inner_path, binary ? "parts-bin-content.eml" : "parts-b64-content.eml", "signer.pem",
                                  "certs.pem");
        expect_parts_intact(&inner_content);
}

static void test_parts_base64_attachment(void **state) {
        (void) state;
        parts_survive(false);
}

static void test_parts_binary_attachment(void **state) {
        (void) state;
        parts_survive(true);
}

/* A single-part 8-bit text: base64 inside, the text exact. Also when the
 * input does not say it is 8-bit (no Content-Transfer-Encoding). A
 * quoted-printable text stays as it is, in CRLF form. */
static void single_part_survives(const char *cte_field, const char *want_cte, const char *body,
                                 const char *want_decoded) {
        char *recipients[] = {(char *) bob.address, NULL};
        _cleanup_free_ char *message = NULL, *signed_out = NULL, *encrypted_out = NULL;
        _cleanup_(outcome_done) Outcome s = {}, e = {};
        _cleanup_(buffer_done) Buffer content = {}, plain = {};

        assert_true(asprintf(&message,
                             "From: alice@example.com\nTo: bob@example.com\nSubject: text\nMIME-Version: 1.0\n"
                             "Content-Type: text/plain; charset=utf-8\n%s\n%s",
                             cte_field, body) > 0);
        s = sign_file(alice.address, message, NULL, "single-signed.eml", &signed_out);
        content = expect_signed(signed_out, &s, &alice, "sha-256");
        e = encrypt_file(recipients, message, NULL, "single-encrypted.eml", &encrypted_out);
        plain = decrypt_ok(encrypted_out, &bob, "single-plain.eml");

        for (int i = 0; i < 2; i++) {
                const Buffer *b = i == 0 ? &content : &plain;
                _cleanup_(fields_done) Fields f = parse_fields(b->data, b->len);
                _cleanup_free_ char *cte = field_value(&f, "Content-Transfer-Encoding"),
                                    *type = field_value(&f, "Content-Type");
                _cleanup_(buffer_done) Buffer decoded = {};

                assert_true(seven_bit(b->data, b->len));
                assert_non_null(type);
                assert_string_equal(type, "text/plain; charset=utf-8");
                if (!cte || strcasecmp(cte, want_cte) != 0)
                        fail_msg("%s: Content-Transfer-Encoding %s inside, expected %s",
                                 i == 0 ? "signed" : "encrypted", strempty(cte), want_cte);
                if (strcasecmp(want_cte, "base64") == 0) {
                        decoded = base64_decode(b->data + f.body, b->len - f.body);
                        if (decoded.len != strlen(want_decoded) ||
                            memcmp(decoded.data, want_decoded, decoded.len) != 0)
                                fail_msg("decodes to \"%.*s\", expected \"%s\"", (int) decoded.len, decoded.data,
                                         want_decoded);
                } else {
                        assert_int_equal(b->len - f.body, strlen(want_decoded));
                        assert_memory_equal(b->data + f.body, want_decoded, strlen(want_decoded));
                }
        }
}

static void test_single_part_8bit(void **state) {
        _cleanup_free_ char *want = crlf(UTF8_TEXT), *qp = crlf("Gr=C3=BC=C3=9Fe,=20\nsoft=\nbreak\n");

        (void) state;
        single_part_survives("Content-Transfer-Encoding: 8bit\n", "base64", UTF8_TEXT, want);
        single_part_survives("", "base64", UTF8_TEXT, want);
        single_part_survives("Content-Transfer-Encoding: quoted-printable\n", "quoted-printable",
                             "Gr=C3=BC=C3=9Fe,=20\nsoft=\nbreak\n", qp);
}

/* ---- 4. refusals ---- */

static bool capability_possible(const char *sender) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int possible = -1;

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "GetCapabilities",
                               &e, &reply, "sasa{sv}", sender, 0, 0) < 0)
                fail_msg("GetCapabilities failed: %s: %s", e.name, e.message);
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

/* The daemon is unharmed: it answers and can still sign. */
static void expect_daemon_fine(void) {
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping",
                                       NULL, NULL, NULL) >= 0);
        assert_true(capability_possible(alice.address));
}

static void expect_refusal(const Outcome *c, const char *error_name, const char *part1, const char *part2,
                           const char *output_name) {
        if (c->r >= 0)
                fail_msg("expected %s, but the call succeeded", error_name);
        if (!streq_ptr(c->error_name, error_name))
                fail_msg("expected %s, got %s: %s", error_name, c->error_name, c->error_message);
        if (part1 && !strstr(c->error_message, part1))
                fail_msg("expected \"%s\" in \"%s\"", part1, c->error_message);
        if (part2 && !strstr(c->error_message, part2))
                fail_msg("expected \"%s\" in \"%s\"", part2, c->error_message);
        if (output_name) {
                _cleanup_free_ char *p = path(output_name);
                struct stat st;

                /* Nothing was written for a refused message. */
                assert_int_equal(stat(p, &st), 0);
                assert_int_equal(st.st_size, 0);
        }
        expect_daemon_fine();
}

static void test_refuse_unknown_sender(void **state) {
        _cleanup_(outcome_done) Outcome c = {}, e = {};
        char *recipients[] = {(char *) bob.address, NULL};
        Options o = {.sign_as = "nobody@example.com"};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;

        (void) state;
        c = smime_call("nobody@example.com", NULL, m, strlen(m), NULL, "refused.eml", NULL);
        expect_refusal(&c, SMIMED_ERROR_NO_CERTIFICATE, "nobody@example.com", NULL, "refused.eml");
        e = smime_call(NULL, recipients, m, strlen(m), &o, "refused.eml", NULL);
        expect_refusal(&e, SMIMED_ERROR_NO_CERTIFICATE, "nobody@example.com", NULL, "refused.eml");
}

static void test_refuse_unknown_recipient(void **state) {
        _cleanup_(outcome_done) Outcome c = {};
        char *recipients[] = {(char *) bob.address, (char *) "nobody@example.com", NULL};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;

        (void) state;
        c = smime_call(NULL, recipients, m, strlen(m), NULL, "refused.eml", NULL);
        expect_refusal(&c, SMIMED_ERROR_NO_CERTIFICATE, "nobody@example.com", NULL, "refused.eml");
}

static void test_refuse_sender_without_key(void **state) {
        _cleanup_(outcome_done) Outcome c = {};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;

        (void) state;
        c = smime_call(dave.address, NULL, m, strlen(m), NULL, "refused.eml", NULL);
        expect_refusal(&c, SMIMED_ERROR_NO_PRIVATE_KEY, dave.address, "private key", "refused.eml");
}

static void test_refuse_expired_recipient(void **state) {
        _cleanup_(outcome_done) Outcome c = {};
        char *recipients[] = {(char *) bob.address, (char *) old.address, NULL};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;

        (void) state;
        c = smime_call(NULL, recipients, m, strlen(m), NULL, "refused.eml", NULL);
        expect_refusal(&c, SMIMED_ERROR_CERTIFICATE_INVALID, old.address, "expired", "refused.eml");
        if (!strstr(c.error_message, old_not_after))
                fail_msg("expected the expiry date %s in \"%s\"", old_not_after, c.error_message);
}

static void test_refuse_revoked_recipient(void **state) {
        _cleanup_(outcome_done) Outcome before = {}, c = {};
        _cleanup_free_ char *crl = path("ca.crl.pem");
        char *recipients[] = {(char *) gone.address, NULL};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;

        (void) state;
        /* Usable until the CA says otherwise. */
        before = encrypt_file(recipients, m, NULL, "encrypted.eml", NULL);

        openssl("ca", "-batch", "-config", ca.config, "-revoke", gone.cert, "-crl_reason", "keyCompromise", NULL);
        openssl("ca", "-batch", "-config", ca.config, "-gencrl", "-out", crl, NULL);
        assert_int_equal(import_crl(crl), 1);

        c = smime_call(NULL, recipients, m, strlen(m), NULL, "refused.eml", NULL);
        expect_refusal(&c, SMIMED_ERROR_CERTIFICATE_INVALID, gone.address, "revoked", "refused.eml");

        /* The others from the same CA are not affected. */
        {
                char *others[] = {(char *) bob.address, NULL};
                _cleanup_(outcome_done) Outcome ok = encrypt_file(others, m, NULL, "encrypted.eml", NULL);

                assert_true(ok.r >= 0 && strv_length(ok.recipients) == 1);
        }
}

static void test_refuse_untrusted_recipient(void **state) {
        _cleanup_(outcome_done) Outcome c = {};
        char *recipients[] = {(char *) stranger.address, NULL};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;

        (void) state;
        c = smime_call(NULL, recipients, m, strlen(m), NULL, "refused.eml", NULL);
        expect_refusal(&c, SMIMED_ERROR_CERTIFICATE_INVALID, stranger.address, "trusted", "refused.eml");
}

static void test_refuse_bad_input(void **state) {
        _cleanup_(outcome_done) Outcome empty = {}, garbage = {}, unreadable = {}, empty_enc = {}, garbage_enc = {};
        _cleanup_free_ char *file = path("write-only.eml"), *out_path = path("refused.eml");
        char *recipients[] = {(char *) bob.address, NULL};
        const char *g = "no header here\n\nx";
        int in, out;

        (void) state;
        empty = smime_call(alice.address, NULL, "", 0, NULL, "refused.eml", NULL);
        expect_refusal(&empty, SMIMED_ERROR_INVALID_MESSAGE, NULL, NULL, "refused.eml");
        empty_enc = smime_call(NULL, recipients, "", 0, NULL, "refused.eml", NULL);
        expect_refusal(&empty_enc, SMIMED_ERROR_INVALID_MESSAGE, NULL, NULL, "refused.eml");

        garbage = smime_call(alice.address, NULL, g, strlen(g), NULL, "refused.eml", NULL);
        expect_refusal(&garbage, SMIMED_ERROR_INVALID_MESSAGE, NULL, NULL, "refused.eml");
        garbage_enc = smime_call(NULL, recipients, g, strlen(g), NULL, "refused.eml", NULL);
        expect_refusal(&garbage_enc, SMIMED_ERROR_INVALID_MESSAGE, NULL, NULL, "refused.eml");

        /* An input that cannot be read: open for writing only, with a message in it. */
        free(write_file("write-only.eml", SIMPLE_HEADERS SIMPLE_BODY, strlen(SIMPLE_HEADERS SIMPLE_BODY)));
        in = open(file, O_WRONLY | O_CLOEXEC);
        assert_true(in >= 0);
        out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(out >= 0);
        unreadable = smime_call_on(bus, alice.address, NULL, in, out, NULL);
        close(in);
        close(out);
        expect_refusal(&unreadable, SMIMED_ERROR_INVALID_ARGUMENT, NULL, NULL, "refused.eml");
}

static void test_refuse_unwritable_output(void **state) {
        _cleanup_(outcome_done) Outcome c = {};
        _cleanup_free_ char *file = NULL;
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;
        int in, out;

        (void) state;
        file = write_file("read-only.eml", "", 0);
        in = memfd_with(m, strlen(m));
        assert_true(in >= 0);
        out = open(file, O_RDONLY | O_CLOEXEC);
        assert_true(out >= 0);
        c = smime_call_on(bus, alice.address, NULL, in, out, NULL);
        close(in);
        close(out);
        expect_refusal(&c, SMIMED_ERROR_INVALID_ARGUMENT, NULL, NULL, "read-only.eml");
}

/* An output pipe whose reader has gone: InvalidArgument, and smimed lives
 * on (a write to it raises SIGPIPE). Plain Encrypt needs no authorization:
 * any local user can do this. */
static void test_refuse_broken_pipe_output(void **state) {
        _cleanup_(outcome_done) Outcome c = {};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;
        char *recipients[] = {(char *) bob.address, NULL};
        int in, fds[2];

        (void) state;
        in = memfd_with(m, strlen(m));
        assert_true(in >= 0);
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        close(fds[0]);
        c = smime_call_on(bus, NULL, recipients, in, fds[1], NULL);
        close(in);
        close(fds[1]);
        if (!smimed_answers()) {
                int status = revive_smimed();

                fail_msg("smimed died (exit status %d%s) on an output pipe without a reader; the call got %s: %s",
                         status, status == 128 + SIGPIPE ? ", SIGPIPE" : "", strempty(c.error_name),
                         strempty(c.error_message));
        }
        expect_refusal(&c, SMIMED_ERROR_INVALID_ARGUMENT, NULL, NULL, NULL);
}

/* RSA-PSS asked for an EC signer: the option cannot apply. A refusal must
 * name the argument (InvalidArgument), not blame the token. */
static void test_sign_pss_ec_signer(void **state) {
        _cleanup_(outcome_done) Outcome c = {};
        Options o = {.pss = true};
        const char *m = ERIN_HEADERS SIMPLE_BODY;

        (void) state;
        c = smime_call(erin.address, NULL, m, strlen(m), &o, "refused.eml", NULL);
        expect_refusal(&c, SMIMED_ERROR_INVALID_ARGUMENT, "RSA", NULL, "refused.eml");
}

static void test_refuse_bad_arguments(void **state) {
        _cleanup_(outcome_done) Outcome digest = {}, cipher = {}, address = {}, recipient = {}, none = {};
        char *recipients[] = {(char *) bob.address, NULL};
        char *bad_recipients[] = {(char *) "bob at example", NULL};
        char *no_recipients[] = {NULL};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;
        Options md5 = {.digest = "md5"}, des = {.cipher = "des-ede3-cbc"};

        (void) state;
        digest = smime_call(alice.address, NULL, m, strlen(m), &md5, "refused.eml", NULL);
        expect_refusal(&digest, SMIMED_ERROR_INVALID_ARGUMENT, "md5", NULL, "refused.eml");
        cipher = smime_call(NULL, recipients, m, strlen(m), &des, "refused.eml", NULL);
        expect_refusal(&cipher, SMIMED_ERROR_INVALID_ARGUMENT, "des-ede3-cbc", NULL, "refused.eml");
        address = smime_call("not an address", NULL, m, strlen(m), NULL, "refused.eml", NULL);
        expect_refusal(&address, SMIMED_ERROR_INVALID_ARGUMENT, NULL, NULL, "refused.eml");
        recipient = smime_call(NULL, bad_recipients, m, strlen(m), NULL, "refused.eml", NULL);
        expect_refusal(&recipient, SMIMED_ERROR_INVALID_ARGUMENT, NULL, NULL, "refused.eml");
        none = smime_call(NULL, no_recipients, m, strlen(m), NULL, "refused.eml", NULL);
        expect_refusal(&none, SMIMED_ERROR_INVALID_ARGUMENT, NULL, NULL, "refused.eml");
}

/* ---- 5. the unprivileged user ---- */

typedef struct UserArgs {
        const char *output;
        const char *denied_output;
} UserArgs;

static int as_test_user(char *out, size_t size, void *userdata) {
        UserArgs *a = userdata;
        char *recipients[] = {(char *) bob.address, NULL};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;
        Options sign_too = {.sign_as = alice.address};
        Outcome sign, encrypt, both;
        sd_bus *b = NULL;
        int in, output, denied;

        if (harness_bus_open(&b) < 0)
                return 2;
        in = memfd_with(m, strlen(m));
        output = open(a->output, O_WRONLY | O_TRUNC | O_CLOEXEC);
        denied = open(a->denied_output, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (in < 0 || output < 0 || denied < 0)
                return 3;

        sign = smime_call_on(b, alice.address, NULL, in, denied, NULL);
        if (lseek(in, 0, SEEK_SET) < 0)
                return 4;
        both = smime_call_on(b, NULL, recipients, in, denied, &sign_too);
        if (lseek(in, 0, SEEK_SET) < 0)
                return 4;
        encrypt = smime_call_on(b, NULL, recipients, in, output, NULL);

        snprintf(out, size, "%s|%s|%s|%d|%s|%" PRIu64, sign.r < 0 ? strempty(sign.error_name) : "signed",
                 both.r < 0 ? strempty(both.error_name) : "signed", encrypt.r < 0 ? "failed" : "ok",
                 encrypt.sender_included, encrypt.r < 0 ? strempty(encrypt.error_message) : "",
                 encrypt.has_size ? encrypt.size : 0);
        outcome_done(&sign);
        outcome_done(&both);
        outcome_done(&encrypt);
        close(in);
        close(output);
        close(denied);
        sd_bus_flush_close_unref(b);
        return 0;
}

static void test_unprivileged_user(void **state) {
        _cleanup_free_ char *output = write_file("user-out.eml", "", 0),
                            *denied = write_file("user-denied.eml", "", 0), *out = NULL, *want = NULL;
        _cleanup_(buffer_done) Buffer plain = {};
        UserArgs a = {.output = output, .denied_output = denied};
        struct stat st;

        (void) state;
        /* The test user opens the files itself. */
        assert_int_equal(chown(output, harness->test_uid, harness->test_gid), 0);
        assert_int_equal(chown(denied, harness->test_uid, harness->test_gid), 0);

        assert_int_equal(harness_run_as_test_user(harness, as_test_user, &a, &out), 0);
        assert_int_equal(stat(output, &st), 0);
        assert_true(st.st_size > 0);
        assert_true(asprintf(&want, SD_BUS_ERROR_ACCESS_DENIED "|" SD_BUS_ERROR_ACCESS_DENIED "|ok|0||%" PRIu64,
                             (uint64_t) st.st_size) > 0);
        assert_string_equal(out, want);

        /* Nothing was written for the denied calls. */
        assert_int_equal(stat(denied, &st), 0);
        assert_int_equal(st.st_size, 0);

        plain = decrypt_ok(output, &bob, "plain.eml");
        expect_simple_content(&plain);
        expect_daemon_fine();
}

/* ---- policy: a restart with other [Policy] settings ---- */

static void restart_smimed(const char *extra) {
        _cleanup_free_ char *config = smimed_config(extra);
        int status;

        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
        assert_int_equal(harness_start_smimed(harness, config, NULL), 0);
}

static void test_disabled(void **state) {
        _cleanup_(outcome_done) Outcome s = {}, e = {};
        char *recipients[] = {(char *) bob.address, NULL};
        const char *m = SIMPLE_HEADERS SIMPLE_BODY;

        (void) state;
        restart_smimed("Enabled=no\n");
        s = smime_call(alice.address, NULL, m, strlen(m), NULL, "refused.eml", NULL);
        assert_string_equal(s.error_name, SMIMED_ERROR_DISABLED);
        e = smime_call(NULL, recipients, m, strlen(m), NULL, "refused.eml", NULL);
        assert_string_equal(e.error_name, SMIMED_ERROR_DISABLED);
}

/* A valid message of exactly size bytes. */
static char *message_of_size(size_t size) {
        const char *head = "From: alice@example.com\nSubject: sized\nMIME-Version: 1.0\n"
                           "Content-Type: text/plain; charset=us-ascii\n\n";
        size_t len = strlen(head);
        char *m = malloc(size + 1);

        assert_non_null(m);
        assert_true(size > len + 2);
        memcpy(m, head, len);
        while (len < size) {
                size_t line = size - len > 64 ? 63 : size - len - 1;

                memset(m + len, 'x', line);
                len += line;
                m[len++] = '\n';
        }
        m[size] = '\0';
        return m;
}

static Outcome sign_through_pipe(const char *data, size_t len) {
        _cleanup_free_ char *out_path = path("refused.eml");
        Outcome c;
        int fds[2], out;

        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        assert_true(fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) >= (int) len);
        write_all(fds[1], data, len);
        close(fds[1]);
        out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(out >= 0);
        c = smime_call_on(bus, alice.address, NULL, fds[0], out, NULL);
        close(fds[0]);
        close(out);
        return c;
}

static void test_max_message_size(void **state) {
        _cleanup_free_ char *at_limit = message_of_size(64 * 1024), *over = message_of_size(64 * 1024 + 1);
        _cleanup_(outcome_done) Outcome ok = {}, ok_pipe = {}, big = {}, big_enc = {}, big_pipe = {};
        _cleanup_(buffer_done) Buffer content = {};
        char *recipients[] = {(char *) bob.address, NULL};
        _cleanup_free_ char *out = NULL;

        (void) state;
        restart_smimed("MaxMessageSize=64K\n");

        /* At the limit: fine. */
        ok = sign_file(alice.address, at_limit, NULL, "signed.eml", &out);
        content = expect_signed(out, &ok, &alice, "sha-256");
        ok_pipe = sign_through_pipe(at_limit, strlen(at_limit));
        expect_success(&ok_pipe, "Sign at the limit through a pipe");

        /* One byte more: refused, from a file and from a pipe. */
        big = smime_call(alice.address, NULL, over, strlen(over), NULL, "refused.eml", NULL);
        expect_refusal(&big, SMIMED_ERROR_INVALID_MESSAGE, "MaxMessageSize", NULL, "refused.eml");
        big_enc = smime_call(NULL, recipients, over, strlen(over), NULL, "refused.eml", NULL);
        expect_refusal(&big_enc, SMIMED_ERROR_INVALID_MESSAGE, "MaxMessageSize", NULL, "refused.eml");
        big_pipe = sign_through_pipe(over, strlen(over));
        expect_refusal(&big_pipe, SMIMED_ERROR_INVALID_MESSAGE, "MaxMessageSize", NULL, "refused.eml");

        /* A sealed memfd, which smimed reads where it is: the same limit. */
        {
                _cleanup_(outcome_done) Outcome sealed_ok = {}, sealed_big = {};
                _cleanup_free_ char *sealed_out = path("sealed.eml");
                int in = sealed_memfd_with(at_limit, strlen(at_limit)),
                    output = open(sealed_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                assert_true(output >= 0);
                sealed_ok = smime_call_on(bus, alice.address, NULL, in, output, NULL);
                expect_success(&sealed_ok, "Sign of a sealed memfd at the limit");
                close(in);
                in = sealed_memfd_with(over, strlen(over));
                sealed_big = smime_call_on(bus, alice.address, NULL, in, output, NULL);
                expect_refusal(&sealed_big, SMIMED_ERROR_INVALID_MESSAGE, "MaxMessageSize", NULL, NULL);
                close(in);
                close(output);
        }
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
                cmocka_unit_test(test_sign_rsa),
                cmocka_unit_test(test_sign_ec),
                cmocka_unit_test(test_sign_with_intermediate),
                cmocka_unit_test(test_sign_digests),
                cmocka_unit_test(test_sign_opaque),
                cmocka_unit_test(test_sign_pss),
                cmocka_unit_test(test_encrypt_three_recipients),
                cmocka_unit_test(test_encrypt_ciphers),
                cmocka_unit_test(test_encrypt_oaep),
                cmocka_unit_test(test_sign_then_encrypt),
                cmocka_unit_test(test_encrypt_sender_copy),
                cmocka_unit_test(test_sign_to_a_pipe),
                cmocka_unit_test(test_output_line_ends),
                cmocka_unit_test(test_outer_headers_signed),
                cmocka_unit_test(test_outer_headers_encrypted),
                cmocka_unit_test(test_bare_entity),
                cmocka_unit_test(test_parts_base64_attachment),
                cmocka_unit_test(test_parts_binary_attachment),
                cmocka_unit_test(test_single_part_8bit),
                cmocka_unit_test(test_refuse_unknown_sender),
                cmocka_unit_test(test_refuse_unknown_recipient),
                cmocka_unit_test(test_refuse_sender_without_key),
                cmocka_unit_test(test_refuse_expired_recipient),
                cmocka_unit_test(test_refuse_revoked_recipient),
                cmocka_unit_test(test_refuse_untrusted_recipient),
                cmocka_unit_test(test_refuse_bad_input),
                cmocka_unit_test(test_refuse_unwritable_output),
                cmocka_unit_test(test_refuse_broken_pipe_output),
                cmocka_unit_test(test_refuse_bad_arguments),
                cmocka_unit_test(test_sign_pss_ec_signer),
                cmocka_unit_test(test_unprivileged_user),
                cmocka_unit_test(test_disabled),
                cmocka_unit_test(test_max_message_size),
                cmocka_unit_test(test_clean_stop),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
