/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "log.h"
#include "message.h"
#include "pin-file.h"
#include "token-engine.h"
#include "token-internal.h"
#include "token-pin.h"
#include "token-info.h"
#include "token.h"

static const char *const token_state_table[_TOKEN_STATE_MAX] = {
        [TOKEN_STATE_READY] = "ready",
        [TOKEN_STATE_LOCKED] = "locked",
        [TOKEN_STATE_ABSENT] = "absent",
        [TOKEN_STATE_ERROR] = "error",
};

const char *token_state_to_string(TokenState state) {
        if (state < 0 || state >= _TOKEN_STATE_MAX)
                return NULL;
        return token_state_table[state];
}

static TokenState token_set_state(Token *token, TokenState state, const char *format, ...) _printf_(3, 4);
static TokenState token_set_state(Token *token, TokenState state, const char *format, ...) {
        char *reason = NULL;
        va_list ap;

        if (format) {
                va_start(ap, format);
                if (vasprintf(&reason, format, ap) < 0)
                        reason = NULL;
                va_end(ap);
        }

        free(token->reason);
        token->reason = reason;
        token->state = state;
        return state;
}

int token_new(const Config *config, Token **ret) {
        _cleanup_(token_freep) Token *token = NULL;

        token = calloc(1, sizeof(Token));
        if (!token)
                return -ENOMEM;

        token->state = TOKEN_STATE_ABSENT;
        pthread_mutex_init(&token->key_lock, NULL);
        if (free_and_strdup(&token->config_module, config->token_module) < 0 ||
            free_and_strdup(&token->config_uri, config->token_uri) < 0 ||
            free_and_strdup(&token->config_pin_file, config->token_pin_file) < 0)
                return -ENOMEM;

        if (token->config_uri) {
                token->uri = p11_kit_uri_new();
                if (!token->uri)
                        return -ENOMEM;
                if (p11_kit_uri_parse(token->config_uri, P11_KIT_URI_FOR_TOKEN | P11_KIT_URI_FOR_MODULE,
                                      token->uri) != P11_KIT_URI_OK)
                        return -EINVAL; /* the config parser checked it already */
        }

        *ret = TAKE_PTR(token);
        return 0;
}

/* Drops the cached keys. Unless release is set (nothing uses the token any
 * more), they are only put aside: a worker may be signing with one. */
static void token_key_cache_clear(Token *token, bool release) {
        pthread_mutex_lock(&token->key_lock);
        for (size_t i = 0; i < token->n_key_cache; i++) {
                EVP_PKEY **retired = release ? NULL
                                             : realloc(token->retired_keys,
                                                       (token->n_retired_keys + 1) * sizeof(EVP_PKEY *));

                free(token->key_cache[i].uri);
                if (retired) {
                        token->retired_keys = retired;
                        token->retired_keys[token->n_retired_keys++] = token->key_cache[i].pkey;
                } else
                        token_engine_key_release(token->key_cache[i].pkey);
        }
        token->key_cache = mfree(token->key_cache);
        token->n_key_cache = 0;
        if (release) {
                for (size_t i = 0; i < token->n_retired_keys; i++)
                        token_engine_key_release(token->retired_keys[i]);
                token->retired_keys = mfree(token->retired_keys);
                token->n_retired_keys = 0;
        }
        pthread_mutex_unlock(&token->key_lock);
}

void token_forget_keys(Token *token) {
        token_key_cache_clear(token, false);
}

void token_close(Token *token) {
        /* Every key let go of the engine first, so that it really finishes: its sessions
         * die with the module's finalization below, and a new engine must not inherit them. */
        token_key_cache_clear(token, true);
        token->engine = token_engine_free(token->engine);

        if (token->have_session) {
                if (token->logged_in)
                        token->module->C_Logout(token->session);
                token->module->C_CloseSession(token->session);
        }
        token->have_session = token->logged_in = false;

        if (token->modules) {
                p11_kit_modules_finalize_and_release(token->modules);
                token->modules = NULL;
        }
        token->module = NULL;
        token->module_path = mfree(token->module_path);
        token->label[0] = '\0';
        token_set_state(token, TOKEN_STATE_ABSENT, NULL);
}

Token *token_free(Token *token) {
        if (!token)
                return NULL;

        token_close(token);
        free(token->config_module);
        free(token->config_uri);
        free(token->config_pin_file);
        if (token->uri)
                p11_kit_uri_free(token->uri);
        free(token->reason);
        pthread_mutex_destroy(&token->key_lock);
        return mfree(token);
}

static int token_load_modules(Token *token) {
        if (token->config_module) {
                CK_FUNCTION_LIST *module;
                CK_RV rv;

                module = p11_kit_module_load(token->config_module, 0);
                if (!module) {
                        token_set_state(token, TOKEN_STATE_ERROR, "Cannot load the PKCS#11 module %s: %s",
                                        token->config_module, strempty(p11_kit_message()));
                        return -ENOENT;
                }
                rv = p11_kit_module_initialize(module);
                if (rv != CKR_OK) {
                        token_set_state(token, TOKEN_STATE_ERROR, "Cannot initialise the PKCS#11 module %s: %s",
                                        token->config_module, p11_kit_strerror(rv));
                        p11_kit_module_release(module);
                        return -EIO;
                }

                token->modules = calloc(2, sizeof(CK_FUNCTION_LIST *));
                if (!token->modules) {
                        p11_kit_module_finalize(module);
                        p11_kit_module_release(module);
                        return -ENOMEM;
                }
                token->modules[0] = module;
                return 0;
        }

        token->modules = p11_kit_modules_load_and_initialize(0);
        if (!token->modules) {
                token_set_state(token, TOKEN_STATE_ERROR, "Cannot load the PKCS#11 modules p11-kit is configured with: %s",
                                strempty(p11_kit_message()));
                return -EIO;
        }
        return 0;
}

/* Without a URI any initialised token that wants a login will do: that skips
 * p11-kit's read-only trust module and finds the one key store on most hosts. */
static bool token_matches(Token *token, CK_FUNCTION_LIST *module, CK_SLOT_ID slot, const CK_TOKEN_INFO *info) {
        CK_SLOT_INFO slot_info;
        CK_INFO module_info;

        if (!token->uri)
                return (info->flags & CKF_TOKEN_INITIALIZED) && (info->flags & CKF_LOGIN_REQUIRED);

        if (module->C_GetInfo(&module_info) != CKR_OK ||
            module->C_GetSlotInfo(slot, &slot_info) != CKR_OK)
                return false;

        return p11_kit_uri_match_module_info(token->uri, &module_info) &&
               p11_kit_uri_match_slot_info(token->uri, &slot_info) &&
               p11_kit_uri_match_token_info(token->uri, info);
}

static void copy_label(char *dest, const unsigned char *label, size_t size) {
        size_t n = size;

        while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == '\0'))
                n--;
        memcpy(dest, label, n);
        dest[n] = '\0';
}

static int token_find(Token *token, CK_TOKEN_INFO *ret_info) {
        for (size_t m = 0; token->modules[m]; m++) {
                CK_FUNCTION_LIST *module = token->modules[m];
                _cleanup_free_ CK_SLOT_ID *slots = NULL;
                CK_ULONG n = 0;

                if (module->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n == 0)
                        continue;
                slots = calloc(n, sizeof(CK_SLOT_ID));
                if (!slots)
                        return -ENOMEM;
                if (module->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
                        continue;

                for (CK_ULONG i = 0; i < n; i++) {
                        CK_TOKEN_INFO info;

                        if (token_get_info(module, slots[i], &info) != CKR_OK)
                                continue;
                        if (!token_matches(token, module, slots[i], &info))
                                continue;

                        token->module = module;
                        token->slot = slots[i];
                        copy_label(token->label, info.label, sizeof(info.label));
                        *ret_info = info;
                        return 1;
                }
        }

        return 0;
}

static TokenState token_locked_state(Token *token) {
        return token_set_state(token, TOKEN_STATE_LOCKED,
                               "The token's user PIN is locked after too many wrong tries; "
                               "unlock it with the security officer PIN.");
}

static int token_read_pin(Token *token, char **ret_pin, char **ret_path) {
        _cleanup_free_ char *pin_path = NULL, *message = NULL;
        int r;

        if (token->config_pin_file)
                pin_path = strdup(token->config_pin_file);
        else {
                const char *credentials = getenv("CREDENTIALS_DIRECTORY");

                if (!credentials) {
                        token_set_state(token, TOKEN_STATE_LOCKED,
                                        "No PIN: set [Token] PINFile= or pass the credential token-pin.");
                        return -ENOENT;
                }
                if (asprintf(&pin_path, "%s/token-pin", credentials) < 0)
                        pin_path = NULL;
        }
        if (!pin_path) {
                token_set_state(token, TOKEN_STATE_ERROR, "Out of memory.");
                return -ENOMEM;
        }

        r = pin_file_read(pin_path, ret_pin, &message);
        if (r < 0) {
                token_set_state(token, TOKEN_STATE_LOCKED, "%s", message ? message : "Cannot read the PIN file.");
                return r;
        }
        *ret_path = TAKE_PTR(pin_path);
        return 0;
}

static TokenState token_login(Token *token, const CK_TOKEN_INFO *info, char **ret_pin) {
        _cleanup_(erase_and_freep) char *pin = NULL;
        _cleanup_free_ char *pin_path = NULL;
        CK_RV rv;
        int r;

        if (!(info->flags & CKF_LOGIN_REQUIRED))
                return TOKEN_STATE_READY;
        if (info->flags & CKF_USER_PIN_LOCKED)
                return token_locked_state(token);

        r = token_read_pin(token, &pin, &pin_path);
        if (r < 0)
                return token->state;

        switch (token_pin_attempt_allowed(info->flags, refused_pins_contain(&token->refused_pins, pin))) {
        case PIN_ATTEMPT_ALLOWED:
                break;
        case PIN_ATTEMPT_LOCKED:
                return token_locked_state(token);
        case PIN_ATTEMPT_REFUSED_BEFORE:
                return token_set_state(token, TOKEN_STATE_LOCKED,
                                       "The token refused the PIN in %s before, and smimed does not try a refused "
                                       "PIN again: fix the PIN file and reload.",
                                       pin_path);
        case PIN_ATTEMPT_FINAL_TRY:
                return token_set_state(token, TOKEN_STATE_LOCKED,
                                       "The token has one PIN try left before it locks, and smimed does not spend "
                                       "it. Check the PIN in %s by hand (e.g. pkcs11-tool --module %s --login "
                                       "--list-objects, or p11tool --login --list-privkeys '%s'): when it is right "
                                       "the token resets its count. Then reload.",
                                       pin_path, token->module_path ?: "MODULE", token->config_uri ?: "pkcs11:");
        }

        log_debug("Logging in to token \"%s\" with the PIN from %s.", token->label, pin_path);
        rv = token->module->C_Login(token->session, CKU_USER, (CK_UTF8CHAR *) pin, strlen(pin));
        switch (rv) {
        case CKR_OK:
        case CKR_USER_ALREADY_LOGGED_IN:
                token->logged_in = true;
                *ret_pin = TAKE_PTR(pin);
                return TOKEN_STATE_READY;
        case CKR_PIN_INCORRECT:
        case CKR_PIN_LEN_RANGE:
                if (refused_pins_add(&token->refused_pins, pin) < 0)
                        log_warning("Cannot remember the refused PIN; a reload will try it again.");
                return token_set_state(token, TOKEN_STATE_LOCKED,
                                       "The token refused the PIN from %s; fix it and reload.", pin_path);
        case CKR_PIN_LOCKED:
                return token_locked_state(token);
        default:
                return token_set_state(token, TOKEN_STATE_ERROR, "Logging in to the token failed: %s",
                                       p11_kit_strerror(rv));
        }
}

void token_inherit_refused_pins(Token *token, const Token *from) {
        token->refused_pins = from->refused_pins;
}

int token_probe(Token *token, char **ret_message) {
        CK_SESSION_INFO session_info = {};
        CK_TOKEN_INFO info;
        CK_RV rv;

        if (token->state != TOKEN_STATE_READY || !token->module)
                return 0;

        rv = token_get_info(token->module, token->slot, &info);
        if (rv == CKR_OK && token->have_session)
                rv = token->module->C_GetSessionInfo(token->session, &session_info);
        if (rv != CKR_OK)
                return message_fail(ret_message, -ENODEV, "The token \"%s\" stopped answering: %s", token->label,
                                    p11_kit_strerror(rv));
        if (token->logged_in && session_info.state != CKS_RW_USER_FUNCTIONS &&
            session_info.state != CKS_RO_USER_FUNCTIONS)
                return message_fail(ret_message, -ENODEV, "The token \"%s\" logged smimed out.", token->label);
        return 0;
}

TokenState token_open(Token *token) {
        _cleanup_(erase_and_freep) char *pin = NULL;
        _cleanup_free_ char *message = NULL;
        CK_TOKEN_INFO info;
        TokenState state;
        CK_RV rv;
        int r;

        token_close(token);

        r = token_load_modules(token);
        if (r == -ENOMEM)
                return token_set_state(token, TOKEN_STATE_ERROR, "Out of memory.");
        if (r < 0)
                return token->state;

        r = token_find(token, &info);
        if (r < 0)
                return token_set_state(token, TOKEN_STATE_ERROR, "Out of memory.");
        if (r == 0)
                return token_set_state(token, TOKEN_STATE_ABSENT, "No token matches %s.",
                                       token->config_uri ?: "(any initialised token that needs a login)");

        token->info = info;
        token->module_path = p11_kit_module_get_filename(token->module);
        if (!token->module_path)
                return token_set_state(token, TOKEN_STATE_ERROR, "Cannot tell which file the PKCS#11 module was loaded from.");

        rv = token->module->C_OpenSession(token->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                          &token->session);
        if (rv != CKR_OK)
                return token_set_state(token, TOKEN_STATE_ERROR, "Cannot open a session with token \"%s\": %s",
                                       token->label, p11_kit_strerror(rv));
        token->have_session = true;

        state = token_login(token, &info, &pin);
        if (state != TOKEN_STATE_READY)
                return state;

        r = token_engine_new(token->module_path, pin, &token->engine, &message);
        if (r < 0)
                return token_set_state(token, TOKEN_STATE_ERROR, "%s", message ?: "Cannot bind OpenSSL's pkcs11 engine.");

        return token_set_state(token, TOKEN_STATE_READY, NULL);
}

TokenState token_get_state(const Token *token) {
        return token->state;
}

const char *token_get_state_reason(const Token *token) {
        return strempty(token->reason);
}

const char *token_get_label(const Token *token) {
        return token->module ? token->label : NULL;
}

const char *token_get_module_path(const Token *token) {
        return token->module_path;
}

/* Under key_lock: the cached key for uri, or NULL. */
static EVP_PKEY *token_key_cache_find(Token *token, const char *uri) {
        for (size_t i = 0; i < token->n_key_cache; i++)
                if (streq(token->key_cache[i].uri, uri))
                        return token->key_cache[i].pkey;
        return NULL;
}

/* Under key_lock: keeps a reference of pkey for uri (when memory allows). */
static void token_key_cache_add(Token *token, const char *uri, EVP_PKEY *pkey) {
        struct TokenKeyCacheEntry *cache;
        char *copy = strdup(uri);

        cache = copy ? realloc(token->key_cache, (token->n_key_cache + 1) * sizeof(*cache)) : NULL;
        if (!cache || !EVP_PKEY_up_ref(pkey)) {
                free(copy);
                if (cache)
                        token->key_cache = cache;
                return;
        }
        token->key_cache = cache;
        cache[token->n_key_cache++] = (struct TokenKeyCacheEntry) { .uri = copy, .pkey = pkey };
}

int token_load_private_key(Token *token, const char *object_uri, EVP_PKEY **ret) {
        _cleanup_free_ char *message = NULL;
        EVP_PKEY *pkey;
        int r = 0;

        if (token->state != TOKEN_STATE_READY || !token->engine)
                return -ENODEV;

        pthread_mutex_lock(&token->key_lock);
        pkey = token_key_cache_find(token, object_uri);
        if (pkey) {
                if (!EVP_PKEY_up_ref(pkey))
                        r = -ENOMEM;
        } else {
                r = token_engine_load_private_key(token->engine, object_uri, &pkey, &message);
                if (r >= 0)
                        token_key_cache_add(token, object_uri, pkey);
        }
        pthread_mutex_unlock(&token->key_lock);

        if (r < 0)
                return log_warning_errno(r, "%s", strempty(message));
        *ret = pkey;
        return 0;
}
