/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include <openssl/cms.h>

/* Test only: the over-limit messages of the structure attacks, made from
 * real ones. A CMS ContentInfo (DER, or BER from a streaming encoder) is
 * taken apart and put together again with OpenSSL's generic ASN.1 (SEQUENCE
 * OF ANY, SET OF ANY; tag bytes swapped by hand where a SET is implicitly
 * tagged), with the first element of one SET repeated. Signatures over
 * what changed do not stay valid. Everything returns 0 or a negative
 * errno; DER comes back from OPENSSL_malloc(). */

typedef enum CmsEditSet {
        CMS_EDIT_DIGEST_ALGORITHMS,        /* SignedData digestAlgorithms */
        CMS_EDIT_CERTIFICATES,             /* SignedData [0] certificates */
        CMS_EDIT_CRLS,                     /* SignedData [1] crls */
        CMS_EDIT_SIGNER_INFOS,             /* SignedData signerInfos */
        CMS_EDIT_SIGNED_ATTRIBUTES,        /* [0] signedAttrs of the first signerInfo */
        CMS_EDIT_UNSIGNED_ATTRIBUTES,      /* [1] unsignedAttrs of the first signerInfo (made when absent) */
        CMS_EDIT_RECIPIENT_INFOS,          /* (Auth)EnvelopedData recipientInfos */
        CMS_EDIT_RECIPIENT_ENCRYPTED_KEYS, /* of the first recipientInfo, a key-agreement one */
        CMS_EDIT_UNPROTECTED_ATTRIBUTES,   /* EnvelopedData [1] unprotectedAttrs (made when absent) */
} CmsEditSet;

/* der with the first element of set repeated until the set has n elements
 * (n at least as many as it has). */
int cms_edit_repeat(const unsigned char *der, size_t size, CmsEditSet set, size_t n, unsigned char **ret,
                    size_t *ret_size);

/* How many elements set has in der. */
int cms_edit_count(const unsigned char *der, size_t size, CmsEditSet set, size_t *ret);

/* The DER of cms; with stream_in (the content of a CMS_STREAM structure),
 * BER with indefinite lengths as a streaming encoder writes it. */
int cms_edit_der(CMS_ContentInfo *cms, BIO *stream_in, unsigned char **ret, size_t *ret_size);

/* MIME entities around DER, base64 in lines of 64, LF line ends; a
 * NUL-terminated malloc()ed string. smime_type: "signed-data",
 * "enveloped-data", "authEnveloped-data". headers (may be NULL) go first,
 * each line ending in "\n" ("From: …\nTo: …\n"). */
char *cms_edit_pkcs7_mime(const char *headers, const char *smime_type, const unsigned char *der, size_t size);
/* application/octet-stream; name=smime.p7m: the plain attachment form. */
char *cms_edit_p7m_attachment(const char *headers, const unsigned char *der, size_t size);
/* multipart/signed with entity (its exact bytes, as signed) and the
 * detached signature der. */
char *cms_edit_multipart_signed(const char *headers, const char *entity, const unsigned char *der, size_t size);
