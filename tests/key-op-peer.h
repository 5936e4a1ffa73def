/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "key-op.h"
#include "worker-ops.h"

/* smimed's side of the key operations, for tests that run the worker's code
 * in-process: a thread that serves WORKER_CALL_KEY_OP on a real socketpair
 * with key_op_perform() on a key (a software key, or the token's), and logs
 * every request; and the worker's session on the other end, for
 * worker_session_remote_key(). */

#define KEY_OP_PEER_LOG_MAX 16

typedef struct KeyOpLogged {
        KeyOpKind kind;
        int padding;
        char md[32], mgf1_md[32];
        int saltlen;
        size_t label_size, size;
} KeyOpLogged;

typedef struct KeyOpPeer {
        int sock, worker_sock;
        EVP_PKEY *key;
        int refuse;             /* answer every call with this error, when < 0 */
        pthread_t thread;
        pthread_mutex_t lock;
        KeyOpLogged log[KEY_OP_PEER_LOG_MAX];
        unsigned n_log;
        unsigned n_malformed;   /* requests key_op_request_get() refused (raw RSA would be one) */
        unsigned n_failed;      /* key_op_perform() failures */
        WorkerSession *session;
} KeyOpPeer;

/* key is borrowed; it must outlive the peer. */
KeyOpPeer *key_op_peer_new(EVP_PKEY *key);
void key_op_peer_free(KeyOpPeer *p);

void key_op_peer_reset(KeyOpPeer *p);
/* The one call since the reset (asserted: exactly one, well formed, served,
 * never RSA_NO_PADDING). */
KeyOpLogged key_op_peer_one_call(KeyOpPeer *p);
/* Calls since the reset, malformed ones included. */
unsigned key_op_peer_calls(KeyOpPeer *p);
