/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <openssl/evp.h>

#include "config.h"
#include "macro.h"

/* The PKCS#11 token that holds the private keys: the module loaded through
 * p11-kit, the token chosen by an RFC 7512 URI, one logged-in session, and
 * OpenSSL's PKCS#11 engine bound to the same module and PIN. No D-Bus here. */

typedef enum TokenState {
        TOKEN_STATE_READY,   /* logged in, keys usable */
        TOKEN_STATE_LOCKED,  /* PIN missing, refused or locked */
        TOKEN_STATE_ABSENT,  /* no token matches the URI (yet) */
        TOKEN_STATE_ERROR,   /* module or token failure */
        _TOKEN_STATE_MAX,
} TokenState;

const char *token_state_to_string(TokenState state);

typedef struct Token Token;

/* Copies what it needs from config; does not touch the token yet. */
int token_new(const Config *config, Token **ret);
Token *token_free(Token *token);
DEFINE_TRIVIAL_CLEANUP_FUNC(Token *, token_free);

/* Loads the module, finds the token, opens a session and logs in. Returns
 * the state reached. A PIN the token refused is not tried again, and
 * neither is the token's last PIN try spent (CKF_USER_PIN_FINAL_TRY). */
TokenState token_open(Token *token);

/* Takes over the PINs from refused, so that a new Token for the same token
 * (after a reload) does not try them again either. */
void token_inherit_refused_pins(Token *token, const Token *from);

/* Asks a ready token whether it still answers (C_GetTokenInfo and
 * C_GetSessionInfo on smimed's own session). Returns 0 when it does, else
 * a negative errno with *ret_message saying what failed. Changes nothing:
 * the caller reopens the token. */
int token_probe(Token *token, char **ret_message);

/* Logs out and unloads everything, back to the state of token_new(). */
void token_close(Token *token);

TokenState token_get_state(const Token *token);
/* Why the token is not ready, as a sentence; "" when it is. */
const char *token_get_state_reason(const Token *token);
/* The token's label, or NULL when no token was found. */
const char *token_get_label(const Token *token);
/* The module path the engine uses, or NULL before a token was found. */
const char *token_get_module_path(const Token *token);

/* A private key in the token, described by its public half. */
typedef struct TokenKey {
        char *id;                         /* CKA_ID, lower-case hex */
        char *label;                      /* CKA_LABEL, "" when none */
        const char *algorithm;            /* "rsa" or "ec" */
        unsigned bits;
        char spki_sha256[65];             /* SHA-256 of the SubjectPublicKeyInfo, "" when unknown */
        char *uri;                        /* token_key_uri() of id, made once; NULL: none */
} TokenKey;

/* The private keys in the token (it must be ready). A key whose public half
 * cannot be found is listed with an empty spki_sha256. */
int token_list_keys(Token *token, TokenKey **ret, size_t *ret_n);
void token_keys_free(TokenKey *keys, size_t n);

/* A private key of this token as an EVP_PKEY whose private operations run in
 * the token. object_uri is an RFC 7512 URI naming the key object. Keys are
 * loaded once and shared; safe to call from any thread. */
int token_load_private_key(Token *token, const char *object_uri, EVP_PKEY **ret);

/* Drops the loaded keys (after one was removed or the keys changed). */
void token_forget_keys(Token *token);

/* Enrollment (token-enroll.c). Keys are created with CKA_TOKEN, CKA_PRIVATE
 * and CKA_SENSITIVE true and CKA_EXTRACTABLE false; CKA_ID is the SHA-1 of
 * the public key (as in a subject key identifier), CKA_LABEL the label given.
 * On failure nothing created by the call is left in the token. */

/* The CKA_ID smimed gives the key pair of pkey, as lower-case hex. */
int token_key_id_for(EVP_PKEY *pkey, char **ret_id);

/* Writes pkey (private and public halves) and, when given, its certificate.
 * A key already there is left alone: *ret_created says which. */
int token_import_key(Token *token, EVP_PKEY *pkey, X509 *certificate, const char *label, char **ret_id,
                     bool *ret_created);

/* Writes a certificate object next to the key with CKA_ID id, unless one is
 * there. */
int token_add_certificate(Token *token, const char *id, X509 *certificate, const char *label);

/* type: "rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384". */
int token_generate_key(Token *token, const char *type, const char *label, char **ret_id);

/* Destroys every object (private key, public key, certificates) with CKA_ID
 * id. -ENOENT when there is no private key with that id. */
int token_remove_key(Token *token, const char *id);

/* The RFC 7512 URI of the private key with CKA_ID id in this token. */
int token_key_uri(Token *token, const char *id, char **ret);

/* The public half of the key with CKA_ID id. */
int token_key_public(Token *token, const char *id, EVP_PKEY **ret);
