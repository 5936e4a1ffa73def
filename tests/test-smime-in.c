/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Incoming mail over a real bus: Decrypt and Verify on messages that the
 * openssl command line made (signed detached and opaque, RSA and EC, with and
 * without certificates, SHA-1 and SHA-256; enveloped and authEnveloped to RSA
 * PKCS#1 v1.5, RSA-OAEP and EC recipients; signed then encrypted; triple
 * wrapped), the status vocabulary for every kind of bad signature, the
 * auto-import of valid signers, the bad inputs, and polkit's word on Decrypt.
 * One smimed for the file; the recipient keys are enrolled with ImportPKCS12
 * once, the certificates come from tests/pki.c, fresh for every run. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/rand.h>

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"
#include "strv.h"

#define CALL_TIMEOUT_USEC HARNESS_TIMEOUT_USEC
#define NO_PRIVATE_KEY_MESSAGE "Encryption: Unable to find private key to decrypt."
#define NO_CERTIFICATE_MESSAGE "Sign: Unable to find certificate for validation"
#define MAX_LAYERS 8
#define MAIL_SIGNATURE_BLOCK "\n-- \nthe smimed tests\n"

/* ---- the people ---- */

typedef struct Party {
        const char *name;    /* file stem */
        const char *display; /* CN, and the display name in From */
        const char *address;
        PkiCert *cert;
        char *cert_file, *key_file;
        char fp[65];
        char *key_object; /* when smimed holds its key */
} Party;

typedef enum PartyId {
        ALICE, /* RSA signer, issued by the trusted root */
        ERIN,  /* EC signer, the trusted root */
        NINA,  /* RSA signer the store never sees */
        OSCAR, /* expired */
        WENDY, /* valid, the store never sees it: signs with SHA-1 */
        SAM,   /* valid, the store never sees it: signs under another From */
        FIONA, /* not yet valid */
        RITA,  /* revoked by the root's CRL */
        UMA,   /* issued by a root smimed does not trust */
        FRANK, /* issued by an intermediate the store does not hold: the auto-import case */
        BOB,   /* RSA recipient, key enrolled */
        CAROL, /* EC recipient, key enrolled */
        DAVE,  /* RSA recipient smimed has no key for */
        _PARTY_MAX,
} PartyId;

static Party parties[_PARTY_MAX] = {
        [ALICE] = {"alice", "Alice Example", "alice@example.org"},
        [ERIN] = {"erin", "Erin Elliptic", "erin@example.org"},
        [NINA] = {"nina", "Nina Nowhere", "nina@example.org"},
        [OSCAR] = {"oscar", "Oscar Old", "oscar@example.org"},
        [WENDY] = {"wendy", "Wendy Weak", "wendy@example.org"},
        [SAM] = {"sam", "Sam Spoofer", "sam@example.org"},
        [FIONA] = {"fiona", "Fiona Future", "fiona@example.org"},
        [RITA] = {"rita", "Rita Revoked", "rita@example.org"},
        [UMA] = {"uma", "Uma Untrusted", "uma@example.org"},
        [FRANK] = {"frank", "Frank Fresh", "frank@example.net"},
        [BOB] = {"bob", "Bob Reader", "bob@example.org"},
        [CAROL] = {"carol", "Carol Curve", "carol@example.org"},
        [DAVE] = {"dave", "Dave Elsewhere", "dave@example.org"},
};

static Harness *harness;
static sd_bus *bus;
static PkiCert *root, *other_root, *sub_ca;
static char *root_file, *sub_ca_file;

/* ---- files and the openssl command line ---- */

static char *path(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", harness->dir, name) > 0);
        return p;
}

typedef struct Argv {
        char *v[64];
        size_t n;
} Argv;

static void argv_add(Argv *a, const char *s) {
        assert_true(a->n < ELEMENTSOF(a->v) - 1);
        a->v[a->n++] = (char *) s;
        a->v[a->n] = NULL;
}

static void openssl_argv(Argv *a) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = harness_run(harness, a->v, false, NULL, &err);
        if (r != 0)
                fail_msg("openssl %s failed (%d): %s", a->v[1], r, err);
}

/* openssl ARGS…; must succeed. */
static void openssl(const char *first, ...) {
        Argv a = {};
        va_list ap;

        argv_add(&a, "openssl");
        argv_add(&a, first);
        va_start(ap, first);
        for (const char *s; (s = va_arg(ap, const char *));)
                argv_add(&a, s);
        va_end(ap);
        openssl_argv(&a);
}

typedef struct Bytes {
        char *data;
        size_t size;
} Bytes;

static void bytes_done(Bytes *b) {
        free(b->data);
        *b = (Bytes){};
}

static Bytes read_fd(int fd) {
        Bytes b = {};
        size_t allocated = 0;

        assert_true(lseek(fd, 0, SEEK_SET) == 0);
        for (;;) {
                ssize_t n;

                if (allocated - b.size < 65537) {
                        allocated += 65536 * 2;
                        b.data = realloc(b.data, allocated);
                        assert_non_null(b.data);
                }
                n = read(fd, b.data + b.size, allocated - b.size - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                assert_true(n >= 0);
                if (n == 0)
                        break;
                b.size += (size_t) n;
        }
        b.data[b.size] = '\0';
        return b;
}

static Bytes read_path(const char *p) {
        _cleanup_(closep) int fd = open(p, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                fail_msg("cannot open %s: %s", p, strerror(errno));
        return read_fd(fd);
}

static void write_path(const char *p, const void *data, size_t size) {
        assert_int_equal(pki_write_file(p, data, size), 0);
}

static char *write_named(const char *name, const void *data, size_t size) {
        char *p = path(name);

        write_path(p, data, size);
        return p;
}

static void random_hex(char *buf, size_t bytes) {
        unsigned char raw[32];

        assert_true(bytes <= sizeof(raw));
        assert_int_equal(RAND_bytes(raw, (int) bytes), 1);
        for (size_t i = 0; i < bytes; i++)
                sprintf(buf + 2 * i, "%02x", raw[i]);
}

/* ---- the PKI ---- */

static char *write_cert(const char *name, const PkiCert *c) {
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        return write_named(name, pem, strlen(pem));
}

static char *write_key(const char *name, EVP_PKEY *key) {
        char *p = path(name);
        FILE *f = fopen(p, "we");

        assert_non_null(f);
        assert_true(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
        assert_int_equal(fclose(f), 0);
        return p;
}

static void make_party(Party *p, const PkiCert *issuer, bool ec, int not_before_days, int not_after_days) {
        _cleanup_free_ char *cert_name = NULL, *key_name = NULL;
        const char *san[] = {p->address, NULL};
        PkiCertOptions o;

        pki_cert_options_init(&o);
        o.common_name = p->display;
        o.san_emails = san;
        o.not_before_days = not_before_days;
        o.not_after_days = not_after_days;
        if (ec)
                o.key = pki_key_ec();
        p->cert = pki_cert_new(&o, issuer);
        EVP_PKEY_free(o.key);
        assert_non_null(p->cert);
        assert_int_equal(pki_cert_fingerprint(p->cert, p->fp), 0);

        assert_true(asprintf(&cert_name, "%s.pem", p->name) > 0);
        assert_true(asprintf(&key_name, "%s.key", p->name) > 0);
        p->cert_file = write_cert(cert_name, p->cert);
        p->key_file = write_key(key_name, p->cert->key);
}

/* ---- bus calls ---- */

static void import_pem(const char *pem, bool trust) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust) >= 0);
        if (sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply) < 0)
                fail_msg("ImportCertificates failed: %s: %s", e.name, e.message);
}

static void import_cert(const PkiCert *c, bool trust) {
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        import_pem(pem, trust);
}

static void import_crl(const X509_CRL *crl) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *pem = pki_crl_pem(crl);
        uint32_t count = 0;

        assert_non_null(pem);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCRL") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        if (sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply) < 0)
                fail_msg("ImportCRL failed: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_read(reply, "u", &count) > 0);
        assert_int_equal(count, 1);
}

/* Enrolls p's key and certificate (with the root) through a PKCS#12 file. */
static void enroll(Party *p) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *name = NULL, *p12 = NULL;
        _cleanup_(closep) int fd = -1;
        const char *key;

        assert_true(asprintf(&name, "%s.p12", p->name) > 0);
        p12 = path(name);
        openssl("pkcs12", "-export", "-inkey", p->key_file, "-in", p->cert_file, "-certfile", root_file, "-passout",
                "pass:p12 secret", "-out", p12, NULL);
        fd = open(p12, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "ImportPKCS12", &e,
                               &reply, "hsa{sv}", fd, "p12 secret", 0) < 0)
                fail_msg("ImportPKCS12 of %s failed: %s: %s", p->name, e.name, e.message);
        assert_true(sd_bus_message_read(reply, "o", &key) > 0);
        p->key_object = strdup(key);
        assert_non_null(p->key_object);
}

typedef struct Capability {
        int possible;
        char *reason;
        char *fingerprint;
} Capability;

static void capability_done(Capability *c) {
        free(c->reason);
        free(c->fingerprint);
        *c = (Capability){};
}

/* GetCapabilities("", [address]): the one encrypt entry. */
static Capability encrypt_capability(const char *address) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Capability c = {.possible = -1};
        unsigned entries = 0;

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "GetCapabilities",
                               &e, &reply, "sasa{sv}", "", 1, address, 0) < 0)
                fail_msg("GetCapabilities failed: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_skip(reply, "a{sv}") >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "a{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'a', "{sv}") > 0) {
                entries++;
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        const char *k, *s;

                        assert_true(sd_bus_message_read(reply, "s", &k) > 0);
                        if (streq(k, "possible"))
                                assert_true(sd_bus_message_read(reply, "v", "b", &c.possible) > 0);
                        else if (streq(k, "reason")) {
                                assert_true(sd_bus_message_read(reply, "v", "s", &s) > 0);
                                c.reason = strdup(s);
                        } else if (streq(k, "fingerprint")) {
                                assert_true(sd_bus_message_read(reply, "v", "s", &s) > 0);
                                c.fingerprint = strdup(s);
                        } else
                                assert_true(sd_bus_message_skip(reply, "v") >= 0);
                        assert_true(sd_bus_message_exit_container(reply) >= 0);
                }
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        assert_int_equal(entries, 1);
        assert_true(c.possible >= 0);
        assert_non_null(c.reason);
        return c;
}

static size_t lookup_count(const char *address) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **paths = NULL;

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                               "LookupCertificates", &e, &reply, "sa{sv}", address, 0) < 0)
                fail_msg("LookupCertificates failed: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_read_strv(reply, &paths) >= 0);
        return strv_length(paths);
}

/* The result of Decrypt or Verify: the error, or the status and the output. */
typedef struct Opened {
        int r;
        char *error_name, *error_message;

        char *encryption, *encryption_message;
        char *signature, *signature_message;
        int content; /* -1: not in the status */
        uint64_t size;
        bool has_size;
        char *key, *key_certificate;

        bool has_signer;
        char *signer_fingerprint, *signer_subject, *signer_issuer, *signer_address, *signer_summary;
        uint64_t signer_not_before, signer_not_after;

        Bytes output;
} Opened;

static void opened_done(Opened *o) {
        free(o->error_name);
        free(o->error_message);
        free(o->encryption);
        free(o->encryption_message);
        free(o->signature);
        free(o->signature_message);
        free(o->key);
        free(o->key_certificate);
        free(o->signer_fingerprint);
        free(o->signer_subject);
        free(o->signer_issuer);
        free(o->signer_address);
        free(o->signer_summary);
        bytes_done(&o->output);
        *o = (Opened){};
}

/* Reads the variant at the current position as a string into *field. */
static int read_string_variant(sd_bus_message *m, char **field) {
        const char *s;
        int r;

        r = sd_bus_message_read(m, "v", "s", &s);
        if (r < 0)
                return r;
        free(*field);
        *field = strdup(s);
        return *field ? 0 : -ENOMEM;
}

static int read_signer(sd_bus_message *m, Opened *o) {
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        o->has_signer = true;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *k;

                r = sd_bus_message_read(m, "s", &k);
                if (r < 0)
                        return r;
                if (streq(k, "fingerprint"))
                        r = read_string_variant(m, &o->signer_fingerprint);
                else if (streq(k, "subject"))
                        r = read_string_variant(m, &o->signer_subject);
                else if (streq(k, "issuer"))
                        r = read_string_variant(m, &o->signer_issuer);
                else if (streq(k, "address"))
                        r = read_string_variant(m, &o->signer_address);
                else if (streq(k, "summary"))
                        r = read_string_variant(m, &o->signer_summary);
                else if (streq(k, "not_before"))
                        r = sd_bus_message_read(m, "v", "t", &o->signer_not_before);
                else if (streq(k, "not_after"))
                        r = sd_bus_message_read(m, "v", "t", &o->signer_not_after);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_status(sd_bus_message *m, Opened *o) {
        int r;

        o->content = -1;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *k;

                r = sd_bus_message_read(m, "s", &k);
                if (r < 0)
                        return r;
                if (streq(k, "encryption"))
                        r = read_string_variant(m, &o->encryption);
                else if (streq(k, "encryption_message"))
                        r = read_string_variant(m, &o->encryption_message);
                else if (streq(k, "signature"))
                        r = read_string_variant(m, &o->signature);
                else if (streq(k, "signature_message"))
                        r = read_string_variant(m, &o->signature_message);
                else if (streq(k, "key"))
                        r = read_string_variant(m, &o->key);
                else if (streq(k, "key_certificate"))
                        r = read_string_variant(m, &o->key_certificate);
                else if (streq(k, "content"))
                        r = sd_bus_message_read(m, "v", "b", &o->content);
                else if (streq(k, "size")) {
                        r = sd_bus_message_read(m, "v", "t", &o->size);
                        o->has_size = true;
                } else if (streq(k, "signer"))
                        r = read_signer(m, o);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Decrypt or Verify on b with the given fds; verify < 0 leaves the option out.
 * No cmocka asserts: the unprivileged child uses it too. */
static int open_call(sd_bus *b, const char *method, int input, int output, int verify, Opened *o) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        *o = (Opened){.content = -1};
        r = sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           method);
        if (r >= 0)
                r = sd_bus_message_append(m, "hh", input, output);
        if (r >= 0 && verify >= 0)
                r = sd_bus_message_append(m, "a{sv}", 1, "verify", "b", verify);
        else if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return r;
        o->r = sd_bus_call(b, m, CALL_TIMEOUT_USEC, &e, &reply);
        if (o->r < 0) {
                o->error_name = strdup(strempty(e.name));
                o->error_message = strdup(strempty(e.message));
                return 0;
        }
        return read_status(reply, o);
}

/* method on the message in input. */
static Opened open_message_fd(const char *method, int input, int verify) {
        _cleanup_(closep) int output = memfd_create("smimed-test-output", MFD_CLOEXEC);
        Opened o;
        int r;

        assert_true(output >= 0);
        r = open_call(bus, method, input, output, verify, &o);
        if (r < 0)
                fail_msg("%s: cannot call or read the reply: %s", method, strerror(-r));
        o.output = read_fd(output);
        return o;
}

static Opened open_message(const char *method, const char *p) {
        _cleanup_(closep) int input = open(p, O_RDONLY | O_CLOEXEC);

        assert_true(input >= 0);
        return open_message_fd(method, input, -1);
}

/* ---- messages ---- */

/* A message before S/MIME: the outer header fields and the entity. */
typedef struct Mail {
        char *from, *to, *subject; /* header values */
        char *content_type;
        char *body;
        char *entity_file; /* Content-Type, blank line, body */
} Mail;

static void mail_done(Mail *m) {
        free(m->from);
        free(m->to);
        free(m->subject);
        free(m->content_type);
        free(m->body);
        free(m->entity_file);
        *m = (Mail){};
}

static Mail mail_new_sized(const char *name, const Party *from, const Party *to, size_t body_lines) {
        _cleanup_free_ char *entity = NULL, *entity_name = NULL;
        char token[33];
        Mail m = {};
        size_t len;

        random_hex(token, 16);
        assert_true(asprintf(&m.from, "%s <%s>", from->display, from->address) > 0);
        assert_true(asprintf(&m.to, "%s <%s>", to->display, to->address) > 0);
        assert_true(asprintf(&m.subject, "%s %s", name, token) > 0);
        m.content_type = strdup("text/plain; charset=us-ascii");
        assert_non_null(m.content_type);
        assert_true(asprintf(&m.body,
                             "Hello %s,\n\nthis is the test message \"%s\", token %s.\n"
                             "It has more than one line, and a line that looks like a boundary:\n"
                             "--not-a-boundary\n",
                             to->display, name, token) > 0);
        /* Padding lines for the size tests, then a signature block. */
        len = strlen(m.body);
        m.body = realloc(m.body, len + body_lines * (6 + 1 + 32 + 1 + 32 + 1) + sizeof(MAIL_SIGNATURE_BLOCK));
        assert_non_null(m.body);
        for (size_t i = 0; i < body_lines; i++)
                len += (size_t) sprintf(m.body + len, "%06zu %s %s\n", i % 1000000, token, token);
        strcpy(m.body + len, MAIL_SIGNATURE_BLOCK);

        assert_true(asprintf(&entity, "Content-Type: %s\n\n%s", m.content_type, m.body) > 0);
        assert_true(asprintf(&entity_name, "%s.entity", name) > 0);
        m.entity_file = write_named(entity_name, entity, strlen(entity));
        return m;
}

static Mail mail_new(const char *name, const Party *from, const Party *to) {
        return mail_new_sized(name, from, to, 0);
}

/* The outer header fields in front of an S/MIME entity openssl wrote. */
static char *compose(const char *name, const Mail *m, const char *from_override, const char *smime_file) {
        _cleanup_(bytes_done) Bytes smime = read_path(smime_file);
        _cleanup_free_ char *text = NULL;

        assert_true(asprintf(&text, "From: %s\nTo: %s\nSubject: %s\n%s", from_override ?: m->from, m->to, m->subject,
                             smime.data) > 0);
        return write_named(name, text, strlen(text));
}

typedef struct SignSpec {
        const Party *signer;
        bool opaque; /* -nodetach: application/pkcs7-mime signed-data */
        bool nocerts;
        const char *md;       /* NULL: sha256 */
        const char *certfile; /* extra certificates to carry */
} SignSpec;

static char *cms_sign(const char *in, const char *out_name, const SignSpec *s) {
        char *out = path(out_name);
        Argv a = {};

        argv_add(&a, "openssl");
        argv_add(&a, "cms");
        argv_add(&a, "-sign");
        argv_add(&a, "-in");
        argv_add(&a, in);
        argv_add(&a, "-out");
        argv_add(&a, out);
        argv_add(&a, "-signer");
        argv_add(&a, s->signer->cert_file);
        argv_add(&a, "-inkey");
        argv_add(&a, s->signer->key_file);
        argv_add(&a, "-md");
        argv_add(&a, s->md ?: "sha256");
        if (s->opaque)
                argv_add(&a, "-nodetach");
        if (s->nocerts)
                argv_add(&a, "-nocerts");
        if (s->certfile) {
                argv_add(&a, "-certfile");
                argv_add(&a, s->certfile);
        }
        openssl_argv(&a);
        return out;
}

/* To every party of to (NULL-terminated); oaep for the RSA ones. */
static char *cms_encrypt_to(const char *in, const char *out_name, const Party *const *to, const char *cipher,
                            bool oaep) {
        char *out = path(out_name);
        Argv a = {};

        argv_add(&a, "openssl");
        argv_add(&a, "cms");
        argv_add(&a, "-encrypt");
        argv_add(&a, "-in");
        argv_add(&a, in);
        argv_add(&a, "-out");
        argv_add(&a, out);
        argv_add(&a, cipher);
        for (const Party *const *p = to; *p; p++) {
                argv_add(&a, "-recip");
                argv_add(&a, (*p)->cert_file);
                if (oaep && EVP_PKEY_get_base_id((*p)->cert->key) == EVP_PKEY_RSA) {
                        argv_add(&a, "-keyopt");
                        argv_add(&a, "rsa_padding_mode:oaep");
                }
        }
        openssl_argv(&a);
        return out;
}

static char *cms_encrypt(const char *in, const char *out_name, const Party *to, const char *cipher, bool oaep) {
        const Party *const list[] = {to, NULL};

        return cms_encrypt_to(in, out_name, list, cipher, oaep);
}

/* text with every from replaced by to. */
static char *replace_all(const char *text, const char *from, const char *to) {
        size_t n = 0, from_len = strlen(from), to_len = strlen(to);
        char *out, *q;

        for (const char *p = strstr(text, from); p; p = strstr(p + from_len, from))
                n++;
        out = malloc(strlen(text) + n * to_len + 1);
        assert_non_null(out);
        q = out;
        for (const char *p = text, *hit; *p; p = hit + from_len) {
                hit = strstr(p, from);
                if (!hit) {
                        strcpy(q, p);
                        return out;
                }
                memcpy(q, p, (size_t) (hit - p));
                q += hit - p;
                memcpy(q, to, to_len);
                q += to_len;
        }
        *q = '\0';
        return out;
}

/* A copy of file with every from replaced by to (at least one). */
static char *rewrite(const char *name, const char *file, const char *from, const char *to) {
        _cleanup_(bytes_done) Bytes b = read_path(file);
        _cleanup_free_ char *text = NULL;

        if (!strstr(b.data, from))
                fail_msg("%s has no \"%s\" to replace", file, from);
        text = replace_all(b.data, from, to);
        return write_named(name, text, strlen(text));
}

/* ---- what comes back ---- */

/* CRLF → LF, so that canonical and local line ends compare equal. */
static char *lf_only(const char *s, size_t size) {
        char *t = malloc(size + 1), *q = t;

        assert_non_null(t);
        for (size_t i = 0; i < size; i++)
                if (!(s[i] == '\r' && i + 1 < size && s[i + 1] == '\n'))
                        *q++ = s[i];
        *q = '\0';
        return t;
}

/* The unfolded value of the first header field name in a header block. */
static char *header_value(const char *headers, const char *name) {
        size_t name_len = strlen(name);

        for (const char *line = headers; *line; line = strchrnul(line, '\n'), line += *line ? 1 : 0) {
                const char *v, *end;
                char *value;
                size_t n = 0;

                if (strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
                        continue;
                v = line + name_len + 1;
                while (*v == ' ' || *v == '\t')
                        v++;
                /* up to the end of the field: the first line end not followed by white space */
                for (end = v; *end && !(end[0] == '\n' && end[1] != ' ' && end[1] != '\t'); end++)
                        ;
                value = malloc((size_t) (end - v) + 1);
                assert_non_null(value);
                for (const char *p = v; p < end; p++)
                        if (*p != '\n')
                                value[n++] = *p;
                while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
                        n--;
                value[n] = '\0';
                return value;
        }
        return NULL;
}

static void expect_header(const char *headers, const char *name, const char *want, const char *what) {
        _cleanup_free_ char *got = header_value(headers, name);

        if (!got)
                fail_msg("%s: the output has no %s field:\n%s", what, name, headers);
        if (!streq(got, want))
                fail_msg("%s: %s is \"%s\", expected \"%s\"", what, name, got, want);
}

/* The output is the cleartext of m: its outer fields back, its entity. */
static void expect_cleartext(const Opened *o, const Mail *m, const char *from, const char *what) {
        _cleanup_free_ char *text = NULL, *want_body = NULL;
        char *split;

        if (o->content != 1)
                fail_msg("%s: \"content\" is %d, expected true", what, o->content);
        assert_true(o->has_size);
        if (o->size != o->output.size)
                fail_msg("%s: \"size\" is %" PRIu64 ", the output has %zu bytes", what, o->size, o->output.size);

        text = lf_only(o->output.data, o->output.size);
        split = strstr(text, "\n\n");
        if (!split)
                fail_msg("%s: the output has no header block:\n%s", what, text);
        split[1] = '\0';

        expect_header(text, "From", from ?: m->from, what);
        expect_header(text, "To", m->to, what);
        expect_header(text, "Subject", m->subject, what);
        expect_header(text, "Content-Type", m->content_type, what);
        want_body = lf_only(m->body, strlen(m->body));
        if (!streq(split + 2, want_body))
                fail_msg("%s: the body differs.\n--- expected\n%s--- got\n%s---", what, want_body, split + 2);
}

static void expect_success(const Opened *o, const char *what) {
        if (o->r < 0)
                fail_msg("%s: failed with %s: %s", what, o->error_name, o->error_message);
        assert_non_null(o->encryption);
        assert_non_null(o->signature);
}

static void expect_status(const Opened *o, const char *encryption, const char *signature, const char *what) {
        expect_success(o, what);
        if (!streq(o->encryption, encryption) || !streq(o->signature, signature))
                fail_msg("%s: expected encryption=%s signature=%s, got encryption=%s (%s) signature=%s (%s)", what,
                         encryption, signature, o->encryption, strempty(o->encryption_message), o->signature,
                         strempty(o->signature_message));
}

static uint64_t asn1_time_usec(const ASN1_TIME *t) {
        struct tm tm = {};

        assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
        return (uint64_t) timegm(&tm) * 1000000ULL;
}

/* The signer dict describes p's certificate. */
static void expect_signer(const Opened *o, const Party *p, const char *issuer_cn, const char *what) {
        if (!o->has_signer)
                fail_msg("%s: no \"signer\" in the status", what);
        if (!o->signer_fingerprint || strcasecmp(o->signer_fingerprint, p->fp) != 0)
                fail_msg("%s: signer fingerprint %s, expected %s", what, strempty(o->signer_fingerprint), p->fp);
        assert_non_null(o->signer_address);
        assert_string_equal(o->signer_address, p->address);
        assert_non_null(o->signer_subject);
        if (!strstr(o->signer_subject, p->display))
                fail_msg("%s: signer subject \"%s\" does not name %s", what, o->signer_subject, p->display);
        assert_non_null(o->signer_issuer);
        if (!strstr(o->signer_issuer, issuer_cn))
                fail_msg("%s: signer issuer \"%s\" does not name %s", what, o->signer_issuer, issuer_cn);
        assert_non_null(o->signer_summary);
        if (!strstr(o->signer_summary, p->address))
                fail_msg("%s: signer summary \"%s\" does not name %s", what, o->signer_summary, p->address);
        assert_int_equal(o->signer_not_before, asn1_time_usec(X509_get0_notBefore(p->cert->x509)));
        assert_int_equal(o->signer_not_after, asn1_time_usec(X509_get0_notAfter(p->cert->x509)));
}

/* "key" and "key_certificate" name the enrolled key of p and its certificate. */
static void expect_decrypted_with(const Opened *o, const Party *p, const char *what) {
        const char *id = strrchr(p->key_object, '/') + 1;
        _cleanup_free_ char *cert_path = NULL;

        assert_true(asprintf(&cert_path, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", p->fp) > 0);
        if (!o->key || !(streq(o->key, p->key_object) || streq(o->key, id)))
                fail_msg("%s: \"key\" is %s, expected %s", what, strempty(o->key), p->key_object);
        if (!o->key_certificate ||
            !(strcasecmp(o->key_certificate, p->fp) == 0 || streq(o->key_certificate, cert_path)))
                fail_msg("%s: \"key_certificate\" is %s, expected %s", what, strempty(o->key_certificate), p->fp);
        assert_non_null(o->encryption_message);
        assert_true(strlen(o->encryption_message) > 0);
}

/* ---- setup ---- */

static int setup(void **state) {
        _cleanup_free_ char *text = NULL, *config = NULL;
        PkiCertOptions o;
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

        root = pki_root_ca("Open Test Root");
        other_root = pki_root_ca("Stranger Root");
        pki_cert_options_init(&o);
        o.common_name = "Open Test Sub CA";
        o.is_ca = true;
        o.not_after_days = 1000;
        sub_ca = pki_cert_new(&o, root);
        if (!root || !other_root || !sub_ca)
                return -EIO;
        root_file = write_cert("root.pem", root);
        sub_ca_file = write_cert("sub-ca.pem", sub_ca);

        make_party(&parties[ALICE], root, false, -1, 365);
        make_party(&parties[ERIN], root, true, -1, 365);
        make_party(&parties[NINA], root, false, -1, 365);
        make_party(&parties[OSCAR], root, false, -60, -1);
        make_party(&parties[WENDY], root, false, -1, 365);
        make_party(&parties[SAM], root, false, -1, 365);
        make_party(&parties[FIONA], root, false, 10, 365);
        make_party(&parties[RITA], root, false, -1, 365);
        make_party(&parties[UMA], other_root, false, -1, 365);
        make_party(&parties[FRANK], sub_ca, false, -1, 365);
        make_party(&parties[BOB], root, false, -1, 365);
        make_party(&parties[CAROL], root, true, -1, 365);
        make_party(&parties[DAVE], root, false, -1, 365);

        /* The root is an anchor; the store holds nothing else about the senders. */
        import_cert(root, true);
        enroll(&parties[BOB]);
        enroll(&parties[CAROL]);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        bus = sd_bus_flush_close_unref(bus);
        harness = harness_free(harness);
        for (size_t i = 0; i < _PARTY_MAX; i++) {
                Party *p = &parties[i];

                p->cert = pki_cert_free(p->cert);
                p->cert_file = mfree(p->cert_file);
                p->key_file = mfree(p->key_file);
                p->key_object = mfree(p->key_object);
        }
        root = pki_cert_free(root);
        other_root = pki_cert_free(other_root);
        sub_ca = pki_cert_free(sub_ca);
        root_file = mfree(root_file);
        sub_ca_file = mfree(sub_ca_file);
        return 0;
}

/* ---- 1. signed ---- */

/* A message signed as s says, from its signer to Bob: Verify and Decrypt
 * both report signature and content. */
static void check_signed(const char *name, const SignSpec *s, const char *signature) {
        _cleanup_(mail_done) Mail m = mail_new(name, s->signer, &parties[BOB]);
        _cleanup_free_ char *signed_name = NULL, *signed_file = NULL, *message = NULL, *message_name = NULL;
        _cleanup_(opened_done) Opened v = {}, d = {};

        assert_true(asprintf(&signed_name, "%s.smime", name) > 0);
        assert_true(asprintf(&message_name, "%s.eml", name) > 0);
        signed_file = cms_sign(m.entity_file, signed_name, s);
        message = compose(message_name, &m, NULL, signed_file);

        v = open_message("Verify", message);
        expect_status(&v, "not-encrypted", signature, name);
        expect_cleartext(&v, &m, NULL, name);
        if (streq(signature, "valid"))
                expect_signer(&v, s->signer, "Open Test Root", name);

        d = open_message("Decrypt", message);
        expect_status(&d, "not-encrypted", signature, name);
        expect_cleartext(&d, &m, NULL, name);
}

static void test_signed_rsa_detached(void **state) {
        SignSpec s = {.signer = &parties[ALICE]};

        (void) state;
        check_signed("rsa-detached", &s, "valid");
}

static void test_signed_rsa_opaque(void **state) {
        SignSpec s = {.signer = &parties[ALICE], .opaque = true};

        (void) state;
        check_signed("rsa-opaque", &s, "valid");
}

static void test_signed_ec_detached(void **state) {
        SignSpec s = {.signer = &parties[ERIN]};

        (void) state;
        check_signed("ec-detached", &s, "valid");
}

static void test_signed_ec_opaque(void **state) {
        SignSpec s = {.signer = &parties[ERIN], .opaque = true};

        (void) state;
        check_signed("ec-opaque", &s, "valid");
}

/* Without certificates in the message, the store must know the signer. */
static void test_signed_without_certificates_known_signer(void **state) {
        SignSpec detached = {.signer = &parties[ALICE], .nocerts = true};
        SignSpec opaque = {.signer = &parties[ERIN], .nocerts = true, .opaque = true};

        (void) state;
        import_cert(parties[ALICE].cert, false);
        import_cert(parties[ERIN].cert, false);
        check_signed("nocerts-known-detached", &detached, "valid");
        check_signed("nocerts-known-opaque", &opaque, "valid");
}

static void test_signed_without_certificates_unknown_signer(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("nocerts-unknown", &parties[NINA], &parties[BOB]);
        _cleanup_free_ char *signed_file = NULL, *message = NULL, *opaque_file = NULL, *opaque_message = NULL;
        _cleanup_(opened_done) Opened v = {}, o = {};
        SignSpec s = {.signer = &parties[NINA], .nocerts = true};

        (void) state;
        assert_int_equal(lookup_count(parties[NINA].address), 0);
        signed_file = cms_sign(m.entity_file, "nocerts-unknown.smime", &s);
        message = compose("nocerts-unknown.eml", &m, NULL, signed_file);
        v = open_message("Verify", message);
        expect_status(&v, "not-encrypted", "no-certificate", "unknown signer, detached");
        assert_non_null(v.signature_message);
        if (strncmp(v.signature_message, NO_CERTIFICATE_MESSAGE, strlen(NO_CERTIFICATE_MESSAGE)) != 0)
                fail_msg("signature_message \"%s\" does not start with \"%s\"", v.signature_message,
                         NO_CERTIFICATE_MESSAGE);
        expect_cleartext(&v, &m, NULL, "unknown signer, detached");

        s.opaque = true;
        opaque_file = cms_sign(m.entity_file, "nocerts-unknown-opaque.smime", &s);
        opaque_message = compose("nocerts-unknown-opaque.eml", &m, NULL, opaque_file);
        o = open_message("Verify", opaque_message);
        expect_status(&o, "not-encrypted", "no-certificate", "unknown signer, opaque");
        expect_cleartext(&o, &m, NULL, "unknown signer, opaque");

        /* Nothing was learnt about the signer. */
        assert_int_equal(lookup_count(parties[NINA].address), 0);
}

static void test_signed_sha1_is_weak(void **state) {
        SignSpec rsa = {.signer = &parties[ALICE], .md = "sha1"};
        SignSpec ec = {.signer = &parties[ERIN], .md = "sha1", .opaque = true};

        (void) state;
        check_signed("sha1-rsa", &rsa, "weak-algorithm");
        check_signed("sha1-ec", &ec, "weak-algorithm");
}

static void test_signed_sha512_is_valid(void **state) {
        SignSpec s = {.signer = &parties[ALICE], .md = "sha512"};

        (void) state;
        check_signed("sha512", &s, "valid");
}

/* ---- 2. encrypted ---- */

static void check_encrypted(const char *name, Party *to, const char *cipher, bool oaep) {
        _cleanup_(mail_done) Mail m = mail_new(name, &parties[ALICE], to);
        _cleanup_free_ char *enc_name = NULL, *enc = NULL, *message_name = NULL, *message = NULL;
        _cleanup_(opened_done) Opened d = {};

        assert_true(asprintf(&enc_name, "%s.p7m", name) > 0);
        assert_true(asprintf(&message_name, "%s.eml", name) > 0);
        enc = cms_encrypt(m.entity_file, enc_name, to, cipher, oaep);
        message = compose(message_name, &m, NULL, enc);

        d = open_message("Decrypt", message);
        expect_status(&d, "encrypted", "not-signed", name);
        expect_cleartext(&d, &m, NULL, name);
        expect_decrypted_with(&d, to, name);
}

static void test_encrypted_rsa_pkcs1_cbc(void **state) {
        (void) state;
        check_encrypted("rsa-pkcs1-cbc", &parties[BOB], "-aes-256-cbc", false);
}

static void test_encrypted_rsa_oaep_cbc(void **state) {
        (void) state;
        check_encrypted("rsa-oaep-cbc", &parties[BOB], "-aes-256-cbc", true);
}

static void test_encrypted_rsa_pkcs1_gcm(void **state) {
        (void) state;
        check_encrypted("rsa-pkcs1-gcm", &parties[BOB], "-aes-256-gcm", false);
}

static void test_encrypted_rsa_oaep_gcm(void **state) {
        (void) state;
        check_encrypted("rsa-oaep-gcm", &parties[BOB], "-aes-256-gcm", true);
}

static void test_encrypted_rsa_aes128(void **state) {
        (void) state;
        check_encrypted("rsa-aes128-cbc", &parties[BOB], "-aes-128-cbc", false);
}

static void test_encrypted_ec_cbc(void **state) {
        (void) state;
        check_encrypted("ec-cbc", &parties[CAROL], "-aes-256-cbc", false);
}

static void test_encrypted_ec_gcm(void **state) {
        (void) state;
        check_encrypted("ec-gcm", &parties[CAROL], "-aes-256-gcm", false);
}

/* Several recipients: smimed finds its own key among them, RSA or EC. */
static void test_encrypted_to_several_recipients(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("several", &parties[ALICE], &parties[CAROL]);
        _cleanup_free_ char *enc = NULL, *message = NULL;
        _cleanup_(opened_done) Opened d = {};
        const Party *const to[] = {&parties[DAVE], &parties[CAROL], NULL};

        (void) state;
        enc = cms_encrypt_to(m.entity_file, "several.p7m", to, "-aes-256-gcm", true);
        message = compose("several.eml", &m, NULL, enc);
        d = open_message("Decrypt", message);
        expect_status(&d, "encrypted", "not-signed", "to Dave and Carol");
        expect_cleartext(&d, &m, NULL, "to Dave and Carol");
        expect_decrypted_with(&d, &parties[CAROL], "to Dave and Carol");
}

/* The older names: x-pkcs7-mime, x-pkcs7-signature, and smime.p7m as a plain attachment. */
static void check_rewritten(const char *name, bool encrypt, const char *from, const char *to) {
        _cleanup_(mail_done) Mail m = mail_new(name, &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *smime = NULL, *smime_name = NULL, *message = NULL, *message_name = NULL,
                            *rewritten = NULL, *rewritten_name = NULL;
        _cleanup_(opened_done) Opened o = {};
        SignSpec s = {.signer = &parties[ALICE]};

        assert_true(asprintf(&smime_name, "%s.smime", name) > 0);
        assert_true(asprintf(&message_name, "%s.eml", name) > 0);
        assert_true(asprintf(&rewritten_name, "%s-rewritten.eml", name) > 0);
        smime = encrypt ? cms_encrypt(m.entity_file, smime_name, &parties[BOB], "-aes-256-cbc", false)
                        : cms_sign(m.entity_file, smime_name, &s);
        message = compose(message_name, &m, NULL, smime);
        rewritten = rewrite(rewritten_name, message, from, to);

        o = open_message(encrypt ? "Decrypt" : "Verify", rewritten);
        expect_status(&o, encrypt ? "encrypted" : "not-encrypted", encrypt ? "not-signed" : "valid", name);
        expect_cleartext(&o, &m, NULL, name);
}

static void test_x_pkcs7_mime(void **state) {
        (void) state;
        check_rewritten("x-pkcs7-mime", true, "application/pkcs7-mime", "application/x-pkcs7-mime");
}

static void test_p7m_as_octet_stream(void **state) {
        (void) state;
        check_rewritten("octet-stream-p7m", true,
                        "application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"",
                        "application/octet-stream; name=\"smime.p7m\"");
}

static void test_x_pkcs7_signature(void **state) {
        (void) state;
        check_rewritten("x-pkcs7-signature", false, "application/pkcs7-signature", "application/x-pkcs7-signature");
}

/* Verify does not open encrypted mail. */
static void test_verify_refuses_encrypted(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("verify-encrypted", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *enc = NULL, *message = NULL;
        _cleanup_(opened_done) Opened v = {};

        (void) state;
        enc = cms_encrypt(m.entity_file, "verify-encrypted.p7m", &parties[BOB], "-aes-256-cbc", false);
        message = compose("verify-encrypted.eml", &m, NULL, enc);
        v = open_message("Verify", message);
        if (v.r >= 0)
                fail_msg("Verify of an encrypted message succeeded: encryption=%s signature=%s", v.encryption,
                         v.signature);
        assert_string_equal(v.error_name, SMIMED_ERROR_INVALID_MESSAGE);
        assert_int_equal(v.output.size, 0);
}

/* ---- 3. layers ---- */

static void test_signed_then_encrypted(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("sign-encrypt", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *signed_file = NULL, *enc = NULL, *message = NULL, *ec_enc = NULL, *ec_message = NULL;
        _cleanup_(opened_done) Opened d = {}, e = {};
        SignSpec s = {.signer = &parties[ALICE]};

        (void) state;
        signed_file = cms_sign(m.entity_file, "sign-encrypt.smime", &s);
        enc = cms_encrypt(signed_file, "sign-encrypt.p7m", &parties[BOB], "-aes-256-cbc", false);
        message = compose("sign-encrypt.eml", &m, NULL, enc);
        d = open_message("Decrypt", message);
        expect_status(&d, "encrypted", "valid", "signed then encrypted");
        expect_cleartext(&d, &m, NULL, "signed then encrypted");
        expect_signer(&d, &parties[ALICE], "Open Test Root", "signed then encrypted");
        expect_decrypted_with(&d, &parties[BOB], "signed then encrypted");

        /* The same with an opaque signature, GCM, to the EC key. */
        s.opaque = true;
        s.signer = &parties[ERIN];
        free(signed_file);
        signed_file = cms_sign(m.entity_file, "sign-encrypt-ec.smime", &s);
        ec_enc = cms_encrypt(signed_file, "sign-encrypt-ec.p7m", &parties[CAROL], "-aes-256-gcm", false);
        free(m.from);
        assert_true(asprintf(&m.from, "%s <%s>", parties[ERIN].display, parties[ERIN].address) > 0);
        ec_message = compose("sign-encrypt-ec.eml", &m, NULL, ec_enc);
        e = open_message("Decrypt", ec_message);
        expect_status(&e, "encrypted", "valid", "opaque-signed then encrypted to EC");
        expect_cleartext(&e, &m, NULL, "opaque-signed then encrypted to EC");
        expect_decrypted_with(&e, &parties[CAROL], "opaque-signed then encrypted to EC");
}

static void test_triple_wrapped(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("triple", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *inner = NULL, *enc = NULL, *outer = NULL, *message = NULL;
        _cleanup_(opened_done) Opened d = {}, v = {};
        SignSpec s = {.signer = &parties[ALICE]};

        (void) state;
        inner = cms_sign(m.entity_file, "triple-inner.smime", &s);
        enc = cms_encrypt(inner, "triple.p7m", &parties[BOB], "-aes-256-cbc", true);
        outer = cms_sign(enc, "triple-outer.smime", &s);
        message = compose("triple.eml", &m, NULL, outer);

        d = open_message("Decrypt", message);
        expect_status(&d, "encrypted", "valid", "triple wrapped");
        expect_cleartext(&d, &m, NULL, "triple wrapped");
        expect_signer(&d, &parties[ALICE], "Open Test Root", "triple wrapped");
        expect_decrypted_with(&d, &parties[BOB], "triple wrapped");

        /* Verify reaches the encrypted layer and stops there. */
        v = open_message("Verify", message);
        if (v.r >= 0)
                fail_msg("Verify of a triple-wrapped message succeeded: encryption=%s", v.encryption);
        assert_string_equal(v.error_name, SMIMED_ERROR_INVALID_MESSAGE);
}

/* The layer under an encrypted one is read with the decryption (one worker
 * request for both): a second encryption inside leads to a second key
 * choice, and content that cannot be read fails the call as invalid, as a
 * layer read on its own would, while the decryption itself is on record. */
static void expect_invalid_fd(const char *method, int input, const char *what);

static void test_encrypted_then_encrypted(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("encrypt-encrypt", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *inner = NULL, *outer = NULL, *message = NULL;
        _cleanup_(opened_done) Opened d = {};

        (void) state;
        inner = cms_encrypt(m.entity_file, "encrypt-encrypt-inner.p7m", &parties[CAROL], "-aes-256-gcm", false);
        outer = cms_encrypt(inner, "encrypt-encrypt.p7m", &parties[BOB], "-aes-256-cbc", false);
        message = compose("encrypt-encrypt.eml", &m, NULL, outer);
        d = open_message("Decrypt", message);
        expect_status(&d, "encrypted", "not-signed", "encrypted twice");
        expect_cleartext(&d, &m, NULL, "encrypted twice");
        expect_decrypted_with(&d, &parties[CAROL], "encrypted twice (the inner key is the last used)");
}

static void test_encrypted_unreadable_content(void **state) {
        static const char broken[] = "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
                                     "Content-Transfer-Encoding: base64\r\n"
                                     "\r\n"
                                     "bm90IGEgQ01TIHN0cnVjdHVyZQ==\r\n";
        _cleanup_(mail_done) Mail m = mail_new("encrypt-broken", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *entity = NULL, *enc = NULL, *message = NULL, *good = NULL, *good_message = NULL;
        _cleanup_(opened_done) Opened ok = {};
        _cleanup_(closep) int in = -1;

        (void) state;
        entity = write_named("encrypt-broken-entity.txt", broken, strlen(broken));
        enc = cms_encrypt(entity, "encrypt-broken.p7m", &parties[BOB], "-aes-256-cbc", false);
        message = compose("encrypt-broken.eml", &m, NULL, enc);
        in = open(message, O_RDONLY | O_CLOEXEC);
        assert_true(in >= 0);
        expect_invalid_fd("Decrypt", in, "encrypted content that is no S/MIME");

        /* The next message is opened as usual. */
        good = cms_encrypt(m.entity_file, "encrypt-broken-good.p7m", &parties[BOB], "-aes-256-cbc", false);
        good_message = compose("encrypt-broken-good.eml", &m, NULL, good);
        ok = open_message("Decrypt", good_message);
        expect_status(&ok, "encrypted", "not-signed", "after the unreadable content");
        expect_cleartext(&ok, &m, NULL, "after the unreadable content");
}

/* ---- 4. tampered ---- */

static void test_tampered_body_is_invalid(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("tampered", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *signed_file = NULL, *message = NULL;
        _cleanup_(bytes_done) Bytes smime = {};
        _cleanup_(opened_done) Opened v = {};
        SignSpec s = {.signer = &parties[ALICE]};
        char *hit;

        (void) state;
        signed_file = cms_sign(m.entity_file, "tampered.smime", &s);

        /* One byte of the signed text changes, in the message and in what we expect back. */
        smime = read_path(signed_file);
        hit = strstr(smime.data, "Hello ");
        assert_non_null(hit);
        hit[1] = 'J';
        write_path(signed_file, smime.data, smime.size);
        hit = strstr(m.body, "Hello ");
        assert_non_null(hit);
        hit[1] = 'J';

        message = compose("tampered.eml", &m, NULL, signed_file);
        v = open_message("Verify", message);
        expect_status(&v, "not-encrypted", "invalid", "tampered body");
        expect_cleartext(&v, &m, NULL, "tampered body");
}

/* ---- 5. bad signers ---- */

/* A message signed by p (its certificate in the message, digest md, From
 * from or p) gives signature, and p's certificate is not stored by it. */
static void check_bad_signer(const char *name, Party *p, const char *md, const char *from, const char *signature) {
        _cleanup_(mail_done) Mail m = mail_new(name, p, &parties[BOB]);
        _cleanup_free_ char *signed_file = NULL, *message = NULL, *signed_name = NULL, *message_name = NULL;
        _cleanup_(opened_done) Opened v = {}, d = {};
        _cleanup_(capability_done) Capability c = {};
        SignSpec s = {.signer = p, .md = md};

        assert_true(asprintf(&signed_name, "%s.smime", name) > 0);
        assert_true(asprintf(&message_name, "%s.eml", name) > 0);
        assert_int_equal(lookup_count(p->address), 0);
        signed_file = cms_sign(m.entity_file, signed_name, &s);
        message = compose(message_name, &m, from, signed_file);

        v = open_message("Verify", message);
        expect_status(&v, "not-encrypted", signature, name);
        expect_cleartext(&v, &m, from, name);
        assert_non_null(v.signature_message);
        assert_true(strlen(v.signature_message) > 0);
        if (!v.has_signer || !v.signer_fingerprint || strcasecmp(v.signer_fingerprint, p->fp) != 0)
                fail_msg("%s: the status does not describe the signer %s", name, p->fp);

        d = open_message("Decrypt", message);
        expect_status(&d, "not-encrypted", signature, name);
        expect_cleartext(&d, &m, from, name);

        /* Only a valid signer is stored. */
        if (lookup_count(p->address) != 0)
                fail_msg("%s: the certificate of a signer reported %s was stored", name, signature);
        c = encrypt_capability(p->address);
        assert_false(c.possible);
        assert_string_equal(c.reason, "no-certificate");
}

static void test_weak_signature_not_stored(void **state) {
        (void) state;
        check_bad_signer("weak-new-signer", &parties[WENDY], "sha1", NULL, "weak-algorithm");
}

static void test_sender_mismatch_not_stored(void **state) {
        _cleanup_free_ char *from = NULL;

        (void) state;
        assert_true(asprintf(&from, "%s <%s>", parties[DAVE].display, parties[DAVE].address) > 0);
        check_bad_signer("mismatch-new-signer", &parties[SAM], NULL, from, "sender-mismatch");
}

static void test_expired_signer(void **state) {
        (void) state;
        check_bad_signer("expired", &parties[OSCAR], NULL, NULL, "expired");
}

static void test_not_yet_valid_signer(void **state) {
        (void) state;
        check_bad_signer("not-yet-valid", &parties[FIONA], NULL, NULL, "not-yet-valid");
}

static void test_revoked_signer(void **state) {
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        uint64_t serial = pki_cert_serial(parties[RITA].cert);
        PkiCrlOptions o;

        (void) state;
        pki_crl_options_init(&o);
        o.crl_number = 1;
        crl = pki_crl_new(root, &serial, 1, &o);
        assert_non_null(crl);
        import_crl(crl);
        check_bad_signer("revoked", &parties[RITA], NULL, NULL, "revoked");
}

static void test_untrusted_signer(void **state) {
        (void) state;
        check_bad_signer("untrusted", &parties[UMA], NULL, NULL, "untrusted");
}

/* ---- 6. sender ---- */

static void test_sender_mismatch(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("mismatch", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *signed_file = NULL, *message = NULL, *good = NULL, *forged_from = NULL;
        _cleanup_(opened_done) Opened v = {}, g = {};
        SignSpec s = {.signer = &parties[ALICE]};

        (void) state;
        signed_file = cms_sign(m.entity_file, "mismatch.smime", &s);
        /* Alice's signature under Dave's name. */
        assert_true(asprintf(&forged_from, "%s <%s>", parties[DAVE].display, parties[DAVE].address) > 0);
        message = compose("mismatch.eml", &m, forged_from, signed_file);
        v = open_message("Verify", message);
        expect_status(&v, "not-encrypted", "sender-mismatch", "From is not the signer");
        expect_cleartext(&v, &m, forged_from, "From is not the signer");
        assert_non_null(v.signature_message);
        assert_true(strlen(v.signature_message) > 0);

        /* The same signature under a bare From address of the signer is fine. */
        good = compose("mismatch-bare.eml", &m, parties[ALICE].address, signed_file);
        g = open_message("Verify", good);
        expect_status(&g, "not-encrypted", "valid", "bare From of the signer");
        expect_cleartext(&g, &m, parties[ALICE].address, "bare From of the signer");
}

/* ---- 7. not for us ---- */

static void test_encrypted_for_someone_else(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("not-for-us", &parties[ALICE], &parties[DAVE]);
        _cleanup_free_ char *enc = NULL, *message = NULL, *signed_file = NULL, *signed_enc = NULL,
                            *signed_message = NULL;
        _cleanup_(opened_done) Opened d = {}, s = {};
        SignSpec spec = {.signer = &parties[ALICE]};

        (void) state;
        enc = cms_encrypt(m.entity_file, "not-for-us.p7m", &parties[DAVE], "-aes-256-cbc", false);
        message = compose("not-for-us.eml", &m, NULL, enc);
        d = open_message("Decrypt", message);
        expect_success(&d, "encrypted for Dave");
        if (!streq(d.encryption, "no-private-key"))
                fail_msg("encrypted for Dave: encryption=%s (%s), expected no-private-key", d.encryption,
                         strempty(d.encryption_message));
        assert_string_equal(strempty(d.encryption_message), NO_PRIVATE_KEY_MESSAGE);
        assert_int_equal(d.content, 0);
        assert_int_equal(d.output.size, 0);
        assert_true(d.has_size);
        assert_int_equal(d.size, 0);
        assert_null(d.key);

        /* Signed inside: the signature cannot be seen either, and nothing leaks. */
        signed_file = cms_sign(m.entity_file, "not-for-us-signed.smime", &spec);
        signed_enc = cms_encrypt(signed_file, "not-for-us-signed.p7m", &parties[DAVE], "-aes-256-gcm", false);
        signed_message = compose("not-for-us-signed.eml", &m, NULL, signed_enc);
        s = open_message("Decrypt", signed_message);
        expect_success(&s, "signed and encrypted for Dave");
        assert_string_equal(s.encryption, "no-private-key");
        assert_int_equal(s.content, 0);
        assert_int_equal(s.output.size, 0);
        if (streq(s.signature, "valid"))
                fail_msg("a signature nobody could see was reported valid");
}

/* ---- 8. auto-import ---- */

static void test_auto_import_of_valid_signers(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("auto-import", &parties[FRANK], &parties[BOB]);
        _cleanup_(mail_done) Mail u = mail_new("no-auto-import", &parties[UMA], &parties[BOB]);
        _cleanup_free_ char *signed_file = NULL, *message = NULL, *u_signed = NULL, *u_message = NULL;
        _cleanup_(opened_done) Opened v = {}, w = {};
        _cleanup_(capability_done) Capability before = {}, after = {}, u_before = {}, u_after = {};
        SignSpec s = {.signer = &parties[FRANK], .certfile = sub_ca_file};
        SignSpec us = {.signer = &parties[UMA]};

        (void) state;
        before = encrypt_capability(parties[FRANK].address);
        assert_false(before.possible);
        assert_string_equal(before.reason, "no-certificate");
        assert_int_equal(lookup_count(parties[FRANK].address), 0);

        /* Frank's certificate and his CA travel in the message; the root is trusted. */
        signed_file = cms_sign(m.entity_file, "auto-import.smime", &s);
        message = compose("auto-import.eml", &m, NULL, signed_file);
        v = open_message("Verify", message);
        expect_status(&v, "not-encrypted", "valid", "new sender");
        expect_cleartext(&v, &m, NULL, "new sender");
        expect_signer(&v, &parties[FRANK], "Open Test Sub CA", "new sender");

        after = encrypt_capability(parties[FRANK].address);
        if (!after.possible)
                fail_msg("after a valid signature, encrypting to %s is not possible: %s", parties[FRANK].address,
                         after.reason);
        assert_string_equal(after.reason, "");
        assert_non_null(after.fingerprint);
        assert_true(strcasecmp(after.fingerprint, parties[FRANK].fp) == 0);
        assert_int_equal(lookup_count(parties[FRANK].address), 1);

        /* An untrusted signer is not stored. */
        u_before = encrypt_capability(parties[UMA].address);
        assert_false(u_before.possible);
        assert_string_equal(u_before.reason, "no-certificate");
        u_signed = cms_sign(u.entity_file, "no-auto-import.smime", &us);
        u_message = compose("no-auto-import.eml", &u, NULL, u_signed);
        w = open_message("Verify", u_message);
        expect_status(&w, "not-encrypted", "untrusted", "untrusted new sender");
        u_after = encrypt_capability(parties[UMA].address);
        assert_false(u_after.possible);
        assert_string_equal(u_after.reason, "no-certificate");
}

/* ---- 9. bad input ---- */

static void expect_invalid_fd(const char *method, int input, const char *what) {
        _cleanup_(opened_done) Opened o = open_message_fd(method, input, -1);

        if (o.r >= 0)
                fail_msg("%s: %s succeeded (encryption=%s signature=%s), expected %s", what, method, o.encryption,
                         o.signature, SMIMED_ERROR_INVALID_MESSAGE);
        if (!streq(o.error_name, SMIMED_ERROR_INVALID_MESSAGE))
                fail_msg("%s: %s failed with %s (%s), expected %s", what, method, o.error_name, o.error_message,
                         SMIMED_ERROR_INVALID_MESSAGE);
        assert_int_equal(o.output.size, 0);
}

static void expect_invalid(const char *p, const char *what) {
        _cleanup_(closep) int in1 = open(p, O_RDONLY | O_CLOEXEC), in2 = open(p, O_RDONLY | O_CLOEXEC);

        assert_true(in1 >= 0 && in2 >= 0);
        expect_invalid_fd("Decrypt", in1, what);
        expect_invalid_fd("Verify", in2, what);
}

/* The daemon still answers, and still opens a good message. */
static void expect_still_working(const char *name) {
        SignSpec s = {.signer = &parties[ALICE]};
        _cleanup_(capability_done) Capability c = encrypt_capability(parties[BOB].address);

        assert_true(c.possible);
        check_signed(name, &s, "valid");
}

static char *base64_entity(const char *name, const char *content_type, const char *der_file) {
        _cleanup_free_ char *b64 = NULL, *b64_name = NULL, *text = NULL;
        _cleanup_(bytes_done) Bytes body = {};

        assert_true(asprintf(&b64_name, "%s.b64", name) > 0);
        b64 = path(b64_name);
        openssl("base64", "-in", der_file, "-out", b64, NULL);
        body = read_path(b64);
        assert_true(asprintf(&text,
                             "From: Alice <alice@example.org>\nTo: Bob <bob@example.org>\nSubject: %s\n"
                             "MIME-Version: 1.0\nContent-Type: %s\nContent-Transfer-Encoding: base64\n\n%s",
                             name, content_type, body.data) > 0);
        return write_named(name, text, strlen(text));
}

/* A CompressedData ContentInfo (RFC 3274) around a stored zlib stream of
 * text, written by `openssl asn1parse -genconf` (this openssl has no zlib). */
static char *compressed_data_der(const char *text) {
        _cleanup_free_ char *conf = NULL, *conf_file = NULL, *hex = NULL;
        size_t n = strlen(text), len = 0;
        uint32_t a = 1, b = 0;
        char *der = path("compressed.der");

        for (size_t i = 0; i < n; i++) {
                a = (a + (unsigned char) text[i]) % 65521;
                b = (b + a) % 65521;
        }
        assert_true(n < 0xffff);
        hex = malloc(2 * (n + 11) + 1);
        assert_non_null(hex);
        len += (size_t) sprintf(hex + len, "780101%02x%02x%02x%02x", (unsigned) (n & 0xff), (unsigned) (n >> 8),
                                (unsigned) (~n & 0xff), (unsigned) ((~n >> 8) & 0xff));
        for (size_t i = 0; i < n; i++)
                len += (size_t) sprintf(hex + len, "%02x", (unsigned char) text[i]);
        sprintf(hex + len, "%08x", (b << 16) | a);

        assert_true(asprintf(&conf,
                             "asn1=SEQUENCE:ci\n[ci]\ntype=OID:1.2.840.113549.1.9.16.1.9\n"
                             "content=EXPLICIT:0,SEQUENCE:cd\n[cd]\nversion=INTEGER:0\nalg=SEQUENCE:alg\n"
                             "encap=SEQUENCE:encap\n[alg]\noid=OID:1.2.840.113549.1.9.16.3.8\n[encap]\n"
                             "type=OID:pkcs7-data\ncontent=EXPLICIT:0,FORMAT:HEX,OCTETSTRING:%s\n",
                             hex) > 0);
        conf_file = write_named("compressed.cnf", conf, strlen(conf));
        openssl("asn1parse", "-genconf", conf_file, "-out", der, "-noout", NULL);
        return der;
}

static void test_bad_input(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("bad-input", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *enc = NULL, *enc_message = NULL, *truncated = NULL, *garbage = NULL, *garbage_cms = NULL,
                            *garbage_sig = NULL, *compressed = NULL, *compressed_untyped = NULL, *certs_der = NULL,
                            *certs_as_signed = NULL, *der = NULL, *opaque = NULL, *opaque_message = NULL,
                            *opaque_truncated = NULL, *text = NULL;
        _cleanup_(bytes_done) Bytes whole = {}, opaque_whole = {}, entity = {};
        SignSpec s = {.signer = &parties[ALICE], .opaque = true};
        unsigned char noise[3000];
        char token[33];
        _cleanup_(closep) int empty1 = memfd_create("empty", MFD_CLOEXEC), empty2 = memfd_create("empty", MFD_CLOEXEC);

        (void) state;
        /* Binary noise. */
        assert_int_equal(RAND_bytes(noise, sizeof(noise)), 1);
        noise[0] = 0;
        garbage = write_named("garbage.bin", noise, sizeof(noise));
        expect_invalid(garbage, "binary garbage");

        /* An enveloped-data entity whose base64 is noise. */
        random_hex(token, 16);
        der = write_named("garbage-cms.der", noise, sizeof(noise));
        garbage_cms = base64_entity("garbage-cms.eml",
                                    "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m", der);
        expect_invalid(garbage_cms, "enveloped-data of noise");

        /* multipart/signed whose signature is noise. */
        entity = read_path(m.entity_file);
        assert_true(asprintf(&text,
                             "From: %s\nTo: %s\nSubject: %s\nMIME-Version: 1.0\n"
                             "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; "
                             "micalg=sha-256; boundary=\"b-%s\"\n\n"
                             "--b-%s\n%s\n--b-%s\nContent-Type: application/pkcs7-signature; name=smime.p7s\n"
                             "Content-Transfer-Encoding: base64\n\nTm90IGEgc2lnbmF0dXJlIGF0IGFsbCwganVzdCB0ZXh0Lg==\n"
                             "--b-%s--\n",
                             m.from, m.to, m.subject, token, token, entity.data, token, token) > 0);
        garbage_sig = write_named("garbage-sig.eml", text, strlen(text));
        expect_invalid(garbage_sig, "multipart/signed with a noise signature");

        /* An enveloped message cut in half: its base64 ends mid-way. */
        enc = cms_encrypt(m.entity_file, "bad-input.p7m", &parties[BOB], "-aes-256-cbc", false);
        enc_message = compose("bad-input.eml", &m, NULL, enc);
        whole = read_path(enc_message);
        truncated = write_named("truncated.eml", whole.data, whole.size / 2);
        expect_invalid(truncated, "enveloped-data cut in half");

        /* An opaque signed message cut in half. */
        opaque = cms_sign(m.entity_file, "bad-input-opaque.smime", &s);
        opaque_message = compose("bad-input-opaque.eml", &m, NULL, opaque);
        opaque_whole = read_path(opaque_message);
        opaque_truncated = write_named("truncated-opaque.eml", opaque_whole.data, opaque_whole.size / 2);
        expect_invalid(opaque_truncated, "signed-data cut in half");

        /* S/MIME types smimed does not open. */
        der = mfree(der);
        der = compressed_data_der(entity.data);
        compressed = base64_entity("compressed.eml",
                                   "application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z", der);
        expect_invalid(compressed, "compressed-data");
        compressed_untyped = base64_entity("compressed-untyped.eml", "application/pkcs7-mime; name=smime.p7m", der);
        expect_invalid(compressed_untyped, "compressed-data without smime-type");

        certs_der = path("certs-only.p7c");
        openssl("crl2pkcs7", "-nocrl", "-certfile", parties[ALICE].cert_file, "-certfile", root_file, "-outform",
                "DER", "-out", certs_der, NULL);
        /* A certs-only message is opened (its certificates judged and stored):
         * test-policy's test_certs_only. Labelled signed-data, with no signer,
         * it is still no signed message. */
        certs_as_signed = base64_entity("certs-as-signed.eml",
                                        "application/pkcs7-mime; smime-type=signed-data; name=smime.p7m", certs_der);
        expect_invalid(certs_as_signed, "certs-only labelled signed-data");

        /* Nothing at all. */
        assert_true(empty1 >= 0 && empty2 >= 0);
        expect_invalid_fd("Decrypt", empty1, "empty input");
        expect_invalid_fd("Verify", empty2, "empty input");

        expect_still_working("after-bad-input");
}

/* Not S/MIME: comes back as it came. */
static void test_plain_message_as_it_is(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("plain", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *message = NULL, *text = NULL;
        _cleanup_(bytes_done) Bytes entity = {}, sent = {};
        _cleanup_(opened_done) Opened v = {}, d = {};

        (void) state;
        entity = read_path(m.entity_file);
        assert_true(asprintf(&text, "From: %s\nTo: %s\nSubject: %s\n%s", m.from, m.to, m.subject, entity.data) > 0);
        message = write_named("plain.eml", text, strlen(text));
        sent = read_path(message);

        v = open_message("Verify", message);
        expect_status(&v, "not-encrypted", "not-signed", "plain message, Verify");
        expect_cleartext(&v, &m, NULL, "plain message, Verify");
        assert_int_equal(v.output.size, sent.size);
        assert_memory_equal(v.output.data, sent.data, sent.size);
        assert_false(v.has_signer);

        d = open_message("Decrypt", message);
        expect_status(&d, "not-encrypted", "not-signed", "plain message, Decrypt");
        assert_int_equal(d.output.size, sent.size);
        assert_memory_equal(d.output.data, sent.data, sent.size);
}

/* Signs in_file n times over; returns the file of the outermost layer. */
static char *sign_n_times(const char *stem, const char *in_file, unsigned n) {
        SignSpec s = {.signer = &parties[ALICE]};
        char *current = strdup(in_file);

        assert_non_null(current);
        for (unsigned i = 1; i <= n; i++) {
                _cleanup_free_ char *name = NULL;
                char *next;

                assert_true(asprintf(&name, "%s-%u.smime", stem, i) > 0);
                next = cms_sign(current, name, &s);
                free(current);
                current = next;
        }
        return current;
}

static void test_nesting_depth(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("nested", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *deepest_allowed = NULL, *too_deep = NULL, *allowed_message = NULL,
                            *too_deep_message = NULL, *much_too_deep = NULL, *much_too_deep_message = NULL;
        _cleanup_(opened_done) Opened ok = {};
        SignSpec s = {.signer = &parties[ALICE]};

        (void) state;
        deepest_allowed = sign_n_times("nested", m.entity_file, MAX_LAYERS);
        allowed_message = compose("nested-8.eml", &m, NULL, deepest_allowed);

        /* One layer more than the contract allows, and then more. */
        too_deep = cms_sign(deepest_allowed, "nested-9.smime", &s);
        too_deep_message = compose("nested-9.eml", &m, NULL, too_deep);
        expect_invalid(too_deep_message, "9 signed layers");
        much_too_deep = sign_n_times("nested-more", too_deep, 4);
        much_too_deep_message = compose("nested-13.eml", &m, NULL, much_too_deep);
        expect_invalid(much_too_deep_message, "13 signed layers");
        expect_still_working("after-nesting");

        /* Exactly as deep as the contract allows ("up to 8 deep"): opens. */
        ok = open_message("Verify", allowed_message);
        expect_status(&ok, "not-encrypted", "valid", "8 signed layers");
        expect_cleartext(&ok, &m, NULL, "8 signed layers");
}

/* fds smimed cannot use. */
static void test_unusable_fds(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("bad-fds", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *signed_file = NULL, *message = NULL;
        _cleanup_(closep) int input = -1, readonly_output = -1, writeonly_input = -1, output = -1;
        _cleanup_(opened_done) Opened a = {}, b = {};
        SignSpec s = {.signer = &parties[ALICE]};

        (void) state;
        signed_file = cms_sign(m.entity_file, "bad-fds.smime", &s);
        message = compose("bad-fds.eml", &m, NULL, signed_file);

        /* An output that cannot be written. */
        input = open(message, O_RDONLY | O_CLOEXEC);
        readonly_output = open(message, O_RDONLY | O_CLOEXEC);
        assert_true(input >= 0 && readonly_output >= 0);
        assert_int_equal(open_call(bus, "Verify", input, readonly_output, -1, &a), 0);
        if (a.r >= 0)
                fail_msg("Verify into a read-only fd succeeded");
        assert_string_equal(a.error_name, SMIMED_ERROR_INVALID_ARGUMENT);

        /* An input that cannot be read. */
        writeonly_input = open(message, O_WRONLY | O_APPEND | O_CLOEXEC);
        output = memfd_create("out", MFD_CLOEXEC);
        assert_true(writeonly_input >= 0 && output >= 0);
        assert_int_equal(open_call(bus, "Verify", writeonly_input, output, -1, &b), 0);
        if (b.r >= 0)
                fail_msg("Verify from a write-only fd succeeded");
        assert_string_equal(b.error_name, SMIMED_ERROR_INVALID_ARGUMENT);

        expect_still_working("after-bad-fds");
}

/* ---- 10. polkit ---- */

typedef struct DenialArgs {
        const char *signed_message;
        const char *encrypted_message;
} DenialArgs;

/* In the child, as the test user: Verify, then Decrypt. Writes
 * "<verify signature or error>|<decrypt error>|<decrypt output bytes>\n<verify output>". */
static int as_test_user(char *out, size_t size, void *userdata) {
        DenialArgs *a = userdata;
        Opened v = {}, d = {};
        sd_bus *b = NULL;
        int in1, in2, out1, out2;
        struct stat st;
        char buf[2048];
        ssize_t n;

        if (harness_bus_open(&b) < 0)
                return 2;
        in1 = open(a->signed_message, O_RDONLY | O_CLOEXEC);
        in2 = open(a->encrypted_message, O_RDONLY | O_CLOEXEC);
        out1 = memfd_create("verify-out", MFD_CLOEXEC);
        out2 = memfd_create("decrypt-out", MFD_CLOEXEC);
        if (in1 < 0 || in2 < 0 || out1 < 0 || out2 < 0)
                return 3;
        if (open_call(b, "Verify", in1, out1, -1, &v) < 0 || open_call(b, "Decrypt", in2, out2, -1, &d) < 0)
                return 4;
        if (fstat(out2, &st) < 0)
                return 5;
        n = pread(out1, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return 6;
        buf[n] = '\0';
        snprintf(out, size, "%s|%s|%jd\n%s", v.r < 0 ? strempty(v.error_name) : strempty(v.signature),
                 d.r < 0 ? strempty(d.error_name) : strempty(d.encryption), (intmax_t) st.st_size, buf);
        opened_done(&v);
        opened_done(&d);
        sd_bus_flush_close_unref(b);
        return 0;
}

static void test_unprivileged_user(void **state) {
        _cleanup_(mail_done) Mail m = mail_new("unprivileged", &parties[ALICE], &parties[BOB]);
        _cleanup_free_ char *signed_file = NULL, *signed_message = NULL, *enc = NULL, *enc_message = NULL, *out = NULL,
                            *want_head = NULL;
        _cleanup_(opened_done) Opened root_d = {}, child_v = {};
        SignSpec s = {.signer = &parties[ALICE]};
        DenialArgs a;
        char *nl;

        (void) state;
        signed_file = cms_sign(m.entity_file, "unprivileged.smime", &s);
        signed_message = compose("unprivileged-signed.eml", &m, NULL, signed_file);
        enc = cms_encrypt(m.entity_file, "unprivileged.p7m", &parties[BOB], "-aes-256-cbc", false);
        enc_message = compose("unprivileged-encrypted.eml", &m, NULL, enc);
        assert_int_equal(chmod(signed_message, 0644), 0);
        assert_int_equal(chmod(enc_message, 0644), 0);

        /* root may decrypt it: the denial below is about who asks. */
        root_d = open_message("Decrypt", enc_message);
        expect_status(&root_d, "encrypted", "not-signed", "Decrypt as root");

        a = (DenialArgs){.signed_message = signed_message, .encrypted_message = enc_message};
        assert_int_equal(harness_run_as_test_user(harness, as_test_user, &a, &out), 0);
        nl = strchr(out, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_true(asprintf(&want_head, "valid|%s|0", SD_BUS_ERROR_ACCESS_DENIED) > 0);
        if (!streq(out, want_head))
                fail_msg("as " HARNESS_TEST_USER ": got \"%s\", expected \"%s\"", out, want_head);

        /* What Verify wrote for the test user is the cleartext. */
        child_v = (Opened){.content = 1, .has_size = true};
        child_v.output.data = strdup(nl + 1);
        child_v.output.size = strlen(nl + 1);
        child_v.size = child_v.output.size;
        expect_cleartext(&child_v, &m, NULL, "Verify as " HARNESS_TEST_USER);
}

/* ---- 9, continued: MaxMessageSize, on a restarted smimed ---- */

/* message with X-Padding fields added so that it is exactly size bytes. */
static char *padded_to(const char *name, const char *message, size_t size) {
        _cleanup_(bytes_done) Bytes b = read_path(message);
        char *text, *q;
        size_t missing;

        assert_true(b.size + 16 < size);
        missing = size - b.size;
        text = malloc(size + 1);
        assert_non_null(text);
        q = text;
        /* "X-Padding: " + filler + "\n", lines of at most 78 bytes */
        while (missing > 0) {
                size_t line = missing > 78 ? 78 : missing;

                if (missing - line > 0 && missing - line < 13)
                        line = missing - 13; /* leave room for one more whole field */
                assert_true(line >= 13);
                q += sprintf(q, "X-Padding: ");
                memset(q, 'x', line - 12);
                q += line - 12;
                *q++ = '\n';
                missing -= line;
        }
        memcpy(q, b.data, b.size);
        q[b.size] = '\0';
        assert_int_equal((size_t) (q - text) + b.size, size);
        q = write_named(name, text, size);
        free(text);
        return q;
}

static void test_max_message_size(void **state) {
        _cleanup_(mail_done) Mail big = mail_new_sized("big", &parties[ALICE], &parties[BOB], 1500);
        _cleanup_(mail_done) Mail small = mail_new_sized("small", &parties[ALICE], &parties[BOB], 300);
        _cleanup_free_ char *text = NULL, *config = NULL, *big_signed = NULL, *big_message = NULL,
                            *small_signed = NULL, *small_message = NULL, *at_limit = NULL, *over_limit = NULL;
        _cleanup_(opened_done) Opened o = {}, at = {};
        SignSpec s = {.signer = &parties[ALICE]};
        const size_t limit = 64 * 1024;
        struct stat st;
        int status;

        (void) state;
        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
        text = harness_config_text(harness, "MaxMessageSize=64K\n");
        config = harness_write_file(harness, "smimed-64k.conf", text, 0644);
        assert_int_equal(harness_start_smimed(harness, config, NULL), 0);
        bus = sd_bus_flush_close_unref(bus);
        assert_int_equal(harness_bus_open(&bus), 0);

        big_signed = cms_sign(big.entity_file, "big.smime", &s);
        big_message = compose("big.eml", &big, NULL, big_signed);
        assert_int_equal(stat(big_message, &st), 0);
        assert_true((size_t) st.st_size > limit);
        expect_invalid(big_message, "a message over MaxMessageSize");

        small_signed = cms_sign(small.entity_file, "small.smime", &s);
        small_message = compose("small.eml", &small, NULL, small_signed);
        assert_int_equal(stat(small_message, &st), 0);
        assert_true((size_t) st.st_size < limit);
        o = open_message("Verify", small_message);
        expect_status(&o, "not-encrypted", "valid", "a message under MaxMessageSize");
        expect_cleartext(&o, &small, NULL, "a message under MaxMessageSize");

        /* The limit itself is allowed, one byte more is not. */
        at_limit = padded_to("at-limit.eml", small_message, limit);
        over_limit = padded_to("over-limit.eml", small_message, limit + 1);
        at = open_message("Verify", at_limit);
        expect_status(&at, "not-encrypted", "valid", "a message of exactly MaxMessageSize");
        expect_cleartext(&at, &small, NULL, "a message of exactly MaxMessageSize");
        expect_invalid(over_limit, "a message one byte over MaxMessageSize");

        expect_still_working("after-max-size");
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
                cmocka_unit_test(test_signed_rsa_detached),
                cmocka_unit_test(test_signed_rsa_opaque),
                cmocka_unit_test(test_signed_ec_detached),
                cmocka_unit_test(test_signed_ec_opaque),
                cmocka_unit_test(test_signed_without_certificates_known_signer),
                cmocka_unit_test(test_signed_without_certificates_unknown_signer),
                cmocka_unit_test(test_signed_sha1_is_weak),
                cmocka_unit_test(test_signed_sha512_is_valid),
                cmocka_unit_test(test_encrypted_rsa_pkcs1_cbc),
                cmocka_unit_test(test_encrypted_rsa_oaep_cbc),
                cmocka_unit_test(test_encrypted_rsa_pkcs1_gcm),
                cmocka_unit_test(test_encrypted_rsa_oaep_gcm),
                cmocka_unit_test(test_encrypted_rsa_aes128),
                cmocka_unit_test(test_encrypted_ec_cbc),
                cmocka_unit_test(test_encrypted_ec_gcm),
                cmocka_unit_test(test_encrypted_to_several_recipients),
                cmocka_unit_test(test_x_pkcs7_mime),
                cmocka_unit_test(test_p7m_as_octet_stream),
                cmocka_unit_test(test_x_pkcs7_signature),
                cmocka_unit_test(test_verify_refuses_encrypted),
                cmocka_unit_test(test_signed_then_encrypted),
                cmocka_unit_test(test_triple_wrapped),
                cmocka_unit_test(test_encrypted_then_encrypted),
                cmocka_unit_test(test_encrypted_unreadable_content),
                cmocka_unit_test(test_tampered_body_is_invalid),
                cmocka_unit_test(test_weak_signature_not_stored),
                cmocka_unit_test(test_sender_mismatch_not_stored),
                cmocka_unit_test(test_expired_signer),
                cmocka_unit_test(test_not_yet_valid_signer),
                cmocka_unit_test(test_revoked_signer),
                cmocka_unit_test(test_untrusted_signer),
                cmocka_unit_test(test_sender_mismatch),
                cmocka_unit_test(test_encrypted_for_someone_else),
                cmocka_unit_test(test_auto_import_of_valid_signers),
                cmocka_unit_test(test_plain_message_as_it_is),
                cmocka_unit_test(test_bad_input),
                cmocka_unit_test(test_nesting_depth),
                cmocka_unit_test(test_unusable_fds),
                cmocka_unit_test(test_unprivileged_user),
                cmocka_unit_test(test_max_message_size),
                cmocka_unit_test(test_clean_stop),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
