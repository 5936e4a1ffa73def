/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/x509.h>

#include "fd-util.h"
#include "mail-address.h"
#include "message.h"
#include "openssl-util.h"
#include "mime.h"
#include "sha256-fd.h"
#include "smime-open.h"
#include "smimed-error.h"
#include "strv.h"
#include "work-open.h"
#include "work-requests.h"
#include "work-util.h"

/* The signer a message lacks: the store's when smimed sent it, else noted
 * for smimed to look up. */
typedef struct SignerNote {
        X509 *stored;
        unsigned char *issuer;
        size_t issuer_size;
        char *serial;
} SignerNote;

static void signer_note_done(SignerNote *n) {
        X509_free(n->stored);
        free(n->issuer);
        free(n->serial);
        *n = (SignerNote) {};
}

static X509 *note_signer(const X509_NAME *issuer, const ASN1_INTEGER *serial, void *userdata) {
        SignerNote *n = userdata;
        unsigned char *der = NULL;
        BIGNUM *bn;
        char *hex;
        int len;

        if (n->stored)
                return X509_up_ref(n->stored) ? n->stored : NULL;

        n->issuer = mfree(n->issuer);
        n->serial = mfree(n->serial);
        n->issuer_size = 0;
        bn = ASN1_INTEGER_to_BN(serial, NULL);
        hex = bn ? BN_bn2hex(bn) : NULL;
        len = i2d_X509_NAME(issuer, &der);
        if (len > 0 && hex) {
                n->issuer = malloc((size_t) len);
                n->serial = strdup(hex[0] == '-' ? hex + 1 : hex);
                if (n->issuer) {
                        memcpy(n->issuer, der, (size_t) len);
                        n->issuer_size = (size_t) len;
                }
        }
        OPENSSL_free(der);
        OPENSSL_free(hex);
        BN_free(bn);
        return NULL;
}

/* The outer fields smimed needs of the message: its senders and Message-ID. */
static int read_outer(const MimeHeaders *headers, char ***ret_from, bool *ret_from_unreadable,
                      char **ret_message_id, char **ret_message) {
        _cleanup_(mime_headers_done) MimeHeaders outer = {}, content = {};
        int r;

        r = mime_headers_split(headers, &outer, &content);
        if (r < 0)
                return message_fail(ret_message, r, "The message's header cannot be read: %m");
        r = mail_header_addresses(&outer, "From", ret_from);
        if (r == -ENOMEM)
                return r;
        *ret_from_unreadable = r < 0; /* no signature can be said to be the sender's */
        *ret_message_id = mime_headers_get(&outer, "Message-ID");
        return 0;
}

/* What WORK_OPEN_LAYER asks about a layer. */
typedef struct LayerQuestion {
        bool verify;
        bool decrypt;
        uint32_t depth;
        X509 *stored_signer;         /* the store's, for a signer the message lacks; or NULL */
        STACK_OF(X509) * recipients; /* the certificates of the token's keys */
        int input;                   /* the whole input, below the top; else -1 */
        unsigned next_spool;         /* the request's spool files, by fd index */
        unsigned result_spool;
} LayerQuestion;

/* The answer, or why there is none. */
typedef struct LayerAnswer {
        int error; /* 0, or the failure with code and message */
        SmimedError error_code;
        char *message;

        SmimeLayer layer;
        char **from;
        bool from_unreadable;
        char *message_id;
        uint32_t *matches;
        uint32_t n_matches;
        SignatureCheck check;
        SignerNote note;
        int next;
        int result;
        uint64_t result_size;
} LayerAnswer;

static void layer_answer_done(LayerAnswer *a) {
        free(a->message);
        strv_free(a->from);
        free(a->message_id);
        free(a->matches);
        signature_check_done(&a->check);
        signer_note_done(&a->note);
        closep(&a->next);
        closep(&a->result);
        *a = (LayerAnswer){.next = -1, .result = -1};
}

static int layer_fail(LayerAnswer *a, int error, SmimedError error_code, const char *message) {
        a->error = error;
        a->error_code = error_code;
        free(a->message);
        a->message = strdup(message ? message : strerror(-error));
        return a->message ? 0 : -ENOMEM;
}

static int layer_fail_errno(LayerAnswer *a, int error, SmimedError error_code, const char *format, ...) _printf_(4, 5);
static int layer_fail_errno(LayerAnswer *a, int error, SmimedError error_code, const char *format, ...) {
        _cleanup_free_ char *text = NULL;
        va_list ap;

        va_start(ap, format);
        (void) message_failv(&text, error, format, ap);
        va_end(ap);
        return layer_fail(a, error, error_code, text);
}

/* The result of a Decrypt or Verify: the outer fields of input in front of
 * current, the innermost content, in the request's spool file at
 * spool_index, as a->result and a->result_size; a failure of the message in
 * *a too, < 0 only when the worker itself fails (out of memory). */
static int assemble(WorkerSession *s, WorkerMessage *request, unsigned spool_index, int input, int current,
                    bool headerless, LayerAnswer *a) {
        _cleanup_free_ LineReader *lines = malloc(sizeof(LineReader));
        _cleanup_free_ Writer *w = malloc(sizeof(Writer));
        _cleanup_(mime_headers_done) MimeHeaders all = {}, outer = {}, content = {};
        _cleanup_free_ char *message = NULL;
        _cleanup_(closep) int result = -1;
        struct stat st;
        int r;

        if (!lines || !w)
                return -ENOMEM;
        if (lseek(input, 0, SEEK_SET) < 0)
                return layer_fail_errno(a, -errno, 0, "The message cannot be read: %m");
        line_reader_init(lines, input);
        r = mime_headers_read(lines, &all, &message);
        if (r >= 0)
                r = mime_headers_split(&all, &outer, &content);
        if (r < 0)
                return layer_fail(a, r, SMIMED_ERR_INVALID_MESSAGE, message);

        result = work_spool(s, request, spool_index, fd_size_hint(input));
        if (result < 0)
                return layer_fail_errno(a, result, 0, "Cannot create a spool file: %m");
        writer_init(w, result);
        mime_headers_write(w, &outer);
        if (headerless)
                writer_put(w, "\r\n", 2); /* a body without a header section is text/plain by default */
        r = writer_flush(w);
        if (r >= 0)
                r = fd_copy_all(current, result);
        if (r >= 0 && fstat(result, &st) < 0)
                r = -errno;
        if (r < 0)
                return layer_fail_errno(a, r, 0, "The result cannot be written: %m");
        a->result_size = (uint64_t) st.st_size;
        a->result = TAKE_FD(result);
        return 0;
}

/* Reads the layer in layer_fd: the answer in *a, a failure of the message
 * there too; < 0 only when the worker itself fails (out of memory). */
static int read_layer(WorkerSession *s, WorkerMessage *request, const LayerQuestion *q, int layer_fd, LayerAnswer *a) {
        _cleanup_free_ LineReader *lines = malloc(sizeof(LineReader));
        _cleanup_(mime_headers_done) MimeHeaders headers = {};
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(BIO_freep) BIO *content = NULL;
        _cleanup_free_ char *message = NULL;
        bool headerless = false;
        int r;

        if (!lines)
                return -ENOMEM;
        a->note.stored = q->stored_signer && X509_up_ref(q->stored_signer) ? q->stored_signer : NULL;
        if (lseek(layer_fd, 0, SEEK_SET) < 0)
                return layer_fail_errno(a, -errno, 0, "The message cannot be read: %m");
        line_reader_init(lines, layer_fd);
        if (q->depth > 0) {
                /* Decrypted or signed content without a header section (openssl
                 * cms without -text, some gateways): a text/plain body, as mail
                 * readers take it. */
                r = mime_fd_starts_with_header(layer_fd);
                if (r < 0)
                        return layer_fail_errno(a, r, 0, "The message cannot be read: %m");
                headerless = r == 0;
        }
        r = headerless ? 0 : mime_headers_read(lines, &headers, &message);
        if (r >= 0 && q->depth == 0)
                r = read_outer(&headers, &a->from, &a->from_unreadable, &a->message_id, &message);
        if (r >= 0 && !headerless)
                r = smime_classify(&headers, &a->layer, &message);
        if (r < 0)
                return layer_fail(a, r, r == -EBADMSG ? SMIMED_ERR_INVALID_MESSAGE : 0, message);

        if (a->layer != SMIME_LAYER_NONE && !(a->layer == SMIME_LAYER_SIGNED && !q->verify)) {
                if (q->depth >= WORK_OPEN_MAX_LAYERS)
                        return layer_fail_errno(a, -EBADMSG, SMIMED_ERR_INVALID_MESSAGE,
                                                "S/MIME layers are nested deeper than smimed opens (%u).",
                                                WORK_OPEN_MAX_LAYERS);
                if (a->layer == SMIME_LAYER_ENVELOPED && !q->decrypt)
                        return layer_fail(a, -EBADMSG, SMIMED_ERR_INVALID_MESSAGE,
                                          "The message is encrypted; open it with Decrypt.");

                /* One parse per layer: a .p7m's kind is read from the CMS itself. */
                r = smime_read(layer_fd, &cms, &content, &message);
                if (r >= 0 && (a->layer == SMIME_LAYER_CMS || a->layer == SMIME_LAYER_CERTS))
                        r = smime_cms_layer(cms, &a->layer, &message);
                if (r < 0)
                        return layer_fail(a, r, r == -EBADMSG ? SMIMED_ERR_INVALID_MESSAGE : 0, message);
                if (a->layer == SMIME_LAYER_ENVELOPED && !q->decrypt)
                        return layer_fail(a, -EBADMSG, SMIMED_ERR_INVALID_MESSAGE,
                                          "The message is encrypted; open it with Decrypt.");
        }

        if (a->layer == SMIME_LAYER_CERTS) {
                /* Certificates someone sends to be written to: smimed judges them. */
                a->check.certificates = CMS_get1_certs(cms);
                if (!a->check.certificates)
                        a->check.certificates = sk_X509_new_null();
                if (!a->check.certificates)
                        return -ENOMEM;
        } else if (a->layer == SMIME_LAYER_ENVELOPED) {
                /* Which of the token's keys the message is for: smimed picks and asks polkit. */
                a->matches = calloc((size_t) sk_X509_num(q->recipients) + 1, sizeof(uint32_t));
                if (!a->matches)
                        return -ENOMEM;
                for (int i = 0; i < sk_X509_num(q->recipients); i++)
                        if (smime_is_recipient(cms, sk_X509_value(q->recipients, i)))
                                a->matches[a->n_matches++] = (uint32_t) i;
        } else if (a->layer == SMIME_LAYER_SIGNED && q->verify) {
                a->next = work_spool(s, request, q->next_spool, fd_size_hint(layer_fd));
                if (a->next < 0)
                        return layer_fail_errno(a, a->next, 0, "Cannot create a spool file: %m");
                r = smime_verify(cms, content, note_signer, &a->note, a->next, &a->check, &message);
                if (r < 0)
                        return layer_fail(a, r, SMIMED_ERR_INVALID_MESSAGE, message);
        }

        /* The innermost content, below an S/MIME layer: the result at once,
         * rather than in a request of its own. */
        if (q->input >= 0 && q->depth > 0 &&
            (a->layer == SMIME_LAYER_NONE || (a->layer == SMIME_LAYER_SIGNED && !q->verify))) {
                r = assemble(s, request, q->result_spool, q->input, layer_fd, headerless, a);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The answer's fields, as WORK_OPEN_LAYER's reply carries them. */
static void put_layer(WorkerMessage *reply, LayerAnswer *a) {
        worker_message_put_u32(reply, (uint32_t) a->layer);
        worker_message_put_strv(reply, a->from);
        worker_message_put_bool(reply, a->from_unreadable);
        worker_message_put_string(reply, a->message_id);
        worker_message_put_u32(reply, a->n_matches);
        for (uint32_t i = 0; i < a->n_matches; i++)
                worker_message_put_u32(reply, a->matches[i]);
        worker_message_put_u32(reply, (uint32_t) a->check.integrity);
        worker_message_put_x509(reply, a->check.signer);
        worker_message_put_x509_stack(reply, a->check.certificates);
        worker_message_put_u32(reply, (uint32_t) a->check.digest_nid);
        worker_message_put_blob(reply, a->note.issuer, a->note.issuer_size);
        worker_message_put_string(reply, a->note.serial);
        worker_message_put_bool(reply, a->next >= 0);
        if (a->next >= 0)
                worker_message_put_fd_take(reply, TAKE_FD(a->next));
        worker_message_put_bool(reply, a->result >= 0);
        if (a->result >= 0) {
                worker_message_put_u64(reply, a->result_size);
                worker_message_put_fd_take(reply, TAKE_FD(a->result));
        }
}

/* Decrypts the enveloped layer in layer_fd (at depth) with the key of
 * certificate, then reads the content's layer: WORK_OPEN_DECRYPT's reply
 * fields in reply, or its failure. The spool files are spools' fds from
 * first_spool on (the content, a signed content's content, the result);
 * input is the whole message. */
static int decrypt_layer(WorkerSession *s, WorkerMessage *spools, unsigned first_spool, X509 *certificate,
                         STACK_OF(X509) * recipients, bool verify, uint32_t depth, int layer_fd, int input,
                         WorkerMessage *reply) {
        _cleanup_(layer_answer_done) LayerAnswer a = {.next = -1, .result = -1};
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(BIO_freep) BIO *content = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *message = NULL, *input_sha256 = NULL;
        _cleanup_(closep) int next = -1;
        LayerQuestion q = {
                .verify = verify,
                .decrypt = true,
                .depth = depth + 1,
                .recipients = recipients,
                .input = input,
                .next_spool = first_spool + 1,
                .result_spool = first_spool + 2,
        };
        int r;

        input_sha256 = sha256_fd(input);
        r = smime_read(layer_fd, &cms, &content, &message);
        if (r < 0)
                return work_fail(reply, r, SMIMED_ERR_INVALID_MESSAGE, message);
        key = worker_session_remote_key(s, certificate);
        if (!key)
                return work_fail(reply, -ENOMEM, 0, "Cannot stand in for the key.");
        next = work_spool(s, spools, first_spool, fd_size_hint(layer_fd));
        if (next < 0)
                return work_fail_errno(reply, next, "Cannot create a spool file: %m");
        r = smime_decrypt(cms, key, certificate, next, &message);
        if (r < 0)
                return work_fail(reply, r, 0, message);

        worker_message_put_string(reply, input_sha256);
        worker_message_put_fd(reply, next); /* read again below */

        /* The decrypted content's own layer at once, rather than in a request
         * of its own, with a status of its own: content that cannot be read
         * fails the call as such, not the decryption. */
        r = read_layer(s, spools, &q, next, &a);
        if (r < 0) {
                (void) layer_fail_errno(&a, r, 0, "The worker process failed on this message: %m");
                if (!a.message)
                        return r;
        }
        worker_message_put_i32(reply, a.error);
        worker_message_put_i32(reply, a.error_code);
        worker_message_put_string(reply, a.message);
        if (a.error == 0)
                put_layer(reply, &a);
        return work_reply_done(reply);
}

/* An enveloped layer for some of the token's keys: its answer goes to
 * smimed now, which may pick the key at once (WORKER_CALL_CHOOSE_KEY). The
 * index of the recipient to decrypt with, its spool files in *ret_spools;
 * -ENOKEY when smimed decides later. */
static int choose_key(WorkerSession *s, LayerAnswer *a, int n_recipients, WorkerMessage *ret_spools) {
        _cleanup_(worker_message_done) WorkerMessage call = {};
        uint32_t index = 0;
        int r;

        worker_message_init(&call, WORKER_CALL_CHOOSE_KEY);
        put_layer(&call, a);
        r = worker_session_call(s, &call, ret_spools);
        if (r < 0)
                return r;
        if (worker_message_get_u32(ret_spools, &index) < 0 || worker_message_get_end(ret_spools) < 0 ||
            ret_spools->n_fds != 3 || index >= (uint32_t) n_recipients)
                return -EBADMSG;
        return (int) index;
}

int work_open_layer(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply) {
        _cleanup_(layer_answer_done) LayerAnswer a = {.next = -1, .result = -1};
        _cleanup_(worker_message_done) WorkerMessage spools = {};
        _cleanup_(X509_freep) X509 *stored = NULL;
        _cleanup_(sk_X509_free_allp) STACK_OF(X509) *recipients = NULL;
        _cleanup_(closep) int layer_fd = -1, input = -1;
        LayerQuestion q = {.next_spool = 1, .result_spool = 3};
        int r;

        worker_message_get_bool(request, &q.verify);
        worker_message_get_bool(request, &q.decrypt);
        worker_message_get_u32(request, &q.depth);
        worker_message_get_x509(request, &stored);
        worker_message_get_x509_stack(request, &recipients);
        layer_fd = worker_message_take_fd(request, 0);
        if (request->error < 0 || layer_fd < 0)
                return work_fail(reply, request->error < 0 ? request->error : -EBADMSG, 0,
                                 "The request cannot be read.");
        input = worker_message_take_fd(request, 2); /* optional */
        q.stored_signer = stored;
        q.recipients = recipients;
        q.input = input;

        r = read_layer(s, request, &q, layer_fd, &a);
        if (r < 0)
                return r;
        if (a.error < 0)
                return work_fail(reply, a.error, a.error_code, a.message);

        if (a.layer == SMIME_LAYER_ENVELOPED && a.n_matches > 0) {
                r = choose_key(s, &a, sk_X509_num(recipients), &spools);
                if (r == -ENOKEY) {
                        worker_message_put_u32(reply, WORK_OPEN_ANSWERED_IN_CALL);
                        return work_reply_done(reply);
                }
                if (r < 0)
                        return work_fail_errno(reply, r, "smimed did not say which key decrypts: %m");
                worker_message_put_u32(reply, WORK_OPEN_DECRYPTED);
                /* At the top the layer is the whole message. */
                return decrypt_layer(s, &spools, 0, sk_X509_value(recipients, r), recipients, q.verify, q.depth,
                                     layer_fd, input >= 0 ? input : layer_fd, reply);
        }
        worker_message_put_u32(reply, WORK_OPEN_ANSWERED);
        put_layer(reply, &a);
        return work_reply_done(reply);
}

int work_open_decrypt(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply) {
        _cleanup_(X509_freep) X509 *certificate = NULL;
        _cleanup_(sk_X509_free_allp) STACK_OF(X509) *recipients = NULL;
        _cleanup_(closep) int layer_fd = -1, input = -1;
        bool verify = false;
        uint32_t depth = 0;

        worker_message_get_x509(request, &certificate);
        worker_message_get_bool(request, &verify);
        worker_message_get_u32(request, &depth);
        worker_message_get_x509_stack(request, &recipients);
        layer_fd = worker_message_take_fd(request, 0);
        input = worker_message_take_fd(request, 1);
        if (request->error < 0 || !certificate || layer_fd < 0 || input < 0)
                return work_fail(reply, -EBADMSG, 0, "The request cannot be read.");
        return decrypt_layer(s, request, 2, certificate, recipients, verify, depth, layer_fd, input, reply);
}

int work_open_assemble(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply) {
        _cleanup_(layer_answer_done) LayerAnswer a = {.next = -1, .result = -1};
        _cleanup_(closep) int input = -1, current = -1;
        int r;

        input = worker_message_take_fd(request, 0);
        current = worker_message_take_fd(request, 1);
        if (request->error < 0 || input < 0 || current < 0)
                return work_fail(reply, -EBADMSG, 0, "The request cannot be read.");
        r = assemble(s, request, 2, input, current, false, &a);
        if (r < 0)
                return r;
        if (a.error < 0)
                return work_fail(reply, a.error, a.error_code, a.message);

        worker_message_put_u64(reply, a.result_size);
        worker_message_put_fd_take(reply, TAKE_FD(a.result));
        return work_reply_done(reply);
}
