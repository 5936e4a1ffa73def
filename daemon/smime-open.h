/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <openssl/cms.h>
#include <openssl/x509.h>

#include "macro.h"
#include "mime.h"

/* Incoming S/MIME with OpenSSL's CMS: what kind of layer an entity is,
 * reading it, decrypting it with a given key, checking its signature's
 * integrity. Trust in the signer is validate.c's business. No bus. */

typedef enum SmimeLayer {
        SMIME_LAYER_NONE,      /* not S/MIME: the content itself */
        SMIME_LAYER_ENVELOPED, /* enveloped-data or authEnveloped-data */
        SMIME_LAYER_SIGNED,    /* multipart/signed or signed-data */
        SMIME_LAYER_CMS,       /* a .p7m of a kind only the CMS itself tells */
        SMIME_LAYER_CERTS,     /* certs-only: signed-data with certificates and no signer */
} SmimeLayer;

/* Looks at an entity's Content-* fields. -EBADMSG with *ret_message for an
 * S/MIME type smimed does not handle (compressed-data, …). */
int smime_classify(const MimeHeaders *headers, SmimeLayer *ret, char **ret_message);

/* The kind a parsed CMS structure is (SIGNED or ENVELOPED), -EBADMSG
 * otherwise. */
int smime_cms_layer(CMS_ContentInfo *cms, SmimeLayer *ret, char **ret_message);

/* Reads the S/MIME entity in fd (from its start). For multipart/signed,
 * *ret_content holds the signed part (its exact bytes). */
int smime_read(int fd, CMS_ContentInfo **ret_cms, BIO **ret_content, char **ret_message);

/* Whether certificate is one the message is encrypted to. */
bool smime_is_recipient(CMS_ContentInfo *cms, X509 *certificate);

/* Decrypts into out_fd with key (which may live in the token). */
int smime_decrypt(CMS_ContentInfo *cms, EVP_PKEY *key, X509 *certificate, int out_fd, char **ret_message);

typedef enum SignatureIntegrity {
        SIGNATURE_INTACT,          /* the content is what was signed */
        SIGNATURE_NO_CERTIFICATE,  /* no signer certificate in message or store */
        SIGNATURE_BROKEN,          /* content changed, or a bad signature */
} SignatureIntegrity;

typedef struct SignatureCheck {
        SignatureIntegrity integrity;
        X509 *signer;              /* when found */
        STACK_OF(X509) *certificates; /* what the message carried */
        int digest_nid;
} SignatureCheck;

void signature_check_done(SignatureCheck *c);

/* Checks the signature over content (detached) or the embedded content and
 * writes the content to out_fd whatever the outcome. lookup finds a signer
 * certificate the message does not carry (by issuer and serial). */
typedef X509 *(*SignerLookup)(const X509_NAME *issuer, const ASN1_INTEGER *serial, void *userdata);

int smime_verify(CMS_ContentInfo *cms, BIO *content, SignerLookup lookup, void *userdata, int out_fd,
                 SignatureCheck *ret, char **ret_message);
