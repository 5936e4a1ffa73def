/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The limits of daemon/smime-limits.h, without a daemon: smime_read() on
 * messages at and one over each CMS limit (by every path a CMS comes in:
 * opaque, detached, enveloped, authEnveloped, .p7m attachment; DER and BER
 * with indefinite lengths), the test-only switch that turns them off,
 * certificate_addresses() on certificates with too many addresses, and
 * pkcs12_parse() on key derivations over SMIME_MAX_PKCS12_ITERATIONS. The
 * messages are real ones (OpenSSL's CMS API) with one SET repeated
 * (tests/cms-edit.c). */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>

#include "certificate-parse.h"
#include "certificate.h"
#include "cms-edit.h"
#include "pki.h"
#include "smime-limits.h"
#include "smime-open.h"
#include "strv.h"

#define ENTITY "Content-Type: text/plain; charset=us-ascii\r\n\r\nThe limits, tested.\r\n"
#define P12_PASS "limits secret"
#define CHILD_ARG "--read-without-limits"

static PkiCert *ca, *signer, *rsa_recipient, *ec_recipient;
/* Signers for messages with several signerInfos: OpenSSL takes each once. */
static PkiCert *signers[SMIME_MAX_SIGNER_INFOS + 1];
static X509_CRL *crl;

/* ---- making messages ---- */

typedef struct Der {
        unsigned char *data;
        size_t size;
} Der;

static void der_done(Der *d) {
        OPENSSL_free(d->data);
        *d = (Der) {};
}

/* A message signed by signer and signers-1 more (flags: CMS_DETACHED,
 * CMS_STREAM for BER), with the CRL when asked. */
static Der make_signed(int flags, unsigned n_signers, bool with_crl) {
        BIO *in = BIO_new_mem_buf(ENTITY, -1);
        CMS_ContentInfo *cms;
        Der d = {};

        assert_non_null(in);
        cms = CMS_sign(NULL, NULL, NULL, in, CMS_PARTIAL | CMS_BINARY | flags);
        assert_non_null(cms);
        assert_true(n_signers <= ELEMENTSOF(signers));
        for (unsigned i = 0; i < n_signers; i++) {
                const PkiCert *c = i == 0 ? signer : signers[i];

                assert_non_null(CMS_add1_signer(cms, c->x509, c->key, EVP_sha256(), CMS_BINARY));
        }
        if (with_crl)
                assert_int_equal(CMS_add1_crl(cms, crl), 1);
        if (flags & CMS_STREAM)
                assert_int_equal(cms_edit_der(cms, in, &d.data, &d.size), 0);
        else {
                assert_int_equal(CMS_final(cms, in, NULL, CMS_BINARY | flags), 1);
                assert_int_equal(cms_edit_der(cms, NULL, &d.data, &d.size), 0);
        }
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        return d;
}

/* Encrypted to recipient with cipher (AES-GCM: authEnveloped-data). */
static Der make_enveloped(const PkiCert *recipient, const EVP_CIPHER *cipher, int flags) {
        STACK_OF(X509) *to = sk_X509_new_null();
        BIO *in = BIO_new_mem_buf(ENTITY, -1);
        CMS_ContentInfo *cms;
        Der d = {};

        assert_non_null(to);
        assert_non_null(in);
        assert_true(sk_X509_push(to, recipient->x509) > 0);
        cms = CMS_encrypt(to, in, cipher, CMS_BINARY | flags);
        assert_non_null(cms);
        assert_int_equal(cms_edit_der(cms, (flags & CMS_STREAM) ? in : NULL, &d.data, &d.size), 0);
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        sk_X509_free(to);
        return d;
}

static Der repeated(const Der *base, CmsEditSet set, size_t n) {
        Der d = {};
        size_t count = 0;

        assert_int_equal(cms_edit_repeat(base->data, base->size, set, n, &d.data, &d.size), 0);
        assert_int_equal(cms_edit_count(d.data, d.size, set, &count), 0);
        assert_int_equal(count, n);
        return d;
}

/* ---- reading them ---- */

typedef struct Read {
        int r;
        char *message;
        CMS_ContentInfo *cms;
        BIO *content;
} Read;

static void read_done(Read *r) {
        free(r->message);
        CMS_ContentInfo_free(r->cms);
        BIO_free(r->content);
        *r = (Read) {};
}

static int memfd_with(const char *text) {
        int fd = memfd_create("smime-limits", MFD_CLOEXEC);
        size_t len = strlen(text);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        return fd;
}

static Read read_text(const char *text) {
        int fd = memfd_with(text);
        Read r = {};

        r.r = smime_read(fd, &r.cms, &r.content, &r.message);
        close(fd);
        return r;
}

static char *opaque_text(const Der *d) {
        char *s = cms_edit_pkcs7_mime("Subject: limits\n", "signed-data", d->data, d->size);

        assert_non_null(s);
        return s;
}

static char *enveloped_text(const Der *d, bool auth) {
        char *s = cms_edit_pkcs7_mime("Subject: limits\n", auth ? "authEnveloped-data" : "enveloped-data", d->data,
                                      d->size);

        assert_non_null(s);
        return s;
}

static void expect_read(const char *text, const char *what) {
        _cleanup_(read_done) Read r = read_text(text);

        if (r.r < 0)
                fail_msg("%s: smime_read() failed (%d): %s", what, r.r, strempty(r.message));
        assert_non_null(r.cms);
}

/* Refused with -EBADMSG and exactly want. */
static void expect_refused(const char *text, const char *want, const char *what) {
        _cleanup_(read_done) Read r = read_text(text);

        if (r.r >= 0)
                fail_msg("%s: smime_read() accepted it", what);
        assert_int_equal(r.r, -EBADMSG);
        assert_null(r.cms);
        if (!r.message || !streq(r.message, want))
                fail_msg("%s: message \"%s\", expected \"%s\"", what, strempty(r.message), want);
}

static char *limit_message(size_t n, const char *what, unsigned max, const char *name) {
        char *s;

        assert_true(asprintf(&s, "The message carries %zu %s; smimed accepts at most %u (%s).", n, what, max, name) >
                    0);
        return s;
}

/* At the limit it is read, one over it is refused, naming the limit. */
static void check_signed_limit(const Der *base, CmsEditSet set, unsigned max, const char *what, const char *name) {
        _cleanup_(der_done) Der at = repeated(base, set, max), over = repeated(base, set, max + 1);
        _cleanup_free_ char *at_text = opaque_text(&at), *over_text = opaque_text(&over),
                            *want = limit_message(max + 1, what, max, name);

        expect_read(at_text, name);
        expect_refused(over_text, want, name);
}

/* ---- the CMS limits ---- */

static void test_digest_algorithms(void **state) {
        _cleanup_(der_done) Der base = make_signed(0, 1, false), attack = {};
        _cleanup_free_ char *text = NULL, *want = NULL;

        check_signed_limit(&base, CMS_EDIT_DIGEST_ALGORITHMS, SMIME_MAX_DIGEST_ALGORITHMS, "digest algorithms",
                           "SMIME_MAX_DIGEST_ALGORITHMS");

        /* The message that crashed smimed. */
        attack = repeated(&base, CMS_EDIT_DIGEST_ALGORITHMS, 60000);
        text = opaque_text(&attack);
        want = limit_message(60000, "digest algorithms", SMIME_MAX_DIGEST_ALGORITHMS, "SMIME_MAX_DIGEST_ALGORITHMS");
        assert_string_equal(want,
                            "The message carries 60000 digest algorithms; smimed accepts at most 16 "
                            "(SMIME_MAX_DIGEST_ALGORITHMS).");
        expect_refused(text, want, "60,000 digest algorithms");
}

static void test_signer_infos(void **state) {
        _cleanup_(der_done) Der base = make_signed(0, 1, false);

        check_signed_limit(&base, CMS_EDIT_SIGNER_INFOS, SMIME_MAX_SIGNER_INFOS, "signerInfos",
                           "SMIME_MAX_SIGNER_INFOS");
}

static void test_certificates(void **state) {
        _cleanup_(der_done) Der base = make_signed(0, 1, false);

        check_signed_limit(&base, CMS_EDIT_CERTIFICATES, SMIME_MAX_CERTIFICATES, "certificates",
                           "SMIME_MAX_CERTIFICATES");
}

static void test_crls(void **state) {
        _cleanup_(der_done) Der base = make_signed(0, 1, true);

        check_signed_limit(&base, CMS_EDIT_CRLS, SMIME_MAX_CRLS, "CRLs", "SMIME_MAX_CRLS");
}

/* Signed and unsigned attributes of one signerInfo count together. */
static void test_attributes(void **state) {
        _cleanup_(der_done) Der base = make_signed(0, 1, false), at = {}, over = {};
        _cleanup_free_ char *at_text = NULL, *over_text = NULL, *want = NULL;
        size_t n_signed = 0;

        check_signed_limit(&base, CMS_EDIT_SIGNED_ATTRIBUTES, SMIME_MAX_ATTRIBUTES, "attributes in signerInfo 1",
                           "SMIME_MAX_ATTRIBUTES");

        assert_int_equal(cms_edit_count(base.data, base.size, CMS_EDIT_SIGNED_ATTRIBUTES, &n_signed), 0);
        assert_true(n_signed > 0 && n_signed < SMIME_MAX_ATTRIBUTES);
        at = repeated(&base, CMS_EDIT_UNSIGNED_ATTRIBUTES, SMIME_MAX_ATTRIBUTES - n_signed);
        over = repeated(&base, CMS_EDIT_UNSIGNED_ATTRIBUTES, SMIME_MAX_ATTRIBUTES - n_signed + 1);
        at_text = opaque_text(&at);
        over_text = opaque_text(&over);
        want = limit_message(SMIME_MAX_ATTRIBUTES + 1, "attributes in signerInfo 1", SMIME_MAX_ATTRIBUTES,
                             "SMIME_MAX_ATTRIBUTES");
        expect_read(at_text, "signed and unsigned attributes at the limit");
        expect_refused(over_text, want, "signed and unsigned attributes over the limit");
}

static void check_enveloped_limit(const Der *base, bool auth, CmsEditSet set, unsigned max, const char *what,
                                  const char *name) {
        _cleanup_(der_done) Der at = repeated(base, set, max), over = repeated(base, set, max + 1);
        _cleanup_free_ char *at_text = enveloped_text(&at, auth), *over_text = enveloped_text(&over, auth),
                            *want = limit_message(max + 1, what, max, name);

        expect_read(at_text, name);
        expect_refused(over_text, want, name);
}

static void test_recipient_infos(void **state) {
        _cleanup_(der_done) Der cbc = make_enveloped(rsa_recipient, EVP_aes_256_cbc(), 0),
                                gcm = make_enveloped(rsa_recipient, EVP_aes_256_gcm(), 0);

        check_enveloped_limit(&cbc, false, CMS_EDIT_RECIPIENT_INFOS, SMIME_MAX_RECIPIENT_INFOS, "recipientInfos",
                              "SMIME_MAX_RECIPIENT_INFOS");
        check_enveloped_limit(&gcm, true, CMS_EDIT_RECIPIENT_INFOS, SMIME_MAX_RECIPIENT_INFOS, "recipientInfos",
                              "SMIME_MAX_RECIPIENT_INFOS");
}

/* One key-agreement recipientInfo for many recipients counts as many. */
static void test_recipient_encrypted_keys(void **state) {
        _cleanup_(der_done) Der base = make_enveloped(ec_recipient, EVP_aes_256_cbc(), 0);

        check_enveloped_limit(&base, false, CMS_EDIT_RECIPIENT_ENCRYPTED_KEYS, SMIME_MAX_RECIPIENT_INFOS,
                              "recipients (recipientInfos, and recipientEncryptedKeys of key agreement)",
                              "SMIME_MAX_RECIPIENT_INFOS");
}

static void test_unprotected_attributes(void **state) {
        _cleanup_(der_done) Der base = make_enveloped(rsa_recipient, EVP_aes_256_cbc(), 0);

        check_enveloped_limit(&base, false, CMS_EDIT_UNPROTECTED_ATTRIBUTES, SMIME_MAX_ATTRIBUTES,
                              "unprotected attributes", "SMIME_MAX_ATTRIBUTES");
}

/* ---- every way in ---- */

static void test_detached_signature(void **state) {
        _cleanup_(der_done) Der base = make_signed(CMS_DETACHED, 1, false), at = {}, over = {};
        _cleanup_free_ char *at_text = NULL, *over_text = NULL, *want = NULL;
        _cleanup_(read_done) Read r = {};

        at = repeated(&base, CMS_EDIT_DIGEST_ALGORITHMS, SMIME_MAX_DIGEST_ALGORITHMS);
        over = repeated(&base, CMS_EDIT_DIGEST_ALGORITHMS, SMIME_MAX_DIGEST_ALGORITHMS + 1);
        at_text = cms_edit_multipart_signed("Subject: limits\n", ENTITY, at.data, at.size);
        over_text = cms_edit_multipart_signed("Subject: limits\n", ENTITY, over.data, over.size);
        assert_non_null(at_text);
        assert_non_null(over_text);
        want = limit_message(SMIME_MAX_DIGEST_ALGORITHMS + 1, "digest algorithms", SMIME_MAX_DIGEST_ALGORITHMS,
                             "SMIME_MAX_DIGEST_ALGORITHMS");

        r = read_text(at_text);
        assert_int_equal(r.r, 0);
        assert_non_null(r.content); /* the signed part came with it */
        expect_refused(over_text, want, "multipart/signed");
}

static void test_p7m_attachment(void **state) {
        _cleanup_(der_done) Der sig = make_signed(0, 1, false), env = make_enveloped(rsa_recipient,
                                                                                     EVP_aes_256_cbc(), 0);
        _cleanup_(der_done) Der sig_over = {}, env_over = {};
        _cleanup_free_ char *sig_ok = NULL, *sig_text = NULL, *env_text = NULL, *sig_want = NULL, *env_want = NULL;

        sig_over = repeated(&sig, CMS_EDIT_SIGNER_INFOS, SMIME_MAX_SIGNER_INFOS + 1);
        env_over = repeated(&env, CMS_EDIT_RECIPIENT_INFOS, SMIME_MAX_RECIPIENT_INFOS + 1);
        sig_ok = cms_edit_p7m_attachment("Subject: limits\n", sig.data, sig.size);
        sig_text = cms_edit_p7m_attachment("Subject: limits\n", sig_over.data, sig_over.size);
        env_text = cms_edit_p7m_attachment("Subject: limits\n", env_over.data, env_over.size);
        assert_non_null(sig_ok);
        assert_non_null(sig_text);
        assert_non_null(env_text);
        sig_want = limit_message(SMIME_MAX_SIGNER_INFOS + 1, "signerInfos", SMIME_MAX_SIGNER_INFOS,
                                 "SMIME_MAX_SIGNER_INFOS");
        env_want = limit_message(SMIME_MAX_RECIPIENT_INFOS + 1, "recipientInfos", SMIME_MAX_RECIPIENT_INFOS,
                                 "SMIME_MAX_RECIPIENT_INFOS");

        expect_read(sig_ok, "a .p7m attachment");
        expect_refused(sig_text, sig_want, "signed .p7m attachment");
        expect_refused(env_text, env_want, "enveloped .p7m attachment");
}

/* ---- BER, as streaming encoders write it ---- */

static void test_ber_indefinite_lengths(void **state) {
        _cleanup_(der_done) Der sig = make_signed(CMS_STREAM, 1, false), env = make_enveloped(rsa_recipient,
                                                                                             EVP_aes_256_cbc(),
                                                                                             CMS_STREAM);
        _cleanup_(der_done) Der many = make_signed(CMS_STREAM, SMIME_MAX_SIGNER_INFOS + 1, false);
        _cleanup_(der_done) Der at = make_signed(CMS_STREAM, SMIME_MAX_SIGNER_INFOS, false);
        _cleanup_free_ char *sig_text = opaque_text(&sig), *env_text = enveloped_text(&env, false),
                            *many_text = opaque_text(&many), *at_text = opaque_text(&at), *want = NULL;
        _cleanup_(read_done) Read r = {};
        _cleanup_(signature_check_done) SignatureCheck check = {};
        _cleanup_free_ char *message = NULL;
        int out;

        /* Really indefinite: SEQUENCE, length 0x80. */
        assert_true(sig.size > 2 && sig.data[0] == 0x30 && sig.data[1] == 0x80);
        assert_true(env.size > 2 && env.data[0] == 0x30 && env.data[1] == 0x80);
        assert_true(many.data[1] == 0x80 && at.data[1] == 0x80);

        /* Read, and the signature still checks out. */
        r = read_text(sig_text);
        if (r.r < 0)
                fail_msg("BER signed-data: %s", strempty(r.message));
        out = memfd_create("verified", MFD_CLOEXEC);
        assert_true(out >= 0);
        assert_int_equal(smime_verify(r.cms, r.content, NULL, NULL, out, &check, &message), 0);
        close(out);
        assert_int_equal(check.integrity, SIGNATURE_INTACT);

        expect_read(env_text, "BER enveloped-data");
        expect_read(at_text, "BER with 16 signerInfos");
        want = limit_message(SMIME_MAX_SIGNER_INFOS + 1, "signerInfos", SMIME_MAX_SIGNER_INFOS,
                             "SMIME_MAX_SIGNER_INFOS");
        expect_refused(many_text, want, "BER with 17 signerInfos");
}

/* ---- the test-only switch ---- */

/* In a child started with the switch on: reads the message in argv[2]. */
static int child_read(const char *file) {
        _cleanup_(read_done) Read r = {};
        _cleanup_free_ char *text = NULL;
        FILE *f = fopen(file, "re");
        size_t n = 0;

        if (!f)
                return 2;
        if (getdelim(&text, &n, '\0', f) < 0) {
                fclose(f);
                return 3;
        }
        fclose(f);
        if (!smime_structure_limits_enabled())
                r = read_text(text);
        else
                return 4;
        if (r.r < 0) {
                fprintf(stderr, "%s\n", strempty(r.message));
                return 1;
        }
        return 0;
}

static void test_limits_off_for_tests(void **state) {
        _cleanup_(der_done) Der base = make_signed(0, 1, false), over = {};
        _cleanup_free_ char *text = NULL, *self = NULL;
        char file[] = "/tmp/smime-limits-XXXXXX";
        int fd, status;
        pid_t pid;

        over = repeated(&base, CMS_EDIT_DIGEST_ALGORITHMS, SMIME_MAX_DIGEST_ALGORITHMS + 1);
        text = opaque_text(&over);
        fd = mkstemp(file);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
        self = realpath("/proc/self/exe", NULL);
        assert_non_null(self);

        assert_true(smime_structure_limits_enabled());
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                setenv(SMIME_NO_STRUCTURE_LIMITS_ENV, "1", 1);
                execl(self, self, CHILD_ARG, file, (char *) NULL);
                _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        unlink(file);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- addresses ---- */

static X509 *cert_with_sans(char **sans) {
        PkiCertOptions o;
        PkiCert *c;
        X509 *x;

        pki_cert_options_init(&o);
        o.common_name = "Many Addresses";
        o.san_emails = (const char *const *) sans;
        o.key = pki_key_ec();
        c = pki_cert_new(&o, ca);
        EVP_PKEY_free(o.key);
        assert_non_null(c);
        x = c->x509;
        assert_int_equal(X509_up_ref(x), 1);
        pki_cert_free(c);
        return x;
}

static void test_addresses_first_256(void **state) {
        _cleanup_(strv_freep) char **sans = NULL, **addresses = NULL;
        X509 *x;

        for (unsigned i = 0; i < 300; i++) {
                char *a;

                assert_true(asprintf(&a, "User%03u@Example.ORG", i) > 0);
                assert_int_equal(strv_consume(&sans, a), 0);
        }
        x = cert_with_sans(sans);
        assert_int_equal(certificate_addresses(x, &addresses), 0);
        X509_free(x);

        assert_int_equal(strv_length(addresses), SMIME_MAX_CERTIFICATE_ADDRESSES);
        assert_string_equal(addresses[0], "user000@example.org");
        assert_string_equal(addresses[255], "user255@example.org");
        assert_false(strv_contains(addresses, "user256@example.org"));
        assert_false(strv_contains(addresses, "user299@example.org"));
}

/* Repeats (in any case) go, the first of each stays where it was;
 * malformed entries count among the 256 considered. */
static void test_addresses_deduplicated(void **state) {
        _cleanup_(strv_freep) char **sans = NULL, **addresses = NULL, **want = NULL;
        X509 *x;

        for (unsigned i = 0; i < 300; i++) {
                char *a;

                if (i % 10 == 9)
                        assert_true(asprintf(&a, "not an address %u", i) > 0);
                else
                        assert_true(asprintf(&a, i % 2 ? "P%02u@EXAMPLE.org" : "p%02u@example.org", (i * 7) % 40) >
                                    0);
                assert_int_equal(strv_consume(&sans, a), 0);
        }
        /* After the 256 considered: a new address, ignored. */
        assert_int_equal(strv_extend(&sans, "late@example.org"), 0);
        x = cert_with_sans(sans);
        assert_int_equal(certificate_addresses(x, &addresses), 0);
        X509_free(x);

        /* What they should be: the well-formed ones of the first 256, each
         * once, in the order they first came. */
        for (unsigned i = 0; i < SMIME_MAX_CERTIFICATE_ADDRESSES; i++) {
                char a[32];

                if (i % 10 == 9)
                        continue;
                snprintf(a, sizeof(a), "p%02u@example.org", (i * 7) % 40);
                if (!strv_contains(want, a))
                        assert_int_equal(strv_extend(&want, a), 0);
        }
        assert_true(strv_length(want) > 1);
        assert_int_equal(strv_length(addresses), strv_length(want));
        for (size_t i = 0; want[i]; i++)
                assert_string_equal(addresses[i], want[i]);
        assert_false(strv_contains(addresses, "late@example.org"));
}

static void test_addresses_subject_fallback(void **state) {
        _cleanup_(strv_freep) char **addresses = NULL;
        X509 *x = cert_with_sans(NULL);
        X509_NAME *subject = X509_get_subject_name(x);

        for (unsigned i = 0; i < 300; i++) {
                char a[32];

                snprintf(a, sizeof(a), "subject%03u@example.org", i % 280);
                assert_int_equal(X509_NAME_add_entry_by_NID(subject, NID_pkcs9_emailAddress, MBSTRING_ASC,
                                                            (const unsigned char *) a, -1, -1, 0),
                                 1);
        }
        assert_int_equal(certificate_addresses(x, &addresses), 0);
        X509_free(x);

        assert_int_equal(strv_length(addresses), SMIME_MAX_CERTIFICATE_ADDRESSES);
        assert_string_equal(addresses[0], "subject000@example.org");
        assert_false(strv_contains(addresses, "subject256@example.org"));
}

/* ---- PKCS#12 ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(PBE2PARAM *, PBE2PARAM_free);

/* Writes iter into the parameters of a password-based algorithm in place:
 * a test makes a file cheaply and then asks for more than it took. For
 * scrypt, iter becomes N. */
static void set_iterations(X509_ALGOR *alg, uint64_t iter) {
        if (OBJ_obj2nid(alg->algorithm) == NID_pbes2) {
                _cleanup_(PBE2PARAM_freep) PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM),
                                                                                     alg->parameter);

                assert_non_null(pbe2);
                if (OBJ_obj2nid(pbe2->keyfunc->algorithm) == NID_id_scrypt) {
                        SCRYPT_PARAMS *sp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS),
                                                                      pbe2->keyfunc->parameter);

                        assert_non_null(sp);
                        assert_int_equal(ASN1_INTEGER_set_uint64(sp->costParameter, iter), 1);
                        assert_non_null(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), sp,
                                                                &pbe2->keyfunc->parameter));
                        SCRYPT_PARAMS_free(sp);
                } else {
                        PBKDF2PARAM *kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
                                                                     pbe2->keyfunc->parameter);

                        assert_non_null(kdf);
                        assert_int_equal(ASN1_INTEGER_set_uint64(kdf->iter, iter), 1);
                        assert_non_null(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), kdf,
                                                                &pbe2->keyfunc->parameter));
                        PBKDF2PARAM_free(kdf);
                }
                assert_non_null(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBE2PARAM), pbe2, &alg->parameter));
        } else {
                PBEPARAM *pbe = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);

                assert_non_null(pbe);
                assert_int_equal(ASN1_INTEGER_set_uint64(pbe->iter, iter), 1);
                assert_non_null(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBEPARAM), pbe, &alg->parameter));
                PBEPARAM_free(pbe);
        }
}

typedef enum KeyPbe {
        KEY_PBKDF2,   /* PBES2, AES-256-CBC, PBKDF2 */
        KEY_LEGACY,   /* pbeWithSHAAnd3-KeyTripleDES-CBC */
        KEY_SCRYPT,   /* PBES2 with scrypt */
} KeyPbe;

typedef struct P12Spec {
        KeyPbe key_pbe;
        int key_iter;                /* what the key's derivation runs with (scrypt: N) */
        uint64_t key_iter_written;   /* what the file then says, when not 0 */
        bool key_encrypted_part;     /* the key bag inside an encrypted part */
        uint64_t part_iter_written;  /* the encrypted part's, when not 0 */
        int mac_iter;                /* 0: 2048 */
        uint64_t mac_iter_written;
} P12Spec;

static PKCS7 *encrypted_part(STACK_OF(PKCS12_SAFEBAG) *bags, uint64_t written) {
        PKCS7 *p7 = PKCS12_pack_p7encdata(NID_aes_256_cbc, P12_PASS, -1, NULL, 0, 2048, bags);

        assert_non_null(p7);
        if (written)
                set_iterations(p7->d.encrypted->enc_data->algorithm, written);
        return p7;
}

/* signer's key and certificate as a PKCS#12 file made to spec. */
static Der make_p12(const P12Spec *s) {
        STACK_OF(PKCS12_SAFEBAG) *key_bags = sk_PKCS12_SAFEBAG_new_null(), *cert_bags = sk_PKCS12_SAFEBAG_new_null();
        STACK_OF(PKCS7) *safes = sk_PKCS7_new_null();
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(signer->key);
        PKCS12_SAFEBAG *key_bag, *cert_bag;
        const ASN1_INTEGER *mac_iter = NULL;
        X509_ALGOR *alg;
        PKCS12 *p12;
        Der d = {};
        int len;

        assert_non_null(p8);
        assert_non_null(key_bags);
        assert_non_null(cert_bags);
        assert_non_null(safes);
        if (s->key_pbe == KEY_SCRYPT) {
                X509_ALGOR *pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, (uint64_t) s->key_iter, 8,
                                                        1);
                X509_SIG *sig;

                assert_non_null(pbe);
                sig = PKCS8_set0_pbe(P12_PASS, -1, p8, pbe);
                assert_non_null(sig);
                key_bag = PKCS12_SAFEBAG_create0_pkcs8(sig);
        } else
                key_bag = PKCS12_SAFEBAG_create_pkcs8_encrypt(s->key_pbe == KEY_LEGACY ?
                                                                      NID_pbe_WithSHA1And3_Key_TripleDES_CBC :
                                                                      NID_aes_256_cbc,
                                                              P12_PASS, -1, NULL, 0, s->key_iter, p8);
        PKCS8_PRIV_KEY_INFO_free(p8);
        assert_non_null(key_bag);
        if (s->key_iter_written) {
                X509_SIG_getm((X509_SIG *) PKCS12_SAFEBAG_get0_pkcs8(key_bag), &alg, NULL);
                set_iterations(alg, s->key_iter_written);
        }
        assert_true(sk_PKCS12_SAFEBAG_push(key_bags, key_bag) > 0);
        cert_bag = PKCS12_SAFEBAG_create_cert(signer->x509);
        assert_non_null(cert_bag);
        assert_true(sk_PKCS12_SAFEBAG_push(cert_bags, cert_bag) > 0);

        assert_true(sk_PKCS7_push(safes, s->key_encrypted_part ? encrypted_part(key_bags, 0) :
                                                                  PKCS12_pack_p7data(key_bags)) > 0);
        assert_true(sk_PKCS7_push(safes, encrypted_part(cert_bags, s->part_iter_written)) > 0);
        p12 = PKCS12_init(NID_pkcs7_data);
        assert_non_null(p12);
        assert_int_equal(PKCS12_pack_authsafes(p12, safes), 1);
        assert_int_equal(PKCS12_set_mac(p12, P12_PASS, -1, NULL, 0, s->mac_iter ?: 2048, EVP_sha256()), 1);
        if (s->mac_iter_written) {
                PKCS12_get0_mac(NULL, NULL, NULL, &mac_iter, p12);
                assert_non_null(mac_iter);
                assert_int_equal(ASN1_INTEGER_set_uint64((ASN1_INTEGER *) mac_iter, s->mac_iter_written), 1);
        }
        len = i2d_PKCS12(p12, &d.data);
        assert_true(len > 0);
        d.size = (size_t) len;

        PKCS12_free(p12);
        sk_PKCS7_pop_free(safes, PKCS7_free);
        sk_PKCS12_SAFEBAG_pop_free(key_bags, PKCS12_SAFEBAG_free);
        sk_PKCS12_SAFEBAG_pop_free(cert_bags, PKCS12_SAFEBAG_free);
        return d;
}

static void expect_p12_parsed(const P12Spec *s, const char *what) {
        _cleanup_(der_done) Der d = make_p12(s);
        _cleanup_free_ char *message = NULL;
        STACK_OF(X509) *chain = NULL;
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        int r;

        r = pkcs12_parse(d.data, d.size, P12_PASS, &key, &cert, &chain, &message);
        if (r < 0)
                fail_msg("%s: pkcs12_parse() failed (%d): %s", what, r, strempty(message));
        assert_non_null(key);
        assert_non_null(cert);
        assert_int_equal(X509_cmp(cert, signer->x509), 0);
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(chain, X509_free);
}

static void expect_p12_refused(const P12Spec *s, uint64_t iterations, const char *whose, const char *what) {
        _cleanup_(der_done) Der d = make_p12(s);
        _cleanup_free_ char *message = NULL, *want = NULL;
        STACK_OF(X509) *chain = NULL;
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        int r;

        r = pkcs12_parse(d.data, d.size, P12_PASS, &key, &cert, &chain, &message);
        assert_null(key);
        assert_null(cert);
        assert_null(chain);
        assert_true(asprintf(&want,
                             "The PKCS#12 file asks for %" PRIu64 " key-derivation iterations (%s); smimed accepts "
                             "at most 1000000 (SMIME_MAX_PKCS12_ITERATIONS).",
                             iterations, whose) > 0);
        if (r != -EBADMSG || !message || !streq(message, want))
                fail_msg("%s: got %d \"%s\", expected -EBADMSG \"%s\"", what, r, strempty(message), want);
}

static void test_pkcs12_mac_iterations(void **state) {
        P12Spec s = { .key_iter = 2048 };

        s.mac_iter_written = 100000000;
        expect_p12_refused(&s, 100000000, "its MAC", "MAC of 100,000,000 iterations");
        s.mac_iter_written = SMIME_MAX_PKCS12_ITERATIONS + 1;
        expect_p12_refused(&s, SMIME_MAX_PKCS12_ITERATIONS + 1, "its MAC", "MAC one over the limit");

        /* At the limit: the MAC is computed and checked with 1,000,000. */
        s = (P12Spec) { .key_iter = 2048, .mac_iter = SMIME_MAX_PKCS12_ITERATIONS };
        expect_p12_parsed(&s, "MAC at the limit");
}

static void test_pkcs12_key_iterations(void **state) {
        P12Spec s = { .key_iter = 2048, .key_iter_written = 100000000 };

        expect_p12_refused(&s, 100000000, "a shrouded key", "PBKDF2 key of 100,000,000 iterations");
        s.key_pbe = KEY_LEGACY;
        expect_p12_refused(&s, 100000000, "a shrouded key", "legacy PBE key of 100,000,000 iterations");

        /* Inside an encrypted part: seen once the part is decrypted. */
        s = (P12Spec) { .key_iter = 2048, .key_iter_written = 100000000, .key_encrypted_part = true };
        expect_p12_refused(&s, 100000000, "a shrouded key", "a key inside an encrypted part");

        /* One over. (At the limit, a real derivation of 1,000,000 runs in
         * test_pkcs12_mac_iterations: the same check; one is slow enough
         * under the sanitizers.) */
        s = (P12Spec) { .key_iter = 2048, .key_iter_written = SMIME_MAX_PKCS12_ITERATIONS + 1 };
        expect_p12_refused(&s, SMIME_MAX_PKCS12_ITERATIONS + 1, "a shrouded key", "key one over the limit");
        s = (P12Spec) { .key_iter = 2048 };
        expect_p12_parsed(&s, "key under the limit");
}

static void test_pkcs12_encrypted_part_iterations(void **state) {
        P12Spec s = { .key_iter = 2048, .part_iter_written = 100000000 };

        expect_p12_refused(&s, 100000000, "an encrypted part", "encrypted part of 100,000,000 iterations");
}

static void test_pkcs12_scrypt(void **state) {
        P12Spec s = { .key_pbe = KEY_SCRYPT, .key_iter = 1024, .key_iter_written = 1U << 20 };

        /* N·r·p = 2^20 · 8 · 1 */
        expect_p12_refused(&s, 8U << 20, "scrypt N·r·p, a shrouded key", "scrypt key over the limit");
        s = (P12Spec) { .key_pbe = KEY_SCRYPT, .key_iter = 1024 };
        expect_p12_parsed(&s, "scrypt key under the limit");
}

/* ---- setup ---- */

static int setup(void **state) {
        PkiCertOptions o;
        const char *san[] = { "signer@example.org", NULL };
        uint64_t serial = 4242;
        PkiCrlOptions co;

        ca = pki_root_ca("Limits Root");
        if (!ca)
                return -1;
        pki_cert_options_init(&o);
        o.common_name = "Limits Signer";
        o.san_emails = san;
        o.key = pki_key_ec();
        signer = pki_cert_new(&o, ca);
        EVP_PKEY_free(o.key);

        pki_cert_options_init(&o);
        o.common_name = "Limits RSA Recipient";
        o.key = pki_key_rsa(2048);
        rsa_recipient = pki_cert_new(&o, ca);
        EVP_PKEY_free(o.key);

        pki_cert_options_init(&o);
        o.common_name = "Limits EC Recipient";
        o.key = pki_key_ec();
        ec_recipient = pki_cert_new(&o, ca);
        EVP_PKEY_free(o.key);

        for (size_t i = 1; i < ELEMENTSOF(signers); i++) {
                pki_cert_options_init(&o);
                o.common_name = "Limits Co-Signer";
                o.key = pki_key_ec();
                signers[i] = pki_cert_new(&o, ca);
                EVP_PKEY_free(o.key);
                if (!signers[i])
                        return -1;
        }

        pki_crl_options_init(&co);
        crl = pki_crl_new(ca, &serial, 1, &co);
        return signer && rsa_recipient && ec_recipient && crl ? 0 : -1;
}

static int teardown(void **state) {
        ca = pki_cert_free(ca);
        signer = pki_cert_free(signer);
        rsa_recipient = pki_cert_free(rsa_recipient);
        ec_recipient = pki_cert_free(ec_recipient);
        for (size_t i = 0; i < ELEMENTSOF(signers); i++)
                signers[i] = pki_cert_free(signers[i]);
        X509_CRL_free(crl);
        crl = NULL;
        return 0;
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_digest_algorithms),
                cmocka_unit_test(test_signer_infos),
                cmocka_unit_test(test_certificates),
                cmocka_unit_test(test_crls),
                cmocka_unit_test(test_attributes),
                cmocka_unit_test(test_recipient_infos),
                cmocka_unit_test(test_recipient_encrypted_keys),
                cmocka_unit_test(test_unprotected_attributes),
                cmocka_unit_test(test_detached_signature),
                cmocka_unit_test(test_p7m_attachment),
                cmocka_unit_test(test_ber_indefinite_lengths),
                cmocka_unit_test(test_limits_off_for_tests),
                cmocka_unit_test(test_addresses_first_256),
                cmocka_unit_test(test_addresses_deduplicated),
                cmocka_unit_test(test_addresses_subject_fallback),
                cmocka_unit_test(test_pkcs12_mac_iterations),
                cmocka_unit_test(test_pkcs12_key_iterations),
                cmocka_unit_test(test_pkcs12_encrypted_part_iterations),
                cmocka_unit_test(test_pkcs12_scrypt),
        };

        if (argc == 3 && streq(argv[1], CHILD_ARG))
                return child_read(argv[2]);
        return cmocka_run_group_tests(tests, setup, teardown);
}
