/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of daemon/validate.c over an in-memory lookup
 * (tests/fake-lookup.c): chains, dates, key usage, CRLs, strength, the order
 * in which problems are reported, and the Validator's cache. No store, no
 * bus, no token. */
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

#include "certificate.h"
#include "fake-lookup.h"
#include "pki.h"
#include "strv.h"
#include "validate.h"

static PkiCert *root, *intermediate;
static EVP_PKEY *leaf_key;      /* RSA-2048, shared by the leaves: key generation is the slow part */
static EVP_PKEY *leaf_ec_key;

static const ValidationPolicy default_policy = VALIDATION_POLICY_DEFAULT;

static int setup(void **state) {
        (void) state;
        root = pki_root_ca("Test Root");
        intermediate = root ? pki_intermediate_ca("Test Intermediate", root) : NULL;
        leaf_key = pki_key_rsa(2048);
        leaf_ec_key = pki_key_ec();
        return intermediate && leaf_key && leaf_ec_key ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        root = pki_cert_free(root);
        intermediate = pki_cert_free(intermediate);
        EVP_PKEY_free(leaf_key);
        EVP_PKEY_free(leaf_ec_key);
        return 0;
}

static const char *const alice_san[] = { "alice@example.com", NULL };

static PkiCertOptions leaf_options(void) {
        PkiCertOptions o;

        pki_cert_options_init(&o);
        o.common_name = "Alice";
        o.san_emails = alice_san;
        o.key = leaf_key;
        return o;
}

static PkiCert *make(const PkiCertOptions *o, const PkiCert *issuer) {
        PkiCert *c = pki_cert_new(o, issuer);

        if (!c)
                fail_msg("pki_cert_new failed: %s", ERR_error_string(ERR_get_error(), NULL));
        return c;
}

static PkiCert *make_leaf(const PkiCert *issuer) {
        PkiCertOptions o = leaf_options();

        return make(&o, issuer);
}

static PkiCert *make_ca(const char *cn, int not_before_days, int not_after_days, EVP_PKEY *key,
                        const PkiCert *issuer) {
        PkiCertOptions o;

        pki_cert_options_init(&o);
        o.common_name = cn;
        o.is_ca = true;
        o.not_before_days = not_before_days;
        o.not_after_days = not_after_days;
        o.key = key;
        return make(&o, issuer);
}

static X509_CRL *make_crl(const PkiCert *ca, const uint64_t *serials, size_t n, int last_days, int next_days) {
        PkiCrlOptions o;
        X509_CRL *crl;

        pki_crl_options_init(&o);
        o.last_update_days = last_days;
        o.next_update_days = next_days;
        crl = pki_crl_new(ca, serials, n, &o);
        if (!crl)
                fail_msg("pki_crl_new failed");
        return crl;
}

/* The usual world: the root is a trust anchor, the intermediate is known. */
static FakeLookup *world(void) {
        FakeLookup *f = fake_lookup_new();

        assert_non_null(f);
        assert_int_equal(fake_lookup_add(f, root->x509, true), 0);
        assert_int_equal(fake_lookup_add(f, intermediate->x509, false), 0);
        return f;
}

/* One uncached validation of x509 for purpose. */
static Validation check_full(FakeLookup *f, X509 *x509, STACK_OF(X509) *extra, CertPurpose purpose,
                             const ValidationPolicy *policy, time_t now) {
        _cleanup_(validator_freep) Validator *v = NULL;
        ValidationLookup lookup = fake_lookup_validation(f);
        Validation result = {};

        assert_int_equal(validator_new(&lookup, &v), 0);
        assert_int_equal(validate_certificate_extra(v, x509, extra, policy, now, &purpose, 1, &result), 0);
        assert_non_null(result.message);
        assert_non_null(result.chain);
        return result;
}

static Validation check(FakeLookup *f, X509 *x509, CertPurpose purpose) {
        return check_full(f, x509, NULL, purpose, &default_policy, time(NULL));
}

static void assert_status(const Validation *v, CertStatus expected) {
        if (v->status != expected)
                fail_msg("status %s, expected %s: %s", cert_status_to_string(v->status),
                         cert_status_to_string(expected), v->message);
}

static void assert_message_has(const Validation *v, const char *part) {
        if (!strstr(v->message, part))
                fail_msg("message \"%s\" lacks \"%s\"", v->message, part);
}

static void assert_chain_is(const Validation *v, const PkiCert *const *certs, int n) {
        assert_int_equal(sk_X509_num(v->chain), n);
        for (int i = 0; i < n; i++)
                assert_int_equal(X509_cmp(sk_X509_value(v->chain, i), certs[i]->x509), 0);
}

/* ---- chains ---- */

static void test_chain_to_anchor(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);
        static const CertPurpose purposes[] = { CERT_PURPOSE_SIGN, CERT_PURPOSE_ENCRYPT, CERT_PURPOSE_ANY };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(purposes); i++) {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, purposes[i]);
                const PkiCert *chain[] = { leaf, intermediate, root };

                assert_status(&v, CERT_STATUS_VALID);
                assert_message_has(&v, "The certificate is valid until ");
                assert_chain_is(&v, chain, 3);
        }
}

static void test_several_purposes_at_once(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(validator_freep) Validator *v = NULL;
        ValidationLookup lookup = fake_lookup_validation(f);
        PkiCertOptions o = leaf_options();
        _cleanup_(pki_cert_freep) PkiCert *leaf = NULL;
        static const CertPurpose purposes[] = { CERT_PURPOSE_ANY, CERT_PURPOSE_SIGN, CERT_PURPOSE_ENCRYPT };
        Validation results[3] = {};

        (void) state;
        o.key_usage = KU_DIGITAL_SIGNATURE;
        leaf = make(&o, intermediate);
        assert_int_equal(validator_new(&lookup, &v), 0);
        assert_int_equal(validate_certificate_purposes(v, leaf->x509, &default_policy, time(NULL), purposes, 3,
                                                       results),
                         0);
        assert_status(&results[0], CERT_STATUS_VALID);
        assert_status(&results[1], CERT_STATUS_VALID);
        assert_status(&results[2], CERT_STATUS_WRONG_USAGE);
        for (size_t i = 0; i < 3; i++)
                validation_done(&results[i]);
}

static void test_missing_intermediate(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = fake_lookup_new();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);

        (void) state;
        assert_int_equal(fake_lookup_add(f, root->x509, true), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);
                const PkiCert *chain[] = { leaf };

                assert_status(&v, CERT_STATUS_UNTRUSTED);
                assert_message_has(&v, "is not in the store");
                assert_message_has(&v, "CN=Test Intermediate");
                assert_chain_is(&v, chain, 1);
        }
}

static void test_untrusted_root(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = fake_lookup_new();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);

        (void) state;
        assert_int_equal(fake_lookup_add(f, root->x509, false), 0);
        assert_int_equal(fake_lookup_add(f, intermediate->x509, false), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_ENCRYPT);

                assert_status(&v, CERT_STATUS_UNTRUSTED);
                assert_message_has(&v, "the root \"Test Root\" is not a trust anchor");
        }
}

/* A trusted intermediate is an anchor of its own (X509_V_FLAG_PARTIAL_CHAIN). */
static void test_trusted_intermediate_is_anchor(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = fake_lookup_new();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);

        (void) state;
        assert_int_equal(fake_lookup_add(f, intermediate->x509, true), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);
                const PkiCert *chain[] = { leaf, intermediate };

                assert_status(&v, CERT_STATUS_VALID);
                assert_chain_is(&v, chain, 2);
        }
}

/* A self-signed mail certificate is usable only when it is itself an anchor. */
static void test_self_signed_leaf(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = fake_lookup_new();
        PkiCertOptions o = leaf_options();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make(&o, NULL);

        (void) state;
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_UNTRUSTED);
                assert_message_has(&v, "is not a trust anchor");
        }
        assert_int_equal(fake_lookup_add(f, leaf->x509, true), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_VALID);
        }
}

/* Certificates a message brought are links, never anchors. */
static void test_extra_certificates(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = fake_lookup_new();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);
        STACK_OF(X509) *extra = sk_X509_new_null();

        (void) state;
        assert_non_null(extra);
        assert_true(sk_X509_push(extra, intermediate->x509) > 0);
        assert_true(sk_X509_push(extra, root->x509) > 0);

        /* The root only came with the message. */
        {
                _cleanup_(validation_done) Validation v =
                        check_full(f, leaf->x509, extra, CERT_PURPOSE_SIGN, &default_policy, time(NULL));

                assert_status(&v, CERT_STATUS_UNTRUSTED);
        }
        /* The root is an anchor, the intermediate only came with the message. */
        assert_int_equal(fake_lookup_add(f, root->x509, true), 0);
        {
                _cleanup_(validation_done) Validation v =
                        check_full(f, leaf->x509, extra, CERT_PURPOSE_SIGN, &default_policy, time(NULL));
                const PkiCert *chain[] = { leaf, intermediate, root };

                assert_status(&v, CERT_STATUS_VALID);
                assert_chain_is(&v, chain, 3);
        }
        /* Without it, the intermediate is missing. */
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_UNTRUSTED);
        }
        sk_X509_free(extra);
}

/* A failing lookup fails the validation; it does not make a verdict. */
static void test_lookup_failure(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(validator_freep) Validator *v = NULL, *incomplete = NULL;
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);
        ValidationLookup lookup = fake_lookup_validation(f);
        CertPurpose purpose = CERT_PURPOSE_SIGN;
        Validation result = {};

        (void) state;
        assert_int_equal(validator_new(&lookup, &v), 0);
        f->fail = -EIO;
        assert_int_equal(validate_certificate(v, leaf->x509, purpose, &default_policy, time(NULL), &result), -EIO);
        assert_int_equal(validate_certificate_purposes(v, leaf->x509, &default_policy, time(NULL), &purpose, 1,
                                                       &result),
                         -EIO);
        assert_null(result.message);

        lookup.get_crl = NULL;
        assert_int_equal(validator_new(&lookup, &incomplete), -EINVAL);
        assert_null(incomplete);
}

/* ---- dates ---- */

static void test_expired_leaf(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        PkiCertOptions o = leaf_options();
        _cleanup_(pki_cert_freep) PkiCert *leaf = NULL;
        char expected[64], date[11];
        time_t not_after;

        (void) state;
        o.not_before_days = -30;
        o.not_after_days = -2;
        leaf = make(&o, intermediate);
        assert_int_equal(asn1_time_to_time_t(X509_get0_notAfter(leaf->x509), &not_after), 0);
        format_date(not_after, date);
        snprintf(expected, sizeof(expected), "The certificate expired on %s", date);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_ENCRYPT);

                assert_status(&v, CERT_STATUS_EXPIRED);
                assert_message_has(&v, expected);
        }
}

static void test_not_yet_valid_leaf(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        PkiCertOptions o = leaf_options();
        _cleanup_(pki_cert_freep) PkiCert *leaf = NULL;

        (void) state;
        o.not_before_days = 2;
        o.not_after_days = 30;
        leaf = make(&o, intermediate);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_NOT_YET_VALID);
                assert_message_has(&v, "The certificate is not valid before ");
        }
}

/* Validation is at the time it is given, not the clock's. */
static void test_validation_time(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate); /* -1 .. +365 days */
        time_t now = time(NULL);

        (void) state;
        {
                _cleanup_(validation_done) Validation v =
                        check_full(f, leaf->x509, NULL, CERT_PURPOSE_SIGN, &default_policy, now + 400 * 86400);

                assert_status(&v, CERT_STATUS_EXPIRED);
        }
        {
                _cleanup_(validation_done) Validation v =
                        check_full(f, leaf->x509, NULL, CERT_PURPOSE_SIGN, &default_policy, now - 3 * 86400);

                assert_status(&v, CERT_STATUS_NOT_YET_VALID);
        }
        {
                _cleanup_(validation_done) Validation v =
                        check_full(f, leaf->x509, NULL, CERT_PURPOSE_SIGN, &default_policy, now + 300 * 86400);

                assert_status(&v, CERT_STATUS_VALID);
        }
}

static void test_expired_intermediate(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = fake_lookup_new();
        _cleanup_(pki_cert_freep) PkiCert *old_ca = make_ca("Old Intermediate", -400, -1, NULL, root);
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(old_ca);

        (void) state;
        assert_int_equal(fake_lookup_add(f, root->x509, true), 0);
        assert_int_equal(fake_lookup_add(f, old_ca->x509, false), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_EXPIRED);
                assert_message_has(&v, "The CA certificate \"Old Intermediate\" expired on ");
        }
}

/* ---- key usage and extended key usage ---- */

static CertStatus status_of(FakeLookup *f, const PkiCertOptions *o, CertPurpose purpose, char **ret_message) {
        _cleanup_(pki_cert_freep) PkiCert *leaf = make(o, intermediate);
        _cleanup_(validation_done) Validation v = check(f, leaf->x509, purpose);

        if (ret_message)
                *ret_message = TAKE_PTR(v.message);
        return v.status;
}

static void test_extended_key_usage(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        PkiCertOptions o = leaf_options();
        _cleanup_free_ char *message = NULL;

        (void) state;
        o.eku = PKI_EKU_CLIENT_AUTH;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, &message), CERT_STATUS_WRONG_USAGE);
        assert_string_equal(message, "The certificate is not for mail: its extended key usage lacks emailProtection.");
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ENCRYPT, NULL), CERT_STATUS_WRONG_USAGE);
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ANY, NULL), CERT_STATUS_WRONG_USAGE);

        o.eku = PKI_EKU_ANY;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, NULL), CERT_STATUS_VALID);
        o.eku = PKI_EKU_NONE;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ENCRYPT, NULL), CERT_STATUS_VALID);
        o.eku = PKI_EKU_EMAIL;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ENCRYPT, NULL), CERT_STATUS_VALID);
}

static void test_key_usage(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        PkiCertOptions o = leaf_options();
        _cleanup_free_ char *message = NULL;

        (void) state;
        /* Signing only. */
        o.key_usage = KU_DIGITAL_SIGNATURE;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, NULL), CERT_STATUS_VALID);
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ENCRYPT, &message), CERT_STATUS_WRONG_USAGE);
        assert_string_equal(message, "The certificate's key usage does not allow encrypting mail.");
        message = mfree(message);
        o.key_usage = KU_NON_REPUDIATION;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, NULL), CERT_STATUS_VALID);

        /* Encrypting only. */
        o.key_usage = KU_KEY_ENCIPHERMENT;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ENCRYPT, NULL), CERT_STATUS_VALID);
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, &message), CERT_STATUS_WRONG_USAGE);
        assert_string_equal(message, "The certificate's key usage does not allow signing mail.");
        message = mfree(message);

        /* Neither. */
        o.key_usage = KU_DATA_ENCIPHERMENT;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ANY, &message), CERT_STATUS_WRONG_USAGE);
        assert_string_equal(message, "The certificate's key usage allows neither signing nor encrypting mail.");

        /* No keyUsage: whatever the key can do. */
        o.key_usage = 0;
        o.no_key_usage = true;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, NULL), CERT_STATUS_VALID);
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ENCRYPT, NULL), CERT_STATUS_VALID);
}

/* An EC key encrypts by key agreement, not key encipherment. */
static void test_key_usage_ec(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        PkiCertOptions o = leaf_options();

        (void) state;
        o.key = leaf_ec_key;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ENCRYPT, NULL), CERT_STATUS_VALID); /* default: keyAgreement */
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, NULL), CERT_STATUS_VALID);
        o.key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_ENCRYPT, NULL), CERT_STATUS_WRONG_USAGE);
}

/* A CA certificate is fine as a CA, not as a mail certificate. */
static void test_ca_as_leaf(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();

        (void) state;
        {
                _cleanup_(validation_done) Validation v = check(f, intermediate->x509, CERT_PURPOSE_ANY);

                assert_status(&v, CERT_STATUS_VALID);
        }
        {
                _cleanup_(validation_done) Validation v = check(f, intermediate->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_WRONG_USAGE);
                assert_string_equal(v.message, "The certificate's key usage does not allow signing mail.");
        }
        {
                _cleanup_(validation_done) Validation v = check(f, intermediate->x509, CERT_PURPOSE_ENCRYPT);

                assert_status(&v, CERT_STATUS_WRONG_USAGE);
        }
        assert_false(certificate_allows(intermediate->x509, CERT_PURPOSE_SIGN));
        assert_false(certificate_allows(intermediate->x509, CERT_PURPOSE_ENCRYPT));
}

/* ---- addresses ---- */

/* validate.c does not match addresses; the address a certificate is found
 * and checked under is certificate_addresses()'s: what the store indexes,
 * capabilities look up and Verify holds a From: against. */
static void test_certificate_addresses(void **state) {
        static const char *const san[] = { "Alice@Example.COM", "not an address", "bob@example.com",
                                           "alice@example.com", NULL };
        PkiCertOptions o = leaf_options();
        _cleanup_(strv_freep) char **addresses = NULL;

        (void) state;
        o.email = "subject@example.com";
        o.san_emails = san;
        {
                _cleanup_(pki_cert_freep) PkiCert *c = make(&o, intermediate);

                assert_int_equal(certificate_addresses(c->x509, &addresses), 0);
                assert_int_equal(strv_length(addresses), 2);
                assert_string_equal(addresses[0], "alice@example.com");
                assert_string_equal(addresses[1], "bob@example.com");
                addresses = strv_free(addresses);
        }
        /* No rfc822Name: the subject's emailAddress counts. */
        o.san_emails = NULL;
        o.email = "Carol@Example.com";
        {
                _cleanup_(pki_cert_freep) PkiCert *c = make(&o, intermediate);

                assert_int_equal(certificate_addresses(c->x509, &addresses), 0);
                assert_int_equal(strv_length(addresses), 1);
                assert_string_equal(addresses[0], "carol@example.com");
                addresses = strv_free(addresses);
        }
        o.email = NULL;
        {
                _cleanup_(pki_cert_freep) PkiCert *c = make(&o, intermediate);

                assert_int_equal(certificate_addresses(c->x509, &addresses), 0);
                assert_int_equal(strv_length(addresses), 0);
        }
}

/* ---- revocation ---- */

static void test_revoked_leaf(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate), *other = make_leaf(intermediate);
        uint64_t serial = pki_cert_serial(leaf);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = make_crl(intermediate, &serial, 1, -1, 30);

        (void) state;
        assert_int_equal(fake_lookup_add_crl(f, crl), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_REVOKED);
                assert_string_equal(v.message, "The certificate has been revoked by its issuer; do not use it.");
        }
        {
                _cleanup_(validation_done) Validation v = check(f, other->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_VALID);
        }
}

static void test_revoked_intermediate(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);
        uint64_t serial = pki_cert_serial(intermediate);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = make_crl(root, &serial, 1, -1, 30);

        (void) state;
        assert_int_equal(fake_lookup_add_crl(f, crl), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_ENCRYPT);

                assert_status(&v, CERT_STATUS_REVOKED);
                assert_message_has(&v, "The CA certificate \"Test Intermediate\" has been revoked");
        }
}

/* A CRL whose signature does not verify with the issuer's key (another CA
 * of the same name signed it) revokes nothing. It once did: OpenSSL, told
 * to go on past the signature failure, applied the CRL anyway. */
static void test_crl_signed_by_wrong_key(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        PkiCertOptions o = leaf_options();
        _cleanup_(pki_cert_freep) PkiCert *leaf = NULL, *renewed_leaf = NULL;
        /* The same name with another key: a CA that renewed its key, or an impostor. */
        _cleanup_(pki_cert_freep) PkiCert *renewed = make_ca("Test Intermediate", -1, 30, NULL, root);
        uint64_t serial = 777;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = make_crl(renewed, &serial, 1, -1, 30);

        (void) state;
        o.serial = serial;
        leaf = make(&o, intermediate);
        renewed_leaf = make(&o, renewed);
        assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(intermediate->x509)), 0);
        assert_int_equal(fake_lookup_add_crl(f, crl), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_VALID);
        }

        /* The store took the CRL because a CA of that name signed it (as
         * ImportCRL checks): it revokes that CA's certificate only. */
        assert_int_equal(fake_lookup_add(f, renewed->x509, false), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_VALID);
        }
        {
                _cleanup_(validation_done) Validation v = check(f, renewed_leaf->x509, CERT_PURPOSE_SIGN);
                const PkiCert *chain[] = { renewed_leaf, renewed, root };

                assert_status(&v, CERT_STATUS_REVOKED);
                assert_chain_is(&v, chain, 3);
        }
}

/* An expired CRL still says what was revoked; one that revokes nothing
 * changes nothing (a missing or stale CRL is not a failure). */
static void test_expired_crl(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate), *other = make_leaf(intermediate);
        uint64_t serial = pki_cert_serial(leaf);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = make_crl(intermediate, &serial, 1, -60, -30);

        (void) state;
        assert_int_equal(fake_lookup_add_crl(f, crl), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_REVOKED);
        }
        {
                _cleanup_(validation_done) Validation v = check(f, other->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_VALID);
        }
}

/* ---- revocation unknown ---- */

typedef struct Wanted {
        unsigned n;
        X509 *subject[8];
        X509 *issuer[8];
} Wanted;

static void record_want(void *userdata, X509 *subject, X509 *issuer) {
        Wanted *w = userdata;

        if (w->n < ELEMENTSOF(w->subject)) {
                w->subject[w->n] = subject;
                w->issuer[w->n] = issuer;
        }
        w->n++;
}

static Validation check_revocation(FakeLookup *f, X509 *x509, RevocationPolicy revocation, Wanted *wanted) {
        _cleanup_(validator_freep) Validator *v = NULL;
        ValidationLookup lookup = fake_lookup_validation(f);
        ValidationPolicy policy = VALIDATION_POLICY_DEFAULT;
        CertPurpose purpose = CERT_PURPOSE_ENCRYPT;
        Validation result = {};

        lookup.want_crl = record_want;
        lookup.want_crl_userdata = wanted;
        policy.revocation = revocation;
        assert_int_equal(validator_new(&lookup, &v), 0);
        assert_int_equal(validate_certificate_extra(v, x509, NULL, &policy, time(NULL), &purpose, 1, &result), 0);
        return result;
}

/* No CRL at all: none says nothing and asks for nothing; soft says it in
 * a valid result; hard makes it revocation-unknown. Both ask for the CRLs
 * of the leaf (from the intermediate) and of the intermediate (from the
 * root), never one for the anchor. */
static void test_revocation_unknown(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);

        (void) state;
        {
                Wanted w = {};
                _cleanup_(validation_done) Validation v = check_revocation(f, leaf->x509, REVOCATION_POLICY_NONE, &w);

                assert_status(&v, CERT_STATUS_VALID);
                assert_null(strstr(v.message, "Revocation"));
                assert_int_equal(w.n, 0);
        }
        {
                Wanted w = {};
                _cleanup_(validation_done) Validation v = check_revocation(f, leaf->x509, REVOCATION_POLICY_SOFT, &w);

                assert_status(&v, CERT_STATUS_VALID);
                assert_message_has(&v, "The certificate is valid until ");
                assert_message_has(&v, "Revocation was not checked: the CRL of \"Test Intermediate\" is missing.");
                assert_int_equal(w.n, 2);
                assert_int_equal(X509_cmp(w.subject[0], leaf->x509), 0);
                assert_int_equal(X509_cmp(w.issuer[0], intermediate->x509), 0);
                assert_int_equal(X509_cmp(w.subject[1], intermediate->x509), 0);
                assert_int_equal(X509_cmp(w.issuer[1], root->x509), 0);
        }
        {
                Wanted w = {};
                _cleanup_(validation_done) Validation v = check_revocation(f, leaf->x509, REVOCATION_POLICY_HARD, &w);

                assert_status(&v, CERT_STATUS_REVOCATION_UNKNOWN);
                assert_message_has(&v, "Revocation was not checked");
                assert_int_equal(w.n, 2);
        }
}

/* Current CRLs for the whole chain: nothing unknown, nothing asked for. A
 * stale one (past nextUpdate) is unknown again, and asked for; a CRL that
 * revokes wins whatever the policy. */
static void test_revocation_known(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate), *revoked = make_leaf(intermediate);
        uint64_t serial = pki_cert_serial(revoked);
        _cleanup_(X509_CRL_freep) X509_CRL *root_crl = make_crl(root, NULL, 0, -1, 30);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = make_crl(intermediate, &serial, 1, -1, 30);
        _cleanup_(X509_CRL_freep) X509_CRL *stale = make_crl(intermediate, &serial, 1, -60, -30);

        (void) state;
        assert_int_equal(fake_lookup_add_crl(f, root_crl), 0);
        assert_int_equal(fake_lookup_add_crl(f, crl), 0);
        {
                Wanted w = {};
                _cleanup_(validation_done) Validation v = check_revocation(f, leaf->x509, REVOCATION_POLICY_HARD, &w);

                assert_status(&v, CERT_STATUS_VALID);
                assert_null(strstr(v.message, "Revocation"));
                assert_int_equal(w.n, 0);
        }
        assert_int_equal(fake_lookup_add_crl(f, stale), 0);
        {
                Wanted w = {};
                _cleanup_(validation_done) Validation v = check_revocation(f, leaf->x509, REVOCATION_POLICY_HARD, &w);

                assert_status(&v, CERT_STATUS_REVOCATION_UNKNOWN);
                assert_message_has(&v, "is past its next update");
                assert_int_equal(w.n, 1);
                assert_int_equal(X509_cmp(w.subject[0], leaf->x509), 0);
        }
        {
                Wanted w = {};
                _cleanup_(validation_done) Validation v =
                        check_revocation(f, revoked->x509, REVOCATION_POLICY_HARD, &w);

                assert_status(&v, CERT_STATUS_REVOKED);
        }
}

/* A chain to no anchor asks for no CRL: its distribution points are
 * anyone's choice. */
static void test_revocation_untrusted_asks_nothing(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = fake_lookup_new();
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);
        Wanted w = {};

        (void) state;
        assert_non_null(f);
        assert_int_equal(fake_lookup_add(f, root->x509, false), 0);
        assert_int_equal(fake_lookup_add(f, intermediate->x509, false), 0);
        {
                _cleanup_(validation_done) Validation v = check_revocation(f, leaf->x509, REVOCATION_POLICY_HARD, &w);

                assert_status(&v, CERT_STATUS_UNTRUSTED);
                assert_int_equal(w.n, 0);
        }
}

/* ---- strength ---- */

static void test_rsa_1024(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *small = pki_key_rsa(1024);
        PkiCertOptions o = leaf_options();
        _cleanup_(pki_cert_freep) PkiCert *leaf = NULL;
        ValidationPolicy lenient = { .minimum_rsa_bits = 1024 }, strict = { .minimum_rsa_bits = 3072 };

        (void) state;
        assert_non_null(small);
        o.key = small;
        leaf = make(&o, intermediate);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_WEAK);
                assert_string_equal(v.message,
                                    "The certificate has an RSA key of 1024 bits; at least 2048 bits are required.");
        }
        {
                _cleanup_(validation_done) Validation v =
                        check_full(f, leaf->x509, NULL, CERT_PURPOSE_SIGN, &lenient, time(NULL));

                assert_status(&v, CERT_STATUS_VALID);
        }
        /* The CAs' keys count too: the intermediate's 2048 bits are short of
         * 3072 (the leaf's key is EC, not judged by size). */
        o.key = leaf_ec_key;
        {
                _cleanup_(pki_cert_freep) PkiCert *good = make(&o, intermediate);
                _cleanup_(validation_done) Validation v =
                        check_full(f, good->x509, NULL, CERT_PURPOSE_SIGN, &strict, time(NULL));

                assert_status(&v, CERT_STATUS_WEAK);
                assert_message_has(&v, "The CA certificate \"Test Intermediate\" has an RSA key of 2048 bits");
        }
}

static void test_sha1_signature(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        PkiCertOptions o = leaf_options();
        _cleanup_(pki_cert_freep) PkiCert *leaf = NULL;
        ValidationPolicy sha1_allowed = VALIDATION_POLICY_DEFAULT;

        (void) state;
        sha1_allowed.allow_sha1_signatures = true;
        o.digest = "sha1";
        leaf = make(&o, intermediate);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_WEAK);
                assert_string_equal(v.message, "The certificate is signed with SHA1, which is no longer safe.");
        }
        {
                _cleanup_(validation_done) Validation v =
                        check_full(f, leaf->x509, NULL, CERT_PURPOSE_SIGN, &sha1_allowed, time(NULL));

                assert_status(&v, CERT_STATUS_VALID);
        }
        /* MD5 is weak whatever the policy says of SHA-1. */
        o.digest = "md5";
        {
                _cleanup_(pki_cert_freep) PkiCert *md5 = make(&o, intermediate);
                _cleanup_(validation_done) Validation v =
                        check_full(f, md5->x509, NULL, CERT_PURPOSE_SIGN, &sha1_allowed, time(NULL));

                assert_status(&v, CERT_STATUS_WEAK);
                assert_message_has(&v, "MD5");
        }
}

/* An intermediate signed with SHA-1 is weak; the anchor's own SHA-1
 * self-signature is not judged (trust in it comes from the admin). */
static void test_sha1_in_chain(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = fake_lookup_new();
        PkiCertOptions o;
        _cleanup_(pki_cert_freep) PkiCert *old_root = NULL, *ca = NULL, *leaf = NULL, *weak_ca = NULL, *below = NULL;

        (void) state;
        pki_cert_options_init(&o);
        o.common_name = "SHA-1 Root";
        o.is_ca = true;
        o.digest = "sha1";
        o.not_before_days = -30;
        o.not_after_days = 3650;
        old_root = make(&o, NULL);
        ca = make_ca("Good Intermediate", -20, 1000, NULL, old_root);
        leaf = make_leaf(ca);
        assert_int_equal(fake_lookup_add(f, old_root->x509, true), 0);
        assert_int_equal(fake_lookup_add(f, ca->x509, false), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, leaf->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_VALID);
        }

        o.common_name = "SHA-1 Intermediate";
        o.not_before_days = -20;
        o.not_after_days = 1000;
        weak_ca = make(&o, root);
        below = make_leaf(weak_ca);
        assert_int_equal(fake_lookup_add(f, root->x509, true), 0);
        assert_int_equal(fake_lookup_add(f, weak_ca->x509, false), 0);
        {
                _cleanup_(validation_done) Validation v = check(f, below->x509, CERT_PURPOSE_SIGN);

                assert_status(&v, CERT_STATUS_WEAK);
                assert_message_has(&v, "The CA certificate \"SHA-1 Intermediate\" is signed with SHA1");
        }
}

/* ---- several problems: the one reported ---- */

static void test_precedence(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *small = pki_key_rsa(1024);
        PkiCertOptions o = leaf_options();

        (void) state;
        assert_non_null(small);

        /* revoked before expired */
        o.not_before_days = -30;
        o.not_after_days = -2;
        o.serial = 4242;
        {
                uint64_t serial = 4242;
                _cleanup_(X509_CRL_freep) X509_CRL *crl = make_crl(intermediate, &serial, 1, -1, 30);

                assert_int_equal(fake_lookup_add_crl(f, crl), 0);
                assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, NULL), CERT_STATUS_REVOKED);
        }
        o.serial = 0;

        /* expired before weak */
        o.key = small;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, NULL), CERT_STATUS_EXPIRED);

        /* weak before wrong usage */
        o.not_before_days = -1;
        o.not_after_days = 365;
        o.eku = PKI_EKU_CLIENT_AUTH;
        assert_int_equal(status_of(f, &o, CERT_PURPOSE_SIGN, NULL), CERT_STATUS_WEAK);

        /* untrusted before expired */
        {
                _cleanup_(fake_lookup_freep) FakeLookup *empty = fake_lookup_new();

                o.key = leaf_key;
                o.eku = PKI_EKU_DEFAULT;
                o.not_before_days = -30;
                o.not_after_days = -2;
                assert_int_equal(status_of(empty, &o, CERT_PURPOSE_SIGN, NULL), CERT_STATUS_UNTRUSTED);
        }
}

/* ---- the Validator's cache ---- */

static void test_cache(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *f = world();
        _cleanup_(validator_freep) Validator *v = NULL;
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);
        ValidationLookup lookup = fake_lookup_validation(f);
        ValidationPolicy strict = { .minimum_rsa_bits = 4096 };
        time_t now = time(NULL);
        unsigned calls;

        (void) state;
        assert_int_equal(validator_new(&lookup, &v), 0);
        {
                _cleanup_(validation_done) Validation r = {};

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_SIGN, &default_policy, now, &r), 0);
                assert_status(&r, CERT_STATUS_VALID);
                assert_true(f->n_calls > 0);
        }

        /* The same question: answered without the lookup, the same answer. */
        calls = f->n_calls;
        {
                _cleanup_(validation_done) Validation r = {};
                const PkiCert *chain[] = { leaf, intermediate, root };

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_SIGN, &default_policy, now, &r), 0);
                assert_status(&r, CERT_STATUS_VALID);
                assert_message_has(&r, "valid until");
                assert_chain_is(&r, chain, 3);
                assert_int_equal(f->n_calls, calls);
        }

        /* What changes without the generation moving is not seen... */
        f->trusted[0] = false; /* the root */
        {
                _cleanup_(validation_done) Validation r = {};

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_SIGN, &default_policy, now, &r), 0);
                assert_status(&r, CERT_STATUS_VALID);
        }
        /* ...a new generation is. */
        f->generation++;
        {
                _cleanup_(validation_done) Validation r = {};

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_SIGN, &default_policy, now, &r), 0);
                assert_status(&r, CERT_STATUS_UNTRUSTED);
                assert_true(f->n_calls > calls);
        }
        assert_int_equal(fake_lookup_add(f, root->x509, true), 0);

        /* Another second, another policy, another purpose: asked again. */
        calls = f->n_calls;
        {
                _cleanup_(validation_done) Validation r = {};

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_SIGN, &default_policy, now, &r), 0);
                assert_status(&r, CERT_STATUS_VALID);
                assert_true(f->n_calls > calls);
        }
        calls = f->n_calls;
        {
                _cleanup_(validation_done) Validation r = {};

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_SIGN, &default_policy, now + 1, &r),
                                 0);
                assert_true(f->n_calls > calls);
        }
        calls = f->n_calls;
        {
                _cleanup_(validation_done) Validation r = {};

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_SIGN, &strict, now + 1, &r), 0);
                assert_status(&r, CERT_STATUS_WEAK);
                assert_true(f->n_calls > calls);
        }
        calls = f->n_calls;
        {
                _cleanup_(validation_done) Validation r = {};

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_ENCRYPT, &strict, now + 1, &r), 0);
                assert_status(&r, CERT_STATUS_WEAK);
                assert_true(f->n_calls > calls);
        }
        /* One result per certificate and purpose is kept, the last: both
         * purposes' are, the first policy's gave way to the second's. */
        calls = f->n_calls;
        {
                _cleanup_(validation_done) Validation a = {}, b = {};

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_SIGN, &strict, now + 1, &a), 0);
                assert_status(&a, CERT_STATUS_WEAK);
                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_ENCRYPT, &strict, now + 1, &b), 0);
                assert_status(&b, CERT_STATUS_WEAK);
                assert_int_equal(f->n_calls, calls);
        }
        {
                _cleanup_(validation_done) Validation r = {};

                assert_int_equal(validate_certificate(v, leaf->x509, CERT_PURPOSE_SIGN, &default_policy, now + 1, &r),
                                 0);
                assert_status(&r, CERT_STATUS_VALID);
                assert_true(f->n_calls > calls);
        }
}

/* A cache belongs to its validator: another lookup's answers are its own. */
static void test_cache_per_validator(void **state) {
        _cleanup_(fake_lookup_freep) FakeLookup *trusting = world(), *empty = fake_lookup_new();
        _cleanup_(validator_freep) Validator *a = NULL, *b = NULL;
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf(intermediate);
        ValidationLookup la = fake_lookup_validation(trusting), lb = fake_lookup_validation(empty);
        time_t now = time(NULL);

        (void) state;
        assert_int_equal(trusting->generation, 2);
        empty->generation = 2; /* the same generation number, another lookup */
        assert_int_equal(validator_new(&la, &a), 0);
        assert_int_equal(validator_new(&lb, &b), 0);
        {
                _cleanup_(validation_done) Validation ra = {}, rb = {};

                assert_int_equal(validate_certificate(a, leaf->x509, CERT_PURPOSE_SIGN, &default_policy, now, &ra), 0);
                assert_int_equal(validate_certificate(b, leaf->x509, CERT_PURPOSE_SIGN, &default_policy, now, &rb), 0);
                assert_status(&ra, CERT_STATUS_VALID);
                assert_status(&rb, CERT_STATUS_UNTRUSTED);
        }
}

static void test_status_strings(void **state) {
        (void) state;
        assert_string_equal(cert_status_to_string(CERT_STATUS_VALID), "valid");
        assert_string_equal(cert_status_to_string(CERT_STATUS_NOT_YET_VALID), "not-yet-valid");
        assert_string_equal(cert_status_to_string(CERT_STATUS_WRONG_USAGE), "wrong-usage");
        assert_string_equal(cert_status_to_string(CERT_STATUS_WEAK), "weak");
        assert_string_equal(cert_status_to_string(CERT_STATUS_REVOCATION_UNKNOWN), "revocation-unknown");
        assert_null(cert_status_to_string(_CERT_STATUS_MAX));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_chain_to_anchor),
                cmocka_unit_test(test_several_purposes_at_once),
                cmocka_unit_test(test_missing_intermediate),
                cmocka_unit_test(test_untrusted_root),
                cmocka_unit_test(test_trusted_intermediate_is_anchor),
                cmocka_unit_test(test_self_signed_leaf),
                cmocka_unit_test(test_extra_certificates),
                cmocka_unit_test(test_lookup_failure),
                cmocka_unit_test(test_expired_leaf),
                cmocka_unit_test(test_not_yet_valid_leaf),
                cmocka_unit_test(test_validation_time),
                cmocka_unit_test(test_expired_intermediate),
                cmocka_unit_test(test_extended_key_usage),
                cmocka_unit_test(test_key_usage),
                cmocka_unit_test(test_key_usage_ec),
                cmocka_unit_test(test_ca_as_leaf),
                cmocka_unit_test(test_certificate_addresses),
                cmocka_unit_test(test_revoked_leaf),
                cmocka_unit_test(test_revoked_intermediate),
                cmocka_unit_test(test_crl_signed_by_wrong_key),
                cmocka_unit_test(test_expired_crl),
                cmocka_unit_test(test_revocation_unknown),
                cmocka_unit_test(test_revocation_known),
                cmocka_unit_test(test_revocation_untrusted_asks_nothing),
                cmocka_unit_test(test_rsa_1024),
                cmocka_unit_test(test_sha1_signature),
                cmocka_unit_test(test_sha1_in_chain),
                cmocka_unit_test(test_precedence),
                cmocka_unit_test(test_cache),
                cmocka_unit_test(test_cache_per_validator),
                cmocka_unit_test(test_status_strings),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
