/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "key-op.h"

/* The worker's stand-in for a private key it does not hold: an EVP_PKEY
 * with a certificate's public key whose private operations (RSA signatures
 * and decryption, ECDSA, ECDH) are handed to a callback as KeyOpRequests —
 * in smimed-worker, a call to smimed, which performs them with the token's
 * key. OpenSSL's CMS uses it like any key. Requests always carry their
 * padding and digests: raw RSA is never asked for.
 *
 * How: the key is an OpenSSL 3 "foreign" (legacy) key with an RSA_METHOD or
 * EC_KEY_METHOD of its own, the way libp11 makes token keys. For RSA, an
 * EVP_PKEY_METHOD of its own (attached to each remote key with
 * EVP_PKEY_set1_engine() of a private ENGINE that is never registered)
 * takes the signature and decryption before OpenSSL's legacy code would
 * pad PSS or OAEP itself and ask for a raw RSA operation. Nothing changes
 * for any other key in the process. */

/* 0, or a negative errno (the operation fails in OpenSSL then). *ret is
 * freed with free(). */
typedef int (*RemoteKeyCall)(const KeyOpRequest *request, uint8_t **ret, size_t *ret_size, void *userdata);

/* NULL when the certificate's key is neither RSA nor EC, or out of memory.
 * Free with EVP_PKEY_free(); userdata must outlive it. */
EVP_PKEY *remote_key_new(X509 *certificate, RemoteKeyCall call, void *userdata);
