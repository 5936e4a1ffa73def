/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Outgoing S/MIME with OpenSSL's CMS, streamed from file to file: the
 * entity (canonical, as mime.c writes it) is read from entity_fd from its
 * start, the S/MIME structure — MIME-Version, Content-Type and body, CRLF
 * line ends — is appended to out_fd. No bus, no store. */

typedef struct SignOptions {
        bool opaque;            /* application/pkcs7-mime signed-data instead of multipart/signed */
        const EVP_MD *digest;
        bool pss;               /* RSA-PSS instead of PKCS#1 v1.5 (RSA keys only) */
} SignOptions;

/* key may live in the token (an engine key): the signature is made there.
 * extra holds certificates to include beside the signer's (its chain). */
int smime_sign(int entity_fd, int out_fd, X509 *signer, EVP_PKEY *key, STACK_OF(X509) *extra,
               const SignOptions *options, char **ret_message);

/* cipher: AES-CBC gives enveloped-data, AES-GCM authEnveloped-data. RSA
 * recipients get RSA-OAEP key transport when oaep, EC recipients ECDH. */
int smime_encrypt(int entity_fd, int out_fd, STACK_OF(X509) *recipients, const EVP_CIPHER *cipher, bool oaep,
                  char **ret_message);

/* "sha-256" … and "aes-256-cbc" … as the bus takes them; NULL when unknown. */
const EVP_MD *smime_digest_from_name(const char *name);
const EVP_CIPHER *smime_cipher_from_name(const char *name);
/* The other way round: NID_sha256 → "sha-256"; NULL for others. */
const char *smime_digest_name(int nid);
