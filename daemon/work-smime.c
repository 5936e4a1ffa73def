/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fd-util.h"
#include "mail-address.h"
#include "message.h"
#include "openssl-util.h"
#include "mime.h"
#include "sha256-fd.h"
#include "smime-out.h"
#include "smimed-error.h"
#include "strv.h"
#include "work-requests.h"
#include "work-smime.h"
#include "work-util.h"

typedef struct SmimeOut {
        bool sign;
        SignOptions options;
        X509 *signer;
        STACK_OF(X509) *extras;
        char **signer_addresses;
        bool encrypt;
        STACK_OF(X509) *recipients;
        const EVP_CIPHER *cipher;
        bool oaep;
        int input;
        uint64_t input_size;
        WorkerSession *session;
        WorkerMessage *request; /* its fd tmp_index: a spare spool file */
        unsigned tmp_index;
} SmimeOut;

static void smime_out_done(SmimeOut *o) {
        X509_free(o->signer);
        sk_X509_pop_free(o->extras, X509_free);
        strv_free(o->signer_addresses);
        sk_X509_pop_free(o->recipients, X509_free);
        closep(&o->input);
}

static int smime_out_read(WorkerMessage *request, SmimeOut *o) {
        _cleanup_free_ char *digest = NULL, *cipher = NULL;

        o->input = -1;
        worker_message_get_bool(request, &o->sign);
        worker_message_get_bool(request, &o->options.opaque);
        worker_message_get_string(request, &digest);
        worker_message_get_bool(request, &o->options.pss);
        worker_message_get_x509(request, &o->signer);
        worker_message_get_x509_stack(request, &o->extras);
        worker_message_get_strv(request, &o->signer_addresses);
        worker_message_get_bool(request, &o->encrypt);
        worker_message_get_x509_stack(request, &o->recipients);
        worker_message_get_string(request, &cipher);
        worker_message_get_bool(request, &o->oaep);
        o->input = worker_message_take_fd(request, 0);
        if (request->error < 0 || o->input < 0 || (o->sign && (!o->signer || !digest)) ||
            (o->encrypt && (!o->recipients || !cipher)) || (!o->sign && !o->encrypt))
                return -EBADMSG;
        if (o->sign) {
                o->options.digest = EVP_get_digestbyname(digest);
                if (!o->options.digest)
                        return -EBADMSG;
        }
        if (o->encrypt) {
                o->cipher = EVP_get_cipherbyname(cipher);
                if (!o->cipher)
                        return -EBADMSG;
        }
        return 0;
}

/* For a body that must be re-encoded: never larger than the input (and
 * so, for most mail, in memory rather than a new file on disk). A scratch
 * file: the one a large message's request brought, else one kept from an
 * earlier request or asked for. */
static int out_tmpfile(void *userdata) {
        const SmimeOut *o = userdata;
        int fd, copy;

        fd = work_scratch(o->session, o->request, o->tmp_index, o->input_size);
        if (fd < 0)
                return fd;
        /* mime.c closes the copy when it is done with the body; the file is
         * kept or closed after the reply. */
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                copy = -errno;
        worker_session_scratch_done(o->session, fd);
        return copy;
}

static int out_sign(WorkerSession *s, const SmimeOut *o, int entity, int out, WorkerMessage *reply) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = worker_session_remote_key(s, o->signer);
        _cleanup_free_ char *message = NULL;
        int r;

        if (!key)
                return work_fail(reply, -ENOMEM, 0, "Cannot stand in for the signing key.");
        r = smime_sign(entity, out, o->signer, key, o->extras, &o->options, &message);
        if (r < 0)
                /* -EINVAL: an option the key cannot do (RSA-PSS with an EC key). */
                return work_fail(reply, r, r == -EINVAL ? SMIMED_ERR_INVALID_ARGUMENT : SMIMED_ERR_TOKEN_UNAVAILABLE,
                                 message);
        return 0;
}

static int out_encrypt(const SmimeOut *o, int entity, int out, WorkerMessage *reply) {
        _cleanup_free_ char *message = NULL;
        int r;

        r = smime_encrypt(entity, out, o->recipients, o->cipher, o->oaep, &message);
        if (r < 0)
                return work_fail(reply, r, SMIMED_ERR_CERTIFICATE_INVALID, message);
        return 0;
}

int work_smime_out(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply) {
        _cleanup_(smime_out_done) SmimeOut o = {};
        _cleanup_(mime_headers_done) MimeHeaders all = {}, outer = {}, content = {};
        _cleanup_free_ LineReader *reader = malloc(sizeof(LineReader));
        _cleanup_free_ Writer *writer = malloc(sizeof(Writer));
        _cleanup_free_ char *message = NULL, *input_sha256 = NULL;
        _cleanup_(closep) int entity = -1, signed_entity = -1, result = -1;
        struct stat st;
        int r;

        if (!reader || !writer)
                return -ENOMEM;
        r = smime_out_read(request, &o);
        if (r < 0)
                return work_fail(reply, r, 0, "The request cannot be read.");
        if (lseek(o.input, 0, SEEK_SET) < 0 || fstat(o.input, &st) < 0)
                return work_fail_errno(reply, -errno, "The message cannot be read: %m");
        if (st.st_size == 0)
                return work_fail(reply, -EBADMSG, SMIMED_ERR_INVALID_MESSAGE, "The message is empty.");
        o.input_size = (uint64_t) st.st_size;
        o.session = s;
        o.request = request;
        o.tmp_index = o.sign && o.encrypt ? 4 : 3;
        if (o.sign)
                input_sha256 = sha256_fd(o.input);

        line_reader_init(reader, o.input);
        r = mime_headers_read(reader, &all, &message);
        if (r >= 0)
                r = mime_headers_split(&all, &outer, &content);
        if (r < 0)
                return work_fail(reply, r, SMIMED_ERR_INVALID_MESSAGE, message);
        if (o.sign) {
                /* What the signature vouches for: the sender fields must be the certificate's. */
                r = mail_check_senders(&outer, o.signer_addresses, &message);
                if (r < 0)
                        return work_fail(reply, r,
                                         r == -EPERM     ? SMIMED_ERR_POLICY_VIOLATION
                                         : r == -EBADMSG ? SMIMED_ERR_INVALID_MESSAGE
                                                         : 0,
                                         message);
        }

        result = work_spool(s, request, 1, (uint64_t) st.st_size);
        entity = work_scratch(s, request, 2, (uint64_t) st.st_size);
        if (result < 0 || entity < 0)
                return work_fail_errno(reply, result < 0 ? result : entity, "Cannot create a spool file: %m");

        writer_init(writer, entity);
        r = mime_write_canonical_entity(reader, &content, writer, out_tmpfile, &o, &message);
        if (r < 0)
                return work_fail(reply, r, r == -EBADMSG ? SMIMED_ERR_INVALID_MESSAGE : 0, message);
        r = fd_truncate_here(entity);
        if (r < 0)
                return work_fail_errno(reply, r, "Cannot write the spool file: %m");

        /* The outer headers stay outside, in their order. */
        writer_init(writer, result);
        mime_headers_write(writer, &outer);
        r = writer_flush(writer);
        if (r < 0)
                return work_fail_errno(reply, r, "Cannot write the spool file: %m");

        if (o.sign && o.encrypt) {
                /* Sign first, then encrypt the signed entity. */
                signed_entity = work_scratch(s, request, 3, (uint64_t) st.st_size);
                if (signed_entity < 0)
                        return work_fail_errno(reply, signed_entity, "Cannot create a spool file: %m");
                r = out_sign(s, &o, entity, signed_entity, reply);
                if (r >= 0 && (r = fd_truncate_here(signed_entity)) < 0)
                        return work_fail_errno(reply, r, "Cannot write the spool file: %m");
                if (r >= 0)
                        r = out_encrypt(&o, signed_entity, result, reply);
        } else if (o.sign)
                r = out_sign(s, &o, entity, result, reply);
        else
                r = out_encrypt(&o, entity, result, reply);
        if (r < 0)
                return r;

        if (fstat(result, &st) < 0)
                return work_fail_errno(reply, -errno, "Cannot read the spool file: %m");
        worker_message_put_u64(reply, (uint64_t) st.st_size);
        worker_message_put_string(reply, input_sha256);
        worker_message_put_fd_take(reply, TAKE_FD(result));
        /* The entities are this process's alone now. */
        worker_session_scratch_done(s, TAKE_FD(entity));
        worker_session_scratch_done(s, TAKE_FD(signed_entity));
        return work_reply_done(reply);
}
