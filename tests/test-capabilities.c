/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of daemon/capabilities.c over an in-memory lookup
 * (tests/fake-lookup.c): which certificate is chosen for an address, the
 * reason given when none is usable, signing against encrypting, and a
 * private key in the token or not, told as capabilities learn it (the
 * public key hashes of the token's keys). No store, no bus, no token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/err.h>

#include "capabilities.h"
#include "certificate.h"
#include "fake-lookup.h"
#include "pki.h"
#include "strv.h"

static PkiCert *root, *intermediate;
static EVP_PKEY *keys[4];       /* distinct RSA-2048 keys for the leaves */

static const ValidationPolicy default_policy = VALIDATION_POLICY_DEFAULT;

static int setup(void **state) {
        (void) state;
        root = pki_root_ca("Test Root");
        intermediate = root ? pki_intermediate_ca("Test Intermediate", root) : NULL;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                keys[i] = pki_key_rsa(2048);
                if (!keys[i])
                        return -1;
        }
        return intermediate ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        root = pki_cert_free(root);
        intermediate = pki_cert_free(intermediate);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                EVP_PKEY_free(keys[i]);
        return 0;
}

/* A world: the lookup with the root trusted and the intermediate, a
 * validator over it, and the context capabilities read. */
typedef struct World {
        FakeLookup *lookup;
        Validator *validator;
        char **key_spkis;
        CapabilityContext ctx;
        PkiCert *certs[16];
        size_t n_certs;
} World;

static void world_init(World *w) {
        ValidationLookup lookup;

        *w = (World) {};
        w->lookup = fake_lookup_new();
        assert_non_null(w->lookup);
        assert_int_equal(fake_lookup_add(w->lookup, root->x509, true), 0);
        assert_int_equal(fake_lookup_add(w->lookup, intermediate->x509, false), 0);
        lookup = fake_lookup_validation(w->lookup);
        assert_int_equal(validator_new(&lookup, &w->validator), 0);
        w->key_spkis = calloc(1, sizeof(char *));
        assert_non_null(w->key_spkis);
        w->ctx = (CapabilityContext) {
                .lookup = fake_lookup_capability(w->lookup),
                .validator = w->validator,
                .policy = &default_policy,
                .now = time(NULL),
                .token_ready = true,
                .key_spkis = w->key_spkis,
        };
}

static void world_done(World *w) {
        for (size_t i = 0; i < w->n_certs; i++)
                pki_cert_free(w->certs[i]);
        validator_free(w->validator);
        fake_lookup_free(w->lookup);
        strv_free(w->key_spkis);
}

typedef struct Leaf {
        const char *address;
        EVP_PKEY *key;          /* NULL: keys[0] */
        int not_before_days;    /* 0: -1 */
        int not_after_days;     /* 0: +365 */
        unsigned key_usage;
        PkiEku eku;
        bool in_token;          /* its private key is in the token */
} Leaf;

/* Makes a leaf under the intermediate and puts it in the lookup. */
static const PkiCert *world_add(World *w, const Leaf *l) {
        const char *san[] = { l->address, NULL };
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = l->address;
        o.san_emails = san;
        o.key = l->key ?: keys[0];
        if (l->not_before_days)
                o.not_before_days = l->not_before_days;
        if (l->not_after_days)
                o.not_after_days = l->not_after_days;
        o.key_usage = l->key_usage;
        o.eku = l->eku;
        c = pki_cert_new(&o, intermediate);
        if (!c)
                fail_msg("pki_cert_new failed: %s", ERR_error_string(ERR_get_error(), NULL));
        assert_true(w->n_certs < ELEMENTSOF(w->certs));
        w->certs[w->n_certs++] = c;
        assert_int_equal(fake_lookup_add(w->lookup, c->x509, false), 0);

        if (l->in_token) {
                _cleanup_(cert_info_freep) CertInfo *info = NULL;

                assert_int_equal(cert_info_new(c->x509, &info), 0);
                if (!strv_contains(w->key_spkis, info->spki_sha256))
                        assert_int_equal(strv_extend(&w->key_spkis, info->spki_sha256), 0);
                w->ctx.key_spkis = w->key_spkis;
        }
        return c;
}

static void assert_chose(const Capability *c, const PkiCert *expected) {
        char fingerprint[65];

        assert_non_null(c->info);
        assert_int_equal(pki_cert_fingerprint(expected, fingerprint), 0);
        assert_string_equal(c->info->fingerprint, fingerprint);
}

static void assert_fingerprints(char **l, const PkiCert *const *expected, size_t n) {
        char fingerprint[65];

        assert_int_equal(strv_length(l), n);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(pki_cert_fingerprint(expected[i], fingerprint), 0);
                assert_string_equal(l[i], fingerprint);
        }
}

/* ---- which certificate ---- */

static void test_no_certificate(void **state) {
        _cleanup_(world_done) World w;
        _cleanup_(capability_done) Capability c = {};

        (void) state;
        world_init(&w);
        world_add(&w, &(Leaf) { .address = "bob@example.com", .in_token = true });
        assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_ENCRYPT, &c), 0);
        assert_false(c.possible);
        assert_string_equal(c.reason, "no-certificate");
        assert_string_equal(c.address, "alice@example.com");
        assert_non_null(strstr(c.message, "No certificate for alice@example.com"));
        assert_null(c.info);
}

/* [Policy] Enabled=no: no button, whatever the store holds. */
static void test_disabled(void **state) {
        _cleanup_(world_done) World w;

        (void) state;
        world_init(&w);
        world_add(&w, &(Leaf){.address = "alice@example.com", .in_token = true});
        w.ctx.disabled = true;
        for (CertPurpose p = CERT_PURPOSE_SIGN; p <= CERT_PURPOSE_ENCRYPT; p++) {
                _cleanup_(capability_done) Capability c = {};

                assert_int_equal(capability_for(&w.ctx, "alice@example.com", p, &c), 0);
                assert_false(c.possible);
                assert_string_equal(c.reason, "feature-disabled");
                assert_string_equal(c.address, "alice@example.com");
                assert_non_null(strstr(c.message, "Enabled=no"));
                assert_null(c.info);
        }
}

static void test_valid_beats_expired(void **state) {
        _cleanup_(world_done) World w;
        const PkiCert *valid, *expired;

        (void) state;
        world_init(&w);
        valid = world_add(&w, &(Leaf) { .address = "alice@example.com", .not_before_days = -60, .in_token = true });
        /* newer, but expired */
        expired = world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[1], .not_before_days = -10,
                                          .not_after_days = -1, .in_token = true });
        (void) expired;
        for (CertPurpose p = CERT_PURPOSE_SIGN; p <= CERT_PURPOSE_ENCRYPT; p++) {
                _cleanup_(capability_done) Capability c = {};

                assert_int_equal(capability_for(&w.ctx, "alice@example.com", p, &c), 0);
                assert_true(c.possible);
                assert_string_equal(c.reason, "");
                assert_non_null(strstr(c.message, "valid until"));
                assert_chose(&c, valid);
        }
}

static void test_newer_beats_older(void **state) {
        _cleanup_(world_done) World w;
        const PkiCert *newer;
        _cleanup_(capability_done) Capability c = {};

        (void) state;
        world_init(&w);
        world_add(&w, &(Leaf) { .address = "alice@example.com", .not_before_days = -30 });
        newer = world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[1], .not_before_days = -2 });
        world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[2], .not_before_days = -20 });
        assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_ENCRYPT, &c), 0);
        assert_true(c.possible);
        assert_chose(&c, newer);
}

/* To sign, a certificate whose key is in the token beats a newer one whose
 * key is not. To encrypt, the key does not matter. */
static void test_sign_prefers_key_in_token(void **state) {
        _cleanup_(world_done) World w;
        const PkiCert *with_key, *newer;

        (void) state;
        world_init(&w);
        with_key = world_add(&w, &(Leaf) { .address = "alice@example.com", .not_before_days = -30, .in_token = true });
        newer = world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[1], .not_before_days = -2 });
        {
                _cleanup_(capability_done) Capability c = {};

                assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_SIGN, &c), 0);
                assert_true(c.possible);
                assert_chose(&c, with_key);
        }
        {
                _cleanup_(capability_done) Capability c = {};

                assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_ENCRYPT, &c), 0);
                assert_true(c.possible);
                assert_chose(&c, newer);
        }
        assert_true(capability_has_private_key(&w.ctx, &(CertInfo) { .spki_sha256 = "" }) == false);
}

static void test_no_private_key(void **state) {
        _cleanup_(world_done) World w;
        const PkiCert *newer;

        (void) state;
        world_init(&w);
        world_add(&w, &(Leaf) { .address = "alice@example.com", .not_before_days = -30 });
        newer = world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[1], .not_before_days = -2 });
        {
                _cleanup_(capability_done) Capability c = {};

                assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_SIGN, &c), 0);
                assert_false(c.possible);
                assert_string_equal(c.reason, "no-private-key");
                assert_non_null(strstr(c.message, "its private key is not in the token"));
                assert_chose(&c, newer);
        }
        /* Encrypting needs the recipient's certificate only. */
        {
                _cleanup_(capability_done) Capability c = {};

                assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_ENCRYPT, &c), 0);
                assert_true(c.possible);
        }
}

static void test_token_not_ready(void **state) {
        _cleanup_(world_done) World w;
        _cleanup_(capability_done) Capability c = {};

        (void) state;
        world_init(&w);
        world_add(&w, &(Leaf) { .address = "alice@example.com" });
        w.ctx.token_ready = false;
        w.ctx.token_problem = "The token refused the PIN.";
        assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_SIGN, &c), 0);
        assert_false(c.possible);
        assert_string_equal(c.reason, "token-unavailable");
        assert_string_equal(c.message,
                            "The token that holds the private keys is not ready: The token refused the PIN.");
}

/* The token's state matters only for a key capabilities are not told of
 * (the manager tells none while the token is not ready). */
static void test_key_known_token_not_ready(void **state) {
        _cleanup_(world_done) World w;
        _cleanup_(capability_done) Capability c = {};

        (void) state;
        world_init(&w);
        world_add(&w, &(Leaf) { .address = "alice@example.com", .in_token = true });
        w.ctx.token_ready = false;
        assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_SIGN, &c), 0);
        assert_true(c.possible);
}

/* ---- purposes ---- */

static void test_sign_and_encrypt_certificates(void **state) {
        _cleanup_(world_done) World w;
        const PkiCert *signing, *encrypting;

        (void) state;
        world_init(&w);
        signing = world_add(&w, &(Leaf) { .address = "alice@example.com", .not_before_days = -10,
                                          .key_usage = KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION, .in_token = true });
        encrypting = world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[1], .not_before_days = -20,
                                             .key_usage = KU_KEY_ENCIPHERMENT, .in_token = true });
        {
                _cleanup_(capability_done) Capability c = {};

                assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_SIGN, &c), 0);
                assert_true(c.possible);
                assert_chose(&c, signing);
        }
        {
                _cleanup_(capability_done) Capability c = {};

                assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_ENCRYPT, &c), 0);
                assert_true(c.possible);
                assert_chose(&c, encrypting);
        }
}

/* ---- reasons when none is usable ---- */

static void assert_reason(World *w, CertPurpose purpose, const char *reason, const char *message_part) {
        _cleanup_(capability_done) Capability c = {};

        assert_int_equal(capability_for(&w->ctx, "alice@example.com", purpose, &c), 0);
        assert_false(c.possible);
        assert_string_equal(c.reason, reason);
        assert_non_null(c.info);
        if (message_part && !strstr(c.message, message_part))
                fail_msg("message \"%s\" lacks \"%s\"", c.message, message_part);
}

static void test_reasons(void **state) {
        (void) state;
        {
                _cleanup_(world_done) World w;

                world_init(&w);
                world_add(&w,
                          &(Leaf) { .address = "alice@example.com", .eku = PKI_EKU_CLIENT_AUTH, .in_token = true });
                assert_reason(&w, CERT_PURPOSE_SIGN, "wrong-usage", "emailProtection");
        }
        {
                _cleanup_(world_done) World w;

                world_init(&w);
                world_add(&w, &(Leaf) { .address = "alice@example.com", .key_usage = KU_DIGITAL_SIGNATURE });
                assert_reason(&w, CERT_PURPOSE_ENCRYPT, "wrong-usage", "does not allow encrypting");
        }
        {
                _cleanup_(world_done) World w;

                world_init(&w);
                world_add(&w, &(Leaf) { .address = "alice@example.com", .not_before_days = 3, .not_after_days = 30 });
                assert_reason(&w, CERT_PURPOSE_ENCRYPT, "not-yet-valid", "not valid before");
        }
        {
                _cleanup_(world_done) World w;

                world_init(&w);
                assert_int_equal(fake_lookup_remove(w.lookup, intermediate->x509), 0);
                world_add(&w, &(Leaf) { .address = "alice@example.com", .in_token = true });
                assert_reason(&w, CERT_PURPOSE_SIGN, "untrusted", "is not in the store");
        }
        {
                _cleanup_(world_done) World w;
                _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
                const PkiCert *leaf;
                uint64_t serial;
                PkiCrlOptions o;

                world_init(&w);
                leaf = world_add(&w, &(Leaf) { .address = "alice@example.com" });
                serial = pki_cert_serial(leaf);
                pki_crl_options_init(&o);
                crl = pki_crl_new(intermediate, &serial, 1, &o);
                assert_non_null(crl);
                assert_int_equal(fake_lookup_add_crl(w.lookup, crl), 0);
                assert_reason(&w, CERT_PURPOSE_ENCRYPT, "revoked", "revoked");
        }
}

/* Among unusable certificates the one reported is the least bad, in the
 * order of CertStatus (expired, not yet valid, revoked, untrusted, wrong
 * usage, weak), newest first within one. */
static void test_least_bad_reported(void **state) {
        _cleanup_(world_done) World w;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *small = pki_key_rsa(1024);
        const PkiCert *expired;

        (void) state;
        assert_non_null(small);
        world_init(&w);
        world_add(&w, &(Leaf) { .address = "alice@example.com", .key = small, .not_before_days = -1 });
        world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[1], .not_before_days = -2,
                                .key_usage = KU_DIGITAL_SIGNATURE });
        assert_reason(&w, CERT_PURPOSE_ENCRYPT, "wrong-usage", NULL);

        world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[2], .not_before_days = 5,
                                .not_after_days = 30 });
        assert_reason(&w, CERT_PURPOSE_ENCRYPT, "not-yet-valid", NULL);

        expired = world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[3], .not_before_days = -300,
                                          .not_after_days = -100 });
        {
                _cleanup_(capability_done) Capability c = {};

                assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_ENCRYPT, &c), 0);
                assert_string_equal(c.reason, "expired");
                assert_chose(&c, expired);
        }
}

/* ---- LookupCertificates' order ---- */

static void test_lookup_order(void **state) {
        _cleanup_(world_done) World w;
        _cleanup_(strv_freep) char **l = NULL;
        const PkiCert *old_valid, *new_expired, *new_valid, *bob;

        (void) state;
        world_init(&w);
        old_valid = world_add(&w, &(Leaf) { .address = "alice@example.com", .not_before_days = -50 });
        new_expired = world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[1], .not_before_days = -5,
                                              .not_after_days = -1 });
        new_valid = world_add(&w, &(Leaf) { .address = "alice@example.com", .key = keys[2], .not_before_days = -10 });
        bob = world_add(&w, &(Leaf) { .address = "bob@example.com", .key = keys[3], .not_before_days = -3 });

        /* usable first, then the newest */
        assert_int_equal(capability_lookup(&w.ctx, "alice@example.com", CERT_PURPOSE_ANY, false, &l), 0);
        assert_fingerprints(l, (const PkiCert *[]) { new_valid, old_valid, new_expired }, 3);
        l = strv_free(l);

        assert_int_equal(capability_lookup(&w.ctx, "alice@example.com", CERT_PURPOSE_ANY, true, &l), 0);
        assert_fingerprints(l, (const PkiCert *[]) { new_valid, old_valid }, 2);
        l = strv_free(l);

        /* everything: the lookup's own order, newest NotBefore first, unvalidated */
        assert_int_equal(capability_lookup(&w.ctx, "", CERT_PURPOSE_ANY, false, &l), 0);
        assert_fingerprints(l, (const PkiCert *[]) { bob, new_expired, new_valid, intermediate, root, old_valid },
                            6);
        l = strv_free(l);

        /* everything usable: the CAs count for ANY */
        assert_int_equal(capability_lookup(&w.ctx, "", CERT_PURPOSE_ANY, true, &l), 0);
        assert_fingerprints(l, (const PkiCert *[]) { bob, new_valid, intermediate, root, old_valid }, 5);
        l = strv_free(l);

        assert_int_equal(capability_lookup(&w.ctx, "", CERT_PURPOSE_SIGN, true, &l), 0);
        assert_fingerprints(l, (const PkiCert *[]) { bob, new_valid, old_valid }, 3);
}

/* ---- failures of the lookup ---- */

static void test_lookup_failure(void **state) {
        _cleanup_(world_done) World w;
        _cleanup_(capability_done) Capability c = {};
        _cleanup_(strv_freep) char **l = NULL;

        (void) state;
        world_init(&w);
        world_add(&w, &(Leaf) { .address = "alice@example.com" });
        w.lookup->fail = -EIO;
        assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_ENCRYPT, &c), -EIO);
        assert_null(c.message);
        assert_int_equal(capability_lookup(&w.ctx, "alice@example.com", CERT_PURPOSE_ENCRYPT, false, &l), -EIO);
        assert_null(l);
}

/* A certificate removed between finding and reading it is left out. */
static int vanishing_find(void *userdata, const char *address, char ***ret) {
        char **l = NULL;

        (void) userdata;
        (void) address;
        assert_int_equal(strv_extend(&l, "00000000000000000000000000000000000000000000000000000000000000ff"), 0);
        *ret = l;
        return 0;
}

static void test_vanished_certificate(void **state) {
        _cleanup_(world_done) World w;
        _cleanup_(capability_done) Capability c = {};

        (void) state;
        world_init(&w);
        w.ctx.lookup.find_by_address = vanishing_find;
        assert_int_equal(capability_for(&w.ctx, "alice@example.com", CERT_PURPOSE_ENCRYPT, &c), 0);
        assert_string_equal(c.reason, "no-certificate");
}

/* ---- remembered answers ---- */

/* capability_for_cached(): the lookup calls it made, and what it chose. */
static unsigned cached_answer(World *w, CapabilityCache *cache, const char *address, CertPurpose purpose,
                              Capability *ret) {
        unsigned before = w->lookup->n_calls;

        assert_int_equal(capability_for_cached(cache, &w->ctx, address, purpose, ret), 0);
        return w->lookup->n_calls - before;
}

static void test_cache(void **state) {
        _cleanup_(world_done) World w;
        _cleanup_(capability_cache_freep) CapabilityCache *cache = NULL;
        const PkiCert *first, *renewed;
        char **no_keys = NULL;

        (void) state;
        world_init(&w);
        assert_int_equal(capability_cache_new(&cache), 0);
        w.ctx.generation = 1;
        first = world_add(&w, &(Leaf){.address = "alice@example.com", .not_before_days = -30, .in_token = true});
        {
                _cleanup_(capability_done) Capability a = {}, b = {};

                /* The first answer asks the lookup, the same question again does not. */
                assert_true(cached_answer(&w, cache, "alice@example.com", CERT_PURPOSE_SIGN, &a) > 0);
                assert_true(a.possible);
                assert_chose(&a, first);
                assert_int_equal(cached_answer(&w, cache, "alice@example.com", CERT_PURPOSE_SIGN, &b), 0);
                assert_true(b.possible);
                assert_chose(&b, first);
                assert_string_equal(b.address, "alice@example.com");
                assert_string_equal(b.message, a.message);
                assert_int_equal(sk_X509_num(b.chain), sk_X509_num(a.chain));
                /* Each answer is the caller's own: freeing one leaves the other whole. */
                capability_done(&a);
                assert_chose(&b, first);
        }
        {
                _cleanup_(capability_done) Capability c = {};

                /* Another purpose is another question. */
                assert_true(cached_answer(&w, cache, "alice@example.com", CERT_PURPOSE_ENCRYPT, &c) > 0);
                assert_true(c.possible);
        }
        {
                _cleanup_(capability_done) Capability c = {};

                /* A new certificate changes the lookup's generation: the answer is made again. */
                renewed = world_add(&w, &(Leaf){.address = "alice@example.com",
                                                .key = keys[1],
                                                .not_before_days = -2,
                                                .in_token = true});
                assert_true(cached_answer(&w, cache, "alice@example.com", CERT_PURPOSE_SIGN, &c) > 0);
                assert_chose(&c, renewed);
        }
        {
                _cleanup_(capability_done) Capability c = {};

                /* The token's keys changed and the caller said so with its generation. */
                no_keys = calloc(1, sizeof(char *));
                assert_non_null(no_keys);
                w.ctx.key_spkis = no_keys;
                w.ctx.generation++;
                assert_true(cached_answer(&w, cache, "alice@example.com", CERT_PURPOSE_SIGN, &c) > 0);
                assert_false(c.possible);
                assert_string_equal(c.reason, "no-private-key");
        }
        {
                _cleanup_(capability_done) Capability c = {};

                /* The token went away: not the answer of a ready token, whatever the generation. */
                w.ctx.token_ready = false;
                w.ctx.token_problem = "gone";
                assert_true(cached_answer(&w, cache, "alice@example.com", CERT_PURPOSE_SIGN, &c) > 0);
                assert_string_equal(c.reason, "token-unavailable");
                w.ctx.token_ready = true;
        }
        {
                _cleanup_(capability_done) Capability c = {};

                /* The token back: asked again once, then remembered until the next
                 * second, since validity depends on the time. */
                assert_true(cached_answer(&w, cache, "alice@example.com", CERT_PURPOSE_SIGN, &c) > 0);
                assert_string_equal(c.reason, "no-private-key");
                capability_done(&c);
                assert_int_equal(cached_answer(&w, cache, "alice@example.com", CERT_PURPOSE_SIGN, &c), 0);
                capability_done(&c);
                w.ctx.now++;
                assert_true(cached_answer(&w, cache, "alice@example.com", CERT_PURPOSE_SIGN, &c) > 0);
                assert_string_equal(c.reason, "no-private-key");
        }
        {
                _cleanup_(capability_done) Capability c = {};

                /* A failed lookup is not remembered. */
                world_add(&w, &(Leaf){.address = "bob@example.com"});
                w.lookup->fail = -EIO;
                assert_int_equal(capability_for_cached(cache, &w.ctx, "bob@example.com", CERT_PURPOSE_ENCRYPT, &c),
                                 -EIO);
                w.lookup->fail = 0;
                assert_true(cached_answer(&w, cache, "bob@example.com", CERT_PURPOSE_ENCRYPT, &c) > 0);
                assert_true(c.possible);
        }
        /* More addresses than the cache holds: each answer is still right. */
        for (unsigned i = 0; i < 100; i++) {
                _cleanup_(capability_done) Capability c = {};
                char address[64];

                (void) snprintf(address, sizeof(address), "nobody%u@example.com", i);
                assert_int_equal(capability_for_cached(cache, &w.ctx, address, CERT_PURPOSE_ENCRYPT, &c), 0);
                assert_string_equal(c.address, address);
                assert_string_equal(c.reason, "no-certificate");
        }
        {
                _cleanup_(capability_done) Capability c = {};

                /* Without a cache, or a lookup without a generation, nothing is remembered. */
                assert_true(cached_answer(&w, NULL, "bob@example.com", CERT_PURPOSE_ENCRYPT, &c) > 0);
                capability_done(&c);
                w.ctx.lookup.generation = NULL;
                assert_true(cached_answer(&w, cache, "bob@example.com", CERT_PURPOSE_ENCRYPT, &c) > 0);
                capability_done(&c);
                assert_true(cached_answer(&w, cache, "bob@example.com", CERT_PURPOSE_ENCRYPT, &c) > 0);
        }
        w.ctx.key_spkis = w.key_spkis;
        strv_free(no_keys);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_certificate),
                cmocka_unit_test(test_disabled),
                cmocka_unit_test(test_valid_beats_expired),
                cmocka_unit_test(test_newer_beats_older),
                cmocka_unit_test(test_sign_prefers_key_in_token),
                cmocka_unit_test(test_no_private_key),
                cmocka_unit_test(test_token_not_ready),
                cmocka_unit_test(test_key_known_token_not_ready),
                cmocka_unit_test(test_sign_and_encrypt_certificates),
                cmocka_unit_test(test_reasons),
                cmocka_unit_test(test_least_bad_reported),
                cmocka_unit_test(test_lookup_order),
                cmocka_unit_test(test_lookup_failure),
                cmocka_unit_test(test_vanished_certificate),
                cmocka_unit_test(test_cache),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
