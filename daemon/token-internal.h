/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Token's insides, shared by token.c (login) and token-keys.c (the keys
 * in it). Nothing else includes this. */

#include <stdbool.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "token-engine.h"
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
        TokenEngine *engine;

        TokenState state;
        char *reason;
        bool pin_refused;              /* do not try that PIN again */
};

