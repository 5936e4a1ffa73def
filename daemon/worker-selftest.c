/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rsa.h>

#include "fd-util.h"
#include "worker-selftest.h"
#include "worker-session.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);

static int handle_sign(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply) {
        _cleanup_(X509_freep) X509 *certificate = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        _cleanup_free_ char *md_name = NULL;
        _cleanup_free_ uint8_t *digest = NULL, *signature = NULL;
        const EVP_MD *md;
        size_t digest_size, n = 0;
        int32_t padding;
        int r;

        r = worker_message_get_x509(request, &certificate);
        if (r >= 0)
                r = worker_message_get_string(request, &md_name);
        if (r >= 0)
                r = worker_message_get_i32(request, &padding);
        if (r >= 0)
                r = worker_message_get_blob(request, &digest, &digest_size);
        if (r < 0)
                return r;
        md = md_name ? EVP_get_digestbyname(md_name) : NULL;
        if (!certificate || !md || !digest)
                return -EINVAL;

        key = worker_session_remote_key(s, certificate);
        if (!key)
                return -EOPNOTSUPP;
        ctx = EVP_PKEY_CTX_new(key, NULL);
        if (!ctx || EVP_PKEY_sign_init(ctx) <= 0 || EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0)
                return -EIO;
        if (padding != 0 && EVP_PKEY_CTX_set_rsa_padding(ctx, padding) <= 0)
                return -EIO;
        if (padding == RSA_PKCS1_PSS_PADDING && EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) <= 0)
                return -EIO;
        if (EVP_PKEY_sign(ctx, NULL, &n, digest, digest_size) <= 0)
                return -EIO;
        signature = malloc(n);
        if (!signature)
                return -ENOMEM;
        if (EVP_PKEY_sign(ctx, signature, &n, digest, digest_size) <= 0) {
                worker_reply_init(reply, -EIO, 0, "The remote key did not sign.");
                return 0;
        }
        worker_message_put_blob(reply, signature, n);
        return 0;
}

static int handle_spool(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply) {
        _cleanup_free_ char *text = NULL;
        _cleanup_(closep) int fd = -1;
        uint64_t hint;
        size_t n;
        int r;

        r = worker_message_get_u64(request, &hint);
        if (r >= 0)
                r = worker_message_get_string(request, &text);
        if (r < 0)
                return r;
        fd = worker_session_spool(s, hint);
        if (fd < 0)
                return fd;
        n = text ? strlen(text) : 0;
        r = fd_write_all(fd, text, n);
        if (r < 0)
                return r;
        worker_message_put_u64(reply, n);
        return 0;
}

static int handle_misbehave(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply) {
        char *argv[] = { (char *) "/bin/true", NULL }, *envp[] = { NULL };
        uint32_t what;
        uint64_t size;
        int r, fd;

        r = worker_message_get_u32(request, &what);
        if (r < 0)
                return r;
        switch (what) {
        case SELFTEST_HANG: {
                char c;

                fd = worker_message_take_fd(request, 0);
                if (fd < 0)
                        return fd;
                (void) read(fd, &c, 1);
                close(fd);
                return 0;
        }
        case SELFTEST_SPIN:
                for (volatile unsigned long i = 0;; i++)
                        ;
        case SELFTEST_EXECVE:
                (void) execve(argv[0], argv, envp);
                return -errno;
        case SELFTEST_CRASH:
                (void) raise(SIGSEGV);
                return -EIO;
        case SELFTEST_ALLOCATE: {
                void *p;

                r = worker_message_get_u64(request, &size);
                if (r < 0)
                        return r;
                p = malloc(size);
                if (!p)
                        return -ENOMEM;
                memset(p, 1, size);
                free(p);
                return 0;
        }
        case SELFTEST_GARBAGE: {
                static const char garbage[] = "HTTP/1.1 200 OK\r\n\r\n";

                if (write(worker_session_socket(s), garbage, sizeof(garbage) - 1) < 0)
                        return -errno;
                return 0;
        }
        default:
                return -EINVAL;
        }
}

const WorkerOp worker_selftest_ops[] = {
        { WORKER_SELFTEST_SIGN, handle_sign },
        { WORKER_SELFTEST_SPOOL, handle_spool },
        { WORKER_SELFTEST_MISBEHAVE, handle_misbehave },
};

const size_t worker_selftest_ops_count = ELEMENTSOF(worker_selftest_ops);
