/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* S/MIME round trips with smimed's own smime_sign(), smime_encrypt() and
 * smime_decrypt() (what a worker runs) over memfds, each result checked by
 * OpenSSL with public keys only. For the tests of remote keys. All assert. */

/* The MIME entity signed and encrypted. */
extern const char smime_roundtrip_entity[];

/* Signs the entity with key (any: a remote key, a token key, a software
 * key) as signer, then checks with CMS_verify() and the certificate alone
 * that the signature is good (RSA-PSS when pss), and that it fails over
 * other content. */
void smime_roundtrip_sign(X509 *signer, EVP_PKEY *key, const EVP_MD *md, bool pss, bool opaque);

/* Encrypts the entity to recipients with smime_encrypt(), then decrypts it
 * with key as the holder of certificate: 0 when that gives the entity back,
 * smime_decrypt()'s error, or -EBADMSG for other bytes. */
int smime_roundtrip_decrypt(STACK_OF(X509) *recipients, const EVP_CIPHER *cipher, bool oaep, X509 *certificate,
                            EVP_PKEY *key);

/* A stack of up to three certificates (b and c may be NULL), not owning them:
 * sk_X509_free() it. */
STACK_OF(X509) *x509_stack(X509 *a, X509 *b, X509 *c);

/* memfds: one holding data (at offset 0), an empty one; and a file's whole
 * content. */
int memfd_with(const void *data, size_t n);
int memfd_empty(void);
char *read_all(int fd, size_t *ret_size);
