/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>

#include "message.h"
#include "certificate-parse.h"
#include "macro.h"
#include "smime-limits.h"

typedef struct PemBlock {
        char *name;
        unsigned char *data;
        long size;
} PemBlock;

typedef struct PemBlocks {
        PemBlock *items;
        size_t n;
} PemBlocks;

static void pem_blocks_done(PemBlocks *b) {
        for (size_t i = 0; i < b->n; i++) {
                OPENSSL_free(b->items[i].name);
                OPENSSL_free(b->items[i].data);
        }
        free(b->items);
        *b = (PemBlocks) {};
}

static bool looks_like_pem(const void *data, size_t size) {
        return memmem(data, size, "-----BEGIN ", 11) != NULL;
}

static size_t count_pem_blocks(const void *data, size_t size) {
        const char *p = data, *end = p + size;
        size_t n = 0;

        while (p < end && (p = memmem(p, (size_t) (end - p), "-----BEGIN ", 11))) {
                n++;
                p += 11;
        }
        return n;
}

/* Splits PEM text into its blocks; text around them (comments, "Bag
 * Attributes") is ignored. */
static int pem_split(const void *data, size_t size, PemBlocks *ret, char **ret_message) {
        _cleanup_(pem_blocks_done) PemBlocks blocks = {};
        size_t total = count_pem_blocks(data, size);
        BIO *bio;
        int r = 0;

        bio = BIO_new_mem_buf(data, (int) size);
        if (!bio)
                return -ENOMEM;

        ERR_clear_error();
        for (;;) {
                PemBlock b = {};
                char *header = NULL;
                PemBlock *items;

                if (!PEM_read_bio(bio, &b.name, &header, &b.data, &b.size)) {
                        unsigned long e = ERR_peek_last_error();

                        if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                                break; /* no more blocks */
                        r = message_fail(ret_message, -EBADMSG, "item %zu of %zu: malformed PEM block (%s)",
                                         blocks.n + 1, total > blocks.n ? total : blocks.n + 1,
                                         ERR_reason_error_string(e) ?: "unreadable");
                        break;
                }
                OPENSSL_free(header);

                if (blocks.n >= IMPORT_MAX_ITEMS) {
                        OPENSSL_free(b.name);
                        OPENSSL_free(b.data);
                        r = message_fail(ret_message, -E2BIG, "more than %u items", IMPORT_MAX_ITEMS);
                        break;
                }
                items = realloc(blocks.items, (blocks.n + 1) * sizeof(PemBlock));
                if (!items) {
                        OPENSSL_free(b.name);
                        OPENSSL_free(b.data);
                        r = -ENOMEM;
                        break;
                }
                blocks.items = items;
                blocks.items[blocks.n++] = b;
        }
        ERR_clear_error();
        BIO_free(bio);
        if (r < 0)
                return r;

        *ret = blocks;
        blocks = (PemBlocks) {};
        return 0;
}

/* The certificates of a PKCS#7 SignedData certs-only bundle. */
static int pkcs7_certificates(const unsigned char *der, long size, STACK_OF(X509) *out, bool *ret_is_pkcs7) {
        const unsigned char *p = der;
        STACK_OF(X509) *certs = NULL;
        PKCS7 *p7;
        int r = 0;

        *ret_is_pkcs7 = false;
        p7 = d2i_PKCS7(NULL, &p, size);
        if (!p7)
                return -EBADMSG;
        if (p != der + size) {
                PKCS7_free(p7);
                return -EBADMSG;
        }
        *ret_is_pkcs7 = true;

        if (PKCS7_type_is_signed(p7) && p7->d.sign)
                certs = p7->d.sign->cert;
        else if (PKCS7_type_is_signedAndEnveloped(p7) && p7->d.signed_and_enveloped)
                certs = p7->d.signed_and_enveloped->cert;

        for (int i = 0; certs && i < sk_X509_num(certs); i++) {
                X509 *x = sk_X509_value(certs, i);

                if (!X509_up_ref(x) || !sk_X509_push(out, x)) {
                        r = -ENOMEM;
                        break;
                }
        }
        PKCS7_free(p7);
        return r;
}

static X509 *der_certificate(const unsigned char *der, long size, bool aux) {
        const unsigned char *p = der;
        X509 *x = aux ? d2i_X509_AUX(NULL, &p, size) : d2i_X509(NULL, &p, size);

        if (x && p != der + size) { /* trailing bytes: not one certificate */
                X509_free(x);
                return NULL;
        }
        return x;
}

static bool is_der_pkcs12(const unsigned char *der, long size) {
        const unsigned char *p = der;
        PKCS12 *p12 = d2i_PKCS12(NULL, &p, size);
        bool whole = p12 && p == der + size;

        PKCS12_free(p12);
        return whole;
}

static const char *pem_block_hint(const char *name) {
        if (strstr(name, "PRIVATE KEY"))
                return "a private key, which smimed takes only through ImportPKCS12";
        if (streq(name, "X509 CRL"))
                return "a CRL; import it with ImportCRL (smimectl import-crl)";
        if (streq(name, "CERTIFICATE REQUEST") || streq(name, "NEW CERTIFICATE REQUEST"))
                return "a certificate request, not a certificate";
        return "not a certificate";
}

static int certificate_pem_block(const PemBlock *b, size_t i, size_t n, STACK_OF(X509) *out, char **ret_message) {
        bool is_pkcs7;
        X509 *x;
        int r;

        if (streq(b->name, "CERTIFICATE") || streq(b->name, "X509 CERTIFICATE") ||
            streq(b->name, "TRUSTED CERTIFICATE")) {
                x = der_certificate(b->data, b->size, streq(b->name, "TRUSTED CERTIFICATE"));
                if (!x)
                        return message_fail(ret_message, -EBADMSG, "item %zu of %zu (PEM block %s): not a valid X.509 certificate",
                                    i + 1, n, b->name);
                if (!sk_X509_push(out, x)) {
                        X509_free(x);
                        return -ENOMEM;
                }
                return 0;
        }

        if (streq(b->name, "PKCS7")) {
                r = pkcs7_certificates(b->data, b->size, out, &is_pkcs7);
                if (r == -EBADMSG)
                        return message_fail(ret_message, r, "item %zu of %zu (PEM block PKCS7): not a valid PKCS#7 structure",
                                    i + 1, n);
                return r;
        }

        return message_fail(ret_message, -EBADMSG, "item %zu of %zu (PEM block %s): %s", i + 1, n, b->name,
                    pem_block_hint(b->name));
}

int certificates_parse(const void *data, size_t size, STACK_OF(X509) **ret, char **ret_message) {
        STACK_OF(X509) *out;
        int r = 0;

        *ret_message = NULL;
        if (size == 0)
                return message_fail(ret_message, -EBADMSG, "no data");
        if (size > IMPORT_MAX_SIZE)
                return message_fail(ret_message, -EFBIG, "larger than %u MiB", IMPORT_MAX_SIZE / 1024 / 1024);

        out = sk_X509_new_null();
        if (!out)
                return -ENOMEM;

        if (looks_like_pem(data, size)) {
                _cleanup_(pem_blocks_done) PemBlocks blocks = {};

                r = pem_split(data, size, &blocks, ret_message);
                for (size_t i = 0; r >= 0 && i < blocks.n; i++)
                        r = certificate_pem_block(&blocks.items[i], i, blocks.n, out, ret_message);
        } else {
                X509 *x = der_certificate(data, (long) size, false);
                bool is_pkcs7 = false;

                if (x) {
                        if (!sk_X509_push(out, x)) {
                                X509_free(x);
                                r = -ENOMEM;
                        }
                } else {
                        r = pkcs7_certificates(data, (long) size, out, &is_pkcs7);
                        if (r == -EBADMSG && is_der_pkcs12(data, (long) size))
                                r = message_fail(ret_message, r,
                                                 "item 1 of 1: a PKCS#12 file, which holds a private key; enroll it "
                                                 "with ImportPKCS12 (smimectl import-key)");
                        else if (r == -EBADMSG)
                                r = message_fail(ret_message, r,
                                         "item 1 of 1: neither PEM, nor a DER certificate, nor a DER PKCS#7 bundle");
                }
        }

        if (r >= 0 && sk_X509_num(out) == 0)
                r = message_fail(ret_message, -EBADMSG, "no certificate in the data");
        if (r < 0) {
                sk_X509_pop_free(out, X509_free);
                return r;
        }

        *ret = out;
        return 0;
}

static X509_CRL *der_crl(const unsigned char *der, long size) {
        const unsigned char *p = der;
        X509_CRL *crl = d2i_X509_CRL(NULL, &p, size);

        if (crl && p != der + size) {
                X509_CRL_free(crl);
                return NULL;
        }
        return crl;
}

int crls_parse(const void *data, size_t size, STACK_OF(X509_CRL) **ret, char **ret_message) {
        STACK_OF(X509_CRL) *out;
        int r = 0;

        *ret_message = NULL;
        if (size == 0)
                return message_fail(ret_message, -EBADMSG, "no data");
        if (size > IMPORT_MAX_SIZE)
                return message_fail(ret_message, -EFBIG, "larger than %u MiB", IMPORT_MAX_SIZE / 1024 / 1024);

        out = sk_X509_CRL_new_null();
        if (!out)
                return -ENOMEM;

        if (looks_like_pem(data, size)) {
                _cleanup_(pem_blocks_done) PemBlocks blocks = {};

                r = pem_split(data, size, &blocks, ret_message);
                for (size_t i = 0; r >= 0 && i < blocks.n; i++) {
                        const PemBlock *b = &blocks.items[i];
                        X509_CRL *crl;

                        if (!streq(b->name, "X509 CRL")) {
                                r = message_fail(ret_message, -EBADMSG, "item %zu of %zu (PEM block %s): not a CRL", i + 1,
                                         blocks.n, b->name);
                                break;
                        }
                        crl = der_crl(b->data, b->size);
                        if (!crl) {
                                r = message_fail(ret_message, -EBADMSG, "item %zu of %zu (PEM block X509 CRL): not a valid CRL",
                                         i + 1, blocks.n);
                                break;
                        }
                        if (!sk_X509_CRL_push(out, crl)) {
                                X509_CRL_free(crl);
                                r = -ENOMEM;
                        }
                }
        } else {
                X509_CRL *crl = der_crl(data, (long) size);

                if (!crl)
                        r = message_fail(ret_message, -EBADMSG, "item 1 of 1: neither PEM nor a DER CRL");
                else if (!sk_X509_CRL_push(out, crl)) {
                        X509_CRL_free(crl);
                        r = -ENOMEM;
                }
        }

        if (r >= 0 && sk_X509_CRL_num(out) == 0)
                r = message_fail(ret_message, -EBADMSG, "no CRL in the data");
        if (r < 0) {
                sk_X509_CRL_pop_free(out, X509_CRL_free);
                return r;
        }

        *ret = out;
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(PKCS12 *, PKCS12_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(PBEPARAM *, PBEPARAM_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(PBE2PARAM *, PBE2PARAM_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(PBKDF2PARAM *, PBKDF2PARAM_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(SCRYPT_PARAMS *, SCRYPT_PARAMS_free);

static void authsafes_free(STACK_OF(PKCS7) *safes) {
        sk_PKCS7_pop_free(safes, PKCS7_free);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(STACK_OF(PKCS7) *, authsafes_free);

static void bags_free(STACK_OF(PKCS12_SAFEBAG) *bags) {
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(STACK_OF(PKCS12_SAFEBAG) *, bags_free);

/* Refuses an iteration count above SMIME_MAX_PKCS12_ITERATIONS; what says
 * whose it is. */
static int check_iterations(const ASN1_INTEGER *iter, const char *what, char **ret_message) {
        int64_t n;

        if (!iter || ASN1_STRING_type(iter) == V_ASN1_NEG_INTEGER)
                return 0; /* absent: 1; negative: OpenSSL refuses it */
        if (ASN1_INTEGER_get_int64(&n, iter) != 1) {
                ERR_clear_error();
                return message_fail(ret_message, -EBADMSG,
                                    "The PKCS#12 file asks for more than 2^63 key-derivation iterations (%s); smimed "
                                    "accepts at most %u (SMIME_MAX_PKCS12_ITERATIONS).",
                                    what, SMIME_MAX_PKCS12_ITERATIONS);
        }
        if (n <= (int64_t) SMIME_MAX_PKCS12_ITERATIONS)
                return 0;
        return message_fail(ret_message, -EBADMSG,
                            "The PKCS#12 file asks for %" PRId64 " key-derivation iterations (%s); smimed accepts at "
                            "most %u (SMIME_MAX_PKCS12_ITERATIONS).",
                            n, what, SMIME_MAX_PKCS12_ITERATIONS);
}

/* scrypt's work, N·r·p, counts as its iterations. */
static int check_scrypt(const SCRYPT_PARAMS *sp, const char *what, char **ret_message) {
        const ASN1_INTEGER *factors[] = { sp->costParameter, sp->blockSize, sp->parallelizationParameter };
        uint64_t work = 1;

        for (size_t i = 0; i < ELEMENTSOF(factors); i++) {
                uint64_t f;

                if (!factors[i] || ASN1_INTEGER_get_uint64(&f, factors[i]) != 1 || f == 0)
                        return 0; /* OpenSSL refuses these before deriving anything */
                if (f > UINT64_MAX / work) {
                        work = UINT64_MAX;
                        break;
                }
                work *= f;
        }
        if (work <= SMIME_MAX_PKCS12_ITERATIONS)
                return 0;
        return message_fail(ret_message, -EBADMSG,
                            "The PKCS#12 file asks for %" PRIu64 " key-derivation iterations (scrypt N·r·p, %s); "
                            "smimed accepts at most %u (SMIME_MAX_PKCS12_ITERATIONS).",
                            work, what, SMIME_MAX_PKCS12_ITERATIONS);
}

/* The key derivation of a password-based encryption algorithm: PBES2 with
 * PBKDF2 or scrypt, or a PKCS#5 v1.5 / PKCS#12 PBE. Parameters that do not
 * decode are left to OpenSSL, which derives nothing from them. */
static int check_pbe(const X509_ALGOR *alg, const char *what, char **ret_message) {
        const ASN1_OBJECT *oid;

        if (!alg)
                return 0;
        X509_ALGOR_get0(&oid, NULL, NULL, alg);
        if (OBJ_obj2nid(oid) == NID_pbes2) {
                _cleanup_(PBE2PARAM_freep) PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM),
                                                                                     alg->parameter);

                if (!pbe2 || !pbe2->keyfunc)
                        return 0;
                switch (OBJ_obj2nid(pbe2->keyfunc->algorithm)) {
                case NID_id_pbkdf2: {
                        _cleanup_(PBKDF2PARAM_freep) PBKDF2PARAM *kdf =
                                ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter);

                        return kdf ? check_iterations(kdf->iter, what, ret_message) : 0;
                }
                case NID_id_scrypt: {
                        _cleanup_(SCRYPT_PARAMS_freep) SCRYPT_PARAMS *sp =
                                ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), pbe2->keyfunc->parameter);

                        return sp ? check_scrypt(sp, what, ret_message) : 0;
                }
                default:
                        return 0;
                }
        }

        _cleanup_(PBEPARAM_freep) PBEPARAM *pbe = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);
        return pbe ? check_iterations(pbe->iter, what, ret_message) : 0;
}

/* Every shrouded key in bags, and in the bags nested in them. */
static int check_bags(const STACK_OF(PKCS12_SAFEBAG) *bags, char **ret_message) {
        for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
                const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
                const X509_ALGOR *alg = NULL;
                int r;

                switch (PKCS12_SAFEBAG_get_nid(bag)) {
                case NID_pkcs8ShroudedKeyBag:
                        X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
                        r = check_pbe(alg, "a shrouded key", ret_message);
                        break;
                case NID_safeContentsBag:
                        r = check_bags(PKCS12_SAFEBAG_get0_safes(bag), ret_message);
                        break;
                default:
                        r = 0;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static const X509_ALGOR *encrypted_data_algorithm(const PKCS7 *p7) {
        return p7->d.encrypted && p7->d.encrypted->enc_data ? p7->d.encrypted->enc_data->algorithm : NULL;
}

/* What PKCS12_parse() will derive keys with, all checked before any
 * derivation: the MAC, and the encrypted parts and shrouded keys it can see
 * without the passphrase. */
static int check_visible_kdfs(PKCS12 *p12, char **ret_message) {
        _cleanup_(authsafes_freep) STACK_OF(PKCS7) *safes = NULL;
        const ASN1_INTEGER *mac_iter = NULL;
        int r;

        if (PKCS12_mac_present(p12)) {
                PKCS12_get0_mac(NULL, NULL, NULL, &mac_iter, p12);
                r = check_iterations(mac_iter, "its MAC", ret_message);
                if (r < 0)
                        return r;
        }

        safes = PKCS12_unpack_authsafes(p12);
        for (int i = 0; safes && i < sk_PKCS7_num(safes); i++) {
                PKCS7 *p7 = sk_PKCS7_value(safes, i);

                if (PKCS7_type_is_encrypted(p7))
                        r = check_pbe(encrypted_data_algorithm(p7), "an encrypted part", ret_message);
                else if (PKCS7_type_is_data(p7)) {
                        _cleanup_(bags_freep) STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(p7);

                        r = bags ? check_bags(bags, ret_message) : 0;
                } else
                        r = 0;
                if (r < 0)
                        return r;
        }
        ERR_clear_error();
        return 0;
}

/* The shrouded keys inside encrypted parts, whose own (checked) derivation
 * runs here, once more than PKCS12_parse() will. A part that does not
 * decrypt is left alone: PKCS12_parse() fails on it before its bags. */
static int check_encrypted_kdfs(PKCS12 *p12, const char *passphrase, char **ret_message) {
        _cleanup_(authsafes_freep) STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);

        for (int i = 0; safes && i < sk_PKCS7_num(safes); i++) {
                PKCS7 *p7 = sk_PKCS7_value(safes, i);
                _cleanup_(bags_freep) STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
                int r;

                if (!PKCS7_type_is_encrypted(p7))
                        continue;
                bags = PKCS12_unpack_p7encdata(p7, passphrase, -1);
                r = bags ? check_bags(bags, ret_message) : 0;
                if (r < 0)
                        return r;
        }
        ERR_clear_error();
        return 0;
}

int pkcs12_parse(const void *data, size_t size, const char *passphrase, EVP_PKEY **ret_key, X509 **ret_cert,
                       STACK_OF(X509) **ret_chain, char **ret_message) {
        _cleanup_(PKCS12_freep) PKCS12 *p12 = NULL;
        const unsigned char *p = data;
        int r;

        p12 = d2i_PKCS12(NULL, &p, (long) size);
        if (!p12 || p != (const unsigned char *) data + size)
                return message_fail(ret_message, -EBADMSG, "The file is not a PKCS#12 (.p12/.pfx) file.");

        r = check_visible_kdfs(p12, ret_message);
        if (r < 0)
                return r;

        ERR_clear_error();
        if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, passphrase, -1))
                return message_fail(ret_message, -EBADE, "The passphrase does not open this PKCS#12 file (or the file is damaged).");

        r = check_encrypted_kdfs(p12, passphrase, ret_message);
        if (r < 0)
                return r;

        if (!PKCS12_parse(p12, passphrase, ret_key, ret_cert, ret_chain)) {
                unsigned long e = ERR_peek_last_error();
                char detail[256] = "unreadable contents";

                if (e)
                        ERR_error_string_n(e, detail, sizeof(detail));
                ERR_clear_error();
                return message_fail(ret_message, -EBADMSG,
                            "The PKCS#12 file cannot be read (%s); wrong passphrase, or an algorithm OpenSSL does not "
                            "offer.",
                            detail);
        }
        return 0;
}

