/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/rsa.h>

#include "key-op-peer.h"
#include "worker-protocol.h"
#include "worker-session.h"

static void *serve(void *userdata) {
        KeyOpPeer *t = userdata;

        for (;;) {
                _cleanup_(worker_message_done) WorkerMessage m = {}, result = {};
                _cleanup_(key_op_request_done) KeyOpRequest r = {};
                uint8_t *out = NULL;
                size_t n = 0;
                int e;

                if (worker_message_receive(t->sock, &m) < 0)
                        return NULL;
                e = m.type == WORKER_CALL_KEY_OP ? key_op_request_get(&m, &r) : -EBADMSG;
                pthread_mutex_lock(&t->lock);
                if (e < 0)
                        t->n_malformed++;
                else if (t->n_log < KEY_OP_PEER_LOG_MAX) {
                        KeyOpLogged *l = &t->log[t->n_log++];

                        *l = (KeyOpLogged) { .kind = r.kind, .padding = r.padding, .saltlen = r.saltlen,
                                             .label_size = r.label_size, .size = r.size };
                        (void) snprintf(l->md, sizeof(l->md), "%s", r.md ? r.md : "");
                        (void) snprintf(l->mgf1_md, sizeof(l->mgf1_md), "%s", r.mgf1_md ? r.mgf1_md : "");
                }
                pthread_mutex_unlock(&t->lock);

                if (e >= 0)
                        e = t->refuse < 0 ? t->refuse : key_op_perform(t->key, &r, &out, &n);
                if (e < 0 && t->refuse == 0) {
                        pthread_mutex_lock(&t->lock);
                        t->n_failed++;
                        pthread_mutex_unlock(&t->lock);
                }
                worker_message_init(&result, WORKER_CALL_RESULT);
                worker_message_put_i32(&result, e < 0 ? e : 0);
                if (e >= 0)
                        worker_message_put_blob(&result, out, n);
                free(out);
                if (worker_message_send(t->sock, &result) < 0)
                        return NULL;
        }
}

KeyOpPeer *key_op_peer_new(EVP_PKEY *key) {
        KeyOpPeer *p = calloc(1, sizeof(KeyOpPeer));
        int s[2];

        assert_non_null(p);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
        p->worker_sock = s[0];
        p->sock = s[1];
        p->key = key;
        assert_int_equal(pthread_mutex_init(&p->lock, NULL), 0);
        assert_int_equal(pthread_create(&p->thread, NULL, serve, p), 0);
        assert_int_equal(worker_session_new(p->worker_sock, &p->session), 0);
        return p;
}

void key_op_peer_free(KeyOpPeer *p) {
        if (!p)
                return;
        worker_session_free(p->session);
        close(p->worker_sock); /* the thread sees EOF */
        assert_int_equal(pthread_join(p->thread, NULL), 0);
        close(p->sock);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

void key_op_peer_reset(KeyOpPeer *p) {
        pthread_mutex_lock(&p->lock);
        p->n_log = p->n_malformed = p->n_failed = 0;
        pthread_mutex_unlock(&p->lock);
}

KeyOpLogged key_op_peer_one_call(KeyOpPeer *p) {
        KeyOpLogged l;

        pthread_mutex_lock(&p->lock);
        assert_int_equal(p->n_malformed, 0);
        assert_int_equal(p->n_failed, 0);
        assert_int_equal(p->n_log, 1);
        l = p->log[0];
        pthread_mutex_unlock(&p->lock);
        /* Never raw RSA. */
        assert_int_not_equal(l.padding, RSA_NO_PADDING);
        return l;
}

unsigned key_op_peer_calls(KeyOpPeer *p) {
        unsigned n;

        pthread_mutex_lock(&p->lock);
        n = p->n_log + p->n_malformed;
        pthread_mutex_unlock(&p->lock);
        return n;
}
