/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/evp.h>

#include "macro.h"

/* OpenSSL's PKCS#11 engine (libp11) bound to one module and PIN, so that a
 * key inside the token becomes an EVP_PKEY whose private operations run in
 * the token. The engine never prompts: without a usable PIN it fails. */

typedef struct TokenEngine TokenEngine;

int token_engine_new(const char *module_path, const char *pin, TokenEngine **ret, char **ret_message);
TokenEngine *token_engine_free(TokenEngine *engine);
DEFINE_TRIVIAL_CLEANUP_FUNC(TokenEngine *, token_engine_free);

/* Frees a key loaded through the engine and the hold it has on it. libp11
 * (0.4.12) hands out the EVP_PKEY it keeps itself, tied to the engine with a
 * functional reference: as long as that stands the engine never finishes,
 * and its slots and sessions outlive a finalization of the module, dead. */
void token_engine_key_release(EVP_PKEY *pkey);

/* uri is an RFC 7512 pkcs11: URI of a private key object. */
int token_engine_load_private_key(TokenEngine *engine, const char *uri, EVP_PKEY **ret, char **ret_message);
