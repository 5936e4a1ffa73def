/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libsmimed's asynchronous API, options objects and change notifications on
 * a real smimed (SoftHSM2, dbus-daemon, polkitd): calls run from an sd-event
 * loop and from a hand-made poll() loop (as a GLib main loop would drive
 * it), cancelled calls never reach their handler, results larger than a
 * pipe's buffer come back, options are checked before anything is sent,
 * and a subscriber hears of certificates added, removed and (un)trusted by
 * another connection. One smimed for the whole file; no sleeps: every wait
 * runs the event loop until what is awaited happened. */
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-event.h>

#include "harness.h"
#include "pki.h"
#include "smimed-errors.h"
#include "smimed.h"

#define ALICE "alice@example.com"   /* the token key's certificate */
#define BOB "bob@example.com"       /* a certificate without a key in the token */
#define NOBODY "nobody@example.com" /* no certificate at all */

DEFINE_TRIVIAL_CLEANUP_FUNC(smimed_options *, smimed_options_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(smimed_call *, smimed_call_unref);

static Harness *harness;
static sd_event *event;
static smimed *client; /* attached to event */
static PkiCert *root, *leaf, *bob;
static char leaf_fp[65], bob_fp[65];
static char *message;

/* ---- waiting on the loop ---- */

static uint64_t now_usec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

/* Runs the event loop until *done, at most HARNESS_TIMEOUT_USEC. */
static void run_until(const bool *done, const char *what) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;

        while (!*done) {
                if (now_usec() > deadline)
                        fail_msg("%s: not done within %llu s", what,
                                 (unsigned long long) (HARNESS_TIMEOUT_USEC / 1000000));
                assert_true(sd_event_run(event, 1000000) >= 0);
        }
}

/* ---- what the handlers saw ---- */

typedef struct Outcome {
        bool done;
        unsigned calls;
        int r;
        char *error_name, *error_message;
        char *output;
        size_t size;
        char *signer, *encryption, *signature;
        uint64_t result_size;
        bool sign_possible;
        char *sign_reason;
        char **encrypt_reasons; /* one per recipient, "" when possible */
} Outcome;

static void outcome_done(Outcome *o) {
        free(o->error_name);
        free(o->error_message);
        free(o->output);
        free(o->signer);
        free(o->encryption);
        free(o->signature);
        free(o->sign_reason);
        smimed_strv_free(o->encrypt_reasons);
        *o = (Outcome){};
}

static void outcome_begin(Outcome *o, smimed *s, int r, const smimed_error *error) {
        assert_non_null(s);
        o->done = true;
        o->calls++;
        o->r = r;
        if (r < 0) {
                assert_non_null(error);
                o->error_name = error->name ? strdup(error->name) : NULL;
                o->error_message = error->message ? strdup(error->message) : NULL;
        } else
                assert_null(error);
}

static void keep_output(Outcome *o, const void *output, size_t size) {
        if (!output)
                return;
        /* NUL-terminated, as promised. */
        assert_int_equal(((const char *) output)[size], '\0');
        o->output = malloc(size + 1);
        assert_non_null(o->output);
        memcpy(o->output, output, size + 1);
        o->size = size;
}

static void on_result(smimed *s, int r, const smimed_error *error, const smimed_result *result, const void *output,
                      size_t size, void *userdata) {
        Outcome *o = userdata;

        outcome_begin(o, s, r, error);
        if (r < 0) {
                assert_null(result);
                return;
        }
        assert_non_null(result);
        o->signer = result->signer ? strdup(result->signer) : NULL;
        o->result_size = result->size;
        keep_output(o, output, size);
}

static void on_status(smimed *s, int r, const smimed_error *error, const smimed_message_status *st, const void *output,
                      size_t size, void *userdata) {
        Outcome *o = userdata;

        outcome_begin(o, s, r, error);
        if (r < 0) {
                assert_null(st);
                return;
        }
        assert_non_null(st);
        o->encryption = strdup(st->encryption);
        o->signature = strdup(st->signature);
        o->signer = st->have_signer ? strdup(st->signer.fingerprint) : NULL;
        o->result_size = st->size;
        keep_output(o, output, size);
}

static void on_capabilities(smimed *s, int r, const smimed_error *error, const smimed_capabilities *caps,
                            void *userdata) {
        Outcome *o = userdata;

        outcome_begin(o, s, r, error);
        if (r < 0)
                return;
        o->sign_possible = caps->have_sign && caps->sign.possible;
        o->sign_reason = strdup(caps->have_sign ? caps->sign.reason : "-");
        o->encrypt_reasons = calloc(caps->n_encrypt + 1, sizeof(char *));
        assert_non_null(o->encrypt_reasons);
        for (size_t i = 0; i < caps->n_encrypt; i++)
                o->encrypt_reasons[i] = strdup(caps->encrypt[i].reason);
}

static void expect_ok(const Outcome *o, const char *what) {
        if (!o->done)
                fail_msg("%s: the handler was not called", what);
        if (o->r < 0)
                fail_msg("%s: %s: %s: %s", what, strerror(-o->r), o->error_name ? o->error_name : "(no name)",
                         o->error_message ? o->error_message : "(no message)");
        assert_int_equal(o->calls, 1);
}

typedef struct Changes {
        unsigned n;
        smimed_change kinds[64];
        char *ids[64];
} Changes;

static void changes_done(Changes *c) {
        for (unsigned i = 0; i < c->n; i++)
                free(c->ids[i]);
        *c = (Changes){};
}

static Changes floating_seen;

/* ---- setup ---- */

static char *make_message(const char *from, const char *to, const char *tag, size_t filler) {
        char *m = NULL, *pad;

        pad = malloc(filler + 1);
        assert_non_null(pad);
        /* Lines of 76 characters of text. */
        for (size_t i = 0; i < filler; i++)
                pad[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char) ('a' + i % 26);
        pad[filler] = '\0';
        assert_true(asprintf(&m,
                             "From: <%s>\r\nTo: <%s>\r\nSubject: async %s\r\nMIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=us-ascii\r\n\r\nThe body of %s.\r\n%s\r\n",
                             from, to, tag, tag, pad) > 0);
        free(pad);
        return m;
}

static PkiCert *leaf_for(const char *cn, const char *address, EVP_PKEY *key, const PkiCert *issuer) {
        const char *addresses[] = {address, NULL};
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

static int import(smimed *s, const PkiCert *c, bool trust) {
        _cleanup_free_ char *pem = pki_cert_pem(c);
        smimed_error e = {};
        int r;

        if (!pem)
                return -ENOMEM;
        r = smimed_import_certificates(s, pem, strlen(pem), trust, NULL, &e);
        if (r < 0)
                fprintf(stderr, "import failed: %s: %s\n", strempty(e.name), strempty(e.message));
        smimed_error_done(&e);
        return r;
}

static int setup(void **state) {
        _cleanup_free_ char *config = NULL, *config_path = NULL;
        smimed_error e = {};
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
        r = sd_event_new(&event);
        if (r >= 0)
                r = smimed_attach_event(client, event, 0);
        if (r < 0)
                return r;

        root = pki_root_ca("Async Test Root");
        leaf = root ? leaf_for("Alice Example", ALICE, pki_public_key_from_pem_file(harness->key_pem), root) : NULL;
        bob = root ? leaf_for("Bob Example", BOB, pki_key_rsa(2048), root) : NULL;
        if (!leaf || !bob || pki_cert_fingerprint(leaf, leaf_fp) < 0 || pki_cert_fingerprint(bob, bob_fp) < 0)
                return -EIO;
        if (import(client, root, true) < 0 || import(client, leaf, false) < 0 || import(client, bob, false) < 0)
                return -EIO;

        message = make_message(ALICE, BOB, "message", 200);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        client = smimed_close(client);
        event = sd_event_unref(event);
        harness = harness_free(harness);
        root = pki_cert_free(root);
        leaf = pki_cert_free(leaf);
        bob = pki_cert_free(bob);
        message = mfree(message);
        changes_done(&floating_seen);
        return 0;
}

/* ---- options ---- */

static void test_options_setters(void **state) {
        _cleanup_(smimed_options_freep) smimed_options *o = smimed_options_new();

        (void) state;
        assert_non_null(o);
        assert_null(smimed_options_free(NULL));

        /* Values smimed cannot take are refused at once. */
        assert_int_equal(smimed_options_set_digest(o, "md5"), -EINVAL);
        assert_int_equal(smimed_options_set_digest(o, "SHA-256"), -EINVAL);
        assert_int_equal(smimed_options_set_digest(o, ""), -EINVAL);
        assert_int_equal(smimed_options_set_cipher(o, "des-ede3-cbc"), -EINVAL);
        assert_int_equal(smimed_options_set_key(o, "not hex"), -EINVAL);
        assert_int_equal(smimed_options_set_key(o, ""), -EINVAL);
        assert_int_equal(smimed_options_set_sign_as(o, "not-an-address"), -EINVAL);
        assert_int_equal(smimed_options_set_sender(o, "two@at@signs"), -EINVAL);
        assert_int_equal(smimed_options_set_string(o, "Not-A-Name", "x"), -EINVAL);
        assert_int_equal(smimed_options_set_string(o, "", "x"), -EINVAL);
        assert_int_equal(smimed_options_set_string(o, "name", NULL), -EINVAL);
        assert_int_equal(smimed_options_set_bool(o, NULL, true), -EINVAL);
        /* Options with a setter take their value through it, checked. */
        assert_int_equal(smimed_options_set_string(o, "digest", "md5"), -EINVAL);
        assert_int_equal(smimed_options_set_bool(o, "verify", false), -EINVAL);
        /* No object at all. */
        assert_int_equal(smimed_options_set_opaque(NULL, true), -EINVAL);
        assert_int_equal(smimed_options_set_digest(NULL, "sha-256"), -EINVAL);
        assert_int_equal(smimed_options_set_timeout(NULL, 1), -EINVAL);

        /* What it can take; NULL unsets a string option. */
        assert_int_equal(smimed_options_set_digest(o, "sha-384"), 0);
        assert_int_equal(smimed_options_set_digest(o, NULL), 0);
        assert_int_equal(smimed_options_set_cipher(o, "aes-256-gcm"), 0);
        assert_int_equal(smimed_options_set_cipher(o, NULL), 0);
        assert_int_equal(smimed_options_set_key(o, "0A1b"), 0);
        assert_int_equal(smimed_options_set_key(o, NULL), 0);
        assert_int_equal(smimed_options_set_sign_as(o, ALICE), 0);
        assert_int_equal(smimed_options_set_sign_as(o, NULL), 0);
        assert_int_equal(smimed_options_set_interactive(o, false), 0);
        assert_int_equal(smimed_options_set_timeout(o, 120 * 1000000ULL), 0);
}

/* A set option the method does not take fails before anything is sent,
 * with a message that names it; the call's own options work. */
static void test_options_apply_per_method(void **state) {
        _cleanup_(smimed_options_freep) smimed_options *o = smimed_options_new();
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_result_done) smimed_result res = {};
        _cleanup_free_ void *out = NULL;
        size_t size = 0;
        int r;

        (void) state;
        assert_int_equal(smimed_options_set_cipher(o, "aes-128-cbc"), 0);
        r = smimed_sign_with_options(client, ALICE, message, strlen(message), o, &out, &size, &res, &e);
        assert_int_equal(r, -EINVAL);
        assert_null(e.name);
        assert_non_null(strstr(e.message, "\"cipher\""));
        assert_non_null(strstr(e.message, "Sign"));
        assert_null(out);

        /* The same object, cipher unset, a digest set: sign takes it. */
        smimed_error_done(&e);
        assert_int_equal(smimed_options_set_cipher(o, NULL), 0);
        assert_int_equal(smimed_options_set_digest(o, "sha-384"), 0);
        r = smimed_sign_with_options(client, ALICE, message, strlen(message), o, &out, &size, &res, &e);
        if (r < 0)
                fail_msg("sign with sha-384: %s: %s", strempty(e.name), strempty(e.message));
        assert_string_equal(res.signer, leaf_fp);
        assert_non_null(strstr(out, "micalg=\"sha-384\""));
        assert_int_equal(res.size, size);

        /* Decrypt options are refused by verify. */
        {
                _cleanup_(smimed_options_freep) smimed_options *d = smimed_options_new();
                _cleanup_(smimed_error_done) smimed_error e2 = {};

                assert_int_equal(smimed_options_set_verify(d, false), 0);
                r = smimed_verify_with_options(client, out, size, d, NULL, NULL, NULL, &e2);
                assert_int_equal(r, -EINVAL);
                assert_non_null(strstr(e2.message, "\"verify\""));
        }
}

/* An option of a newer smimed goes through as it is, and this smimed
 * says it does not know it. */
static void test_options_unknown_to_smimed(void **state) {
        _cleanup_(smimed_options_freep) smimed_options *o = smimed_options_new();
        _cleanup_(smimed_error_done) smimed_error e = {};
        int r;

        (void) state;
        assert_int_equal(smimed_options_set_bool(o, "frobnicate", true), 0);
        r = smimed_sign_with_options(client, ALICE, message, strlen(message), o, NULL, NULL, NULL, &e);
        assert_true(r < 0);
        assert_string_equal(e.name, SMIMED_ERROR_INVALID_ARGUMENT);
        assert_non_null(strstr(e.message, "frobnicate"));

        /* Replacing its value with a string keeps one entry. */
        smimed_error_done(&e);
        assert_int_equal(smimed_options_set_string(o, "frobnicate", "yes"), 0);
        r = smimed_sign_with_options(client, ALICE, message, strlen(message), o, NULL, NULL, NULL, &e);
        assert_true(r < 0);
        assert_string_equal(e.name, SMIMED_ERROR_INVALID_ARGUMENT);
}

/* verify=false and key= reach Decrypt. */
static void test_options_decrypt(void **state) {
        _cleanup_(smimed_options_freep) smimed_options *enc = smimed_options_new(), *dec = smimed_options_new();
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_message_status_done) smimed_message_status st = {}, st2 = {};
        _cleanup_free_ void *encrypted = NULL, *clear = NULL;
        const char *to[] = {ALICE, NULL};
        size_t size = 0, clear_size = 0;
        int r;

        (void) state;
        assert_int_equal(smimed_options_set_sign_as(enc, ALICE), 0);
        assert_int_equal(smimed_options_set_cipher(enc, "aes-256-gcm"), 0);
        r = smimed_encrypt_with_options(client, to, message, strlen(message), enc, &encrypted, &size, NULL, &e);
        if (r < 0)
                fail_msg("encrypt: %s: %s", strempty(e.name), strempty(e.message));
        assert_non_null(strstr(encrypted, "authEnveloped-data"));

        assert_int_equal(smimed_options_set_verify(dec, false), 0);
        r = smimed_decrypt_with_options(client, encrypted, size, dec, &clear, &clear_size, &st, &e);
        if (r < 0)
                fail_msg("decrypt: %s: %s", strempty(e.name), strempty(e.message));
        assert_string_equal(st.encryption, "encrypted");
        assert_string_equal(st.signature, "not-verified");
        assert_non_null(strstr(clear, "The body of message."));

        /* A key the message is not encrypted to. */
        assert_int_equal(smimed_options_set_key(dec, "ff"), 0);
        r = smimed_decrypt_with_options(client, encrypted, size, dec, NULL, NULL, &st2, &e);
        if (r < 0)
                fail_msg("decrypt with key ff: %s: %s", strempty(e.name), strempty(e.message));
        assert_string_equal(st2.encryption, "no-private-key");
}

/* ---- async calls ---- */

static void test_async_capabilities(void **state) {
        _cleanup_(outcome_done) Outcome o = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        const char *to[] = {BOB, NOBODY, NULL};

        (void) state;
        assert_int_equal(smimed_get_capabilities_async(client, ALICE, to, NULL, on_capabilities, &o, NULL, &e), 0);
        assert_false(o.done); /* only from the loop */
        run_until(&o.done, "GetCapabilities");
        expect_ok(&o, "GetCapabilities");
        assert_true(o.sign_possible);
        assert_string_equal(o.sign_reason, "");
        assert_string_equal(o.encrypt_reasons[0], "");
        assert_string_equal(o.encrypt_reasons[1], "no-certificate");
        assert_null(o.encrypt_reasons[2]);
}

static void test_async_sign_then_verify(void **state) {
        _cleanup_(outcome_done) Outcome signed_msg = {}, verified = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_message_status_done) smimed_message_status st = {};
        _cleanup_(smimed_call_unrefp) smimed_call *call = NULL;
        int r;

        (void) state;
        assert_int_equal(
                smimed_sign_async(client, ALICE, message, strlen(message), NULL, on_result, &signed_msg, &call, &e),
                0);
        assert_true(smimed_call_is_pending(call));
        run_until(&signed_msg.done, "async Sign");
        expect_ok(&signed_msg, "async Sign");
        assert_false(smimed_call_is_pending(call));
        assert_int_equal(smimed_call_cancel(call), 0); /* over: nothing to cancel */
        assert_string_equal(signed_msg.signer, leaf_fp);
        assert_int_equal(signed_msg.result_size, signed_msg.size);
        assert_non_null(strstr(signed_msg.output, "multipart/signed"));

        /* The blocking verify agrees. */
        r = smimed_verify(client, signed_msg.output, signed_msg.size, NULL, NULL, &st, &e);
        if (r < 0)
                fail_msg("verify: %s: %s", strempty(e.name), strempty(e.message));
        assert_string_equal(st.signature, "valid");
        assert_string_equal(st.signer.fingerprint, leaf_fp);

        /* And the async one, floating (no call object). */
        assert_int_equal(
                smimed_verify_async(client, signed_msg.output, signed_msg.size, NULL, on_status, &verified, NULL, &e),
                0);
        run_until(&verified.done, "async Verify");
        expect_ok(&verified, "async Verify");
        assert_string_equal(verified.encryption, "not-encrypted");
        assert_string_equal(verified.signature, "valid");
        assert_string_equal(verified.signer, leaf_fp);
        assert_non_null(strstr(verified.output, "The body of message."));
}

static void test_async_encrypt_then_decrypt(void **state) {
        _cleanup_(outcome_done) Outcome enc = {}, dec = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_options_freep) smimed_options *o = smimed_options_new();
        const char *to[] = {BOB, NULL};

        (void) state;
        /* To Bob (whose key is not in the token) and the sender, Alice (whose is). */
        assert_int_equal(smimed_options_set_sender(o, ALICE), 0);
        assert_int_equal(smimed_encrypt_async(client, to, message, strlen(message), o, on_result, &enc, NULL, &e), 0);
        run_until(&enc.done, "async Encrypt");
        expect_ok(&enc, "async Encrypt");
        assert_non_null(strstr(enc.output, "enveloped-data"));
        assert_null(strstr(enc.output, "The body of message."));

        assert_int_equal(smimed_decrypt_async(client, enc.output, enc.size, NULL, on_status, &dec, NULL, &e), 0);
        run_until(&dec.done, "async Decrypt");
        expect_ok(&dec, "async Decrypt");
        assert_string_equal(dec.encryption, "encrypted");
        assert_string_equal(dec.signature, "not-signed");
        assert_non_null(strstr(dec.output, "The body of message."));
        assert_non_null(strstr(dec.output, "Subject: async message"));
}

/* A call started from another's handler: the library lets go of the first
 * call's memfds after its handler without touching the second's (their
 * numbers are reused). */
typedef struct Chain {
        Outcome first, second;
} Chain;

static void on_signed_then_verify(smimed *s, int r, const smimed_error *error, const smimed_result *result,
                                  const void *output, size_t size, void *userdata) {
        Chain *c = userdata;
        _cleanup_(smimed_error_done) smimed_error e = {};

        on_result(s, r, error, result, output, size, &c->first);
        if (r < 0)
                return;
        assert_int_equal(smimed_verify_async(s, output, size, NULL, on_status, &c->second, NULL, &e), 0);
}

static void test_async_chained(void **state) {
        _cleanup_(smimed_error_done) smimed_error e = {};
        Chain c = {};

        (void) state;
        assert_int_equal(
                smimed_sign_async(client, ALICE, message, strlen(message), NULL, on_signed_then_verify, &c, NULL, &e),
                0);
        run_until(&c.second.done, "async Verify started from the Sign handler");
        expect_ok(&c.first, "async Sign");
        expect_ok(&c.second, "async Verify started from the Sign handler");
        assert_string_equal(c.second.signature, "valid");
        outcome_done(&c.first);
        outcome_done(&c.second);
}

/* A result of megabytes, more than any pipe holds: it comes back whole,
 * with nothing read while the call was in progress. */
static void test_async_large_result(void **state) {
        _cleanup_(outcome_done) Outcome o = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_free_ char *big = make_message(ALICE, BOB, "big", 3 * 1024 * 1024);

        (void) state;
        assert_int_equal(smimed_sign_async(client, ALICE, big, strlen(big), NULL, on_result, &o, NULL, &e), 0);
        run_until(&o.done, "async Sign of 3 MiB");
        expect_ok(&o, "async Sign of 3 MiB");
        assert_true(o.size > 3 * 1024 * 1024);
        assert_int_equal(o.result_size, o.size);
}

static void test_async_errors(void **state) {
        _cleanup_(outcome_done) Outcome o = {}, never = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        smimed_call *call = NULL;

        (void) state;
        /* What the library can check fails at once; the handler is never called. */
        assert_int_equal(smimed_sign_async(client, NULL, message, strlen(message), NULL, on_result, &never, &call, &e),
                         -EINVAL);
        assert_null(call);
        smimed_error_done(&e);
        assert_int_equal(smimed_sign_async(client, ALICE, message, 0, NULL, on_result, &never, &call, &e), -EINVAL);
        smimed_error_done(&e);
        assert_int_equal(smimed_decrypt_async(client, message, strlen(message), NULL, NULL, NULL, &call, &e), -EINVAL);
        smimed_error_done(&e);

        /* What smimed refuses reaches the handler with its name. */
        assert_int_equal(smimed_sign_async(client, NOBODY, message, strlen(message), NULL, on_result, &o, NULL, &e),
                         0);
        run_until(&o.done, "async Sign as nobody");
        assert_true(o.r < 0);
        assert_string_equal(o.error_name, SMIMED_ERROR_NO_CERTIFICATE);
        assert_non_null(o.error_message);
        assert_null(o.output);
        assert_false(never.done);

        /* A reply later than the call's timeout: -ETIMEDOUT, blocking and async.
         * The blocking call reads a pipe whose end of input never comes, so
         * smimed cannot answer in time however fast it is (sd_bus_call() keeps
         * reading while messages arrive, so a quick answer arriving behind
         * other traffic could otherwise be seen before the deadline). */
        {
                _cleanup_(smimed_options_freep) smimed_options *t = smimed_options_new();
                _cleanup_(outcome_done) Outcome late = {};
                int in[2], out[2];

                assert_int_equal(smimed_options_set_timeout(t, 1), 0);
                assert_int_equal(pipe2(in, O_CLOEXEC), 0);
                assert_int_equal(pipe2(out, O_CLOEXEC), 0);
                assert_int_equal(write(in[1], message, strlen(message)), (ssize_t) strlen(message));
                assert_int_equal(smimed_sign_fd_with_options(client, ALICE, in[0], out[1], t, NULL, &e), -ETIMEDOUT);
                smimed_error_done(&e);
                for (size_t i = 0; i < 2; i++) {
                        close(in[i]);
                        close(out[i]);
                }
                assert_int_equal(
                        smimed_sign_async(client, ALICE, message, strlen(message), t, on_result, &late, NULL, &e), 0);
                run_until(&late.done, "async Sign with a timeout of 1 µs");
                assert_int_equal(late.r, -ETIMEDOUT);
                assert_non_null(late.error_message);
        }
}

/* A cancelled call never reaches its handler; neither does one whose last
 * reference was dropped; calls after them work. */
static void test_async_cancel(void **state) {
        _cleanup_(outcome_done) Outcome cancelled = {}, dropped = {}, after = {}, caps = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(smimed_call_unrefp) smimed_call *call = NULL;
        smimed_call *other = NULL;

        (void) state;
        assert_int_equal(
                smimed_sign_async(client, ALICE, message, strlen(message), NULL, on_result, &cancelled, &call, &e), 0);
        assert_int_equal(smimed_decrypt_async(client, message, strlen(message), NULL, on_status, &dropped, &other, &e),
                         0);
        assert_int_equal(smimed_call_cancel(call), 1);
        assert_int_equal(smimed_call_cancel(call), 0);
        assert_false(smimed_call_is_pending(call));
        assert_null(smimed_call_unref(other)); /* the last reference: cancels */

        /* Calls sent later are answered later: once these are done, so is
         * smimed with the two above, and their replies were dropped. */
        assert_int_equal(smimed_sign_async(client, ALICE, message, strlen(message), NULL, on_result, &after, NULL, &e),
                         0);
        run_until(&after.done, "async Sign after the cancelled ones");
        expect_ok(&after, "async Sign after the cancelled ones");
        assert_int_equal(smimed_get_capabilities_async(client, ALICE, NULL, NULL, on_capabilities, &caps, NULL, &e),
                         0);
        run_until(&caps.done, "GetCapabilities after the cancelled ones");
        while (sd_event_run(event, 0) > 0)
                ;
        assert_false(cancelled.done);
        assert_false(dropped.done);
}

/* smimed_close() with calls in progress: their handlers are never called,
 * and the caller's call objects stay valid to unref. */
static void test_async_close_cancels(void **state) {
        _cleanup_(outcome_done) Outcome o = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        smimed_call *call = NULL;
        smimed *s = NULL;

        (void) state;
        assert_int_equal(smimed_connect(&s, &e), 0);
        assert_int_equal(smimed_attach_event(s, event, 0), 0);
        assert_int_equal(smimed_sign_async(s, ALICE, message, strlen(message), NULL, on_result, &o, &call, &e), 0);
        assert_int_equal(smimed_sign_async(s, ALICE, message, strlen(message), NULL, on_result, &o, NULL, &e), 0);
        assert_true(smimed_call_is_pending(call));
        assert_null(smimed_close(s));
        assert_false(smimed_call_is_pending(call));
        assert_int_equal(smimed_call_cancel(call), 0);
        assert_null(smimed_call_unref(call));
        while (sd_event_run(event, 0) > 0)
                ;
        assert_false(o.done);
}

/* Driven by hand, as another main loop would: poll the fd for the events
 * asked, until the timeout, then process until there is nothing to do. */
static void test_async_foreign_loop(void **state) {
        _cleanup_(outcome_done) Outcome o = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        smimed *s = NULL;

        (void) state;
        assert_int_equal(smimed_connect(&s, &e), 0);
        assert_int_equal(smimed_sign_async(s, ALICE, message, strlen(message), NULL, on_result, &o, NULL, &e), 0);
        while (!o.done) {
                struct pollfd p = {.fd = smimed_get_fd(s), .events = (short) smimed_get_events(s)};
                uint64_t until = UINT64_MAX, now = now_usec();
                int timeout_ms = 1000;

                assert_true(p.fd >= 0);
                assert_true(p.events >= 0);
                assert_true(smimed_get_timeout(s, &until) >= 0);
                if (until != UINT64_MAX)
                        timeout_ms = until <= now ? 0 : (int) ((until - now + 999) / 1000);
                if (timeout_ms > 1000)
                        timeout_ms = 1000;
                assert_true(poll(&p, 1, timeout_ms) >= 0);
                while (smimed_process(s) > 0)
                        ;
                if (now_usec() > deadline)
                        fail_msg("the hand-driven call did not end");
        }
        expect_ok(&o, "hand-driven async Sign");
        assert_string_equal(o.signer, leaf_fp);
        assert_null(smimed_close(s));
}

/* ---- change notifications ---- */

static void on_change(smimed *s, smimed_change kind, const char *id, void *userdata) {
        Changes *c = userdata;

        assert_ptr_equal(s, client);
        if (c->n == ELEMENTSOF(c->kinds))
                return;
        c->kinds[c->n] = kind;
        c->ids[c->n] = id ? strdup(id) : NULL;
        c->n++;
}

static bool changes_have(const Changes *c, smimed_change kind, const char *id) {
        for (unsigned i = 0; i < c->n; i++)
                if (c->kinds[i] == kind && streq_ptr(c->ids[i], id))
                        return true;
        return false;
}

static void wait_change(Changes *c, smimed_change kind, const char *id, const char *what) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;

        while (!changes_have(c, kind, id)) {
                if (now_usec() > deadline)
                        fail_msg("%s: no change %d for %s came", what, (int) kind, strempty(id));
                assert_true(sd_event_run(event, 1000000) >= 0);
        }
}

static void test_changes(void **state) {
        _cleanup_(changes_done) Changes seen = {}, ended = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        _cleanup_(pki_cert_freep) PkiCert *carol = NULL, *dave = NULL;
        smimed_slot *slot = NULL, *early = NULL;
        smimed *other = NULL;
        char carol_fp[65], dave_fp[65];

        (void) state;
        carol = leaf_for("Carol", "carol@example.com", pki_key_rsa(2048), root);
        dave = leaf_for("Dave", "dave@example.com", pki_key_rsa(2048), root);
        assert_non_null(carol);
        assert_non_null(dave);
        assert_int_equal(pki_cert_fingerprint(carol, carol_fp), 0);
        assert_int_equal(pki_cert_fingerprint(dave, dave_fp), 0);

        assert_int_equal(smimed_subscribe_changes(client, NULL, NULL, &slot, &e), -EINVAL);
        smimed_error_done(&e);
        assert_int_equal(smimed_subscribe_changes(client, on_change, &seen, &slot, &e), 0);
        assert_int_equal(smimed_subscribe_changes(client, on_change, &ended, &early, &e), 0);

        /* Another connection, as an admin's smimectl would be. */
        assert_int_equal(smimed_connect(&other, &e), 0);

        assert_int_equal(import(other, carol, false), 0);
        wait_change(&seen, SMIMED_CHANGE_CERTIFICATE_ADDED, carol_fp, "ImportCertificates");
        wait_change(&ended, SMIMED_CHANGE_CERTIFICATE_ADDED, carol_fp, "ImportCertificates, second subscriber");

        /* An ended subscription hears nothing more. */
        assert_null(smimed_slot_unref(early));
        {
                unsigned n_ended = ended.n;

                assert_int_equal(smimed_set_certificate_trusted(other, carol_fp, true, &e), 0);
                wait_change(&seen, SMIMED_CHANGE_TRUST, carol_fp, "SetTrusted true");
                assert_int_equal(smimed_set_certificate_trusted(other, carol_fp, false, &e), 0);
                assert_int_equal(smimed_remove_certificate(other, carol_fp, &e), 0);
                wait_change(&seen, SMIMED_CHANGE_CERTIFICATE_REMOVED, carol_fp, "RemoveCertificate");
                assert_int_equal(ended.n, n_ended);
        }
        /* The (un)trust came in between, in order. */
        {
                unsigned n_trust = 0;

                for (unsigned i = 0; i < seen.n; i++)
                        if (seen.kinds[i] == SMIMED_CHANGE_TRUST && streq_ptr(seen.ids[i], carol_fp))
                                n_trust++;
                assert_int_equal(n_trust, 2);
        }
        /* Nothing about a certificate no one touched. */
        assert_false(changes_have(&seen, SMIMED_CHANGE_CERTIFICATE_ADDED, dave_fp));

        /* A floating subscription (no slot) lasts as long as the connection:
         * its userdata too. */
        assert_int_equal(smimed_subscribe_changes(client, on_change, &floating_seen, NULL, &e), 0);
        assert_null(smimed_slot_unref(slot));
        assert_int_equal(import(other, dave, false), 0);
        wait_change(&floating_seen, SMIMED_CHANGE_CERTIFICATE_ADDED, dave_fp,
                    "ImportCertificates, floating subscription");
        assert_false(changes_have(&seen, SMIMED_CHANGE_CERTIFICATE_ADDED, dave_fp));

        /* A key made in the token, and removed again. */
        {
                _cleanup_free_ char *key_id = NULL;

                if (smimed_generate_key(other, "erin@example.com", "ec-p256", NULL, &key_id, NULL, &e) < 0)
                        fail_msg("GenerateKey: %s: %s", strempty(e.name), strempty(e.message));
                wait_change(&floating_seen, SMIMED_CHANGE_KEY_ADDED, key_id, "GenerateKey");
                assert_int_equal(smimed_remove_key(other, key_id, &e), 0);
                wait_change(&floating_seen, SMIMED_CHANGE_KEY_REMOVED, key_id, "RemoveKey");
        }

        /* A CRL: any certificate may be revoked now. Once, not again for
         * the same CRL (nothing newer was stored). */
        {
                PkiCrlOptions o;
                _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
                _cleanup_free_ char *pem = NULL;
                unsigned count = 0, n_crl = 0;

                pki_crl_options_init(&o);
                crl = pki_crl_new(root, NULL, 0, &o);
                pem = crl ? pki_crl_pem(crl) : NULL;
                assert_non_null(pem);
                if (smimed_import_crl(other, pem, strlen(pem), &count, &e) < 0)
                        fail_msg("ImportCRL: %s: %s", strempty(e.name), strempty(e.message));
                assert_int_equal(count, 1);
                wait_change(&floating_seen, SMIMED_CHANGE_CRL, NULL, "ImportCRL");
                assert_int_equal(smimed_import_crl(other, pem, strlen(pem), &count, &e), 0);
                assert_int_equal(count, 0);
                /* A change after it, to know the second import's would have come by now. */
                assert_int_equal(smimed_set_certificate_trusted(other, dave_fp, true, &e), 0);
                wait_change(&floating_seen, SMIMED_CHANGE_TRUST, dave_fp, "SetTrusted after the CRLs");
                for (unsigned i = 0; i < floating_seen.n; i++)
                        n_crl += floating_seen.kinds[i] == SMIMED_CHANGE_CRL;
                assert_int_equal(n_crl, 1);
        }

        assert_null(smimed_close(other));
}

/* smimed leaving the bus is a change of state (no id); a call in progress
 * then ends with an error, not silence. Last: smimed stays down. */
static void test_changes_smimed_leaves(void **state) {
        _cleanup_(changes_done) Changes seen = {};
        _cleanup_(smimed_error_done) smimed_error e = {};
        smimed_slot *slot = NULL;

        (void) state;
        assert_int_equal(smimed_subscribe_changes(client, on_change, &seen, &slot, &e), 0);
        assert_int_equal(harness_stop_smimed(harness), 0);
        wait_change(&seen, SMIMED_CHANGE_STATE, NULL, "smimed stopped");
        assert_null(smimed_slot_unref(slot));

        {
                _cleanup_(outcome_done) Outcome o = {};

                assert_int_equal(
                        smimed_sign_async(client, ALICE, message, strlen(message), NULL, on_result, &o, NULL, &e), 0);
                run_until(&o.done, "async Sign without smimed");
                assert_true(o.r < 0);
                assert_true(smimed_error_is_unreachable(&(smimed_error){.name = o.error_name}));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_options_setters),
                cmocka_unit_test(test_options_apply_per_method),
                cmocka_unit_test(test_options_unknown_to_smimed),
                cmocka_unit_test(test_options_decrypt),
                cmocka_unit_test(test_async_capabilities),
                cmocka_unit_test(test_async_sign_then_verify),
                cmocka_unit_test(test_async_encrypt_then_decrypt),
                cmocka_unit_test(test_async_chained),
                cmocka_unit_test(test_async_large_result),
                cmocka_unit_test(test_async_errors),
                cmocka_unit_test(test_async_cancel),
                cmocka_unit_test(test_async_close_cancels),
                cmocka_unit_test(test_async_foreign_loop),
                cmocka_unit_test(test_changes),
                cmocka_unit_test(test_changes_smimed_leaves),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
