/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ENGINE API is deprecated in OpenSSL 3 but it is how libp11 0.4 (the
 * PKCS#11 engine in Debian 12) plugs in; no provider is packaged there. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/ui.h>

#include "token-engine.h"

#define PKCS11_ENGINE_ID "pkcs11"

struct TokenEngine {
        ENGINE *engine;
        bool initialized;
        UI_METHOD *ui;
};

static char *openssl_message(const char *what) {
        char detail[256] = "unknown error";
        unsigned long e;
        char *message;

        e = ERR_peek_last_error();
        if (e != 0)
                ERR_error_string_n(e, detail, sizeof(detail));
        ERR_clear_error();

        if (asprintf(&message, "%s: %s", what, detail) < 0)
                return NULL;
        return message;
}

/* A daemon has nobody to ask: every prompt the engine might show fails. */
static int ui_refuse_reader(UI *ui, UI_STRING *uis) {
        (void) ui;
        (void) uis;
        return 0;
}

TokenEngine *token_engine_free(TokenEngine *engine) {
        if (!engine)
                return NULL;
        if (engine->engine) {
                if (engine->initialized)
                        ENGINE_finish(engine->engine);
                ENGINE_free(engine->engine);
        }
        if (engine->ui)
                UI_destroy_method(engine->ui);
        return mfree(engine);
}

int token_engine_new(const char *module_path, const char *pin, TokenEngine **ret, char **ret_message) {
        _cleanup_(token_engine_freep) TokenEngine *engine = NULL;

        *ret_message = NULL;

        engine = calloc(1, sizeof(TokenEngine));
        if (!engine)
                return -ENOMEM;

        engine->ui = UI_create_method("smimed: never prompt");
        if (!engine->ui || UI_method_set_reader(engine->ui, ui_refuse_reader) < 0)
                return -ENOMEM;

        ENGINE_load_builtin_engines();
        engine->engine = ENGINE_by_id(PKCS11_ENGINE_ID);
        if (!engine->engine) {
                *ret_message = openssl_message("Cannot load OpenSSL's pkcs11 engine (is libengine-pkcs11-openssl installed?)");
                return -ENOENT;
        }

        if (!ENGINE_ctrl_cmd_string(engine->engine, "MODULE_PATH", module_path, 0)) {
                *ret_message = openssl_message("The pkcs11 engine refused MODULE_PATH");
                return -EIO;
        }
        if (pin && !ENGINE_ctrl_cmd_string(engine->engine, "PIN", pin, 0)) {
                *ret_message = openssl_message("The pkcs11 engine refused the PIN command");
                return -EIO;
        }
        if (!ENGINE_init(engine->engine)) {
                *ret_message = openssl_message("Cannot initialise the pkcs11 engine");
                return -EIO;
        }
        engine->initialized = true;

        *ret = TAKE_PTR(engine);
        return 0;
}

int token_engine_load_private_key(TokenEngine *engine, const char *uri, EVP_PKEY **ret, char **ret_message) {
        EVP_PKEY *pkey;

        *ret_message = NULL;

        pkey = ENGINE_load_private_key(engine->engine, uri, engine->ui, NULL);
        if (!pkey) {
                *ret_message = openssl_message("The token has no usable private key at that URI");
                return -ENOKEY;
        }

        *ret = pkey;
        return 0;
}

void token_engine_key_release(EVP_PKEY *pkey) {
        if (!pkey)
                return;
        (void) EVP_PKEY_set1_engine(pkey, NULL);
        EVP_PKEY_free(pkey);
}
