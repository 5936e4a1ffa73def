/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include "macro.h"

/* `p11-kit server` serving one token of a PKCS#11 module on a unix socket,
 * as a cluster's nodes share a token (each node loads p11-kit-client.so
 * with P11_KIT_SERVER_ADDRESS). It runs as uid/gid (only they may connect)
 * with the environment it is given (SOFTHSM2_CONF). Started when it has
 * printed its address; dies with the test. */
typedef struct P11Server {
        pid_t pid;
        char *address; /* "unix:path=…" */
} P11Server;

#define P11_KIT_CLIENT_MODULE "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"

int p11_server_start(const char *module, const char *token_uri, const char *socket_path, uid_t uid, gid_t gid,
                     char *const *env, P11Server **ret);
P11Server *p11_server_free(P11Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(P11Server *, p11_server_free);
