/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "remote-key.h"
#include "sandbox.h"
#include "spool.h"
#include "worker-ops.h"
#include "worker-selftest.h"
#include "worker-session.h"

struct WorkerSession {
        int fd;
        bool broken;    /* the connection failed during a call: smimed is gone or confused */
        int key_op_error; /* the first failed key operation of the request */
        /* The remote key last made, and its certificate: OpenSSL prepares a
         * key (e.g. exports it to its provider) the first time it is used,
         * which costs more than an ECDSA signature; the next job that signs
         * with the same certificate gets the same key. Which key a job may
         * use is smimed's decision, made for each key operation. */
        X509 *remote_key_certificate;
        EVP_PKEY *remote_key;
        /* Scratch files of the request, kept or closed after its reply. */
        int scratch_after_reply[WORKER_SESSION_AFTER_REPLY_MAX];
        unsigned n_scratch_after_reply;
        /* Scratch files kept for the next requests: memfds, zeroed. */
        int scratch[SCRATCH_KEPT_MAX];
        unsigned n_scratch;
};

/* A memfd (F_GET_SEALS fails on anything else) is kept, with nothing of
 * this request's message in it; a file on disk, or one too many, closed. */
static void scratch_keep(WorkerSession *s, int fd) {
        struct stat st;
        bool kept = false;

        if (s->n_scratch < SCRATCH_KEPT_MAX && fcntl(fd, F_GET_SEALS) >= 0 && fstat(fd, &st) >= 0) {
                if ((uint64_t) st.st_size <= FD_ZERO_MAX)
                        kept = fd_zero(fd, (size_t) st.st_size) >= 0;
                else
                        kept = ftruncate(fd, 0) >= 0;
        }
        if (kept)
                s->scratch[s->n_scratch++] = fd;
        else
                closep(&fd);
}

static void scratch_replied(WorkerSession *s) {
        for (unsigned i = 0; i < s->n_scratch_after_reply; i++)
                scratch_keep(s, s->scratch_after_reply[i]);
        s->n_scratch_after_reply = 0;
}

static void close_scratch(WorkerSession *s) {
        for (unsigned i = 0; i < s->n_scratch; i++)
                closep(&s->scratch[i]);
        s->n_scratch = 0;
}

int worker_session_scratch(WorkerSession *s, uint64_t size_hint) {
        while (size_hint <= SPOOL_MEMORY_MAX && s->n_scratch > 0) {
                int fd = s->scratch[--s->n_scratch];

                if (lseek(fd, 0, SEEK_SET) == 0)
                        return fd;
                closep(&fd);
        }
        return worker_session_spool(s, size_hint);
}

void worker_session_scratch_done(WorkerSession *s, int fd) {
        if (fd < 0)
                return;
        if (s->n_scratch_after_reply < WORKER_SESSION_AFTER_REPLY_MAX)
                s->scratch_after_reply[s->n_scratch_after_reply++] = fd;
        else
                closep(&fd);
}

int worker_session_new(int fd, WorkerSession **ret) {
        WorkerSession *s = malloc(sizeof(WorkerSession));

        if (!s)
                return -ENOMEM;
        *s = (WorkerSession) { .fd = fd };
        *ret = s;
        return 0;
}

WorkerSession *worker_session_free(WorkerSession *s) {
        if (!s)
                return NULL;
        scratch_replied(s);
        close_scratch(s);
        X509_free(s->remote_key_certificate);
        EVP_PKEY_free(s->remote_key);
        free(s);
        return NULL;
}

int worker_session_socket(WorkerSession *s) {
        return s->fd;
}

int worker_session_call(WorkerSession *s, WorkerMessage *call, WorkerMessage *ret_result) {
        int32_t status;
        int r;

        if (s->broken)
                return -ECONNRESET;
        r = worker_message_send(s->fd, call);
        if (r >= 0)
                r = worker_message_receive(s->fd, ret_result);
        if (r >= 0 && ret_result->type != WORKER_CALL_RESULT)
                r = -EBADMSG;
        if (r < 0) {
                /* A put that failed is this side's business; the rest leaves the connection unusable. */
                if (r != call->error)
                        s->broken = true;
                return r;
        }
        r = worker_message_get_i32(ret_result, &status);
        if (r < 0) {
                s->broken = true;
                return r;
        }
        return status > 0 ? -EBADMSG : status;
}

int worker_session_key_op(WorkerSession *s, const KeyOpRequest *request, uint8_t **ret, size_t *ret_size) {
        _cleanup_(worker_message_done) WorkerMessage call = {}, result = {};
        uint8_t *data = NULL;
        size_t size = 0;
        int r;

        worker_message_init(&call, WORKER_CALL_KEY_OP);
        key_op_request_put(&call, request);
        r = worker_session_call(s, &call, &result);
        if (r < 0) {
                if (s->key_op_error == 0)
                        s->key_op_error = r;
                return r;
        }
        r = worker_message_get_blob(&result, &data, &size);
        if (r >= 0)
                r = worker_message_get_end(&result);
        if (r < 0 || size == 0) {
                free(data);
                s->broken = true;
                return r < 0 ? r : -EBADMSG;
        }
        *ret = data;
        *ret_size = size;
        return 0;
}

int worker_session_key_op_error(WorkerSession *s) {
        return s->key_op_error;
}

int worker_session_spool(WorkerSession *s, uint64_t size_hint) {
        _cleanup_(worker_message_done) WorkerMessage call = {}, result = {};
        int r;

        worker_message_init(&call, WORKER_CALL_SPOOL);
        worker_message_put_u64(&call, size_hint);
        r = worker_session_call(s, &call, &result);
        if (r < 0)
                return r;
        r = worker_message_take_fd(&result, 0);
        if (r < 0 || worker_message_get_end(&result) < 0 || result.n_fds != 1) {
                if (r >= 0)
                        close(r);
                s->broken = true;
                return -EBADMSG;
        }
        return r;
}

static int remote_key_call(const KeyOpRequest *request, uint8_t **ret, size_t *ret_size, void *userdata) {
        return worker_session_key_op(userdata, request, ret, ret_size);
}

EVP_PKEY *worker_session_remote_key(WorkerSession *s, X509 *certificate) {
        EVP_PKEY *key;

        if (!certificate)
                return NULL;
        if (!s->remote_key_certificate || X509_cmp(s->remote_key_certificate, certificate) != 0) {
                key = remote_key_new(certificate, remote_key_call, s);
                if (!key || !X509_up_ref(certificate)) {
                        EVP_PKEY_free(key);
                        return NULL;
                }
                X509_free(s->remote_key_certificate);
                EVP_PKEY_free(s->remote_key);
                s->remote_key_certificate = certificate;
                s->remote_key = key;
        }
        return EVP_PKEY_up_ref(s->remote_key) ? s->remote_key : NULL;
}

/* ---- the loop ---- */

static const WorkerOp *find_op(uint32_t type) {
        for (size_t i = 0; i < worker_ops_count; i++)
                if (worker_ops[i].type == type)
                        return &worker_ops[i];
        for (size_t i = 0; i < worker_selftest_ops_count; i++)
                if (worker_selftest_ops[i].type == type)
                        return &worker_selftest_ops[i];
        return NULL;
}

static void reply_failure(WorkerMessage *reply, int error, const char *what) {
        char message[256];

        (void) snprintf(message, sizeof(message), "The worker process failed %s: %s.", what, strerror(-error));
        worker_reply_init(reply, error, 0, message);
}

/* One request: its reply in *reply. */
static void dispatch(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply) {
        const WorkerOp *op = find_op(request->type);
        int r;

        worker_reply_init(reply, 0, 0, NULL);
        s->key_op_error = 0;
        if (!op) {
                char message[128];

                (void) snprintf(message, sizeof(message), "The worker process does not know request type %u.",
                                request->type);
                worker_reply_init(reply, -EOPNOTSUPP, 0, message);
                return;
        }
        r = op->handler(s, request, reply);
        if (r < 0)
                reply_failure(reply, r, "on this message");
}

int worker_session_serve(int fd, unsigned cpu_seconds) {
        WorkerSession session = { .fd = fd };

        for (;;) {
                _cleanup_(worker_message_done) WorkerMessage request = {}, reply = {};
                int r;

                r = worker_message_receive(fd, &request);
                if (r == -ECONNRESET)
                        return 0; /* smimed is done with this worker */
                if (r < 0)
                        return log_error_errno(r, "smimed-worker: cannot receive a request: %m");

                r = sandbox_job_cpu_limit(cpu_seconds);
                if (r < 0)
                        return log_error_errno(r, "smimed-worker: cannot set the CPU limit: %m");

                dispatch(&session, &request, &reply);
                if (session.broken)
                        return log_error_errno(ECONNRESET, "smimed-worker: the connection to smimed failed.");

                r = worker_message_send(fd, &reply);
                if (r < 0 && r == reply.error) {
                        /* The answer could not be put together (too large, out of memory). */
                        reply_failure(&reply, r, "to put its answer together");
                        r = worker_message_send(fd, &reply);
                }
                scratch_replied(&session);
                if (r == -EPIPE || r == -ECONNRESET)
                        return 0;
                if (r < 0)
                        return log_error_errno(r, "smimed-worker: cannot send a reply: %m");
        }
}
