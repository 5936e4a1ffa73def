/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Load (issue #9): 64 concurrent clients, each a thread with its own bus
 * connection, make 1,000 mixed calls each through libsmimed
 * (GetCapabilities, LookupCertificates, Sign, Encrypt, Decrypt, Verify) on
 * one real smimed (SoftHSM2, dbus-daemon, polkitd). Every result is checked;
 * the test wants zero failures, smimed's RSS after the run within 10% of its
 * RSS after a warm-up round, and as many open fds as after the warm-up.
 *
 * cmocka's assertions longjmp and belong to the main thread: the client
 * threads count and describe their failures, the main thread asserts. */
#include <errno.h>
#include <inttypes.h>
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
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/rand.h>

#include "harness.h"
#include "pki.h"
#include "smimed.h"

#define N_CLIENTS 64U
/* Calls per client in the normal run. The valgrind and asan test setups
 * (tests/meson.build) set SMIMED_TEST_LOAD_CALLS lower: under a checker the
 * daemon is many times slower, and the point there is memory errors and
 * leaks on the concurrent paths, not the count. */
#define CALLS_PER_CLIENT 1000U
#define RSS_GROWTH_MAX_PERCENT 10U
/* Under ASan freed memory sits in a quarantine of up to 256 MiB before it is
 * reused, so the daemon's RSS keeps growing for reasons of ASan's own; there
 * LeakSanitizer's check when smimed exits takes the place of the RSS bound.
 * The test and the daemon come from the same build, so this says what the
 * daemon is built with. */
#ifdef __SANITIZE_ADDRESS__
#define RSS_IS_THE_DAEMONS_MEMORY 0
#else
#define RSS_IS_THE_DAEMONS_MEMORY 1
#endif

#define ALICE "alice@example.com"   /* the token key's certificate */
#define NOBODY "nobody@example.com" /* no certificate at all */
#define N_RECIPIENTS 3U

static const char *const recipient_addresses[N_RECIPIENTS + 1] = {
        "bob@example.com", "carol@example.com", "dave@example.net", NULL,
};

typedef enum Op {
        OP_CAPABILITIES,
        OP_LOOKUP,
        OP_SIGN,
        OP_ENCRYPT,
        OP_DECRYPT,
        OP_VERIFY,
        _OP_MAX,
} Op;

static const char *const op_names[_OP_MAX] = {
        [OP_CAPABILITIES] = "GetCapabilities", [OP_LOOKUP] = "LookupCertificates",
        [OP_SIGN] = "Sign",                    [OP_ENCRYPT] = "Encrypt",
        [OP_DECRYPT] = "Decrypt",              [OP_VERIFY] = "Verify",
};

static Harness *harness;
static PkiCert *root, *leaf, *recipients[N_RECIPIENTS];
static char leaf_fp[65], recipient_fps[N_RECIPIENTS][65];
static char *body_token; /* random, in every body: it must never travel in the clear */

/* ---- the daemon, seen from /proc ---- */

static uint64_t now_usec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static uint64_t smimed_rss_kib(void) {
        _cleanup_free_ char *path = NULL, *status = NULL;
        unsigned long long kib;
        const char *line;

        assert_true(harness->smimed_pid > 0);
        assert_true(asprintf(&path, "/proc/%d/status", (int) harness->smimed_pid) > 0);
        status = harness_read_file(path);
        assert_non_null(status);
        line = strstr(status, "\nVmRSS:");
        assert_non_null(line);
        assert_int_equal(sscanf(line, "\nVmRSS: %llu kB", &kib), 1);
        return kib;
}

/* smimed has one socket, to dbus-daemon: what a call could leave open are
 * the memfds it received and its spool files. smimed sends a reply and then,
 * in the same dispatch on its one event loop, frees the job and closes
 * those, so a client may hold its last reply a moment before that. A call
 * on a connection opened after every client closed its own is dispatched
 * only after all that: what /proc shows once it returned is the state after
 * the run. No sleeping, no polling. */
static void round_trip_on_fresh_connection(void) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_status_info_done) smimed_status_info info = {};
        smimed *s = NULL;
        int r;

        r = smimed_connect(&s, &e);
        if (r < 0)
                fail_msg("smimed_connect: %d %s: %s", r, strempty(e.name), strempty(e.message));
        r = smimed_status(s, &info, &e);
        smimed_close(s);
        if (r < 0)
                fail_msg("smimed_status: %d %s: %s", r, strempty(e.name), strempty(e.message));
        assert_string_equal(info.token_state, "ready");
}

/* ---- one client ---- */

typedef struct Client {
        unsigned index;
        unsigned calls;             /* to make after the warm-up */
        pthread_t thread;
        smimed *bus;
        char *message;              /* its own plain message, CRLF */
        char *cleartext;            /* what opening it signed or encrypted gives back */
        char *for_alice;            /* message signed by and encrypted to ALICE, made by smimed */
        void *signed_output;        /* the last Sign result, for the next Verify */
        size_t signed_size;

        unsigned done[_OP_MAX];     /* checked and right */
        unsigned failed;
        char first_failure[1024];
} Client;

static pthread_barrier_t warmed_up, measured;

static void client_fail(Client *c, Op op, const char *format, ...) _printf_(3, 4);
static void client_fail(Client *c, Op op, const char *format, ...) {
        va_list ap;
        int n;

        if (c->failed++ > 0)
                return;
        n = snprintf(c->first_failure, sizeof(c->first_failure), "client %u, %s: ", c->index, op_names[op]);
        va_start(ap, format);
        vsnprintf(c->first_failure + n, sizeof(c->first_failure) - (size_t) n, format, ap);
        va_end(ap);
}

static void client_call_failed(Client *c, Op op, int r, const smimed_error *e) {
        client_fail(c, op, "%d (%s) %s: %s", r, strerror(-r), strempty(e->name), strempty(e->message));
}

#define MIME_VERSION "MIME-Version: 1.0\r\n"

/* noinline: GCC 12's -Wdangling-pointer mistakes what asprintf() made for the caller's frame. */
__attribute__((noinline)) static char *make_message(unsigned index) {
        char *m = NULL;

        if (asprintf(&m,
                     "From: Alice Example <" ALICE ">\r\n"
                     "To: Bob Example <bob@example.com>\r\n"
                     "Subject: load test, client %u\r\n"
                     "Message-ID: <load-%u@example.com>\r\n"
                     MIME_VERSION
                     "Content-Type: text/plain; charset=us-ascii\r\n"
                     "\r\n"
                     "Hello Bob,\r\n"
                     "\r\n"
                     "this is client %u of the load test, with the token %s in its body.\r\n"
                     "A few lines, so that the message is a few hundred bytes long,\r\n"
                     "as a short mail is.\r\n"
                     "\r\n"
                     "-- \r\n"
                     "Alice\r\n",
                     index, index, index, body_token) < 0)
                return NULL;
        return m;
}

static bool expect_opened(Client *c, Op op, int r, const smimed_error *e, const smimed_message_status *st,
                          const char *encryption, const void *out, size_t size) {
        if (r < 0) {
                client_call_failed(c, op, r, e);
                return false;
        }
        if (!streq(st->encryption, encryption) || !streq(st->signature, "valid")) {
                client_fail(c, op, "encryption=%s (%s) signature=%s (%s), expected %s and valid", st->encryption,
                            st->encryption_message, st->signature, st->signature_message, encryption);
                return false;
        }
        if (!st->content || !st->have_signer || !streq(st->signer.fingerprint, leaf_fp) ||
            !streq(st->signer.address, ALICE)) {
                client_fail(c, op, "content=%d, signer %s <%s>, expected the certificate of " ALICE, st->content,
                            st->have_signer ? st->signer.fingerprint : "(none)",
                            st->have_signer ? st->signer.address : "");
                return false;
        }
        if (st->size != size || size != strlen(c->cleartext) || memcmp(out, c->cleartext, size) != 0) {
                client_fail(c, op, "the cleartext (%zu bytes) is not the message sent (%zu bytes):\n%.*s", size,
                            strlen(c->cleartext), (int) size, (const char *) out);
                return false;
        }
        return true;
}

static bool do_capabilities(Client *c) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_capabilities_done) smimed_capabilities caps = {};
        const char *to[N_RECIPIENTS + 2];
        int r;

        for (size_t i = 0; i < N_RECIPIENTS; i++)
                to[i] = recipient_addresses[i];
        to[N_RECIPIENTS] = NOBODY;
        to[N_RECIPIENTS + 1] = NULL;

        r = smimed_get_capabilities(c->bus, ALICE, to, &caps, &e);
        if (r < 0) {
                client_call_failed(c, OP_CAPABILITIES, r, &e);
                return false;
        }
        if (!caps.have_sign || !caps.sign.possible || !streq_ptr(caps.sign.fingerprint, leaf_fp)) {
                client_fail(c, OP_CAPABILITIES, "sign as " ALICE ": possible=%d reason=%s fingerprint=%s",
                            caps.sign.possible, strempty(caps.sign.reason), strempty(caps.sign.fingerprint));
                return false;
        }
        if (caps.n_encrypt != N_RECIPIENTS + 1) {
                client_fail(c, OP_CAPABILITIES, "%zu encrypt entries for %u recipients", caps.n_encrypt,
                            N_RECIPIENTS + 1);
                return false;
        }
        for (size_t i = 0; i < N_RECIPIENTS; i++)
                if (!caps.encrypt[i].possible || !streq_ptr(caps.encrypt[i].fingerprint, recipient_fps[i])) {
                        client_fail(c, OP_CAPABILITIES, "encrypt to %s: possible=%d reason=%s fingerprint=%s", to[i],
                                    caps.encrypt[i].possible, strempty(caps.encrypt[i].reason),
                                    strempty(caps.encrypt[i].fingerprint));
                        return false;
                }
        if (caps.encrypt[N_RECIPIENTS].possible || !streq_ptr(caps.encrypt[N_RECIPIENTS].reason, "no-certificate")) {
                client_fail(c, OP_CAPABILITIES, "encrypt to " NOBODY ": possible=%d reason=%s, expected no-certificate",
                            caps.encrypt[N_RECIPIENTS].possible, strempty(caps.encrypt[N_RECIPIENTS].reason));
                return false;
        }
        return true;
}

/* Alice and the recipients in turn: exactly their one certificate. */
static bool do_lookup(Client *c, unsigned round) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        unsigned which = round % (N_RECIPIENTS + 1);
        const char *address = which == N_RECIPIENTS ? ALICE : recipient_addresses[which];
        const char *want = which == N_RECIPIENTS ? leaf_fp : recipient_fps[which];
        char **fps = NULL;
        bool ok;
        int r;

        r = smimed_lookup_certificates(c->bus, address, "encrypt", true, &fps, &e);
        if (r < 0) {
                client_call_failed(c, OP_LOOKUP, r, &e);
                return false;
        }
        ok = fps && fps[0] && streq(fps[0], want) && !fps[1];
        if (!ok)
                client_fail(c, OP_LOOKUP, "%s: got %s%s, expected %s alone", address,
                            fps && fps[0] ? fps[0] : "nothing", fps && fps[0] && fps[1] ? " and more" : "", want);
        smimed_strv_free(fps);
        return ok;
}

static bool do_sign(Client *c) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_result_done) smimed_result res = {};
        int r;

        c->signed_output = mfree(c->signed_output);
        r = smimed_sign(c->bus, ALICE, c->message, strlen(c->message), NULL, &c->signed_output, &c->signed_size,
                        &res, &e);
        if (r < 0) {
                client_call_failed(c, OP_SIGN, r, &e);
                return false;
        }
        if (!streq_ptr(res.signer, leaf_fp) || res.recipients || res.size != c->signed_size ||
            !strstr(c->signed_output, "multipart/signed") || !strstr(c->signed_output, "application/pkcs7-signature")) {
                client_fail(c, OP_SIGN, "signer %s, %zu bytes:\n%s", strempty(res.signer), c->signed_size,
                            (const char *) c->signed_output);
                c->signed_output = mfree(c->signed_output);
                return false;
        }
        return true;
}

/* What smimed encrypted, opened with a recipient's own key, here: the
 * message's body comes back. */
static bool decrypts_for(const void *data, size_t size, const PkiCert *recipient, const char *body) {
        BIO *in = BIO_new_mem_buf(data, (int) size), *out = BIO_new(BIO_s_mem());
        CMS_ContentInfo *cms = in ? SMIME_read_CMS(in, NULL) : NULL;
        bool ok = false;

        if (cms && out && CMS_decrypt(cms, recipient->key, recipient->x509, NULL, out, 0) == 1) {
                char *clear = NULL;
                long n = BIO_get_mem_data(out, &clear);

                ok = n > 0 && memmem(clear, (size_t) n, body, strlen(body));
        }
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        BIO_free(out);
        return ok;
}

static bool do_encrypt(Client *c, unsigned round) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_result_done) smimed_result res = {};
        _cleanup_free_ void *out = NULL;
        const PkiCert *reader = recipients[round % N_RECIPIENTS];
        const char *body = strstr(c->message, "\r\n\r\n") + 4;
        size_t size = 0;
        int r;

        r = smimed_encrypt(c->bus, (const char *const *) recipient_addresses, c->message, strlen(c->message), NULL,
                           &out, &size, &res, &e);
        if (r < 0) {
                client_call_failed(c, OP_ENCRYPT, r, &e);
                return false;
        }
        if (res.signer || res.sender_included || res.size != size || !strstr(out, "enveloped-data")) {
                client_fail(c, OP_ENCRYPT, "signer %s, sender included %d, %zu bytes:\n%s", strempty(res.signer),
                            res.sender_included, size, (const char *) out);
                return false;
        }
        for (size_t i = 0; i <= N_RECIPIENTS; i++)
                if (i < N_RECIPIENTS ? !res.recipients || !streq_ptr(res.recipients[i], recipient_fps[i])
                                     : res.recipients[i] != NULL) {
                        client_fail(c, OP_ENCRYPT, "recipient %zu is %s, expected %s", i,
                                    res.recipients ? strempty(res.recipients[i]) : "(none)",
                                    i < N_RECIPIENTS ? recipient_fps[i] : "(none)");
                        return false;
                }
        if (memmem(out, size, body_token, strlen(body_token))) {
                client_fail(c, OP_ENCRYPT, "the encrypted message holds the cleartext token");
                return false;
        }
        if (!decrypts_for(out, size, reader, body)) {
                client_fail(c, OP_ENCRYPT, "the recipient %s cannot decrypt it to the body sent",
                            recipient_addresses[round % N_RECIPIENTS]);
                return false;
        }
        return true;
}

static bool do_decrypt(Client *c) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_message_status_done) smimed_message_status st = {};
        _cleanup_free_ void *out = NULL;
        size_t size = 0;
        int r;

        r = smimed_decrypt(c->bus, c->for_alice, strlen(c->for_alice), true, &out, &size, &st, &e);
        if (!expect_opened(c, OP_DECRYPT, r, &e, &st, "encrypted", out, size))
                return false;
        if (!streq_ptr(st.key, HARNESS_KEY_ID_HEX) || !streq_ptr(st.key_certificate, leaf_fp)) {
                client_fail(c, OP_DECRYPT, "decrypted with key %s (certificate %s)", strempty(st.key),
                            strempty(st.key_certificate));
                return false;
        }
        return true;
}

/* The client's last Sign result. */
static bool do_verify(Client *c) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_message_status_done) smimed_message_status st = {};
        _cleanup_free_ void *out = NULL;
        size_t size = 0;
        int r;

        if (!c->signed_output) {
                client_fail(c, OP_VERIFY, "no signed message to verify (Sign failed)");
                return false;
        }
        r = smimed_verify(c->bus, c->signed_output, c->signed_size, &out, &size, &st, &e);
        return expect_opened(c, OP_VERIFY, r, &e, &st, "not-encrypted", out, size);
}

/* Call number i of the client: the six kinds in turn. */
static void client_call(Client *c, unsigned i) {
        Op op = (Op) (i % _OP_MAX);
        unsigned round = i / _OP_MAX;
        bool ok;

        switch (op) {
        case OP_CAPABILITIES:
                ok = do_capabilities(c);
                break;
        case OP_LOOKUP:
                ok = do_lookup(c, round);
                break;
        case OP_SIGN:
                ok = do_sign(c);
                break;
        case OP_ENCRYPT:
                ok = do_encrypt(c, round);
                break;
        case OP_DECRYPT:
                ok = do_decrypt(c);
                break;
        default:
                ok = do_verify(c);
        }
        if (ok)
                c->done[op]++;
}

/* The client's own sign-and-encrypt to Alice, for its Decrypt calls. */
static int client_prepare(Client *c) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_result_done) smimed_result res = {};
        const smimed_encrypt_options o = { .sign_as = ALICE };
        const char *to[] = { ALICE, NULL };
        void *out = NULL;
        size_t size = 0;
        char *p;
        int r;

        c->message = make_message(c->index);
        c->cleartext = c->message ? strdup(c->message) : NULL;
        if (!c->cleartext)
                return -ENOMEM;
        /* The S/MIME wrapper carries MIME-Version; the opened message is the
         * outer fields and the inner entity, byte for byte, without it. */
        p = strstr(c->cleartext, MIME_VERSION);
        if (!p)
                return -EINVAL;
        memmove(p, p + strlen(MIME_VERSION), strlen(p + strlen(MIME_VERSION)) + 1);
        r = smimed_connect(&c->bus, &e);
        if (r >= 0)
                r = smimed_encrypt(c->bus, to, c->message, strlen(c->message), &o, &out, &size, &res, &e);
        if (r < 0) {
                client_fail(c, OP_ENCRYPT, "preparing: %d (%s) %s: %s", r, strerror(-r), strempty(e.name),
                            strempty(e.message));
                return r;
        }
        c->for_alice = out;
        return 0;
}

static void *client_main(void *userdata) {
        Client *c = userdata;
        int r;

        r = client_prepare(c);
        /* Warm-up: one call of every kind. */
        for (unsigned i = 0; r >= 0 && i < _OP_MAX; i++)
                client_call(c, i);
        for (Op op = 0; op < _OP_MAX; op++)
                c->done[op] = 0;

        pthread_barrier_wait(&warmed_up);
        /* The main thread measures smimed now. */
        pthread_barrier_wait(&measured);

        for (unsigned i = 0; r >= 0 && i < c->calls; i++)
                client_call(c, i);

        c->bus = smimed_close(c->bus);
        return NULL;
}

static void client_done(Client *c) {
        smimed_close(c->bus);
        free(c->message);
        free(c->cleartext);
        free(c->for_alice);
        free(c->signed_output);
}

/* ---- setup ---- */

static int import(smimed *s, const PkiCert *c, bool trust, const char *fp) {
        _cleanup_free_ char *pem = pki_cert_pem(c);
        _cleanup_(smimed_error_done) smimed_error e = {};
        char **fps = NULL;
        int r;

        if (!pem)
                return -ENOMEM;
        r = smimed_import_certificates(s, pem, strlen(pem), trust, &fps, &e);
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
        smimed *s = NULL;
        unsigned char raw[8];
        char root_fp[65];
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r < 0)
                return r;
        /* No token health check during the run: every RescanIntervalSec= smimed
         * asks the ready token whether it still answers, and SoftHSM2 opens
         * and closes its token files for that; a count of smimed's fds taken
         * in that moment would show one more. */
        config = harness_config_text(harness, "[Token]\nRescanIntervalSec=86400\n");
        config_path = config ? harness_write_file(harness, "smimed.conf", config, 0644) : NULL;
        if (!config_path)
                return -EIO;
        r = harness_start_smimed(harness, config_path, NULL);
        if (r < 0)
                return r;

        if (RAND_bytes(raw, sizeof(raw)) != 1)
                return -EIO;
        body_token = malloc(2 * sizeof(raw) + 1);
        if (!body_token)
                return -ENOMEM;
        for (size_t i = 0; i < sizeof(raw); i++)
                sprintf(body_token + 2 * i, "%02x", raw[i]);

        root = pki_root_ca("Load Test Root");
        if (!root || pki_cert_fingerprint(root, root_fp) < 0)
                return -EIO;
        leaf = leaf_for("Alice Example", ALICE, pki_public_key_from_pem_file(harness->key_pem), root);
        if (!leaf || pki_cert_fingerprint(leaf, leaf_fp) < 0)
                return -EIO;
        for (size_t i = 0; i < N_RECIPIENTS; i++) {
                recipients[i] = leaf_for(recipient_addresses[i], recipient_addresses[i], pki_key_rsa(2048), root);
                if (!recipients[i] || pki_cert_fingerprint(recipients[i], recipient_fps[i]) < 0)
                        return -EIO;
        }

        /* The first connection of the process registers libsmimed's error
         * names (sd-bus keeps them in a process-wide table): here, before
         * the threads connect. */
        r = smimed_connect(&s, &e);
        smimed_error_done(&e);
        if (r < 0)
                return r;
        r = import(s, root, true, root_fp);
        if (r >= 0)
                r = import(s, leaf, false, leaf_fp);
        for (size_t i = 0; r >= 0 && i < N_RECIPIENTS; i++)
                r = import(s, recipients[i], false, recipient_fps[i]);
        smimed_close(s);
        return r;
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        root = pki_cert_free(root);
        leaf = pki_cert_free(leaf);
        for (size_t i = 0; i < N_RECIPIENTS; i++)
                recipients[i] = pki_cert_free(recipients[i]);
        body_token = mfree(body_token);
        return 0;
}

/* ---- the tests ---- */

static unsigned calls_per_client(void) {
        const char *e = getenv("SMIMED_TEST_LOAD_CALLS");
        char *end = NULL;
        unsigned long n;

        if (!e)
                return CALLS_PER_CLIENT;
        errno = 0;
        n = strtoul(e, &end, 10);
        if (errno != 0 || !end || *end || n < _OP_MAX || n > CALLS_PER_CLIENT)
                fail_msg("SMIMED_TEST_LOAD_CALLS=%s: expected %u to %u", e, _OP_MAX, CALLS_PER_CLIENT);
        return (unsigned) n;
}

static void test_load(void **state) {
        _cleanup_free_ Client *clients = calloc(N_CLIENTS, sizeof(Client));
        unsigned calls = calls_per_client(), failed = 0, total_done = 0, fds_warm, fds_after;
        unsigned done[_OP_MAX] = {}, expected[_OP_MAX] = {};
        uint64_t rss_warm, rss_after, start, duration;
        char first_failure[sizeof(clients->first_failure)] = "";
        char *fds_warm_list = NULL, *fds_after_list = NULL;

        (void) state;
        assert_non_null(clients);
        assert_int_equal(pthread_barrier_init(&warmed_up, NULL, N_CLIENTS + 1), 0);
        assert_int_equal(pthread_barrier_init(&measured, NULL, N_CLIENTS + 1), 0);

        for (unsigned i = 0; i < N_CLIENTS; i++) {
                clients[i].index = i;
                clients[i].calls = calls;
                assert_int_equal(pthread_create(&clients[i].thread, NULL, client_main, &clients[i]), 0);
        }

        /* Every client made one call of every kind and has its reply. */
        pthread_barrier_wait(&warmed_up);
        round_trip_on_fresh_connection();
        rss_warm = smimed_rss_kib();
        assert_int_equal(harness_smimed_fds(harness, &fds_warm, &fds_warm_list), 0);
        start = now_usec();
        pthread_barrier_wait(&measured);

        for (unsigned i = 0; i < N_CLIENTS; i++)
                assert_int_equal(pthread_join(clients[i].thread, NULL), 0);
        duration = now_usec() - start;

        /* Every client has closed its connection; see round_trip_on_fresh_connection(). */
        round_trip_on_fresh_connection();
        rss_after = smimed_rss_kib();
        assert_int_equal(harness_smimed_fds(harness, &fds_after, &fds_after_list), 0);

        for (unsigned i = 0; i < calls; i++)
                expected[i % _OP_MAX] += N_CLIENTS;
        for (unsigned i = 0; i < N_CLIENTS; i++) {
                for (Op op = 0; op < _OP_MAX; op++)
                        done[op] += clients[i].done[op];
                failed += clients[i].failed;
                if (clients[i].failed > 0 && !first_failure[0])
                        snprintf(first_failure, sizeof(first_failure), "%s", clients[i].first_failure);
        }

        printf("load: %u clients x %u calls in %.1f s (%.0f calls/s)\n", N_CLIENTS, calls, (double) duration / 1e6,
               (double) (N_CLIENTS * calls) / ((double) duration / 1e6));
        for (Op op = 0; op < _OP_MAX; op++) {
                printf("load: %-18s %6u of %6u right\n", op_names[op], done[op], expected[op]);
                total_done += done[op];
        }
        printf("load: failures: %u\n", failed);
        printf("load: smimed RSS after warm-up %" PRIu64 " KiB, after the run %" PRIu64 " KiB (%+.1f%%)\n", rss_warm,
               rss_after, 100.0 * ((double) rss_after - (double) rss_warm) / (double) rss_warm);
        printf("load: smimed open fds after warm-up %u, after the run %u\n", fds_warm, fds_after);
        fflush(stdout);

        /* Everything is freed before the first assertion: a failed one
         * longjmps past the _cleanup_ handlers. */
        for (unsigned i = 0; i < N_CLIENTS; i++)
                client_done(&clients[i]);
        clients = mfree(clients);
        if (fds_after != fds_warm)
                fprintf(stderr, "smimed's fds after the warm-up:\n%safter the run:\n%s", fds_warm_list, fds_after_list);
        free(fds_warm_list);
        free(fds_after_list);
        pthread_barrier_destroy(&warmed_up);
        pthread_barrier_destroy(&measured);

        if (failed > 0)
                fail_msg("%u of %u calls failed; the first: %s", failed, N_CLIENTS * calls, first_failure);
        assert_int_equal(total_done, N_CLIENTS * calls);
        for (Op op = 0; op < _OP_MAX; op++)
                assert_int_equal(done[op], expected[op]);
#if RSS_IS_THE_DAEMONS_MEMORY
        if (rss_after * 100 > rss_warm * (100 + RSS_GROWTH_MAX_PERCENT))
                fail_msg("smimed's RSS grew from %" PRIu64 " KiB to %" PRIu64 " KiB, more than %u%%", rss_warm,
                         rss_after, RSS_GROWTH_MAX_PERCENT);
#else
        printf("load: ASan build: RSS includes ASan's quarantine of freed memory, so leaks are left to "
               "LeakSanitizer when smimed exits (test_clean_stop)\n");
#endif
        if (fds_after != fds_warm)
                fail_msg("smimed held %u fds after the warm-up and %u after the run (listed above)", fds_warm,
                         fds_after);
}

static void test_clean_stop(void **state) {
        int status;

        (void) state;
        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load),
                cmocka_unit_test(test_clean_stop),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
