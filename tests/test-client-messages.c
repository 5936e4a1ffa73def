/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The message side of the clients on a real smimed (SoftHSM2, dbus-daemon,
 * polkitd): libsmimed's sign, encrypt, decrypt, verify and open, from memory
 * and through pipes; smimectl's sign, encrypt, decrypt and verify with their
 * status lines, --json, exit codes, pipes and atomic -o; and the descriptors
 * a client passes keep their O_NONBLOCK as they were. The other side is the
 * openssl command line. One smimed for the whole file. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "harness.h"
#include "json-parse.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"
#include "smimed.h"
#include "strv.h"

#define ALICE "alice@example.com"    /* the token key's certificate */
#define BOB "bob@example.com"        /* a certificate without a key in the token */
#define PARTNER "partner@example.org" /* signs with a key of its own, under a CA nobody trusts */
#define NOBODY "nobody@example.com"  /* no certificate at all */

static Harness *harness;
static smimed *client;
static PkiCert *root, *leaf, *bob, *stranger_root, *partner;
static char leaf_fp[65], bob_fp[65], partner_fp[65];
static char *root_file, *stranger_root_file, *partner_key_file, *partner_cert_file;
static char *token;        /* random, in every Subject: nothing here is a constant result */
static char *body_token;   /* random, in every body only: it must never travel in the clear */
static char *message;      /* the plain message, CRLF */
static char *message_file; /* and as a file */

/* ---- small things ---- */

typedef struct Bytes {
        char *data; /* NUL-terminated; may hold NULs */
        size_t size;
} Bytes;

static void bytes_done(Bytes *b) {
        free(b->data);
        *b = (Bytes) {};
}

static char *path(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", harness->dir, name) > 0);
        return p;
}

static void write_all(int fd, const void *data, size_t size) {
        const char *c = data;

        while (size > 0) {
                ssize_t n = write(fd, c, size);

                if (n < 0 && errno == EINTR)
                        continue;
                assert_true(n > 0);
                c += n;
                size -= (size_t) n;
        }
}

/* Writes data to a new file (mode 0644) in the scratch directory. */
static char *write_named(const char *name, const void *data, size_t size) {
        char *p = path(name);
        int fd;

        (void) unlink(p);
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        write_all(fd, data, size);
        assert_int_equal(fchmod(fd, 0644), 0);
        close(fd);
        return p;
}

static Bytes read_fd_to_end(int fd) {
        Bytes b = {};
        size_t allocated = 0;

        for (;;) {
                ssize_t n;

                if (allocated - b.size < 4097) {
                        allocated += 65536;
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
        Bytes b;
        int fd = open(p, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                fail_msg("cannot open %s: %s", p, strerror(errno));
        b = read_fd_to_end(fd);
        close(fd);
        return b;
}

static bool exists(const char *p) {
        return access(p, F_OK) >= 0;
}

static mode_t file_mode(const char *p) {
        struct stat st;

        assert_int_equal(stat(p, &st), 0);
        return st.st_mode & 07777;
}

static mode_t current_umask(void) {
        mode_t u = umask(0);

        umask(u);
        return u;
}

static void random_hex(char *buf, size_t bytes) {
        unsigned char raw[32];

        assert_true(bytes <= sizeof(raw));
        assert_int_equal(RAND_bytes(raw, (int) bytes), 1);
        for (size_t i = 0; i < bytes; i++)
                sprintf(buf + 2 * i, "%02x", raw[i]);
}

/* A copy with CRLF line ends made LF. */
static char *lf_only(const char *s, size_t size) {
        char *out = malloc(size + 1), *o = out;

        assert_non_null(out);
        for (size_t i = 0; i < size; i++) {
                if (s[i] == '\r' && i + 1 < size && s[i + 1] == '\n')
                        continue;
                *o++ = s[i];
        }
        *o = '\0';
        return out;
}

static size_t count_lines(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                if (*s == '\n')
                        n++;
        return n;
}

/* The text of a message for this file: outer header fields, a text body
 * that carries the token and a line that looks like a boundary. */
/* noinline: GCC 12's -Wdangling-pointer mistakes what asprintf() made for the caller's frame. */
__attribute__((noinline)) static char *make_message(const char *from, const char *to, const char *subject, const char *body_tag) {
        char *m = NULL;
        int n;

        n = asprintf(&m,
                             "From: Sender <%s>\r\n"
                             "To: Receiver <%s>\r\n"
                             "Subject: %s %s\r\n"
                             "MIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=us-ascii\r\n"
                             "\r\n"
                             "Hello,\r\n"
                             "\r\n"
                             "this is %s, token %s.\r\n"
                             "--not-a-boundary\r\n",
                             from, to, subject, token, body_tag, body_token);
        if (n < 0)
                fail_msg("out of memory");
        return m;
}

/* What came back is the message sent: its From, To, Subject and
 * Content-Type fields and, byte for byte (line ends aside), its body. */
static void expect_cleartext(const char *sent, const void *got, size_t got_size, const char *what) {
        static const char *const fields[] = { "From:", "To:", "Subject:", "Content-Type:" };
        _cleanup_free_ char *want = lf_only(sent, strlen(sent)), *have = lf_only(got, got_size);
        char *want_body = strstr(want, "\n\n"), *have_body = strstr(have, "\n\n");

        assert_non_null(want_body);
        if (!have_body)
                fail_msg("%s: the output has no header block:\n%s", what, have);
        want_body[1] = '\0';
        have_body[1] = '\0';

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const char *line = strstr(want, fields[i]);
                _cleanup_free_ char *wanted_line = NULL, *with_nl = NULL;
                bool found = false;

                assert_non_null(line);
                wanted_line = strndup(line, strcspn(line, "\n"));
                assert_true(asprintf(&with_nl, "%s\n", wanted_line) > 0);
                /* A whole line of the header block. */
                for (const char *p = have; (p = strstr(p, with_nl)); p++)
                        if (p == have || p[-1] == '\n') {
                                found = true;
                                break;
                        }
                if (!found)
                        fail_msg("%s: the header block lacks \"%s\":\n%s", what, wanted_line, have);
        }
        if (!streq(want_body + 2, have_body + 2))
                fail_msg("%s: the body differs.\n--- expected\n%s--- got\n%s---", what, want_body + 2,
                         have_body + 2);
}

static void expect_error(int r, const smimed_error *e, int want_r, const char *want_name, const char *what) {
        if (r != want_r || !streq_ptr(e->name, want_name))
                fail_msg("%s: got %d (%s) %s: %s, expected %d (%s) %s", what, r, strerror(-r), strempty(e->name),
                         strempty(e->message), want_r, strerror(-want_r), strempty(want_name));
        if (!e->message || !e->message[0])
                fail_msg("%s: the error has no message", what);
}

static void expect_status(const smimed_message_status *st, const char *encryption, const char *signature,
                          const char *what) {
        if (!streq(st->encryption, encryption) || !streq(st->signature, signature))
                fail_msg("%s: expected encryption=%s signature=%s, got encryption=%s (%s) signature=%s (%s)", what,
                         encryption, signature, st->encryption, st->encryption_message, st->signature,
                         st->signature_message);
}

/* The status describes the token key's certificate as the signer. */
static void expect_leaf_signer(const smimed_message_status *st, const char *what) {
        if (!st->have_signer)
                fail_msg("%s: no signer in the status", what);
        assert_string_equal(st->signer.fingerprint, leaf_fp);
        assert_string_equal(st->signer.address, ALICE);
        assert_true(st->signer.summary[0] != '\0');
}

static void expect_string_list(char **have, const char *const *want, const char *what) {
        size_t n = 0;

        for (; want[n]; n++)
                if (!have || !have[n] || !streq(have[n], want[n]))
                        fail_msg("%s: item %zu is %s, expected %s", what, n, have && have[n] ? have[n] : "(none)",
                                 want[n]);
        if (have[n])
                fail_msg("%s: more items than expected, starting with %s", what, have[n]);
}

/* ---- running smimectl, sh and openssl ---- */

typedef struct Run {
        int status;
        char *out, *err;
} Run;

static void run_done(Run *r) {
        free(r->out);
        free(r->err);
        *r = (Run) {};
}

static Run run_argv(char **argv, bool as_test_user) {
        Run r = {};

        r.status = harness_run(harness, argv, as_test_user, &r.out, &r.err);
        assert_true(r.status >= 0);
        assert_non_null(r.out);
        assert_non_null(r.err);
        return r;
}

#define CTL(...) run_argv((char *[]) { (char *) SMIMECTL_BINARY, __VA_ARGS__, NULL }, false)
#define CTL_AS_TEST_USER(...) run_argv((char *[]) { (char *) SMIMECTL_BINARY, __VA_ARGS__, NULL }, true)
/* sh -c SCRIPT with $0 the smimectl binary and $1… the arguments. */
#define SH(script, ...) run_argv((char *[]) { (char *) "sh", (char *) "-c", (char *) (script), \
                                              (char *) SMIMECTL_BINARY, __VA_ARGS__, NULL }, false)
#define OPENSSL(...) run_argv((char *[]) { (char *) "openssl", __VA_ARGS__, NULL }, false)

static void expect_exit(const Run *r, int status, const char *what) {
        if (r->status != status)
                fail_msg("%s: exit status %d, expected %d\n--- stdout\n%s--- stderr\n%s---", what, r->status, status,
                         r->out, r->err);
}

/* One line "smimectl: …: … (NAME)" on stderr. */
static void expect_one_error_line(const Run *r, const char *name, const char *mentions, const char *what) {
        _cleanup_free_ char *tail = NULL;
        size_t len = strlen(r->err);

        assert_true(asprintf(&tail, " (%s)\n", name) > 0);
        if (count_lines(r->err) != 1 || strncmp(r->err, "smimectl: ", 10) != 0 || len < strlen(tail) ||
            !streq(r->err + len - strlen(tail), tail))
                fail_msg("%s: expected one line \"smimectl: …%s\" on stderr, got:\n%s", what, tail, r->err);
        if (mentions && !strstr(r->err, mentions))
                fail_msg("%s: the error does not name %s: %s", what, mentions, r->err);
        /* smimectl's own words and smimed's are not both "Cannot …". */
        if (strstr(r->err, "Cannot ") && strstr(strstr(r->err, "Cannot ") + 1, "Cannot "))
                fail_msg("%s: the error repeats itself: %s", what, r->err);
}

/* ---- setup ---- */

static char *write_pem(const char *name, const PkiCert *c) {
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        return write_named(name, pem, strlen(pem));
}

static int import(const PkiCert *c, bool trust, const char *fp) {
        _cleanup_free_ char *pem = pki_cert_pem(c);
        _cleanup_(smimed_error_done) smimed_error e = {};
        char **fps = NULL;
        int r;

        if (!pem)
                return -ENOMEM;
        r = smimed_import_certificates(client, pem, strlen(pem), trust, &fps, &e);
        if (r < 0) {
                fprintf(stderr, "import failed: %s: %s\n", strempty(e.name), strempty(e.message));
                return r;
        }
        r = fps && fps[0] && streq(fps[0], fp) && !fps[1] ? 0 : -EBADMSG;
        smimed_strv_free(fps);
        return r;
}

static PkiCert *leaf_for(const char *cn, const char *address, EVP_PKEY *key, const PkiCert *issuer) {
        const char *addresses[] = { address, NULL };
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = cn;
        o.san_emails = addresses;
        o.key = key;
        c = pki_cert_new(&o, issuer);
        EVP_PKEY_free(key);
        return c;
}

static int setup(void **state) {
        _cleanup_free_ char *config = NULL, *config_path = NULL;
        smimed_error e = {};
        char hex[17];
        FILE *f;
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r < 0)
                return r;
        config = harness_config_text(harness, NULL);
        config_path = config ? harness_write_file(harness, "smimed.conf", config, 0644) : NULL;
        if (!config_path)
                return -EIO;
        r = harness_start_smimed(harness, config_path, NULL);
        if (r < 0)
                return r;
        r = smimed_connect(&client, &e);
        smimed_error_done(&e);
        if (r < 0)
                return r;

        root = pki_root_ca("Messages Test Root");
        leaf = root ? leaf_for("Alice Example", ALICE, pki_public_key_from_pem_file(harness->key_pem), root) : NULL;
        bob = root ? leaf_for("Bob Example", BOB, pki_key_rsa(2048), root) : NULL;
        stranger_root = pki_root_ca("Stranger Root");
        partner = stranger_root ? leaf_for("Partner", PARTNER, pki_key_rsa(2048), stranger_root) : NULL;
        if (!leaf || !bob || !partner)
                return -EIO;
        if (pki_cert_fingerprint(leaf, leaf_fp) < 0 || pki_cert_fingerprint(bob, bob_fp) < 0 ||
            pki_cert_fingerprint(partner, partner_fp) < 0)
                return -EIO;

        {
                char root_fp[65];

                if (pki_cert_fingerprint(root, root_fp) < 0)
                        return -EIO;
                if (import(root, true, root_fp) < 0 || import(leaf, false, leaf_fp) < 0 ||
                    import(bob, false, bob_fp) < 0)
                        return -EIO;
        }

        root_file = write_pem("root.pem", root);
        stranger_root_file = write_pem("stranger-root.pem", stranger_root);
        partner_cert_file = write_pem("partner.pem", partner);
        partner_key_file = path("partner.key");
        f = fopen(partner_key_file, "we");
        if (!f || !PEM_write_PrivateKey(f, partner->key, NULL, NULL, 0, NULL, NULL))
                return -EIO;
        fclose(f);

        random_hex(hex, 8);
        token = strdup(hex);
        random_hex(hex, 8);
        body_token = strdup(hex);
        message = make_message(ALICE, BOB, "client messages", "the test message");
        message_file = write_named("message.eml", message, strlen(message));
        return 0;
}

static int teardown(void **state) {
        (void) state;
        client = smimed_close(client);
        harness = harness_free(harness);
        root = pki_cert_free(root);
        leaf = pki_cert_free(leaf);
        bob = pki_cert_free(bob);
        stranger_root = pki_cert_free(stranger_root);
        partner = pki_cert_free(partner);
        root_file = mfree(root_file);
        stranger_root_file = mfree(stranger_root_file);
        partner_key_file = mfree(partner_key_file);
        partner_cert_file = mfree(partner_cert_file);
        token = mfree(token);
        body_token = mfree(body_token);
        message = mfree(message);
        message_file = mfree(message_file);
        return 0;
}

/* ---- libsmimed, from memory ---- */

/* Signs message as ALICE (opaque or not); checks the result. */
static Bytes lib_sign(const char *text, bool opaque) {
        _cleanup_(smimed_result_done) smimed_result res = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        const smimed_sign_options o = { .opaque = opaque };
        Bytes out = {};
        void *p = NULL;
        int r;

        r = smimed_sign(client, ALICE, text, strlen(text), &o, &p, &out.size, &res, &e);
        if (r < 0)
                fail_msg("smimed_sign: %d %s: %s", r, strempty(e.name), strempty(e.message));
        out.data = p;
        assert_non_null(out.data);
        assert_non_null(res.signer);
        assert_string_equal(res.signer, leaf_fp);
        assert_null(res.recipients);
        assert_false(res.sender_included);
        assert_int_equal(res.size, out.size);
        return out;
}

static Bytes lib_encrypt(const char *text, const char *const *to, const smimed_encrypt_options *o,
                         smimed_result *ret) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        Bytes out = {};
        void *p = NULL;
        int r;

        r = smimed_encrypt(client, to, text, strlen(text), o, &p, &out.size, ret, &e);
        if (r < 0)
                fail_msg("smimed_encrypt: %d %s: %s", r, strempty(e.name), strempty(e.message));
        out.data = p;
        assert_non_null(out.data);
        assert_int_equal(ret->size, out.size);
        /* The token travels encrypted only. */
        if (memmem(out.data, out.size, body_token, strlen(body_token)))
                fail_msg("the encrypted message holds the cleartext token:\n%s", out.data);
        return out;
}

typedef enum OpenKind { OPEN_VERIFY, OPEN_DECRYPT, OPEN_DECRYPT_NO_VERIFY, OPEN_OPEN } OpenKind;

static Bytes lib_open(OpenKind kind, const Bytes *in, smimed_message_status *st) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        Bytes out = {};
        void *p = NULL;
        int r;

        switch (kind) {
        case OPEN_VERIFY:
                r = smimed_verify(client, in->data, in->size, &p, &out.size, st, &e);
                break;
        case OPEN_DECRYPT:
                r = smimed_decrypt(client, in->data, in->size, true, &p, &out.size, st, &e);
                break;
        case OPEN_DECRYPT_NO_VERIFY:
                r = smimed_decrypt(client, in->data, in->size, false, &p, &out.size, st, &e);
                break;
        default:
                r = smimed_open(client, in->data, in->size, &p, &out.size, st, &e);
        }
        if (r < 0)
                fail_msg("open (%d): %d %s: %s", kind, r, strempty(e.name), strempty(e.message));
        out.data = p;
        assert_non_null(out.data);
        assert_int_equal(st->size, out.size);
        assert_non_null(st->encryption_message);
        assert_non_null(st->signature_message);
        return out;
}

static void test_lib_sign_then_verify(void **state) {
        _cleanup_(bytes_done) Bytes signed_msg = {}, clear = {}, opened = {};
        _cleanup_(smimed_message_status_done) smimed_message_status v = {}, o = {};

        (void) state;
        signed_msg = lib_sign(message, false);
        assert_non_null(strstr(signed_msg.data, "multipart/signed"));
        assert_non_null(strstr(signed_msg.data, "application/pkcs7-signature"));

        clear = lib_open(OPEN_VERIFY, &signed_msg, &v);
        expect_status(&v, "not-encrypted", "valid", "smimed_verify of smimed_sign");
        assert_true(v.content);
        assert_null(v.key);
        assert_null(v.key_certificate);
        expect_leaf_signer(&v, "smimed_verify of smimed_sign");
        expect_cleartext(message, clear.data, clear.size, "smimed_verify of smimed_sign");

        opened = lib_open(OPEN_OPEN, &signed_msg, &o);
        expect_status(&o, "not-encrypted", "valid", "smimed_open of smimed_sign");
        expect_leaf_signer(&o, "smimed_open of smimed_sign");
        expect_cleartext(message, opened.data, opened.size, "smimed_open of smimed_sign");
}

static void test_lib_sign_opaque_then_verify(void **state) {
        _cleanup_(bytes_done) Bytes signed_msg = {}, clear = {};
        _cleanup_(smimed_message_status_done) smimed_message_status v = {};

        (void) state;
        signed_msg = lib_sign(message, true);
        assert_non_null(strstr(signed_msg.data, "application/pkcs7-mime"));
        assert_non_null(strstr(signed_msg.data, "signed-data"));
        assert_null(strstr(signed_msg.data, "multipart/signed"));

        clear = lib_open(OPEN_VERIFY, &signed_msg, &v);
        expect_status(&v, "not-encrypted", "valid", "smimed_verify of opaque smimed_sign");
        expect_leaf_signer(&v, "smimed_verify of opaque smimed_sign");
        expect_cleartext(message, clear.data, clear.size, "smimed_verify of opaque smimed_sign");
}

static void test_lib_encrypt_then_decrypt(void **state) {
        _cleanup_(bytes_done) Bytes enc = {}, clear = {}, opened = {};
        _cleanup_(smimed_message_status_done) smimed_message_status d = {}, o = {};
        _cleanup_(smimed_result_done) smimed_result res = {};
        const char *to[] = { ALICE, NULL };

        (void) state;
        enc = lib_encrypt(message, to, NULL, &res);
        assert_null(res.signer);
        expect_string_list(res.recipients, (const char *[]) { leaf_fp, NULL }, "recipients");
        assert_false(res.sender_included);
        assert_non_null(strstr(enc.data, "application/pkcs7-mime"));
        assert_non_null(strstr(enc.data, "enveloped-data"));

        clear = lib_open(OPEN_DECRYPT, &enc, &d);
        expect_status(&d, "encrypted", "not-signed", "smimed_decrypt of smimed_encrypt");
        assert_true(d.content);
        assert_non_null(d.key);
        assert_string_equal(d.key, HARNESS_KEY_ID_HEX);
        assert_non_null(d.key_certificate);
        assert_string_equal(d.key_certificate, leaf_fp);
        assert_false(d.have_signer);
        expect_cleartext(message, clear.data, clear.size, "smimed_decrypt of smimed_encrypt");

        opened = lib_open(OPEN_OPEN, &enc, &o);
        expect_status(&o, "encrypted", "not-signed", "smimed_open of smimed_encrypt");
        expect_cleartext(message, opened.data, opened.size, "smimed_open of smimed_encrypt");
}

static void test_lib_sign_and_encrypt(void **state) {
        _cleanup_(bytes_done) Bytes enc = {}, clear = {}, inner = {}, inner_clear = {};
        _cleanup_(smimed_message_status_done) smimed_message_status d = {}, n = {}, v = {};
        _cleanup_(smimed_result_done) smimed_result res = {};
        const smimed_encrypt_options o = { .sign_as = ALICE, .cipher = "aes-256-gcm" };
        const char *to[] = { ALICE, NULL };

        (void) state;
        enc = lib_encrypt(message, to, &o, &res);
        assert_non_null(res.signer);
        assert_string_equal(res.signer, leaf_fp);
        /* The sender is the recipient: one certificate, once. */
        expect_string_list(res.recipients, (const char *[]) { leaf_fp, NULL }, "recipients");
        assert_true(res.sender_included);
        assert_non_null(strstr(enc.data, "authEnveloped-data"));

        clear = lib_open(OPEN_DECRYPT, &enc, &d);
        expect_status(&d, "encrypted", "valid", "smimed_decrypt of signed and encrypted");
        assert_string_equal(d.key, HARNESS_KEY_ID_HEX);
        assert_string_equal(d.key_certificate, leaf_fp);
        expect_leaf_signer(&d, "smimed_decrypt of signed and encrypted");
        expect_cleartext(message, clear.data, clear.size, "smimed_decrypt of signed and encrypted");

        /* verify=false: the signed layer comes back as it is, and the status
         * says it was not checked (org.smimed1.Manager.xml: "not-verified"). */
        inner = lib_open(OPEN_DECRYPT_NO_VERIFY, &enc, &n);
        expect_status(&n, "encrypted", "not-verified", "smimed_decrypt without verify");
        assert_non_null(strstr(inner.data, "multipart/signed"));
        inner_clear = lib_open(OPEN_VERIFY, &inner, &v);
        expect_status(&v, "not-encrypted", "valid", "smimed_verify of the inner layer");
        expect_cleartext(message, inner_clear.data, inner_clear.size, "smimed_verify of the inner layer");
}

static void test_lib_encrypt_for_someone_else(void **state) {
        _cleanup_(bytes_done) Bytes for_bob = {}, none = {}, both = {}, clear = {};
        _cleanup_(smimed_message_status_done) smimed_message_status d = {}, b = {};
        _cleanup_(smimed_result_done) smimed_result res = {}, res_both = {};
        const smimed_encrypt_options with_sender = { .sender = ALICE };
        const char *to[] = { BOB, NULL };

        (void) state;
        for_bob = lib_encrypt(message, to, NULL, &res);
        expect_string_list(res.recipients, (const char *[]) { bob_fp, NULL }, "recipients");
        assert_false(res.sender_included);

        none = lib_open(OPEN_DECRYPT, &for_bob, &d);
        expect_status(&d, "no-private-key", "not-signed", "smimed_decrypt of a message for Bob");
        assert_false(d.content);
        assert_int_equal(d.size, 0);
        assert_int_equal(none.size, 0);
        assert_null(d.key);
        assert_true(d.encryption_message[0] != '\0');

        /* With the sender, the sent copy is readable for it. */
        both = lib_encrypt(message, to, &with_sender, &res_both);
        expect_string_list(res_both.recipients, (const char *[]) { bob_fp, leaf_fp, NULL }, "recipients");
        assert_true(res_both.sender_included);
        assert_null(res_both.signer);
        clear = lib_open(OPEN_DECRYPT, &both, &b);
        expect_status(&b, "encrypted", "not-signed", "smimed_decrypt of the sender's copy");
        expect_cleartext(message, clear.data, clear.size, "smimed_decrypt of the sender's copy");
}

static void test_lib_plain_message(void **state) {
        _cleanup_(bytes_done) Bytes opened = {}, verified = {};
        _cleanup_(smimed_message_status_done) smimed_message_status o = {}, v = {};
        Bytes plain = { .data = message, .size = strlen(message) };

        (void) state;
        opened = lib_open(OPEN_OPEN, &plain, &o);
        expect_status(&o, "not-encrypted", "not-signed", "smimed_open of a plain message");
        assert_true(o.content);
        assert_false(o.have_signer);
        assert_null(o.key);
        /* Not S/MIME: as it came. */
        assert_int_equal(opened.size, plain.size);
        assert_memory_equal(opened.data, plain.data, plain.size);

        verified = lib_open(OPEN_VERIFY, &plain, &v);
        expect_status(&v, "not-encrypted", "not-signed", "smimed_verify of a plain message");
        assert_int_equal(verified.size, plain.size);
        assert_memory_equal(verified.data, plain.data, plain.size);
}

static void test_lib_errors(void **state) {
        _cleanup_(bytes_done) Bytes enc = {};
        _cleanup_(smimed_result_done) smimed_result res = {};
        const char *to_nobody[] = { ALICE, NOBODY, NULL };
        const char *to_alice[] = { ALICE, NULL };
        unsigned char noise[2048];
        smimed_error e = {};
        void *out = NULL;
        size_t size = 0;
        int r;

        (void) state;
        /* An unknown sender. */
        r = smimed_sign(client, NOBODY, message, strlen(message), NULL, &out, &size, NULL, &e);
        expect_error(r, &e, -ENOENT, SMIMED_ERROR_NO_CERTIFICATE, "smimed_sign as an unknown sender");
        assert_null(out);
        smimed_error_done(&e);

        /* A recipient without a certificate, after one with. */
        r = smimed_encrypt(client, to_nobody, message, strlen(message), NULL, &out, NULL, NULL, &e);
        expect_error(r, &e, -ENOENT, SMIMED_ERROR_NO_CERTIFICATE, "smimed_encrypt to an unknown recipient");
        if (!strstr(e.message, NOBODY))
                fail_msg("the error does not name the recipient: %s", e.message);
        assert_null(out);
        smimed_error_done(&e);

        /* A malformed address. */
        r = smimed_sign(client, "not an address", message, strlen(message), NULL, &out, NULL, NULL, &e);
        expect_error(r, &e, -EINVAL, SMIMED_ERROR_INVALID_ARGUMENT, "smimed_sign as a malformed address");
        smimed_error_done(&e);

        /* Garbage, to each way in. */
        assert_int_equal(RAND_bytes(noise, sizeof(noise)), 1);
        noise[0] = 0;
        r = smimed_verify(client, noise, sizeof(noise), &out, NULL, NULL, &e);
        expect_error(r, &e, -EBADMSG, SMIMED_ERROR_INVALID_MESSAGE, "smimed_verify of garbage");
        assert_null(out);
        smimed_error_done(&e);
        r = smimed_decrypt(client, noise, sizeof(noise), true, &out, NULL, NULL, &e);
        expect_error(r, &e, -EBADMSG, SMIMED_ERROR_INVALID_MESSAGE, "smimed_decrypt of garbage");
        smimed_error_done(&e);
        r = smimed_open(client, noise, sizeof(noise), &out, NULL, NULL, &e);
        expect_error(r, &e, -EBADMSG, SMIMED_ERROR_INVALID_MESSAGE, "smimed_open of garbage");
        smimed_error_done(&e);
        /* Garbage to sign: binary noise is not a message. */
        r = smimed_sign(client, ALICE, noise, sizeof(noise), NULL, &out, NULL, NULL, &e);
        expect_error(r, &e, -EBADMSG, SMIMED_ERROR_INVALID_MESSAGE, "smimed_sign of garbage");
        smimed_error_done(&e);

        /* An encrypted message is not for smimed_verify. */
        enc = lib_encrypt(message, to_alice, NULL, &res);
        r = smimed_verify(client, enc.data, enc.size, &out, NULL, NULL, &e);
        expect_error(r, &e, -EBADMSG, SMIMED_ERROR_INVALID_MESSAGE, "smimed_verify of an encrypted message");
        assert_null(out);
        smimed_error_done(&e);

        /* What the library refuses itself: no name. */
        r = smimed_sign(client, ALICE, message, 0, NULL, &out, NULL, NULL, &e);
        assert_int_equal(r, -EINVAL);
        assert_null(e.name);
        assert_non_null(e.message);
        smimed_error_done(&e);
        r = smimed_encrypt(client, (const char *[]) { NULL }, message, strlen(message), NULL, &out, NULL, NULL, &e);
        assert_int_equal(r, -EINVAL);
        assert_null(e.name);
        smimed_error_done(&e);
        r = smimed_verify_fd(client, -1, STDOUT_FILENO, NULL, &e);
        assert_int_equal(r, -EBADF);
        assert_null(e.name);
        smimed_error_done(&e);
        assert_null(out);
}

/* ---- libsmimed, through pipes ---- */

typedef struct Pipes {
        int in_r, in_w, out_r, out_w;
} Pipes;

static void pipes_done(Pipes *p) {
        closep(&p->in_r);
        closep(&p->in_w);
        closep(&p->out_r);
        closep(&p->out_w);
}

/* The input pipe holds data, its write end closed; both pipes blocking. */
static Pipes pipes_with(const void *data, size_t size) {
        int a[2], b[2];
        Pipes p;

        assert_true(size < 65536); /* fits the pipe: no writer needed while smimed reads */
        assert_int_equal(pipe2(a, O_CLOEXEC), 0);
        assert_int_equal(pipe2(b, O_CLOEXEC), 0);
        p = (Pipes) { .in_r = a[0], .in_w = a[1], .out_r = b[0], .out_w = b[1] };
        write_all(p.in_w, data, size);
        closep(&p.in_w);
        return p;
}

/* After the call: exactly size bytes in the output pipe, and then its end
 * (smimed kept no copy of the write end). */
static Bytes pipe_output(Pipes *p, uint64_t size) {
        struct pollfd pfd = { .fd = p->out_r, .events = POLLIN };
        Bytes b = { .data = malloc(size + 1) };
        char extra;
        int queued = -1;

        assert_non_null(b.data);
        assert_int_equal(ioctl(p->out_r, FIONREAD, &queued), 0);
        assert_int_equal((uint64_t) queued, size);
        closep(&p->out_w);
        while (b.size < size) {
                ssize_t n = read(p->out_r, b.data + b.size, size - b.size);

                assert_true(n > 0);
                b.size += (size_t) n;
        }
        b.data[b.size] = '\0';
        /* Then only the end: a bound, not a pause, for smimed to close its copy. */
        if (poll(&pfd, 1, 30000) != 1)
                fail_msg("the output pipe has no end: smimed kept its write end open");
        assert_int_equal(read(p->out_r, &extra, 1), 0);
        return b;
}

static bool nonblocking(int fd) {
        int flags = fcntl(fd, F_GETFL);

        assert_true(flags >= 0);
        return flags & O_NONBLOCK;
}

static void test_lib_fd_variants_with_pipes(void **state) {
        _cleanup_(bytes_done) Bytes signed_msg = {}, clear = {}, enc = {}, dec = {}, opened = {};
        _cleanup_(smimed_message_status_done) smimed_message_status v = {}, d = {}, o = {};
        _cleanup_(smimed_result_done) smimed_result sres = {}, eres = {};
        _cleanup_(pipes_done) Pipes a = { -1, -1, -1, -1 }, b = { -1, -1, -1, -1 }, c = { -1, -1, -1, -1 },
                                    d_p = { -1, -1, -1, -1 }, e_p = { -1, -1, -1, -1 };
        const smimed_encrypt_options eo = { .sign_as = ALICE };
        const char *to[] = { ALICE, NULL };
        smimed_error e = {};
        int r;

        (void) state;
        a = pipes_with(message, strlen(message));
        r = smimed_sign_fd(client, ALICE, a.in_r, a.out_w, NULL, &sres, &e);
        if (r < 0)
                fail_msg("smimed_sign_fd: %s: %s", strempty(e.name), strempty(e.message));
        assert_string_equal(sres.signer, leaf_fp);
        assert_true(sres.size > strlen(message));
        signed_msg = pipe_output(&a, sres.size);
        assert_non_null(strstr(signed_msg.data, "multipart/signed"));

        b = pipes_with(signed_msg.data, signed_msg.size);
        r = smimed_verify_fd(client, b.in_r, b.out_w, &v, &e);
        if (r < 0)
                fail_msg("smimed_verify_fd: %s: %s", strempty(e.name), strempty(e.message));
        expect_status(&v, "not-encrypted", "valid", "smimed_verify_fd");
        expect_leaf_signer(&v, "smimed_verify_fd");
        clear = pipe_output(&b, v.size);
        expect_cleartext(message, clear.data, clear.size, "smimed_verify_fd");

        c = pipes_with(message, strlen(message));
        r = smimed_encrypt_fd(client, to, c.in_r, c.out_w, &eo, &eres, &e);
        if (r < 0)
                fail_msg("smimed_encrypt_fd: %s: %s", strempty(e.name), strempty(e.message));
        assert_string_equal(eres.signer, leaf_fp);
        expect_string_list(eres.recipients, (const char *[]) { leaf_fp, NULL }, "recipients");
        enc = pipe_output(&c, eres.size);
        assert_non_null(strstr(enc.data, "enveloped-data"));

        d_p = pipes_with(enc.data, enc.size);
        r = smimed_decrypt_fd(client, d_p.in_r, d_p.out_w, true, &d, &e);
        if (r < 0)
                fail_msg("smimed_decrypt_fd: %s: %s", strempty(e.name), strempty(e.message));
        expect_status(&d, "encrypted", "valid", "smimed_decrypt_fd");
        assert_string_equal(d.key_certificate, leaf_fp);
        dec = pipe_output(&d_p, d.size);
        expect_cleartext(message, dec.data, dec.size, "smimed_decrypt_fd");

        e_p = pipes_with(enc.data, enc.size);
        r = smimed_open_fd(client, e_p.in_r, e_p.out_w, &o, &e);
        if (r < 0)
                fail_msg("smimed_open_fd: %s: %s", strempty(e.name), strempty(e.message));
        expect_status(&o, "encrypted", "valid", "smimed_open_fd");
        opened = pipe_output(&e_p, o.size);
        expect_cleartext(message, opened.data, opened.size, "smimed_open_fd");
        smimed_error_done(&e);
}

/* A regular file as input is read from its current offset. */
static void test_lib_fd_reads_from_offset(void **state) {
        _cleanup_(smimed_message_status_done) smimed_message_status v = {};
        _cleanup_(closep) int in = -1, out = -1;
        _cleanup_(bytes_done) Bytes clear = {};
        _cleanup_free_ char *with_junk = NULL, *file = NULL;
        static const char junk[] = "not part of the message\n";
        smimed_error e = {};
        int r;

        (void) state;
        assert_true(asprintf(&with_junk, "%s%s", junk, message) > 0);
        file = write_named("offset.eml", with_junk, strlen(with_junk));
        in = open(file, O_RDONLY | O_CLOEXEC);
        out = memfd_create("out", MFD_CLOEXEC);
        assert_true(in >= 0 && out >= 0);
        assert_int_equal(lseek(in, (off_t) strlen(junk), SEEK_SET), (off_t) strlen(junk));

        r = smimed_verify_fd(client, in, out, &v, &e);
        if (r < 0)
                fail_msg("smimed_verify_fd: %s: %s", strempty(e.name), strempty(e.message));
        expect_status(&v, "not-encrypted", "not-signed", "smimed_verify_fd from an offset");
        assert_int_equal(lseek(out, 0, SEEK_SET), 0);
        clear = read_fd_to_end(out);
        assert_int_equal(clear.size, strlen(message));
        assert_memory_equal(clear.data, message, clear.size);
}

/* ---- openssl accepts what smimed_sign made ---- */

static void openssl_verifies(bool opaque) {
        _cleanup_(bytes_done) Bytes signed_msg = {}, content = {};
        _cleanup_free_ char *signed_file = NULL, *content_file = path(opaque ? "openssl-opaque.out" : "openssl.out"),
                            *want = NULL, *have = NULL;
        _cleanup_(run_done) Run ok = {}, wrong_ca = {};
        const char *body;

        signed_msg = lib_sign(message, opaque);
        signed_file = write_named(opaque ? "smimed-opaque.eml" : "smimed-signed.eml", signed_msg.data,
                                  signed_msg.size);

        ok = OPENSSL("cms", "-verify", "-in", signed_file, "-CAfile", root_file, "-out", content_file);
        expect_exit(&ok, 0, "openssl cms -verify of smimed_sign");
        content = read_path(content_file);
        /* The signed entity: the Content-* fields and the body. */
        have = lf_only(content.data, content.size);
        want = lf_only(message, strlen(message));
        assert_non_null(strstr(have, "Content-Type: text/plain; charset=us-ascii\n"));
        body = strstr(want, "\n\n");
        assert_non_null(body);
        if (strlen(have) < strlen(body) || !streq(have + strlen(have) - strlen(body), body))
                fail_msg("openssl's content does not end in the body:\n%s", have);
        assert_null(strstr(have, "Subject:"));

        /* The same check against another CA fails: the acceptance above means something. */
        wrong_ca = OPENSSL("cms", "-verify", "-in", signed_file, "-CAfile", stranger_root_file, "-out", "/dev/null");
        if (wrong_ca.status == 0)
                fail_msg("openssl cms -verify accepted the signature under a CA that did not issue it");
}

static void test_openssl_verifies_sign(void **state) {
        (void) state;
        openssl_verifies(false);
}

static void test_openssl_verifies_opaque_sign(void **state) {
        (void) state;
        openssl_verifies(true);
}

/* ---- O_NONBLOCK of the caller's descriptors ---- */

/* Encrypt on the bus with no library in between: smimed itself must leave
 * the caller's pipes as they were. */
static void test_daemon_keeps_pipes_blocking(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(pipes_done) Pipes p = { -1, -1, -1, -1 }, q = { -1, -1, -1, -1 };
        _cleanup_(bytes_done) Bytes enc = {}, clear = {};
        uint64_t size = 0;
        const char *k;
        int r;

        (void) state;
        assert_int_equal(harness_bus_open(&bus), 0);
        p = pipes_with(message, strlen(message));
        assert_false(nonblocking(p.in_r));
        assert_false(nonblocking(p.out_w));

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "Encrypt") >= 0);
        assert_true(sd_bus_message_append(m, "as", 1, ALICE) >= 0);
        assert_true(sd_bus_message_append(m, "hh", p.in_r, p.out_w) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        r = sd_bus_call(bus, m, 120ULL * 1000000ULL, &e, &reply);
        if (r < 0)
                fail_msg("Encrypt: %s: %s", e.name, e.message);

        if (nonblocking(p.in_r))
                fail_msg("smimed left O_NONBLOCK set on the input pipe the caller passed");
        if (nonblocking(p.out_w))
                fail_msg("smimed left O_NONBLOCK set on the output pipe the caller passed");

        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                assert_true(sd_bus_message_read(reply, "s", &k) > 0);
                if (streq(k, "size"))
                        assert_true(sd_bus_message_read(reply, "v", "t", &size) > 0);
                else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        m = sd_bus_message_unref(m); /* it holds copies of the fds */
        enc = pipe_output(&p, size);

        /* And the same the other way, through Decrypt. */
        q = pipes_with(enc.data, enc.size);
        reply = sd_bus_message_unref(reply);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "Decrypt") >= 0);
        assert_true(sd_bus_message_append(m, "hh", q.in_r, q.out_w) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        r = sd_bus_call(bus, m, 120ULL * 1000000ULL, &e, &reply);
        if (r < 0)
                fail_msg("Decrypt: %s: %s", e.name, e.message);
        if (nonblocking(q.in_r) || nonblocking(q.out_w))
                fail_msg("smimed left O_NONBLOCK set on a pipe the caller passed to Decrypt");
        m = sd_bus_message_unref(m);
        {
                int queued = -1;

                assert_int_equal(ioctl(q.out_r, FIONREAD, &queued), 0);
                assert_true(queued > 0);
                clear = pipe_output(&q, (uint64_t) queued);
        }
        expect_cleartext(message, clear.data, clear.size, "Decrypt on the bus");
}

/* Through libsmimed: blocking stays blocking, non-blocking stays non-blocking. */
static void test_lib_keeps_pipe_flags(void **state) {
        _cleanup_(smimed_result_done) smimed_result r1 = {}, r2 = {};
        _cleanup_(pipes_done) Pipes p = { -1, -1, -1, -1 }, q = { -1, -1, -1, -1 };
        _cleanup_(bytes_done) Bytes o1 = {}, o2 = {};
        const char *to[] = { ALICE, NULL };
        smimed_error e = {};

        (void) state;
        p = pipes_with(message, strlen(message));
        assert_int_equal(smimed_encrypt_fd(client, to, p.in_r, p.out_w, NULL, &r1, &e), 0);
        assert_false(nonblocking(p.in_r));
        assert_false(nonblocking(p.out_w));
        o1 = pipe_output(&p, r1.size);

        q = pipes_with(message, strlen(message));
        assert_int_equal(fcntl(q.in_r, F_SETFL, fcntl(q.in_r, F_GETFL) | O_NONBLOCK), 0);
        assert_true(nonblocking(q.in_r));
        assert_int_equal(smimed_encrypt_fd(client, to, q.in_r, q.out_w, NULL, &r2, &e), 0);
        assert_true(nonblocking(q.in_r));
        assert_false(nonblocking(q.out_w));
        o2 = pipe_output(&q, r2.size);
        assert_true(o2.size > 0);
        smimed_error_done(&e);
}

/* smimectl with a pipe the test holds as stdin and another as stdout. */
static void test_smimectl_keeps_pipe_flags(void **state) {
        _cleanup_(pipes_done) Pipes p = { -1, -1, -1, -1 };
        _cleanup_(smimed_message_status_done) smimed_message_status d = {};
        _cleanup_(bytes_done) Bytes enc = {}, clear = {};
        _cleanup_(closep) int err = -1;
        int status, queued = -1;
        pid_t pid;

        (void) state;
        p = pipes_with(message, strlen(message));
        err = open(harness->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        assert_true(err >= 0);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (dup2(p.in_r, STDIN_FILENO) < 0 || dup2(p.out_w, STDOUT_FILENO) < 0 ||
                    dup2(err, STDERR_FILENO) < 0)
                        _exit(127);
                execl(SMIMECTL_BINARY, SMIMECTL_BINARY, "encrypt", "--to", ALICE, (char *) NULL);
                _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                lseek(err, 0, SEEK_SET);
                enc = read_fd_to_end(err);
                fail_msg("smimectl encrypt with pipes: status %d: %s", status, enc.data);
        }
        if (nonblocking(p.in_r))
                fail_msg("O_NONBLOCK was left on the pipe that was smimectl's standard input");
        if (nonblocking(p.out_w))
                fail_msg("O_NONBLOCK was left on the pipe that was smimectl's standard output");

        assert_int_equal(ioctl(p.out_r, FIONREAD, &queued), 0);
        enc = pipe_output(&p, (uint64_t) queued);
        clear = lib_open(OPEN_DECRYPT, &enc, &d);
        expect_status(&d, "encrypted", "not-signed", "smimectl encrypt with pipes");
        expect_cleartext(message, clear.data, clear.size, "smimectl encrypt with pipes");
}

/* ---- smimectl ---- */

static char *iso8601(const ASN1_TIME *t) {
        struct tm tm = {};
        char buf[32], *s;

        assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
        assert_true(strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
        s = strdup(buf);
        assert_non_null(s);
        return s;
}

static char *rfc2253(const X509_NAME *name) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data, *s;
        long n;

        assert_non_null(bio);
        assert_true(X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0);
        n = BIO_get_mem_data(bio, &data);
        s = strndup(data, (size_t) n);
        BIO_free(bio);
        assert_non_null(s);
        return s;
}

static void expect_json_keys(const JsonValue *v, const char *const *keys, const char *what) {
        size_t n = 0;

        assert_non_null(v);
        assert_int_equal(v->type, JSON_OBJECT);
        for (; keys[n]; n++)
                if (!json_get(v, keys[n]))
                        fail_msg("%s: no key \"%s\"", what, keys[n]);
        if (v->n != n)
                fail_msg("%s: %zu keys, expected %zu", what, v->n, n);
}

/* The JSON signer object describes the token key's certificate, as
 * libsmimed's status for the same message (ref) does. */
static void expect_json_signer(const JsonValue *signer, const smimed_message_status *ref) {
        _cleanup_free_ char *subject = rfc2253(X509_get_subject_name(leaf->x509)),
                            *issuer = rfc2253(X509_get_subject_name(root->x509)),
                            *not_before = iso8601(X509_get0_notBefore(leaf->x509)),
                            *not_after = iso8601(X509_get0_notAfter(leaf->x509));

        expect_json_keys(signer,
                         (const char *[]) { "fingerprint", "subject", "issuer", "address", "not_before", "not_after",
                                            "summary", NULL },
                         "signer");
        assert_string_equal(json_get_string(signer, "fingerprint"), leaf_fp);
        assert_string_equal(json_get_string(signer, "subject"), subject);
        assert_string_equal(json_get_string(signer, "issuer"), issuer);
        assert_string_equal(json_get_string(signer, "address"), ALICE);
        assert_string_equal(json_get_string(signer, "not_before"), not_before);
        assert_string_equal(json_get_string(signer, "not_after"), not_after);
        assert_string_equal(json_get_string(signer, "summary"), ref->signer.summary);
}

static char *status_line_valid(const smimed_message_status *ref) {
        char *s;

        assert_true(ref->have_signer);
        assert_true(asprintf(&s, "✅ Signature valid: %s\n", ref->signer.summary) > 0);
        return s;
}

static void test_ctl_sign_then_verify_json(void **state) {
        _cleanup_free_ char *out = path("ctl-signed.eml"), *clear = path("ctl-clear.eml");
        _cleanup_(run_done) Run s = {}, v = {};
        _cleanup_(bytes_done) Bytes signed_msg = {}, cleartext = {}, ref_clear = {};
        _cleanup_(smimed_message_status_done) smimed_message_status ref = {};
        _cleanup_(json_value_freep) JsonValue *j = NULL;
        bool content = false;
        size_t err_at = 0;

        (void) state;
        s = CTL("sign", "--from", ALICE, message_file, "-o", out);
        expect_exit(&s, 0, "smimectl sign");
        assert_string_equal(s.out, "");
        assert_string_equal(s.err, "");
        assert_int_equal(file_mode(out), 0666 & ~current_umask());
        signed_msg = read_path(out);
        assert_non_null(strstr(signed_msg.data, "multipart/signed"));

        /* What libsmimed says of the same message, for the daemon's own texts. */
        ref_clear = lib_open(OPEN_VERIFY, &signed_msg, &ref);
        expect_status(&ref, "not-encrypted", "valid", "smimed_verify of smimectl sign");

        v = CTL("verify", out, "-o", clear, "--json");
        expect_exit(&v, 0, "smimectl verify --json");
        assert_string_equal(v.err, "");
        j = json_parse(v.out, &err_at);
        if (!j)
                fail_msg("smimectl verify --json: not JSON at byte %zu: %s", err_at, v.out);
        expect_json_keys(j,
                         (const char *[]) { "encryption", "signature", "encryption_message", "signature_message",
                                            "content", "size", "signer", NULL },
                         "verify --json");
        assert_string_equal(json_get_string(j, "encryption"), "not-encrypted");
        assert_string_equal(json_get_string(j, "signature"), "valid");
        assert_string_equal(json_get_string(j, "encryption_message"), ref.encryption_message);
        assert_string_equal(json_get_string(j, "signature_message"), ref.signature_message);
        assert_true(json_get_bool(j, "content", &content));
        assert_true(content);
        expect_json_signer(json_get(j, "signer"), &ref);

        cleartext = read_path(clear);
        assert_int_equal(json_get(j, "size")->type, JSON_NUMBER);
        {
                char size_text[32];

                snprintf(size_text, sizeof(size_text), "%zu", cleartext.size);
                assert_string_equal(json_get(j, "size")->text, size_text);
        }
        expect_cleartext(message, cleartext.data, cleartext.size, "smimectl verify -o");
        assert_int_equal(cleartext.size, ref_clear.size);
        assert_memory_equal(cleartext.data, ref_clear.data, ref_clear.size);
}

static void test_ctl_verify_status_lines(void **state) {
        _cleanup_free_ char *out = path("ctl-signed-2.eml"), *want_err = NULL;
        _cleanup_(run_done) Run s = {}, v = {};
        _cleanup_(bytes_done) Bytes signed_msg = {}, ref_clear = {};
        _cleanup_(smimed_message_status_done) smimed_message_status ref = {};

        (void) state;
        s = CTL("sign", "--from", ALICE, "--opaque", message_file, "-o", out);
        expect_exit(&s, 0, "smimectl sign --opaque");
        signed_msg = read_path(out);
        assert_non_null(strstr(signed_msg.data, "signed-data"));
        ref_clear = lib_open(OPEN_VERIFY, &signed_msg, &ref);

        /* Without -o: the message on stdout, the status on stderr. */
        v = CTL("verify", out);
        expect_exit(&v, 0, "smimectl verify");
        expect_cleartext(message, v.out, strlen(v.out), "smimectl verify to stdout");
        {
                _cleanup_free_ char *valid = status_line_valid(&ref);

                assert_true(asprintf(&want_err, "🔓 Not encrypted\n%s", valid) > 0);
        }
        assert_string_equal(v.err, want_err);
}

static void test_ctl_encrypt_then_decrypt(void **state) {
        _cleanup_free_ char *enc = path("ctl-enc.eml"), *clear = path("ctl-dec.eml"), *enc2 = path("ctl-enc2.eml"),
                            *clear2 = path("ctl-dec2.eml"), *want_err = NULL;
        _cleanup_(run_done) Run e = {}, d = {}, e2 = {}, d2 = {};
        _cleanup_(bytes_done) Bytes enc_msg = {}, cleartext = {}, enc2_msg = {}, cleartext2 = {}, ref_clear = {};
        _cleanup_(smimed_message_status_done) smimed_message_status ref = {};

        (void) state;
        e = CTL("encrypt", "--to", ALICE, message_file, "-o", enc);
        expect_exit(&e, 0, "smimectl encrypt");
        assert_string_equal(e.out, "");
        assert_string_equal(e.err, "");
        enc_msg = read_path(enc);
        assert_non_null(strstr(enc_msg.data, "enveloped-data"));
        assert_null(strstr(enc_msg.data, body_token));

        d = CTL("decrypt", enc, "-o", clear);
        expect_exit(&d, 0, "smimectl decrypt");
        assert_string_equal(d.out, "");
        assert_string_equal(d.err, "🔒 Encrypted for you (key " HARNESS_KEY_ID_HEX ")\n➖ Not signed\n");
        /* The plain text of encrypted mail is for its owner only. */
        assert_int_equal(file_mode(clear), 0600);
        cleartext = read_path(clear);
        expect_cleartext(message, cleartext.data, cleartext.size, "smimectl decrypt");

        /* --key: by address or id; a key that is not a recipient is not tried. */
        {
                _cleanup_free_ char *by_key = path("ctl-dec-key.eml");
                _cleanup_(run_done) Run a = {}, i = {}, other = {}, bad = {};

                a = CTL("decrypt", "--key", ALICE, enc, "-o", by_key);
                expect_exit(&a, 0, "smimectl decrypt --key ADDRESS");
                assert_string_equal(a.err, "🔒 Encrypted for you (key " HARNESS_KEY_ID_HEX ")\n➖ Not signed\n");
                i = CTL("decrypt", "--key", HARNESS_KEY_ID_HEX, enc, "-o", by_key);
                expect_exit(&i, 0, "smimectl decrypt --key ID");
                other = CTL("decrypt", "--key", "7e57", enc, "-o", by_key);
                expect_exit(&other, 1, "smimectl decrypt --key with a key that is not a recipient");
                if (!strstr(other.err, "not encrypted to key 7e57"))
                        fail_msg("decrypt --key 7e57: %s", other.err);
                bad = CTL("decrypt", "--key", "not a key", enc);
                expect_exit(&bad, 2, "smimectl decrypt --key with neither an id nor an address");
                assert_non_null(strstr(bad.err, "--key needs"));
        }

        /* Signed as well. */
        e2 = CTL("encrypt", "--to", ALICE, "--sign-as", ALICE, message_file, "-o", enc2);
        expect_exit(&e2, 0, "smimectl encrypt --sign-as");
        enc2_msg = read_path(enc2);
        ref_clear = lib_open(OPEN_DECRYPT, &enc2_msg, &ref);
        expect_status(&ref, "encrypted", "valid", "smimed_decrypt of smimectl encrypt --sign-as");

        d2 = CTL("decrypt", enc2, "-o", clear2);
        expect_exit(&d2, 0, "smimectl decrypt of signed and encrypted");
        {
                _cleanup_free_ char *valid = status_line_valid(&ref);

                assert_true(asprintf(&want_err, "🔒 Encrypted for you (key " HARNESS_KEY_ID_HEX ")\n%s", valid) > 0);
        }
        assert_string_equal(d2.err, want_err);
        cleartext2 = read_path(clear2);
        expect_cleartext(message, cleartext2.data, cleartext2.size, "smimectl decrypt of signed and encrypted");
}

static void test_ctl_decrypt_json_and_no_verify(void **state) {
        _cleanup_free_ char *enc = path("ctl-json-enc.eml"), *clear = path("ctl-json-dec.eml"),
                            *inner = path("ctl-inner.eml");
        _cleanup_(run_done) Run e = {}, d = {}, n = {}, v = {};
        _cleanup_(bytes_done) Bytes enc_msg = {}, ref_clear = {}, inner_msg = {};
        _cleanup_(smimed_message_status_done) smimed_message_status ref = {};
        _cleanup_(json_value_freep) JsonValue *j = NULL;
        bool content = false;

        (void) state;
        e = CTL("encrypt", "--to", ALICE, "--sign-as", ALICE, "--cipher", "aes-128-gcm", message_file, "-o", enc);
        expect_exit(&e, 0, "smimectl encrypt --cipher aes-128-gcm --sign-as");
        enc_msg = read_path(enc);
        ref_clear = lib_open(OPEN_DECRYPT, &enc_msg, &ref);

        d = CTL("decrypt", "--json", enc, "-o", clear);
        expect_exit(&d, 0, "smimectl decrypt --json");
        assert_string_equal(d.err, "");
        j = json_parse(d.out, NULL);
        if (!j)
                fail_msg("smimectl decrypt --json: not JSON: %s", d.out);
        expect_json_keys(j,
                         (const char *[]) { "encryption", "signature", "encryption_message", "signature_message",
                                            "content", "size", "key", "key_certificate", "signer", NULL },
                         "decrypt --json");
        assert_string_equal(json_get_string(j, "encryption"), "encrypted");
        assert_string_equal(json_get_string(j, "signature"), "valid");
        assert_string_equal(json_get_string(j, "encryption_message"), ref.encryption_message);
        assert_string_equal(json_get_string(j, "signature_message"), ref.signature_message);
        assert_string_equal(json_get_string(j, "key"), HARNESS_KEY_ID_HEX);
        assert_string_equal(json_get_string(j, "key_certificate"), leaf_fp);
        assert_true(json_get_bool(j, "content", &content) && content);
        expect_json_signer(json_get(j, "signer"), &ref);
        {
                _cleanup_(bytes_done) Bytes cleartext = read_path(clear);
                char size_text[32];

                snprintf(size_text, sizeof(size_text), "%zu", cleartext.size);
                assert_string_equal(json_get(j, "size")->text, size_text);
                expect_cleartext(message, cleartext.data, cleartext.size, "smimectl decrypt --json");
        }

        /* --no-verify: the signed layer as it is. */
        n = CTL("decrypt", "--no-verify", enc, "-o", inner);
        expect_exit(&n, 0, "smimectl decrypt --no-verify");
        assert_string_equal(n.err, "🔒 Encrypted for you (key " HARNESS_KEY_ID_HEX ")\n"
                                   "➖ Signature not checked (--no-verify)\n");
        inner_msg = read_path(inner);
        assert_non_null(strstr(inner_msg.data, "application/pkcs7-signature"));
        v = CTL("verify", inner, "-o", "/dev/null");
        expect_exit(&v, 0, "smimectl verify of the inner layer");
}

static void test_ctl_verify_unsigned_and_encrypted(void **state) {
        _cleanup_free_ char *enc = path("ctl-unsigned-enc.eml");
        _cleanup_(run_done) Run v = {}, d = {}, e = {}, ve = {};

        (void) state;
        v = CTL("verify", message_file);
        expect_exit(&v, 1, "smimectl verify of an unsigned message");
        assert_string_equal(v.err, "🔓 Not encrypted\n➖ Not signed\n");
        assert_string_equal(v.out, message); /* not S/MIME: as it came */

        /* decrypt opens it fully: there is no signature to be wrong. */
        d = CTL("decrypt", message_file);
        expect_exit(&d, 0, "smimectl decrypt of a plain message");
        assert_string_equal(d.err, "🔓 Not encrypted\n➖ Not signed\n");
        assert_string_equal(d.out, message);

        /* An encrypted message is not for verify. */
        e = CTL("encrypt", "--to", ALICE, message_file, "-o", enc);
        expect_exit(&e, 0, "smimectl encrypt");
        ve = CTL("verify", enc);
        expect_exit(&ve, 1, "smimectl verify of an encrypted message");
        expect_one_error_line(&ve, SMIMED_ERROR_INVALID_MESSAGE, NULL, "smimectl verify of an encrypted message");
        assert_string_equal(ve.out, "");
}

/* Base64 of data, in lines of 64 with CRLF. */
static char *base64_lines(const unsigned char *data, size_t size) {
        size_t enc_len = 4 * ((size + 2) / 3);
        _cleanup_free_ unsigned char *flat = malloc(enc_len + 1);
        char *out = malloc(enc_len + 2 * (enc_len / 64 + 1) + 1), *o = out;

        assert_true(flat && out);
        assert_int_equal(EVP_EncodeBlock(flat, data, (int) size), (int) enc_len);
        for (size_t i = 0; i < enc_len; i += 64) {
                size_t n = enc_len - i < 64 ? enc_len - i : 64;

                memcpy(o, flat + i, n);
                o += n;
                *o++ = '\r';
                *o++ = '\n';
        }
        *o = '\0';
        return out;
}

/* An application/pkcs7-mime message with the first byte of its encrypted
 * content changed; the header block as it was. */
static char *tamper_ciphertext(const char *file, const char *name) {
        _cleanup_(bytes_done) Bytes msg = read_path(file);
        _cleanup_free_ unsigned char *der = NULL;
        _cleanup_free_ char *b64 = NULL, *text = NULL;
        char *body;
        size_t header_len;
        BIO *in, *b64f;
        CMS_ContentInfo *cms;
        ASN1_OCTET_STRING **content;
        const unsigned char *p;
        unsigned char *q;
        int der_len, n;

        body = strstr(msg.data, "\r\n\r\n");
        assert_non_null(body);
        header_len = (size_t) (body - msg.data) + 4;

        in = BIO_new_mem_buf(msg.data + header_len, (int) (msg.size - header_len));
        b64f = BIO_new(BIO_f_base64());
        assert_true(in && b64f);
        in = BIO_push(b64f, in);
        der = malloc(msg.size);
        assert_non_null(der);
        n = BIO_read(in, der, (int) msg.size);
        BIO_free_all(in);
        assert_true(n > 0);

        p = der;
        cms = d2i_CMS_ContentInfo(NULL, &p, n);
        assert_non_null(cms);
        content = CMS_get0_content(cms);
        assert_true(content && *content && ASN1_STRING_length(*content) > 16);
        {
                ASN1_OCTET_STRING *c = *content;
                unsigned char *d = (unsigned char *) ASN1_STRING_get0_data(c);

                d[0] ^= 0x01;
        }
        der_len = i2d_CMS_ContentInfo(cms, NULL);
        assert_true(der_len > 0);
        {
                _cleanup_free_ unsigned char *out = malloc((size_t) der_len);

                assert_non_null(out);
                q = out;
                assert_int_equal(i2d_CMS_ContentInfo(cms, &q), der_len);
                b64 = base64_lines(out, (size_t) der_len);
        }
        CMS_ContentInfo_free(cms);

        assert_true(asprintf(&text, "%.*s%s", (int) header_len, msg.data, b64) > 0);
        return write_named(name, text, strlen(text));
}

static void test_ctl_decrypt_tampered(void **state) {
        _cleanup_free_ char *enc = path("ctl-tamper-enc.eml"), *clear = path("ctl-tamper-dec.eml"),
                            *tampered = NULL, *signed_file = path("ctl-tamper-signed.eml"), *forged = NULL,
                            *forged_clear = path("ctl-forged-dec.eml"), *changed = NULL;
        _cleanup_(run_done) Run e = {}, d = {}, s = {}, v = {}, fd = {};
        _cleanup_(bytes_done) Bytes signed_msg = {}, fclear = {};
        char *hit;

        (void) state;
        /* Encrypted with GCM: a changed ciphertext cannot pass the tag. */
        e = CTL("encrypt", "--to", ALICE, "--cipher", "aes-256-gcm", message_file, "-o", enc);
        expect_exit(&e, 0, "smimectl encrypt --cipher aes-256-gcm");
        tampered = tamper_ciphertext(enc, "ctl-tampered.eml");

        d = CTL("decrypt", tampered, "-o", clear);
        expect_exit(&d, 1, "smimectl decrypt of a tampered message");
        assert_string_equal(d.out, "");
        if (strncmp(d.err, "🔒 Encryption: failed — ", strlen("🔒 Encryption: failed — ")) != 0)
                fail_msg("smimectl decrypt of a tampered message: stderr is\n%s", d.err);
        assert_int_equal(count_lines(d.err), 2);
        if (exists(clear))
                fail_msg("a decrypt without content made its -o file");

        /* A signed message whose body was changed: content with "invalid". */
        s = CTL("sign", "--from", ALICE, message_file, "-o", signed_file);
        expect_exit(&s, 0, "smimectl sign");
        signed_msg = read_path(signed_file);
        hit = strstr(signed_msg.data, body_token);
        assert_non_null(hit);
        hit[0] = hit[0] == 'a' ? 'b' : 'a';
        forged = write_named("ctl-forged.eml", signed_msg.data, signed_msg.size);

        v = CTL("verify", forged);
        expect_exit(&v, 1, "smimectl verify of a changed body");
        if (strncmp(v.err, "🔓 Not encrypted\n❌ Signature invalid: ", strlen("🔓 Not encrypted\n❌ Signature invalid: ")) != 0 ||
            count_lines(v.err) != 2)
                fail_msg("smimectl verify of a changed body: stderr is\n%s", v.err);

        fd = CTL("decrypt", forged, "-o", forged_clear);
        expect_exit(&fd, 1, "smimectl decrypt of a changed body");
        if (strncmp(fd.err, "🔓 Not encrypted\n❌ Signature invalid: ", strlen("🔓 Not encrypted\n❌ Signature invalid: ")) != 0)
                fail_msg("smimectl decrypt of a changed body: stderr is\n%s", fd.err);
        /* The content still comes back, as changed. */
        fclear = read_path(forged_clear);
        changed = strndup(hit, strlen(body_token));
        assert_non_null(memmem(fclear.data, fclear.size, changed, strlen(changed)));
        assert_null(memmem(fclear.data, fclear.size, body_token, strlen(body_token)));
}

static void test_ctl_decrypt_untrusted(void **state) {
        _cleanup_free_ char *entity_file = NULL, *smime = path("partner.smime"), *signed_file = NULL,
                            *enc = path("ctl-partner-enc.eml"), *clear = path("ctl-partner-dec.eml"), *text = NULL,
                            *sent = NULL;
        _cleanup_(run_done) Run o = {}, v = {}, e = {}, d = {};
        _cleanup_(bytes_done) Bytes smime_b = {}, cleartext = {};
        const char *body;

        (void) state;
        /* Partner signs with openssl; its CA is not in the store. */
        sent = make_message(PARTNER, ALICE, "from a stranger", "the partner's message");
        body = strstr(sent, "Content-Type:");
        assert_non_null(body);
        entity_file = write_named("partner.entity", body, strlen(body));
        o = OPENSSL("cms", "-sign", "-in", entity_file, "-signer", partner_cert_file, "-inkey", partner_key_file,
                    "-md", "sha256", "-out", smime);
        expect_exit(&o, 0, "openssl cms -sign");
        smime_b = read_path(smime);
        assert_true(asprintf(&text, "%.*s%s", (int) (strstr(sent, "MIME-Version:") - sent), sent, smime_b.data) > 0);
        signed_file = write_named("partner-signed.eml", text, strlen(text));

        v = CTL("verify", signed_file, "-o", "/dev/null");
        expect_exit(&v, 1, "smimectl verify of an untrusted signature");
        if (strncmp(v.err, "🔓 Not encrypted\n❌ Signature untrusted: ",
                    strlen("🔓 Not encrypted\n❌ Signature untrusted: ")) != 0)
                fail_msg("smimectl verify of an untrusted signature: stderr is\n%s", v.err);

        e = CTL("encrypt", "--to", ALICE, signed_file, "-o", enc);
        expect_exit(&e, 0, "smimectl encrypt of a signed message");
        d = CTL("decrypt", enc, "-o", clear);
        expect_exit(&d, 1, "smimectl decrypt of an untrusted signature");
        if (strncmp(d.err, "🔒 Encrypted for you (key " HARNESS_KEY_ID_HEX ")\n❌ Signature untrusted: ",
                    strlen("🔒 Encrypted for you (key " HARNESS_KEY_ID_HEX ")\n❌ Signature untrusted: ")) != 0 ||
            count_lines(d.err) != 2)
                fail_msg("smimectl decrypt of an untrusted signature: stderr is\n%s", d.err);
        /* With a warning, but the content. */
        cleartext = read_path(clear);
        expect_cleartext(sent, cleartext.data, cleartext.size, "smimectl decrypt of an untrusted signature");
}

static void test_ctl_decrypt_not_for_us(void **state) {
        _cleanup_free_ char *enc = path("ctl-bob-enc.eml"), *clear = path("ctl-bob-dec.eml");
        _cleanup_(run_done) Run e = {}, d = {}, j = {};
        _cleanup_(json_value_freep) JsonValue *v = NULL;
        bool content = true;

        (void) state;
        e = CTL("encrypt", "--to", BOB, message_file, "-o", enc);
        expect_exit(&e, 0, "smimectl encrypt --to Bob");

        d = CTL("decrypt", enc, "-o", clear);
        expect_exit(&d, 1, "smimectl decrypt of a message for Bob");
        if (strncmp(d.err, "🔒 Encryption: Unable to find private key to decrypt",
                    strlen("🔒 Encryption: Unable to find private key to decrypt")) != 0 ||
            count_lines(d.err) != 2)
                fail_msg("smimectl decrypt of a message for Bob: stderr is\n%s", d.err);
        assert_string_equal(d.out, "");
        if (exists(clear))
                fail_msg("a decrypt without content made its -o file");

        j = CTL("decrypt", enc, "-o", clear, "--json");
        expect_exit(&j, 1, "smimectl decrypt --json of a message for Bob");
        v = json_parse(j.out, NULL);
        assert_non_null(v);
        assert_string_equal(json_get_string(v, "encryption"), "no-private-key");
        assert_true(json_get_bool(v, "content", &content));
        assert_false(content);
        assert_int_equal(json_get(v, "signer")->type, JSON_NULL);
        assert_null(json_get(v, "key"));
        assert_false(exists(clear));
}

static void test_ctl_pipes(void **state) {
        _cleanup_(run_done) Run sv = {}, sv_out = {}, ed = {}, json = {};
        _cleanup_free_ char *json_clear = path("ctl-pipe-clear.eml");
        _cleanup_(json_value_freep) JsonValue *j = NULL;

        (void) state;
        sv = SH("\"$0\" sign --from \"$1\" < \"$2\" | \"$0\" verify -o /dev/null", ALICE, message_file);
        expect_exit(&sv, 0, "smimectl sign | smimectl verify -o /dev/null");
        assert_string_equal(sv.out, "");
        if (strncmp(sv.err, "🔓 Not encrypted\n✅ Signature valid: ", strlen("🔓 Not encrypted\n✅ Signature valid: ")) !=
                    0 ||
            count_lines(sv.err) != 2)
                fail_msg("sign | verify: stderr is\n%s", sv.err);

        sv_out = SH("\"$0\" sign --from \"$1\" - < \"$2\" | \"$0\" verify -", ALICE, message_file);
        expect_exit(&sv_out, 0, "smimectl sign - | smimectl verify -");
        expect_cleartext(message, sv_out.out, strlen(sv_out.out), "sign | verify to stdout");

        ed = SH("\"$0\" encrypt --to \"$1\" --sign-as \"$1\" < \"$2\" | \"$0\" decrypt", ALICE, message_file);
        expect_exit(&ed, 0, "smimectl encrypt --sign-as | smimectl decrypt");
        expect_cleartext(message, ed.out, strlen(ed.out), "encrypt | decrypt to stdout");
        if (strncmp(ed.err, "🔒 Encrypted for you (key " HARNESS_KEY_ID_HEX ")\n✅ Signature valid: ",
                    strlen("🔒 Encrypted for you (key " HARNESS_KEY_ID_HEX ")\n✅ Signature valid: ")) != 0 ||
            count_lines(ed.err) != 2)
                fail_msg("encrypt | decrypt: stderr is\n%s", ed.err);

        json = SH("\"$0\" sign --from \"$1\" < \"$2\" | \"$0\" verify -o \"$3\" --json", ALICE, message_file,
                  json_clear);
        expect_exit(&json, 0, "smimectl sign | smimectl verify --json");
        j = json_parse(json.out, NULL);
        if (!j)
                fail_msg("sign | verify --json: not JSON: %s", json.out);
        assert_string_equal(json_get_string(j, "signature"), "valid");
        assert_string_equal(json_get_string(json_get(j, "signer"), "fingerprint"), leaf_fp);
        {
                _cleanup_(bytes_done) Bytes c = read_path(json_clear);

                expect_cleartext(message, c.data, c.size, "sign | verify -o --json");
        }
}

static void test_ctl_usage_errors(void **state) {
        _cleanup_free_ char *never = path("ctl-never.eml"), *signed_file = path("ctl-usage-signed.eml");
        _cleanup_(run_done) Run s = {}, a = {}, b = {}, c = {}, d = {}, e = {}, f = {}, g = {};

        (void) state;
        s = CTL("sign", "--from", ALICE, message_file, "-o", signed_file);
        expect_exit(&s, 0, "smimectl sign");

        a = CTL("verify", "--json", signed_file);
        expect_exit(&a, 2, "smimectl verify --json without -o");
        assert_string_equal(a.out, "");
        assert_true(a.err[0] != '\0');

        b = CTL("verify", "--json", signed_file, "-o", "-");
        expect_exit(&b, 2, "smimectl verify --json -o -");
        assert_string_equal(b.out, "");

        c = CTL("decrypt", "--json", signed_file);
        expect_exit(&c, 2, "smimectl decrypt --json without -o");
        assert_string_equal(c.out, "");

        d = CTL("sign", message_file, "-o", never);
        expect_exit(&d, 2, "smimectl sign without --from");
        e = CTL("encrypt", message_file, "-o", never);
        expect_exit(&e, 2, "smimectl encrypt without --to");
        f = CTL("encrypt", "--to", ALICE, "--opaque", message_file, "-o", never);
        expect_exit(&f, 2, "smimectl encrypt --opaque without --sign-as");
        g = CTL("verify", "--from", ALICE, signed_file, "-o", never);
        expect_exit(&g, 2, "smimectl verify --from");
        assert_false(exists(never));
}

static void test_ctl_unknown_sender_and_recipient(void **state) {
        _cleanup_free_ char *out = path("ctl-unknown.eml");
        _cleanup_(run_done) Run s = {}, e = {};

        (void) state;
        s = CTL("sign", "--from", NOBODY, message_file, "-o", out);
        expect_exit(&s, 1, "smimectl sign as an unknown sender");
        assert_string_equal(s.out, "");
        expect_one_error_line(&s, SMIMED_ERROR_NO_CERTIFICATE, NOBODY, "smimectl sign as an unknown sender");
        /* What it was about comes first: the file. */
        assert_true(strncmp(s.err + strlen("smimectl: "), message_file, strlen(message_file)) == 0);
        assert_false(exists(out));

        e = CTL("encrypt", "--to", ALICE "," NOBODY, message_file);
        expect_exit(&e, 1, "smimectl encrypt to an unknown recipient");
        assert_string_equal(e.out, "");
        expect_one_error_line(&e, SMIMED_ERROR_NO_CERTIFICATE, NOBODY, "smimectl encrypt to an unknown recipient");
}

/* The names in a directory, sorted, one a line. */
static char *dir_listing(const char *dir) {
        struct dirent **list = NULL;
        char *s = strdup("");
        int n = scandir(dir, &list, NULL, alphasort);

        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                char *t;

                if (!streq(list[i]->d_name, ".") && !streq(list[i]->d_name, "..")) {
                        assert_true(asprintf(&t, "%s%s\n", s, list[i]->d_name) > 0);
                        free(s);
                        s = t;
                }
                free(list[i]);
        }
        free(list);
        return s;
}

static void test_ctl_output_is_atomic(void **state) {
        _cleanup_free_ char *dir = path("atomic"), *out = NULL, *fresh = NULL, *listing = NULL;
        _cleanup_(run_done) Run s = {}, n = {}, ok = {}, v = {};
        _cleanup_(bytes_done) Bytes kept = {}, replaced = {};
        static const char precious[] = "precious, not to be lost\n";
        int fd;

        (void) state;
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_true(asprintf(&out, "%s/out.eml", dir) > 0);
        assert_true(asprintf(&fresh, "%s/fresh.eml", dir) > 0);
        fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        assert_true(fd >= 0);
        write_all(fd, precious, strlen(precious));
        assert_int_equal(fchmod(fd, 0640), 0);
        close(fd);

        s = CTL("sign", "--from", NOBODY, message_file, "-o", out);
        expect_exit(&s, 1, "smimectl sign over an existing file, failing");
        kept = read_path(out);
        assert_string_equal(kept.data, precious);
        assert_int_equal(file_mode(out), 0640);

        n = CTL("sign", "--from", NOBODY, message_file, "-o", fresh);
        expect_exit(&n, 1, "smimectl sign to a new file, failing");

        /* Nothing beside it: no temporary file left, no new file made. */
        listing = dir_listing(dir);
        assert_string_equal(listing, "out.eml\n");

        /* A sign that works replaces it, and the file keeps its mode. */
        ok = CTL("sign", "--from", ALICE, message_file, "-o", out);
        expect_exit(&ok, 0, "smimectl sign over an existing file");
        replaced = read_path(out);
        assert_non_null(strstr(replaced.data, "multipart/signed"));
        assert_int_equal(file_mode(out), 0640);
        free(listing);
        listing = dir_listing(dir);
        assert_string_equal(listing, "out.eml\n");
        v = CTL("verify", out, "-o", "/dev/null");
        expect_exit(&v, 0, "smimectl verify of the replaced file");
}

static void test_ctl_unprivileged_user(void **state) {
        _cleanup_free_ char *signed_file = path("ctl-user-signed.eml"), *enc_file = NULL;
        _cleanup_(run_done) Run s = {}, e = {}, v = {}, d = {}, root_s = {}, root_d = {};
        _cleanup_(bytes_done) Bytes enc_b = {}, clear = {};
        _cleanup_(smimed_message_status_done) smimed_message_status st = {};

        (void) state;
        s = CTL_AS_TEST_USER("sign", "--from", ALICE, message_file);
        expect_exit(&s, 1, "smimectl sign as " HARNESS_TEST_USER);
        assert_string_equal(s.out, "");
        expect_one_error_line(&s, SD_BUS_ERROR_ACCESS_DENIED, NULL, "smimectl sign as " HARNESS_TEST_USER);

        /* Encrypting needs no privilege. */
        e = CTL_AS_TEST_USER("encrypt", "--to", ALICE, message_file);
        expect_exit(&e, 0, "smimectl encrypt as " HARNESS_TEST_USER);
        assert_string_equal(e.err, "");
        enc_b = (Bytes) { .data = TAKE_PTR(e.out) };
        enc_b.size = strlen(enc_b.data);
        assert_non_null(strstr(enc_b.data, "enveloped-data"));
        clear = lib_open(OPEN_DECRYPT, &enc_b, &st);
        expect_status(&st, "encrypted", "not-signed", "root's decrypt of the test user's encrypt");
        expect_cleartext(message, clear.data, clear.size, "root's decrypt of the test user's encrypt");

        /* Verifying neither. */
        root_s = CTL("sign", "--from", ALICE, message_file, "-o", signed_file);
        expect_exit(&root_s, 0, "smimectl sign as root");
        assert_int_equal(chmod(signed_file, 0644), 0);
        v = CTL_AS_TEST_USER("verify", signed_file);
        expect_exit(&v, 0, "smimectl verify as " HARNESS_TEST_USER);
        expect_cleartext(message, v.out, strlen(v.out), "smimectl verify as " HARNESS_TEST_USER);
        if (strncmp(v.err, "🔓 Not encrypted\n✅ Signature valid: ", strlen("🔓 Not encrypted\n✅ Signature valid: ")) != 0)
                fail_msg("smimectl verify as " HARNESS_TEST_USER ": stderr is\n%s", v.err);

        /* Decrypting with the key is the sign's sibling: denied too. */
        enc_file = write_named("ctl-user-enc.eml", enc_b.data, enc_b.size);
        d = CTL_AS_TEST_USER("decrypt", enc_file);
        expect_exit(&d, 1, "smimectl decrypt as " HARNESS_TEST_USER);
        assert_string_equal(d.out, "");
        expect_one_error_line(&d, SD_BUS_ERROR_ACCESS_DENIED, NULL, "smimectl decrypt as " HARNESS_TEST_USER);
        root_d = CTL("decrypt", enc_file, "-o", "/dev/null");
        expect_exit(&root_d, 0, "smimectl decrypt as root");
}

static void test_clean_stop(void **state) {
        int status;

        (void) state;
        client = smimed_close(client);
        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
}

int main(void) {
        /* The smimectl these tests run writes to pipes, where it would leave
         * emoji out: these tests check the lines a terminal shows
         * (test-ctl-output checks the choice itself). */
        setenv("SMIMECTL_EMOJI", "yes", 1);
        setenv("LC_ALL", "C.UTF-8", 1);

        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lib_sign_then_verify),
                cmocka_unit_test(test_lib_sign_opaque_then_verify),
                cmocka_unit_test(test_lib_encrypt_then_decrypt),
                cmocka_unit_test(test_lib_sign_and_encrypt),
                cmocka_unit_test(test_lib_encrypt_for_someone_else),
                cmocka_unit_test(test_lib_plain_message),
                cmocka_unit_test(test_lib_errors),
                cmocka_unit_test(test_lib_fd_variants_with_pipes),
                cmocka_unit_test(test_lib_fd_reads_from_offset),
                cmocka_unit_test(test_openssl_verifies_sign),
                cmocka_unit_test(test_openssl_verifies_opaque_sign),
                cmocka_unit_test(test_daemon_keeps_pipes_blocking),
                cmocka_unit_test(test_lib_keeps_pipe_flags),
                cmocka_unit_test(test_smimectl_keeps_pipe_flags),
                cmocka_unit_test(test_ctl_sign_then_verify_json),
                cmocka_unit_test(test_ctl_verify_status_lines),
                cmocka_unit_test(test_ctl_encrypt_then_decrypt),
                cmocka_unit_test(test_ctl_decrypt_json_and_no_verify),
                cmocka_unit_test(test_ctl_verify_unsigned_and_encrypted),
                cmocka_unit_test(test_ctl_decrypt_tampered),
                cmocka_unit_test(test_ctl_decrypt_untrusted),
                cmocka_unit_test(test_ctl_decrypt_not_for_us),
                cmocka_unit_test(test_ctl_pipes),
                cmocka_unit_test(test_ctl_usage_errors),
                cmocka_unit_test(test_ctl_unknown_sender_and_recipient),
                cmocka_unit_test(test_ctl_output_is_atomic),
                cmocka_unit_test(test_ctl_unprivileged_user),
                cmocka_unit_test(test_clean_stop),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
