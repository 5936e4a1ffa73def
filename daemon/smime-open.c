/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/asn1err.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "bio-fd.h"
#include "fd-util.h"
#include "message.h"
#include "smime-limits.h"
#include "smime-open.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_TYPE *, ASN1_TYPE_free);

static bool ends_with_p7m(const char *name) {
        size_t n = name ? strlen(name) : 0;

        return n >= 4 && strcasecmp(name + n - 4, ".p7m") == 0;
}

int smime_classify(const MimeHeaders *headers, SmimeLayer *ret, char **ret_message) {
        _cleanup_free_ char *content_type = mime_headers_get(headers, "Content-Type");
        _cleanup_free_ char *type = NULL, *smime_type = NULL, *protocol = NULL, *name = NULL;

        *ret = SMIME_LAYER_NONE;
        if (!content_type)
                return 0;
        type = mime_content_type(content_type);
        if (!type)
                return -ENOMEM;

        if (streq(type, "multipart/signed")) {
                protocol = mime_parameter(content_type, "protocol");
                if (protocol && (strcasecmp(protocol, "application/pkcs7-signature") == 0 ||
                                 strcasecmp(protocol, "application/x-pkcs7-signature") == 0))
                        *ret = SMIME_LAYER_SIGNED;
                return 0; /* another protocol (OpenPGP): not ours, the content as it is */
        }

        if (streq(type, "application/pkcs7-mime") || streq(type, "application/x-pkcs7-mime")) {
                smime_type = mime_parameter(content_type, "smime-type");
                if (!smime_type)
                        *ret = SMIME_LAYER_CMS;
                else if (strcasecmp(smime_type, "enveloped-data") == 0 ||
                         strcasecmp(smime_type, "authEnveloped-data") == 0)
                        *ret = SMIME_LAYER_ENVELOPED;
                else if (strcasecmp(smime_type, "signed-data") == 0)
                        *ret = SMIME_LAYER_SIGNED;
                else if (strcasecmp(smime_type, "certs-only") == 0)
                        *ret = SMIME_LAYER_CERTS;
                else
                        return message_fail(ret_message, -EBADMSG, "S/MIME type \"%s\" is not supported.",
                                            smime_type);
                return 0;
        }

        /* smime.p7m sent as a plain attachment */
        if (streq(type, "application/octet-stream")) {
                _cleanup_free_ char *disposition = mime_headers_get(headers, "Content-Disposition");
                _cleanup_free_ char *filename = disposition ? mime_parameter(disposition, "filename") : NULL;

                name = mime_parameter(content_type, "name");
                if (ends_with_p7m(name) || ends_with_p7m(filename))
                        *ret = SMIME_LAYER_CMS;
        }
        return 0;
}

int smime_cms_layer(CMS_ContentInfo *cms, SmimeLayer *ret, char **ret_message) {
        switch (OBJ_obj2nid(CMS_get0_type(cms))) {
        case NID_pkcs7_enveloped:
        case NID_id_smime_ct_authEnvelopedData:
                *ret = SMIME_LAYER_ENVELOPED;
                return 0;
        case NID_pkcs7_signed:
                /* No signer: a certs-only bundle, whatever its label says. */
                *ret = sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) > 0 ? SMIME_LAYER_SIGNED : SMIME_LAYER_CERTS;
                return 0;
        default:
                return message_fail(ret_message, -EBADMSG, "A CMS structure of type %s is not a message smimed opens.",
                                    OBJ_nid2sn(OBJ_obj2nid(CMS_get0_type(cms))));
        }
}

static const char *openssl_reason(void) {
        unsigned long e = ERR_peek_last_error();
        const char *s = e ? ERR_reason_error_string(e) : NULL;

        return s ? s : "unreadable";
}

/* Where the body of the entity in fd starts: after the first empty line. */
static int body_offset(int fd, off_t *ret) {
        char buf[4096];
        off_t offset = 0;
        int state = 0; /* bytes of "\n" [ "\r" ] "\n" seen */

        while (offset < (off_t) MIME_MAX_HEADER_BLOCK) {
                ssize_t n = pread(fd, buf, sizeof(buf), offset);

                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EBADMSG;
                for (ssize_t i = 0; i < n; i++) {
                        char c = buf[i];

                        if (c == '\n')
                                state = state == 0 ? 1 : 2;
                        else if (c != '\r')
                                state = 0;
                        if (state == 2) {
                                *ret = offset + i + 1;
                                return 0;
                        }
                }
                offset += n;
        }
        return -EBADMSG;
}

/* The CMS structure whose encoding der holds (read as ANY: the bytes as
 * they came, BER too): its shape is checked against the limits before
 * OpenSSL's CMS code parses it. what names it in messages. */
static int cms_from_der(const ASN1_TYPE *der, const char *what, CMS_ContentInfo **ret, char **ret_message) {
        const unsigned char *data, *p;
        CMS_ContentInfo *cms;
        long size;
        int r;

        if (ASN1_TYPE_get(der) != V_ASN1_SEQUENCE)
                return message_fail(ret_message, -EBADMSG, "%s is not a CMS structure.", what);
        data = p = ASN1_STRING_get0_data(der->value.sequence);
        size = ASN1_STRING_length(der->value.sequence);

        r = smime_structure_limits_enabled() ? smime_limits_check_der(data, (size_t) size, ret_message) : 0;
        if (r < 0 && r != -EINVAL)
                return r;

        /* Not a ContentInfo (-EINVAL): OpenSSL's own decoder says why. */
        ERR_clear_error();
        cms = d2i_CMS_ContentInfo(NULL, &p, size);
        if (!cms)
                return message_fail(ret_message, -EBADMSG, "%s cannot be read (%s).", what, openssl_reason());
        if (r == -EINVAL) {
                /* What the shape did not take cannot have been counted. */
                CMS_ContentInfo_free(cms);
                return message_fail(ret_message, -EBADMSG, "%s cannot be checked against smimed's limits.", what);
        }

        if (smime_structure_limits_enabled()) {
                r = smime_limits_check_cms(cms, ret_message);
                if (r < 0) {
                        CMS_ContentInfo_free(cms);
                        return r;
                }
        }
        *ret = cms;
        return 0;
}

/* A CMS structure sent as a plain attachment (application/octet-stream,
 * smime.p7m), which SMIME_read_CMS() does not take: the body, decoded as its
 * Content-Transfer-Encoding says, is DER. */
static int read_p7m_attachment(int fd, CMS_ContentInfo **ret, char **ret_message) {
        _cleanup_(BIO_free_allp) BIO *in = NULL;
        _cleanup_(ASN1_TYPE_freep) ASN1_TYPE *der = NULL;
        LineReader *reader = malloc(sizeof(LineReader));
        MimeHeaders headers = {};
        _cleanup_free_ char *cte = NULL;
        off_t offset;
        int r;

        if (!reader)
                return -ENOMEM;
        line_reader_init(reader, fd);
        r = lseek(fd, 0, SEEK_SET) < 0 ? -errno : mime_headers_read(reader, &headers, ret_message);
        free(reader);
        if (r < 0)
                return r;
        cte = mime_headers_get(&headers, "Content-Transfer-Encoding");
        mime_headers_done(&headers);

        r = body_offset(fd, &offset);
        if (r < 0 || lseek(fd, offset, SEEK_SET) < 0)
                return message_fail(ret_message, -EBADMSG, "The attachment has no body.");
        in = bio_new_fd_buffered(fd);
        if (!in)
                return -ENOMEM;
        if (cte && strcasecmp(cte, "base64") == 0) {
                BIO *b64 = BIO_new(BIO_f_base64());

                if (!b64)
                        return -ENOMEM;
                in = BIO_push(b64, in);
        }

        ERR_clear_error();
        der = (ASN1_TYPE *) ASN1_item_d2i_bio(ASN1_ITEM_rptr(ASN1_ANY), in, NULL);
        if (!der)
                return message_fail(ret_message, -EBADMSG, "The smime.p7m attachment cannot be read (%s).",
                                    openssl_reason());
        return cms_from_der(der, "The smime.p7m attachment", ret, ret_message);
}

int smime_read(int fd, CMS_ContentInfo **ret_cms, BIO **ret_content, char **ret_message) {
        _cleanup_(BIO_free_allp) BIO *in = NULL;
        _cleanup_(ASN1_TYPE_freep) ASN1_TYPE *der = NULL;
        BIO *content = NULL;
        int r;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        in = bio_new_fd_buffered(fd);
        if (!in)
                return -ENOMEM;

        /* What SMIME_read_CMS_ex() does, with the DER kept for the limits
         * check: the MIME and base64 are OpenSSL's, the bytes are read once. */
        ERR_clear_error();
        der = (ASN1_TYPE *) SMIME_read_ASN1_ex(in, 0, &content, ASN1_ITEM_rptr(ASN1_ANY), NULL, NULL, NULL);
        if (!der) {
                unsigned long e = ERR_peek_last_error();

                BIO_free(content);
                if (ERR_GET_REASON(e) == ASN1_R_INVALID_MIME_TYPE) {
                        *ret_content = NULL;
                        return read_p7m_attachment(fd, ret_cms, ret_message);
                }
                return message_fail(ret_message, -EBADMSG, "The S/MIME structure cannot be read (%s).",
                                    openssl_reason());
        }
        r = cms_from_der(der, "The S/MIME structure", ret_cms, ret_message);
        if (r < 0) {
                BIO_free(content);
                return r;
        }
        *ret_content = content;
        return 0;
}

bool smime_is_recipient(CMS_ContentInfo *cms, X509 *certificate) {
        STACK_OF(CMS_RecipientInfo) *infos = CMS_get0_RecipientInfos(cms);

        for (int i = 0; infos && i < sk_CMS_RecipientInfo_num(infos); i++) {
                CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(infos, i);

                switch (CMS_RecipientInfo_type(ri)) {
                case CMS_RECIPINFO_TRANS:
                        if (CMS_RecipientInfo_ktri_cert_cmp(ri, certificate) == 0)
                                return true;
                        break;
                case CMS_RECIPINFO_AGREE: {
                        STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);

                        for (int k = 0; reks && k < sk_CMS_RecipientEncryptedKey_num(reks); k++)
                                if (CMS_RecipientEncryptedKey_cert_cmp(sk_CMS_RecipientEncryptedKey_value(reks, k),
                                                                       certificate) == 0)
                                        return true;
                        break;
                }
                default:
                        break;
                }
        }
        return false;
}

int smime_decrypt(CMS_ContentInfo *cms, EVP_PKEY *key, X509 *certificate, int out_fd, char **ret_message) {
        _cleanup_(BIO_free_allp) BIO *out = bio_new_fd_buffered(out_fd);

        if (!out)
                return -ENOMEM;
        ERR_clear_error();
        if (!CMS_decrypt(cms, key, certificate, NULL, out, CMS_BINARY) || BIO_flush(out) <= 0)
                return message_fail(ret_message, -EBADMSG, "Decryption failed (%s).", openssl_reason());
        return 0;
}

void signature_check_done(SignatureCheck *c) {
        X509_free(c->signer);
        sk_X509_pop_free(c->certificates, X509_free);
        *c = (SignatureCheck) {};
}

/* The signer's certificate: from the message, else from lookup. */
static X509 *find_signer(CMS_ContentInfo *cms, STACK_OF(X509) *carried, SignerLookup lookup, void *userdata) {
        STACK_OF(CMS_SignerInfo) *infos = CMS_get0_SignerInfos(cms);
        CMS_SignerInfo *si;
        X509_NAME *issuer = NULL;
        ASN1_INTEGER *serial = NULL;
        ASN1_OCTET_STRING *keyid = NULL;

        if (!infos || sk_CMS_SignerInfo_num(infos) == 0)
                return NULL;
        si = sk_CMS_SignerInfo_value(infos, 0);

        for (int i = 0; carried && i < sk_X509_num(carried); i++)
                if (CMS_SignerInfo_cert_cmp(si, sk_X509_value(carried, i)) == 0) {
                        X509 *x = sk_X509_value(carried, i);

                        return X509_up_ref(x) ? x : NULL;
                }

        if (lookup && CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &serial) && issuer && serial)
                return lookup(issuer, serial, userdata);
        return NULL;
}

/* Copies a BIO to a file descriptor. */
static int copy_bio(BIO *from, int fd) {
        char buf[65536];
        int n;

        (void) BIO_reset(from);
        while ((n = BIO_read(from, buf, sizeof(buf))) > 0) {
                int r = fd_write_all(fd, buf, (size_t) n);

                if (r < 0)
                        return r;
        }
        return 0;
}

/* A copy of content with bare LF line ends made CRLF. */
static BIO *canonical_copy(BIO *content) {
        BIO *out = BIO_new(BIO_s_mem());
        char buf[65536], prev = 0;
        int n;

        if (!out)
                return NULL;
        BIO_set_flags(out, BIO_FLAGS_NONCLEAR_RST);
        (void) BIO_reset(content);
        while ((n = BIO_read(content, buf, sizeof(buf))) > 0)
                for (int i = 0; i < n; i++) {
                        if (buf[i] == '\n' && prev != '\r')
                                BIO_write(out, "\r", 1);
                        BIO_write(out, &buf[i], 1);
                        prev = buf[i];
                }
        return out;
}

/* The content goes to CMS_verify() behind a buffer BIO: a memory BIO it
 * copies into one of its own, and OpenSSL 3.0 leaks that copy when it
 * cannot set up the digests (a digestAlgorithms entry it does not know; the
 * fuzzer found it). Behind a filter the content is read where it is. */
static bool verify_once(CMS_ContentInfo *cms, STACK_OF(X509) *certs, BIO *content, BIO *out) {
        _cleanup_(BIO_freep) BIO *buffer = NULL;
        BIO *in = NULL;
        bool ok;

        ERR_clear_error();
        if (content) {
                (void) BIO_reset(content);
                buffer = BIO_new(BIO_f_buffer());
                if (!buffer)
                        return false;
                in = BIO_push(buffer, content);
        }
        ok = CMS_verify(cms, certs, NULL, in, out, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1;
        if (buffer)
                (void) BIO_pop(buffer); /* the content is the caller's */
        return ok;
}

int smime_verify(CMS_ContentInfo *cms, BIO *content, SignerLookup lookup, void *userdata, int out_fd,
                 SignatureCheck *ret, char **ret_message) {
        _cleanup_(BIO_freep) BIO *out = NULL, *canonical = NULL;
        STACK_OF(X509) *signer_only = NULL;
        SignatureCheck c = {};
        STACK_OF(CMS_SignerInfo) *infos;
        X509_ALGOR *digest = NULL;
        bool ok;
        int r;

        /* Read the content more than once: a reset must rewind, not empty it. */
        if (content)
                BIO_set_flags(content, BIO_FLAGS_NONCLEAR_RST);

        c.certificates = CMS_get1_certs(cms);
        if (!c.certificates)
                c.certificates = sk_X509_new_null();
        if (!c.certificates)
                return -ENOMEM;

        infos = CMS_get0_SignerInfos(cms);
        if (!infos || sk_CMS_SignerInfo_num(infos) == 0) {
                signature_check_done(&c);
                return message_fail(ret_message, -EBADMSG, "The signed message has no signature.");
        }
        CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(infos, 0), NULL, NULL, &digest, NULL);
        c.digest_nid = digest ? OBJ_obj2nid(digest->algorithm) : NID_undef;

        c.signer = find_signer(cms, c.certificates, lookup, userdata);

        /* The content goes out whatever the signature says. */
        if (content)
                r = copy_bio(content, out_fd);
        else {
                ASN1_OCTET_STRING **embedded = CMS_get0_content(cms);

                r = embedded && *embedded ? fd_write_all(out_fd, ASN1_STRING_get0_data(*embedded),
                                                         (size_t) ASN1_STRING_length(*embedded))
                                          : 0;
        }
        if (r < 0) {
                signature_check_done(&c);
                return r;
        }

        if (!c.signer) {
                c.integrity = SIGNATURE_NO_CERTIFICATE;
                *ret = c;
                return 0;
        }

        signer_only = sk_X509_new_null();
        out = BIO_new(BIO_s_null());
        if (!signer_only || !out || !sk_X509_push(signer_only, c.signer)) {
                sk_X509_free(signer_only);
                signature_check_done(&c);
                return -ENOMEM;
        }

        ok = verify_once(cms, signer_only, content, out);
        if (!ok && content) {
                /* Stored mail often lost its CRLFs: try the canonical form. */
                canonical = canonical_copy(content);
                ok = canonical && verify_once(cms, signer_only, canonical, out);
        }
        sk_X509_free(signer_only);
        ERR_clear_error();

        c.integrity = ok ? SIGNATURE_INTACT : SIGNATURE_BROKEN;
        *ret = c;
        return 0;
}
