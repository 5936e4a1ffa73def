/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "worker-protocol.h"

/* One private-key primitive as data: what a worker asks smimed to do with
 * the key a job was authorized for, and smimed doing it. Never raw RSA: a
 * request carries its padding and digests, and the key's owner (a token)
 * applies them. No bus, no token. */

typedef enum KeyOpKind {
        KEY_OP_SIGN,            /* data: a digest; RSA (PKCS#1 v1.5 or PSS) or ECDSA */
        KEY_OP_DECRYPT,         /* data: an RSA ciphertext (PKCS#1 v1.5 or OAEP) */
        KEY_OP_DERIVE,          /* data: the peer's EC public key (an encoded point); ECDH, the shared secret */
        _KEY_OP_KIND_MAX,
} KeyOpKind;

typedef struct KeyOpRequest {
        KeyOpKind kind;
        int padding;            /* RSA: RSA_PKCS1_PADDING, RSA_PKCS1_PSS_PADDING, RSA_PKCS1_OAEP_PADDING; 0 for EC */
        char *md, *mgf1_md;     /* digest names (OpenSSL's, "SHA256"): sign: the digest signed; PSS/OAEP: hash and MGF1 hash; NULL for none */
        int saltlen;            /* PSS: the salt length in bytes (never one of the RSA_PSS_SALTLEN_* codes) */
        uint8_t *label;         /* OAEP label */
        size_t label_size;
        uint8_t *data;          /* sign: the digest; decrypt: the ciphertext; derive: the peer's public key */
        size_t size;
} KeyOpRequest;

void key_op_request_done(KeyOpRequest *r);

/* Appends r to m / reads one from m. get checks the shape (a known kind and
 * padding, digests OpenSSL knows, a saltlen ≥ 0, no label but for OAEP, data
 * present), not whether it fits a key: -EBADMSG when not. */
void key_op_request_put(WorkerMessage *m, const KeyOpRequest *r);
int key_op_request_get(WorkerMessage *m, KeyOpRequest *ret);

/* "sign", "decrypt", "derive". */
const char *key_op_kind_to_string(KeyOpKind kind);

/* Performs r with key (in smimed: the token's key through the PKCS#11
 * engine; in tests any EVP_PKEY) with EVP_PKEY_sign(), EVP_PKEY_decrypt()
 * or EVP_PKEY_derive(), with exactly r's parameters. Refuses with -EINVAL
 * what does not fit the key (an RSA padding for an EC key, a digest whose
 * size is not the data's, a point not on the key's curve, …) and
 * -EOPNOTSUPP what smimed never asks (raw RSA, a signature without a
 * digest); -EIO when the key fails. *ret is the signature (DER for ECDSA),
 * the plaintext or the shared secret. */
int key_op_perform(EVP_PKEY *key, const KeyOpRequest *r, uint8_t **ret, size_t *ret_size);
