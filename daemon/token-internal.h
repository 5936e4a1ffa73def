/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Token's insides, shared by token.c (login) and token-keys.c (the keys
 * in it). Nothing else includes this. */

#include <pthread.h>
#include <stdbool.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include <openssl/evp.h>

#include "token-engine.h"
#include "token-pin.h"
#include "token.h"

struct Token {
        /* from the configuration */
        char *config_module;
        char *config_uri;
        char *config_pin_file;
        P11KitUri *uri;

        /* what token_open() found */
        CK_FUNCTION_LIST **modules;    /* everything loaded, NULL-terminated */
        CK_FUNCTION_LIST *module;      /* the module that holds our token */
        char *module_path;
        CK_SLOT_ID slot;
        CK_SESSION_HANDLE session;
        bool have_session;
        bool logged_in;
        char label[sizeof(((CK_TOKEN_INFO *) NULL)->label) + 1];
        CK_TOKEN_INFO info;            /* as found: names the token in key URIs */
        TokenEngine *engine;

        /* Engine keys, loaded once: shared by the workers (libp11 keeps a
         * pool of sessions per slot), looked up under key_lock. */
        pthread_mutex_t key_lock;
        struct TokenKeyCacheEntry {
                char *uri;
                EVP_PKEY *pkey;
        } *key_cache;
        size_t n_key_cache;
        EVP_PKEY **retired_keys;       /* forgotten, but perhaps still in use: released at close */
        size_t n_retired_keys;

        TokenState state;
        char *reason;
        RefusedPins refused_pins;      /* never tried again */
};


/* token-keys.c */
int token_get_attribute(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type, unsigned char **ret,
                        size_t *ret_size);
int token_find_objects(Token *token, CK_SESSION_HANDLE session, CK_ATTRIBUTE *template, CK_ULONG n_template, CK_OBJECT_HANDLE **ret,
                       size_t *ret_n);
int token_find_by_id(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_CLASS class, const unsigned char *id, size_t id_size,
                     CK_OBJECT_HANDLE *ret);
/* The public half of a private key object, from its attributes (RSA) or the
 * public key or certificate object with the same CKA_ID (EC). */
int token_object_public_key(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE private_key, EVP_PKEY **ret);
/* The key of a public key object. */
int token_public_object_key(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE public_key, EVP_PKEY **ret);
