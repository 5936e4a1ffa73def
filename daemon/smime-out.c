/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "bio-fd.h"
#include "macro.h"
#include "message.h"
#include "smime-out.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CMS_ContentInfo *, CMS_ContentInfo_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all);

const EVP_MD *smime_digest_from_name(const char *name) {
        if (!name || streq(name, "sha-256"))
                return EVP_sha256();
        if (streq(name, "sha-384"))
                return EVP_sha384();
        if (streq(name, "sha-512"))
                return EVP_sha512();
        return NULL;
}

const char *smime_digest_name(int nid) {
        switch (nid) {
        case NID_sha1:
                return "sha-1";
        case NID_sha256:
                return "sha-256";
        case NID_sha384:
                return "sha-384";
        case NID_sha512:
                return "sha-512";
        default:
                return NULL;
        }
}

const EVP_CIPHER *smime_cipher_from_name(const char *name) {
        if (!name || streq(name, "aes-256-cbc"))
                return EVP_aes_256_cbc();
        if (streq(name, "aes-128-cbc"))
                return EVP_aes_128_cbc();
        if (streq(name, "aes-256-gcm"))
                return EVP_aes_256_gcm();
        if (streq(name, "aes-128-gcm"))
                return EVP_aes_128_gcm();
        return NULL;
}

/* What OpenSSL said last, for a message. */
static const char *openssl_reason(void) {
        unsigned long e = ERR_peek_last_error();
        const char *s = e ? ERR_reason_error_string(e) : NULL;

        return s ? s : "unknown error";
}

/* A filter BIO that turns bare LF into CRLF: OpenSSL's base64 writer ends
 * its lines in LF even when SMIME_CRLFEOL makes the rest CRLF. */
typedef struct CrlfState {
        bool after_cr;
} CrlfState;

/* Writes in[start, end) to next: 0, or -1 when it does not take all. */
static int write_span(BIO *next, const char *start, const char *end) {
        int n = (int) (end - start);

        return n == 0 || BIO_write(next, start, n) == n ? 0 : -1;
}

/* Line by line (memchr), not byte by byte: most of what passes through is
 * the canonical entity, whose lines end in CRLF already. */
static int crlf_write(BIO *b, const char *in, int len) {
        CrlfState *st = BIO_get_data(b);
        BIO *next = BIO_next(b);
        const char *start = in, *end = in + len, *p = in, *lf;

        if (len <= 0)
                return 0;
        while ((lf = memchr(p, '\n', (size_t) (end - p)))) {
                bool after_cr = lf == in ? st->after_cr : lf[-1] == '\r';

                if (!after_cr) {
                        /* Up to the LF, a CR, and the LF starts what comes next. */
                        if (write_span(next, start, lf) < 0 || BIO_write(next, "\r", 1) != 1)
                                return -1;
                        start = lf;
                }
                p = lf + 1;
                if (p == end)
                        break;
        }
        if (write_span(next, start, end) < 0)
                return -1;
        st->after_cr = end[-1] == '\r';
        return len;
}

static int crlf_puts(BIO *b, const char *s) {
        return crlf_write(b, s, (int) strlen(s));
}

static long crlf_ctrl(BIO *b, int cmd, long num, void *ptr) {
        BIO *next = BIO_next(b);

        return next ? BIO_ctrl(next, cmd, num, ptr) : 0;
}

static int crlf_create(BIO *b) {
        CrlfState *st = OPENSSL_zalloc(sizeof(CrlfState));

        if (!st)
                return 0;
        BIO_set_data(b, st);
        BIO_set_init(b, 1);
        return 1;
}

static int crlf_destroy(BIO *b) {
        OPENSSL_free(BIO_get_data(b));
        BIO_set_data(b, NULL);
        return 1;
}

static BIO_METHOD *crlf_bio_method = NULL;

static void crlf_method_init(void) {
        BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "smimed CRLF");

        if (!method || !BIO_meth_set_write(method, crlf_write) || !BIO_meth_set_puts(method, crlf_puts) ||
            !BIO_meth_set_ctrl(method, crlf_ctrl) || !BIO_meth_set_create(method, crlf_create) ||
            !BIO_meth_set_destroy(method, crlf_destroy)) {
                BIO_meth_free(method);
                return;
        }
        crlf_bio_method = method;
}

/* Workers sign and encrypt at the same time: the method is made once. */
static const BIO_METHOD *crlf_method(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        (void) pthread_once(&once, crlf_method_init);
        return crlf_bio_method;
}

/* Output: CRLF filter, then a buffer, then the spool file. */
static int open_bios(int entity_fd, int out_fd, BIO **ret_in, BIO **ret_out) {
        const BIO_METHOD *crlf = crlf_method();
        BIO *filter, *out;

        if (lseek(entity_fd, 0, SEEK_SET) < 0)
                return -errno;
        *ret_in = bio_new_fd_buffered(entity_fd);
        out = bio_new_fd_buffered(out_fd);
        filter = crlf ? BIO_new(crlf) : NULL;
        if (!*ret_in || !out || !filter) {
                BIO_free_all(*ret_in);
                BIO_free_all(out);
                BIO_free(filter);
                return -ENOMEM;
        }
        *ret_out = BIO_push(filter, out);
        return 0;
}

/* The SMIMECapabilities attribute CMS_add1_signer() would add (the
 * ciphers OpenSSL's CMS_add_standard_smimecap() lists), encoded once per
 * process: making it looks up each cipher by name, about a tenth of the
 * work of signing a small message. */
static pthread_once_t smimecap_once = PTHREAD_ONCE_INIT;
static unsigned char *smimecap_der;
static int smimecap_der_size;

static void smimecap_encode(void) {
        STACK_OF(X509_ALGOR) *smcap = sk_X509_ALGOR_new_null();

        if (smcap && CMS_add_standard_smimecap(&smcap))
                smimecap_der_size = i2d_X509_ALGORS(smcap, &smimecap_der);
        sk_X509_ALGOR_pop_free(smcap, X509_ALGOR_free);
}

static int add_smimecap(CMS_SignerInfo *si) {
        (void) pthread_once(&smimecap_once, smimecap_encode);
        if (smimecap_der_size <= 0)
                return -ENOMEM;
        return CMS_signed_add1_attr_by_NID(si, NID_SMIMECapabilities, V_ASN1_SEQUENCE, smimecap_der,
                                           smimecap_der_size) > 0
                       ? 0
                       : -ENOMEM;
}

int smime_sign(int entity_fd, int out_fd, X509 *signer, EVP_PKEY *key, STACK_OF(X509) *extra,
               const SignOptions *o, char **ret_message) {
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(BIO_free_allp) BIO *in = NULL, *out = NULL;
        /* The entity is canonical already: no text translation by OpenSSL. */
        /* Streamed, except opaque RSA-PSS: OpenSSL cannot stream embedded
         * content for a signer whose parameters are set by hand. */
        bool stream = !(o->opaque && o->pss);
        unsigned flags = (stream ? CMS_STREAM : 0) | CMS_BINARY | CMS_PARTIAL | (o->opaque ? 0 : CMS_DETACHED);
        CMS_SignerInfo *si;
        int r;

        ERR_clear_error();
        r = open_bios(entity_fd, out_fd, &in, &out);
        if (r < 0)
                return r;

        cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
        if (!cms)
                return message_fail(ret_message, -ENOMEM, "Cannot start a CMS signature: %s", openssl_reason());

        si = CMS_add1_signer(cms, signer, key, o->digest ? o->digest : EVP_sha256(),
                             flags | CMS_NOSMIMECAP | (o->pss ? CMS_KEY_PARAM : 0));
        if (!si)
                return message_fail(ret_message, -EIO, "Cannot add the signer: %s", openssl_reason());
        if (add_smimecap(si) < 0)
                return message_fail(ret_message, -ENOMEM, "Cannot add the S/MIME capabilities: %s", openssl_reason());
        if (o->pss) {
                EVP_PKEY_CTX *pctx = CMS_SignerInfo_get0_pkey_ctx(si);

                if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || !pctx ||
                    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0)
                        return message_fail(ret_message, -EINVAL, "RSA-PSS needs an RSA key.");
        }
        for (int i = 0; extra && i < sk_X509_num(extra); i++)
                if (!CMS_add1_cert(cms, sk_X509_value(extra, i)))
                        return message_fail(ret_message, -ENOMEM, "Cannot add a chain certificate: %s",
                                            openssl_reason());

        if (!stream && !CMS_final(cms, in, NULL, flags))
                return message_fail(ret_message, -EIO, "Signing failed: %s", openssl_reason());

        /* Streams the entity through the digest, then signs (in the token). */
        if (!SMIME_write_CMS(out, cms, stream ? in : NULL, (int) (flags | SMIME_CRLFEOL)) || BIO_flush(out) <= 0)
                return message_fail(ret_message, -EIO, "Signing failed: %s", openssl_reason());
        return 0;
}

int smime_encrypt(int entity_fd, int out_fd, STACK_OF(X509) *recipients, const EVP_CIPHER *cipher, bool oaep,
                  char **ret_message) {
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(BIO_free_allp) BIO *in = NULL, *out = NULL;
        unsigned flags = CMS_STREAM | CMS_BINARY | CMS_PARTIAL;
        int r;

        ERR_clear_error();
        r = open_bios(entity_fd, out_fd, &in, &out);
        if (r < 0)
                return r;

        cms = CMS_encrypt(NULL, NULL, cipher, flags);
        if (!cms)
                return message_fail(ret_message, -ENOMEM, "Cannot start a CMS envelope: %s", openssl_reason());

        for (int i = 0; i < sk_X509_num(recipients); i++) {
                X509 *cert = sk_X509_value(recipients, i);
                int type = EVP_PKEY_get_base_id(X509_get0_pubkey(cert));
                bool rsa_oaep = oaep && type == EVP_PKEY_RSA, is_ec = type == EVP_PKEY_EC;
                CMS_RecipientInfo *ri;

                ri = CMS_add1_recipient_cert(cms, cert, flags | (rsa_oaep || is_ec ? CMS_KEY_PARAM : 0));
                if (!ri)
                        return message_fail(ret_message, -EIO, "Cannot add recipient %d: %s", i + 1,
                                            openssl_reason());
                if (rsa_oaep) {
                        EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);

                        if (!pctx || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0)
                                return message_fail(ret_message, -EIO, "Cannot use RSA-OAEP: %s",
                                                    openssl_reason());
                }
                if (is_ec) {
                        /* dhSinglePass-stdDH-sha256kdf rather than OpenSSL's SHA-1 default. */
                        EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);

                        if (!pctx || EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256()) <= 0)
                                return message_fail(ret_message, -EIO, "Cannot set the ECDH key derivation: %s",
                                                    openssl_reason());
                }
        }

        if (!SMIME_write_CMS(out, cms, in, (int) (flags | SMIME_CRLFEOL)) || BIO_flush(out) <= 0)
                return message_fail(ret_message, -EIO, "Encrypting failed: %s", openssl_reason());
        return 0;
}
