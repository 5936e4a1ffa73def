/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tests/pki.c checked by OpenSSL itself: chains verify with
 * X509_verify_cert, every option shows up where OpenSSL reads it, and the
 * encodings parse back. */
#include <setjmp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "pki.h"

static PkiCert *root, *intermediate;

static int setup(void **state) {
        (void) state;
        root = pki_root_ca("PKI Test Root");
        intermediate = root ? pki_intermediate_ca("PKI Test Intermediate", root) : NULL;
        return intermediate ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        root = pki_cert_free(root);
        intermediate = pki_cert_free(intermediate);
        return 0;
}

static PkiCert *leaf(const char *address, void (*tweak)(PkiCertOptions *o), const PkiCert *issuer) {
        const char *san[] = { address, NULL };
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = "Leaf";
        o.san_emails = san;
        if (tweak)
                tweak(&o);
        c = pki_cert_new(&o, issuer);
        EVP_PKEY_free(o.key); /* a key a tweak made is the certificate's now */
        if (!c)
                fail_msg("pki_cert_new failed: %s", ERR_error_string(ERR_get_error(), NULL));
        return c;
}

/* X509_verify_cert with root as the only anchor, intermediate as an
 * untrusted helper, at the current time; returns the verify error. */
static int verify(const PkiCert *c, const PkiCert *anchor, X509_CRL *crl) {
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        STACK_OF(X509) *untrusted = sk_X509_new_null();
        int ok, err;

        assert_non_null(store);
        assert_non_null(ctx);
        assert_non_null(untrusted);
        assert_int_equal(X509_STORE_add_cert(store, anchor->x509), 1);
        assert_true(sk_X509_push(untrusted, intermediate->x509) > 0);
        if (crl) {
                assert_int_equal(X509_STORE_add_crl(store, crl), 1);
                X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
        }
        assert_int_equal(X509_STORE_CTX_init(ctx, store, c->x509, untrusted), 1);
        ok = X509_verify_cert(ctx);
        err = X509_STORE_CTX_get_error(ctx);
        assert_true(ok == 1 ? err == X509_V_OK : err != X509_V_OK);

        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        sk_X509_free(untrusted);
        return err;
}

static void expect_verify(const PkiCert *c, const PkiCert *anchor, X509_CRL *crl, int expected) {
        int err = verify(c, anchor, crl);

        if (err != expected)
                fail_msg("X509_verify_cert: expected \"%s\", got \"%s\"", X509_verify_cert_error_string(expected),
                         X509_verify_cert_error_string(err));
}

static void test_chain_verifies(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *c = leaf("alice@example.com", NULL, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *other_root = pki_root_ca("Other Root");

        (void) state;
        assert_non_null(other_root);
        expect_verify(c, root, NULL, X509_V_OK);
        expect_verify(intermediate, root, NULL, X509_V_OK);
        /* The same chain does not reach an anchor it was not issued under. */
        expect_verify(c, other_root, NULL, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

        assert_int_equal(X509_check_ca(root->x509), 1);
        assert_int_equal(X509_check_ca(intermediate->x509), 1);
        assert_int_equal(X509_check_ca(c->x509), 0);
        assert_int_equal(X509_check_issued(intermediate->x509, c->x509), X509_V_OK);
        assert_int_equal(X509_check_issued(root->x509, intermediate->x509), X509_V_OK);
        assert_int_equal(X509_check_issued(root->x509, root->x509), X509_V_OK);
        assert_true(X509_get_key_usage(root->x509) & KU_KEY_CERT_SIGN);
        assert_true(X509_get_key_usage(intermediate->x509) & KU_CRL_SIGN);
}

static void expired(PkiCertOptions *o) {
        o->not_before_days = -30;
        o->not_after_days = -1;
}

static void not_yet_valid(PkiCertOptions *o) {
        o->not_before_days = 10;
        o->not_after_days = 400;
}

static void test_validity_offsets(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *old = leaf("old@example.com", expired, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *future = leaf("future@example.com", not_yet_valid, intermediate);
        time_t now = time(NULL);

        (void) state;
        expect_verify(old, root, NULL, X509_V_ERR_CERT_HAS_EXPIRED);
        expect_verify(future, root, NULL, X509_V_ERR_CERT_NOT_YET_VALID);

        /* The offsets are days from now, to within a minute. */
        {
                time_t t = now - 30 * 86400 + 60, u = now - 30 * 86400 - 60;
                assert_true(X509_cmp_time(X509_get0_notBefore(old->x509), &t) < 0);
                assert_true(X509_cmp_time(X509_get0_notBefore(old->x509), &u) > 0);
                t = now + 400 * 86400 + 60;
                u = now + 400 * 86400 - 60;
                assert_true(X509_cmp_time(X509_get0_notAfter(future->x509), &t) < 0);
                assert_true(X509_cmp_time(X509_get0_notAfter(future->x509), &u) > 0);
        }
}

static void test_crl_revokes_serials(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *revoked = leaf("revoked@example.com", NULL, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *kept = leaf("kept@example.com", NULL, intermediate);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL, *root_crl = NULL;
        uint64_t serial = pki_cert_serial(revoked);
        PkiCrlOptions o;
        X509_REVOKED *entry = NULL;
        ASN1_INTEGER *want;

        (void) state;
        assert_true(serial != 0);
        assert_true(serial != pki_cert_serial(kept));
        pki_crl_options_init(&o);
        o.crl_number = 7;
        crl = pki_crl_new(intermediate, &serial, 1, &o);
        assert_non_null(crl);
        root_crl = pki_crl_new(root, NULL, 0, &o);
        assert_non_null(root_crl);

        /* Signed by the CA's key, named after it. */
        assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(intermediate->x509)), 1);
        assert_int_not_equal(X509_CRL_verify(crl, X509_get0_pubkey(root->x509)), 1);
        ERR_clear_error();
        assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(intermediate->x509)), 0);

        want = ASN1_INTEGER_new();
        assert_non_null(want);
        assert_int_equal(ASN1_INTEGER_set_uint64(want, serial), 1);
        assert_int_equal(X509_CRL_get0_by_serial(crl, &entry, want), 1);
        ASN1_INTEGER_free(want);

        /* OpenSSL's own revocation check, with a CRL for every CA in the chain. */
        {
                X509_STORE *store = X509_STORE_new();
                X509_STORE_CTX *ctx = X509_STORE_CTX_new();
                STACK_OF(X509) *untrusted = sk_X509_new_null();

                assert_int_equal(X509_STORE_add_cert(store, root->x509), 1);
                assert_int_equal(X509_STORE_add_crl(store, crl), 1);
                assert_int_equal(X509_STORE_add_crl(store, root_crl), 1);
                X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
                assert_true(sk_X509_push(untrusted, intermediate->x509) > 0);

                assert_int_equal(X509_STORE_CTX_init(ctx, store, revoked->x509, untrusted), 1);
                assert_int_not_equal(X509_verify_cert(ctx), 1);
                assert_int_equal(X509_STORE_CTX_get_error(ctx), X509_V_ERR_CERT_REVOKED);
                X509_STORE_CTX_cleanup(ctx);

                assert_int_equal(X509_STORE_CTX_init(ctx, store, kept->x509, untrusted), 1);
                if (X509_verify_cert(ctx) != 1)
                        fail_msg("kept: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));

                X509_STORE_CTX_free(ctx);
                X509_STORE_free(store);
                sk_X509_free(untrusted);
        }
}

static void client_auth_only(PkiCertOptions *o) {
        o->eku = PKI_EKU_CLIENT_AUTH;
}

static void no_eku(PkiCertOptions *o) {
        o->eku = PKI_EKU_NONE;
}

static void key_encipherment_only(PkiCertOptions *o) {
        o->key_usage = KU_KEY_ENCIPHERMENT;
}

static void test_key_usage_and_eku(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *normal = leaf("a@example.com", NULL, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *client = leaf("b@example.com", client_auth_only, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *none = leaf("c@example.com", no_eku, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *encipher = leaf("d@example.com", key_encipherment_only, intermediate);

        (void) state;
        assert_int_equal(X509_get_key_usage(normal->x509), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
        assert_int_equal(X509_get_extended_key_usage(normal->x509), XKU_SMIME);
        assert_int_equal(X509_check_purpose(normal->x509, X509_PURPOSE_SMIME_SIGN, 0), 1);
        assert_int_equal(X509_check_purpose(normal->x509, X509_PURPOSE_SMIME_ENCRYPT, 0), 1);

        assert_int_equal(X509_get_extended_key_usage(client->x509), XKU_SSL_CLIENT);
        assert_int_equal(X509_check_purpose(client->x509, X509_PURPOSE_SMIME_SIGN, 0), 0);

        assert_true(X509_get_extension_flags(none->x509) & EXFLAG_KUSAGE);
        assert_false(X509_get_extension_flags(none->x509) & EXFLAG_XKUSAGE);

        assert_int_equal(X509_get_key_usage(encipher->x509), KU_KEY_ENCIPHERMENT);
        assert_int_equal(X509_check_purpose(encipher->x509, X509_PURPOSE_SMIME_SIGN, 0), 0);
        assert_int_equal(X509_check_purpose(encipher->x509, X509_PURPOSE_SMIME_ENCRYPT, 0), 1);
}

static void test_addresses(void **state) {
        const char *two[] = { "First@Example.COM", "second@example.org", NULL };
        _cleanup_(pki_cert_freep) PkiCert *san = NULL, *dn_only = NULL;
        STACK_OF(OPENSSL_STRING) *emails;
        PkiCertOptions o;
        char cn[64];

        (void) state;
        pki_cert_options_init(&o);
        o.common_name = "Two Addresses";
        o.san_emails = two;
        san = pki_cert_new(&o, intermediate);
        assert_non_null(san);
        emails = X509_get1_email(san->x509);
        assert_int_equal(sk_OPENSSL_STRING_num(emails), 2);
        assert_string_equal(sk_OPENSSL_STRING_value(emails, 0), "First@Example.COM");
        assert_string_equal(sk_OPENSSL_STRING_value(emails, 1), "second@example.org");
        X509_email_free(emails);
        assert_int_equal(X509_check_email(san->x509, "second@example.org", 0, 0), 1);
        assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(san->x509), NID_commonName, cn, sizeof(cn)) > 0);
        assert_string_equal(cn, "Two Addresses");

        pki_cert_options_init(&o);
        o.common_name = "DN Only";
        o.email = "dn.only@example.com";
        dn_only = pki_cert_new(&o, intermediate);
        assert_non_null(dn_only);
        assert_int_equal(X509_get_ext_by_NID(dn_only->x509, NID_subject_alt_name, -1), -1);
        emails = X509_get1_email(dn_only->x509);
        assert_int_equal(sk_OPENSSL_STRING_num(emails), 1);
        assert_string_equal(sk_OPENSSL_STRING_value(emails, 0), "dn.only@example.com");
        X509_email_free(emails);
        expect_verify(dn_only, root, NULL, X509_V_OK);
}

static void weak_key(PkiCertOptions *o) {
        o->key = pki_key_rsa(1024);
}

static void sha1(PkiCertOptions *o) {
        o->digest = "sha1";
}

static void test_weak_options(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *small = leaf("small@example.com", weak_key, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *old_digest = leaf("sha1@example.com", sha1, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *normal = leaf("n@example.com", NULL, intermediate);

        (void) state;
        /* weak_key made a key the options held; the certificate took its own reference. */
        assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(small->x509)), 1024);
        assert_int_equal(X509_get_signature_nid(old_digest->x509), NID_sha1WithRSAEncryption);
        assert_int_equal(X509_get_signature_nid(normal->x509), NID_sha256WithRSAEncryption);
        assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(normal->x509)), 2048);
}

static void test_leaf_for_a_public_key(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *c = NULL, *ec_leaf = NULL;
        EVP_PKEY *full = pki_key_rsa(2048), *pub, *ec = pki_key_ec();
        char path[] = "/tmp/pki-test-pub.XXXXXX";
        PkiCertOptions o;
        BIO *bio;
        int fd;

        (void) state;
        assert_non_null(full);
        assert_non_null(ec);

        /* Only the public half, as a PEM file like Harness.key_pem. */
        fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        bio = BIO_new_file(path, "w");
        assert_non_null(bio);
        assert_int_equal(PEM_write_bio_PUBKEY(bio, full), 1);
        BIO_free(bio);
        pub = pki_public_key_from_pem_file(path);
        unlink(path);
        assert_non_null(pub);
        assert_int_equal(EVP_PKEY_eq(pub, full), 1);

        pki_cert_options_init(&o);
        o.common_name = "Token Key";
        o.email = "token@example.com";
        o.key = pub;
        c = pki_cert_new(&o, intermediate);
        assert_non_null(c);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(c->x509), full), 1);
        expect_verify(c, root, NULL, X509_V_OK);
        /* It cannot issue: there is no private key to sign with. */
        pki_cert_options_init(&o);
        o.common_name = "Nope";
        assert_null(pki_cert_new(&o, c));
        ERR_clear_error();

        pki_cert_options_init(&o);
        o.common_name = "EC";
        o.san_emails = (const char *[]) { "ec@example.com", NULL };
        o.key = ec;
        ec_leaf = pki_cert_new(&o, intermediate);
        assert_non_null(ec_leaf);
        assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(ec_leaf->x509)), EVP_PKEY_EC);
        assert_int_equal(X509_get_key_usage(ec_leaf->x509), KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
        expect_verify(ec_leaf, root, NULL, X509_V_OK);

        EVP_PKEY_free(pub);
        EVP_PKEY_free(full);
        EVP_PKEY_free(ec);
}

static void test_serials(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *a = leaf("a@example.com", NULL, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *b = leaf("b@example.com", NULL, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *c = NULL;
        PkiCertOptions o;

        (void) state;
        assert_true(pki_cert_serial(a) != pki_cert_serial(b));
        pki_cert_options_init(&o);
        o.common_name = "Fixed";
        o.serial = 0x1234abcd;
        c = pki_cert_new(&o, intermediate);
        assert_non_null(c);
        assert_int_equal(pki_cert_serial(c), 0x1234abcd);
}

static void test_encodings(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *a = leaf("a@example.com", NULL, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *b = leaf("b@example.com", NULL, intermediate);
        const PkiCert *both[] = { a, b };
        _cleanup_free_ char *pem = NULL, *pems = NULL, *p7pem = NULL, *crlpem = NULL;
        _cleanup_free_ unsigned char *der = NULL, *p7der = NULL, *crlder = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        size_t der_len, p7der_len, crlder_len;
        char fp_a[65], fp_b[65], order[4][65];
        const unsigned char *p;
        PkiCrlOptions co;
        X509 *x;
        BIO *bio;

        (void) state;
        assert_int_equal(pki_cert_fingerprint(a, fp_a), 0);
        assert_int_equal(pki_cert_fingerprint(b, fp_b), 0);
        assert_int_equal(strlen(fp_a), 64);
        assert_string_not_equal(fp_a, fp_b);

        pem = pki_cert_pem(a);
        assert_non_null(pem);
        bio = BIO_new_mem_buf(pem, -1);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        assert_non_null(x);
        assert_int_equal(X509_cmp(x, a->x509), 0);
        X509_free(x);

        pems = pki_certs_pem(both, 2);
        assert_non_null(pems);
        assert_int_equal(strncmp(pems, pem, strlen(pem)), 0);
        bio = BIO_new_mem_buf(pems, -1);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        X509_free(x);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        assert_non_null(x);
        assert_int_equal(X509_cmp(x, b->x509), 0);
        X509_free(x);

        assert_int_equal(pki_cert_der(a, &der, &der_len), 0);
        p = der;
        x = d2i_X509(NULL, &p, (long) der_len);
        assert_non_null(x);
        assert_ptr_equal(p, der + der_len);
        assert_int_equal(X509_cmp(x, a->x509), 0);
        X509_free(x);

        /* PKCS#7 certs-only, both encodings, both certificates inside. */
        assert_int_equal(pki_pkcs7_der(both, 2, &p7der, &p7der_len), 0);
        assert_int_equal(pki_pkcs7_order(p7der, p7der_len, order, 4), 2);
        assert_true((streq(order[0], fp_a) && streq(order[1], fp_b)) ||
                    (streq(order[0], fp_b) && streq(order[1], fp_a)));
        p7pem = pki_pkcs7_pem(both, 2);
        assert_non_null(p7pem);
        assert_non_null(strstr(p7pem, "-----BEGIN PKCS7-----"));
        {
                PKCS7 *p7;

                bio = BIO_new_mem_buf(p7pem, -1);
                p7 = PEM_read_bio_PKCS7(bio, NULL, NULL, NULL);
                BIO_free(bio);
                assert_non_null(p7);
                assert_true(PKCS7_type_is_signed(p7));
                assert_int_equal(sk_X509_num(p7->d.sign->cert), 2);
                PKCS7_free(p7);
        }
        assert_int_equal(pki_pkcs7_order((const unsigned char *) "junk", 4, order, 4), -EINVAL);

        pki_crl_options_init(&co);
        crl = pki_crl_new(intermediate, NULL, 0, &co);
        assert_non_null(crl);
        crlpem = pki_crl_pem(crl);
        assert_non_null(crlpem);
        assert_non_null(strstr(crlpem, "-----BEGIN X509 CRL-----"));
        assert_int_equal(pki_crl_der(crl, &crlder, &crlder_len), 0);
        {
                X509_CRL *back;

                p = crlder;
                back = d2i_X509_CRL(NULL, &p, (long) crlder_len);
                assert_non_null(back);
                assert_int_equal(X509_CRL_verify(back, X509_get0_pubkey(intermediate->x509)), 1);
                X509_CRL_free(back);
        }
}

static void test_write_file(void **state) {
        char path[] = "/tmp/pki-test-file.XXXXXX";
        unsigned char back[8] = {};
        FILE *f;
        int fd;

        (void) state;
        fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(pki_write_file(path, "\x30\x82\x00\x01", 4), 0);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_int_equal(fread(back, 1, sizeof(back), f), 4);
        fclose(f);
        unlink(path);
        assert_memory_equal(back, "\x30\x82\x00\x01", 4);
        assert_int_equal(pki_write_file("/nonexistent/dir/file", "x", 1), -ENOENT);
}

/* The openssl command line, the peer the integration tests use, reads what
 * pki.c writes: `openssl verify` with the chain, `openssl pkcs7
 * -print_certs` of a DER bundle, `openssl crl` of a CRL. */
static char *run_openssl(const char *args) {
        _cleanup_free_ char *cmd = NULL;
        char buf[4096];
        size_t n;
        FILE *p;
        int status;

        assert_true(asprintf(&cmd, "openssl %s 2>&1", args) > 0);
        p = popen(cmd, "r");
        assert_non_null(p);
        n = fread(buf, 1, sizeof(buf) - 1, p);
        buf[n] = '\0';
        status = pclose(p);
        if (status != 0)
                fail_msg("%s: exit %d: %s", cmd, status, buf);
        return strdup(buf);
}

static void test_openssl_cli_reads_it(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *a = leaf("cli.a@example.com", NULL, intermediate);
        _cleanup_(pki_cert_freep) PkiCert *b = leaf("cli.b@example.com", NULL, intermediate);
        const PkiCert *both[] = { a, b };
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *root_pem = pki_cert_pem(root), *inter_pem = pki_cert_pem(intermediate),
                            *leaf_pem = pki_cert_pem(a), *crl_pem = NULL, *out = NULL, *args = NULL;
        _cleanup_free_ unsigned char *p7 = NULL;
        char dir[] = "/tmp/pki-cli.XXXXXX", path[4][64];
        uint64_t serial = pki_cert_serial(a);
        PkiCrlOptions o;
        size_t p7_len;
        unsigned n = 0;

        (void) state;
        assert_non_null(mkdtemp(dir));
        for (int i = 0; i < 4; i++)
                snprintf(path[i], sizeof(path[i]), "%s/%d", dir, i);
        assert_int_equal(pki_write_file(path[0], root_pem, strlen(root_pem)), 0);
        assert_int_equal(pki_write_file(path[1], inter_pem, strlen(inter_pem)), 0);
        assert_int_equal(pki_write_file(path[2], leaf_pem, strlen(leaf_pem)), 0);

        assert_true(asprintf(&args, "verify -purpose smimesign -CAfile %s -untrusted %s %s", path[0], path[1],
                             path[2]) > 0);
        out = run_openssl(args);
        assert_non_null(strstr(out, ": OK"));

        assert_int_equal(pki_pkcs7_der(both, 2, &p7, &p7_len), 0);
        assert_int_equal(pki_write_file(path[3], p7, p7_len), 0);
        free(args);
        free(out);
        assert_true(asprintf(&args, "pkcs7 -inform DER -in %s -print_certs", path[3]) > 0);
        out = run_openssl(args);
        for (const char *p = out; (p = strstr(p, "-----BEGIN CERTIFICATE-----")); p++)
                n++;
        assert_int_equal(n, 2);
        assert_non_null(strstr(out, "CN = Leaf"));

        pki_crl_options_init(&o);
        crl = pki_crl_new(intermediate, &serial, 1, &o);
        assert_non_null(crl);
        crl_pem = pki_crl_pem(crl);
        assert_int_equal(pki_write_file(path[3], crl_pem, strlen(crl_pem)), 0);
        free(args);
        free(out);
        assert_true(asprintf(&args, "crl -in %s -CAfile %s -noout -text", path[3], path[1]) > 0);
        out = run_openssl(args);
        assert_non_null(strstr(out, "verify OK"));
        {
                BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(a->x509), NULL);
                char *hexserial = bn ? BN_bn2hex(bn) : NULL;
                _cleanup_free_ char *line = NULL;

                assert_non_null(hexserial);
                assert_true(asprintf(&line, "Serial Number: %s", hexserial) > 0);
                if (!strstr(out, line))
                        fail_msg("openssl crl -text does not list \"%s\":\n%s", line, out);
                OPENSSL_free(hexserial);
                BN_free(bn);
        }
        assert_non_null(strstr(out, "Revoked Certificates:"));

        for (int i = 0; i < 4; i++)
                unlink(path[i]);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_chain_verifies),
                cmocka_unit_test(test_validity_offsets),
                cmocka_unit_test(test_crl_revokes_serials),
                cmocka_unit_test(test_key_usage_and_eku),
                cmocka_unit_test(test_addresses),
                cmocka_unit_test(test_weak_options),
                cmocka_unit_test(test_leaf_for_a_public_key),
                cmocka_unit_test(test_serials),
                cmocka_unit_test(test_encodings),
                cmocka_unit_test(test_write_file),
                cmocka_unit_test(test_openssl_cli_reads_it),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
