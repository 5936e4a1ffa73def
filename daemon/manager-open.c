/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/x509.h>

#include "audit.h"
#include "job.h"
#include "fd-util.h"
#include "log.h"
#include "mail-address.h"
#include "manager-certificates.h"
#include "manager-open.h"
#include "manager.h"
#include "policy.h"
#include "message.h"
#include "mime.h"
#include "smime-open.h"
#include "smimed-error.h"
#include "spool.h"
#include "strv.h"
#include "validate.h"
#include "worker-pool.h"
#include "worker-run.h"
#include "work-requests.h"
#include "sha256-fd.h"
#include "key-op.h"


/* Everything that reads message bytes (MIME headers, CMS, signatures,
 * decryption, the audit digest, the result) runs on a worker; the loop
 * decides (signer validation, which key, polkit) between the steps. */
typedef enum OpenPhase {
        PHASE_LAYER,          /* what the current layer is; a signed one is checked, an enveloped one read */
        PHASE_VERIFY_AGAIN,   /* a signed layer again, with the signer certificate the store holds */
        PHASE_DECRYPT,        /* the private-key operation, in the token */
        PHASE_ASSEMBLE,       /* the outer header fields and the content, as the result */
} OpenPhase;

/* A key of the token the message is encrypted to, with the certificate
 * that names it: its addresses and fingerprint are what polkit is asked
 * about. */
typedef struct DecryptCandidate {
        uint32_t recipient; /* its index in the job's recipients */
        char *key;
        X509 *certificate;
        char *fingerprint;
        char **addresses;
} DecryptCandidate;

struct OpenJob {
        Job job; /* first: the path it takes */
        bool decrypt;
        bool verify;
        char *only_key; /* the "key" option: decrypt with this key or not at all */

        int current; /* the layer being opened */
        unsigned depth;
        char **from;               /* its From addresses, normalized */
        bool from_unreadable;      /* a From: that is not a list of addresses */
        char *message_id;          /* its Message-ID:, for the audit trail */

        /* between the loop and a worker */
        OpenPhase phase;
        SmimeLayer layer;          /* what PHASE_LAYER found */
        uint32_t *matches;         /* an enveloped layer: the indices of recipients it is for */
        bool answered_in_call;     /* PHASE_LAYER: the answer came with WORKER_CALL_CHOOSE_KEY */
        uint32_t n_matches;
        int next;                  /* the content of the layer just opened */
        SignatureCheck check;      /* a signed layer's integrity */
        unsigned char *signer_issuer; /* the signer PHASE_LAYER looked for and the message lacks */
        size_t signer_issuer_size;
        char *signer_serial;
        X509 *stored_signer;       /* PHASE_VERIFY_AGAIN: found in the store */
        bool with_content;         /* PHASE_ASSEMBLE */
        SmimedError worker_error_code;
        char *worker_message;
        bool token_failed;         /* the failure was the token's, not the message's */
        EVP_PKEY *key;             /* PHASE_DECRYPT: the token's key, for the worker process's asks */
        char *input_sha256;
        int layer_error; /* PHASE_DECRYPT: the decrypted content's layer could not be read */
        SmimedError layer_error_code;
        char *layer_message;

        /* the certificates of the token's keys, which an enveloped layer may be for */
        char **recipient_keys;     /* the key of each */
        char **recipient_fingerprints;
        STACK_OF(X509) *recipients;

        /* choosing the key to decrypt with */
        DecryptCandidate *candidates;
        size_t n_candidates;
        size_t candidate;          /* the one polkit is asked about */
        size_t address;            /* and which of its addresses */
        char *refusal;             /* why the last one asked about was refused */

        OpenStatus status;
        OpenJobHooks hooks;
        void *userdata;
};

void open_status_done(OpenStatus *s) {
        free(s->encryption_message);
        free(s->key);
        free(s->key_certificate);
        free(s->signature_message);
        cert_info_free(s->signer);
        *s = (OpenStatus) {};
}

static void decrypt_candidate_done(DecryptCandidate *c) {
        free(c->key);
        X509_free(c->certificate);
        free(c->fingerprint);
        strv_free(c->addresses);
        *c = (DecryptCandidate){};
}

static bool decrypt_candidate_has_address(const DecryptCandidate *c, const char *address) {
        for (char **a = c->addresses; a && *a; a++)
                if (strcasecmp(*a, address) == 0)
                        return true;
        return false;
}

static void candidates_free(OpenJob *j) {
        for (size_t i = 0; i < j->n_candidates; i++)
                decrypt_candidate_done(&j->candidates[i]);
        j->candidates = mfree(j->candidates);
        j->n_candidates = j->candidate = j->address = 0;
}

static void signer_request_clear(OpenJob *j) {
        j->signer_issuer = mfree(j->signer_issuer);
        j->signer_issuer_size = 0;
        j->signer_serial = mfree(j->signer_serial);
}

static void open_job_free(OpenJob *j) {
        if (!j)
                return;
        job_done(&j->job);
        free(j->only_key);
        /* The decrypted or verified layers' spool files, like the input and result. */
        job_close_spool(&j->job, TAKE_FD(j->current));
        job_close_spool(&j->job, TAKE_FD(j->next));
        strv_free(j->from);
        free(j->message_id);
        free(j->matches);
        EVP_PKEY_free(j->key);
        strv_free(j->recipient_keys);
        strv_free(j->recipient_fingerprints);
        sk_X509_pop_free(j->recipients, X509_free);
        signature_check_done(&j->check);
        signer_request_clear(j);
        X509_free(j->stored_signer);
        free(j->worker_message);
        free(j->input_sha256);
        free(j->layer_message);
        candidates_free(j);
        free(j->refusal);
        open_status_done(&j->status);
        if (j->userdata && j->hooks.free_userdata)
                j->hooks.free_userdata(j->userdata);
        free(j);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(OpenJob *, open_job_free);

static OpenJob *open_job(Job *job) {
        return (OpenJob *) job;
}

static void open_job_finish(OpenJob *j, int error, SmimedError error_code, const char *message) {
        job_finish(&j->job, error, error_code, message);
}

static void open_finished(Job *job, int error, SmimedError error_code, const char *message) {
        OpenJob *j = open_job(job);

        j->status.result_fd = error < 0 ? -1 : job->result;
        j->hooks.done(j, error, error_code, message, &j->status, j->userdata);
}

static int set_text(char **field, const char *format, ...) _printf_(2, 3);
static int set_text(char **field, const char *format, ...) {
        va_list ap;
        int r;

        free(*field);
        va_start(ap, format);
        r = vasprintf(field, format, ap);
        va_end(ap);
        if (r < 0) {
                *field = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* ---- handing steps to a worker ---- */

static void open_job_submit(OpenJob *j, OpenPhase phase) {
        j->phase = phase;
        job_submit(&j->job);
}

/* ---- on a worker thread: the worker process does the message work ---- */

static int open_spool(uint64_t size_hint, void *userdata) {
        OpenJob *j = userdata;

        return spool_tmpfile_sized(j->job.spool_dir, size_hint);
}

/* The worker process asks for the private-key operation of PHASE_DECRYPT:
 * only a decryption or key agreement, only with the key polkit allowed. */
static int open_key_op(const KeyOpRequest *request, uint8_t **ret, size_t *ret_size, void *userdata) {
        OpenJob *j = userdata;

        if (j->phase != PHASE_DECRYPT || !j->key ||
            (request->kind != KEY_OP_DECRYPT && request->kind != KEY_OP_DERIVE))
                return -EPERM;
        return key_op_perform(j->key, request, ret, ret_size);
}

static int open_choose_key(WorkerMessage *call, uint32_t *ret_index, uint64_t *ret_size_hint, void *userdata);

/* Runs request on this thread's worker process; the reply's fields follow
 * in *reply. The failure, if any, is the job's. */
static int open_run(OpenJob *j, WorkerMessage *request, WorkerMessage *reply) {
        const WorkerCallbacks cb = {
                .key_op = open_key_op,
                .spool = open_spool,
                .choose_key = open_choose_key,
                .userdata = j,
        };
        int error = 0, r;

        free(j->worker_message);
        j->worker_message = NULL;
        r = worker_run(request, &cb, j->job.input, reply, &error, &j->worker_error_code, &j->worker_message);
        return r < 0 ? r : error;
}

/* The fields of a layer's answer (WORK_OPEN_LAYER's reply, or the end of
 * WORK_OPEN_DECRYPT's), its fds from fd_offset on; outer: the top layer,
 * whose From: and Message-ID: are the message's. */
static int read_layer_answer(OpenJob *j, WorkerMessage *reply, unsigned fd_offset, bool outer) {
        _cleanup_free_ uint8_t *issuer = NULL;
        uint32_t layer = 0, integrity = 0, digest_nid = 0;
        uint32_t n_recipients = j->recipients ? (uint32_t) sk_X509_num(j->recipients) : 0;
        bool has_next = false, assembled = false;

        signature_check_done(&j->check);
        signer_request_clear(j);
        closep(&j->next);
        j->matches = mfree(j->matches);
        j->n_matches = 0;
        worker_message_get_u32(reply, &layer);
        if (outer) {
                worker_message_get_strv(reply, &j->from);
                worker_message_get_bool(reply, &j->from_unreadable);
                worker_message_get_string(reply, &j->message_id);
        } else {
                _cleanup_(strv_freep) char **from = NULL;
                _cleanup_free_ char *message_id = NULL;
                bool unreadable;

                worker_message_get_strv(reply, &from);
                worker_message_get_bool(reply, &unreadable);
                worker_message_get_string(reply, &message_id);
        }
        worker_message_get_u32(reply, &j->n_matches);
        if (reply->error < 0 || j->n_matches > n_recipients)
                return -EBADMSG;
        j->matches = calloc((size_t) j->n_matches + 1, sizeof(uint32_t));
        if (!j->matches)
                return -ENOMEM;
        for (uint32_t i = 0; i < j->n_matches; i++) {
                worker_message_get_u32(reply, &j->matches[i]);
                if (j->matches[i] >= n_recipients)
                        return -EBADMSG;
        }
        worker_message_get_u32(reply, &integrity);
        worker_message_get_x509(reply, &j->check.signer);
        worker_message_get_x509_stack(reply, &j->check.certificates);
        worker_message_get_u32(reply, &digest_nid);
        worker_message_get_blob(reply, &issuer, &j->signer_issuer_size);
        worker_message_get_string(reply, &j->signer_serial);
        worker_message_get_bool(reply, &has_next);
        if (has_next)
                j->next = worker_message_take_fd(reply, fd_offset);
        worker_message_get_bool(reply, &assembled);
        if (assembled) {
                worker_message_get_u64(reply, &j->status.size);
                closep(&j->job.result);
                j->job.result = worker_message_take_fd(reply, fd_offset + (has_next ? 1 : 0));
        }
        if (reply->error < 0 || layer > SMIME_LAYER_CERTS || integrity > SIGNATURE_BROKEN ||
            (has_next && j->next < 0) || (assembled && j->job.result < 0))
                return -EBADMSG;
        j->layer = (SmimeLayer) layer;
        j->check.integrity = (SignatureIntegrity) integrity;
        j->check.digest_nid = (int) digest_nid;
        j->signer_issuer = j->signer_issuer_size > 0 ? TAKE_PTR(issuer) : NULL;
        return 0;
}

static int decrypted_at_once(OpenJob *j, int r, WorkerMessage *reply);

static int work_layer(OpenJob *j) {
        _cleanup_(worker_message_done) WorkerMessage request = {}, reply = {};
        uint32_t answer = 0;
        int r;

        worker_message_init(&request, WORK_OPEN_LAYER);
        worker_message_put_bool(&request, j->verify);
        worker_message_put_bool(&request, j->decrypt);
        worker_message_put_u32(&request, j->depth);
        worker_message_put_x509(&request, j->phase == PHASE_VERIFY_AGAIN ? j->stored_signer : NULL);
        worker_message_put_x509_stack(&request, j->recipients);
        r = worker_message_put_fd(&request, j->current);
        if (r >= 0)
                r = worker_run_put_spool(&request, j->job.spool_dir, fd_size_hint(j->current));
        /* Below a layer, the content may be the innermost: then the result comes at once. */
        if (r >= 0 && j->depth > 0)
                r = worker_message_put_fd(&request, j->job.input);
        if (r >= 0 && j->depth > 0)
                r = worker_run_put_spool(&request, j->job.spool_dir, fd_size_hint(j->job.input));
        if (r < 0)
                return r;
        j->answered_in_call = false;
        r = open_run(j, &request, &reply);
        if (j->phase == PHASE_DECRYPT) /* open_choose_key() picked the key */
                return decrypted_at_once(j, r, &reply);
        if (r < 0)
                return r;

        if (worker_message_get_u32(&reply, &answer) < 0)
                return -EBADMSG;
        if (answer == WORK_OPEN_ANSWERED_IN_CALL && j->answered_in_call)
                return worker_message_get_end(&reply) < 0 ? -EBADMSG : 0;
        if (answer != WORK_OPEN_ANSWERED)
                return -EBADMSG;
        return read_layer_answer(j, &reply, 0, j->phase == PHASE_LAYER && j->depth == 0);
}

/* WORK_OPEN_DECRYPT's reply: the digest, the decrypted content, which
 * becomes the layer being opened, and that layer's answer (or why the
 * worker could not read it, which fails the call once the loop has
 * recorded the decryption). */
static int read_decrypted(OpenJob *j, WorkerMessage *reply) {
        _cleanup_(closep) int content = -1;
        int32_t error = 0, code = 0;
        int r;

        j->layer_error = 0;
        j->layer_error_code = 0;
        j->layer_message = mfree(j->layer_message);
        j->input_sha256 = mfree(j->input_sha256);
        worker_message_get_string(reply, &j->input_sha256);
        content = worker_message_take_fd(reply, 0);
        worker_message_get_i32(reply, &error);
        worker_message_get_i32(reply, &code);
        worker_message_get_string(reply, &j->layer_message);
        if (reply->error < 0 || content < 0 || error > 0 || error == INT32_MIN)
                return -EBADMSG;

        closep(&j->current);
        j->current = TAKE_FD(content);
        j->depth++;
        closep(&j->next);
        if (error < 0) {
                j->layer_error = error;
                /* Only one of ours; anything else is no error code at all (the worker is not trusted). */
                j->layer_error_code = smimed_error_to_name(code) ? (SmimedError) code : 0;
                return 0;
        }
        r = read_layer_answer(j, reply, 1, false);
        return r < 0 ? r : 0;
}

/* The end of a decryption (r its outcome so far) on the thread. */
static int decrypt_finish(OpenJob *j, int r) {
        j->key = (EVP_PKEY_free(j->key), NULL);
        if (!j->input_sha256)
                j->input_sha256 = sha256_fd(j->job.input);
        /* A message that does not decrypt and a token that stopped answering
         * look alike from here; the token tells which. Reopening it waits
         * for the workers, so nothing changes the token under this call. */
        if (r < 0 && j->worker_error_code != SMIMED_ERR_WORKER_FAILED && token_probe(j->job.manager->token, NULL) < 0)
                j->token_failed = true;
        return r;
}

/* The private-key operation, asked of this thread by the worker process. */
static int work_decrypt(OpenJob *j) {
        const DecryptCandidate *c = &j->candidates[j->candidate];
        _cleanup_(worker_message_done) WorkerMessage request = {}, reply = {};
        _cleanup_free_ char *uri = NULL;
        uint64_t current_size;
        int r;

        r = token_key_uri(j->job.manager->token, c->key, &uri);
        if (r >= 0)
                r = token_load_private_key(j->job.manager->token, uri, &j->key);
        if (r < 0) {
                j->token_failed = true;
                return message_fail(&j->worker_message, r, "The token cannot use the key: %m");
        }

        worker_message_init(&request, WORK_OPEN_DECRYPT);
        worker_message_put_x509(&request, c->certificate);
        worker_message_put_bool(&request, j->verify);
        worker_message_put_u32(&request, j->depth);
        worker_message_put_x509_stack(&request, j->recipients);
        r = worker_message_put_fd(&request, j->current);
        if (r >= 0)
                r = worker_message_put_fd(&request, j->job.input);
        /* The content's, a signed content's and the result's spool files. */
        current_size = fd_size_hint(j->current);
        if (r >= 0)
                r = worker_run_put_spool(&request, j->job.spool_dir, current_size);
        if (r >= 0)
                r = worker_run_put_spool(&request, j->job.spool_dir, current_size);
        if (r >= 0)
                r = worker_run_put_spool(&request, j->job.spool_dir, fd_size_hint(j->job.input));
        if (r < 0)
                return r;
        r = open_run(j, &request, &reply);
        if (r >= 0)
                r = read_decrypted(j, &reply);
        return decrypt_finish(j, r);
}

/* WORK_OPEN_LAYER's reply when open_choose_key() picked the key: the
 * worker process decrypted as WORK_OPEN_DECRYPT does. */
static int decrypted_at_once(OpenJob *j, int r, WorkerMessage *reply) {
        uint32_t answer = 0;

        if (r >= 0 && (worker_message_get_u32(reply, &answer) < 0 || answer != WORK_OPEN_DECRYPTED))
                r = -EBADMSG;
        if (r >= 0)
                r = read_decrypted(j, reply);
        return decrypt_finish(j, r);
}

static int find_candidates(OpenJob *j);

/* The worker process asks, an enveloped layer read (its answer in call):
 * when polkit's recent yes is remembered for the key the loop would pick
 * (the first candidate), that key is picked here, and the worker decrypts
 * in the same request: a round trip to the loop and a second parse of the
 * message less. Else the loop decides as ever, with the answer read here. */

static int open_choose_key(WorkerMessage *call, uint32_t *ret_index, uint64_t *ret_size_hint, void *userdata) {
        static const char *const no_address[] = {"", NULL};
        OpenJob *j = userdata;
        const DecryptCandidate *c;
        _cleanup_free_ char *uri = NULL;
        const char *const *addresses;
        int r;

        if (j->phase != PHASE_LAYER || !j->decrypt || j->answered_in_call)
                return -EPROTO;
        r = read_layer_answer(j, call, 0, j->depth == 0);
        if (r < 0 || worker_message_get_end(call) < 0 || j->layer != SMIME_LAYER_ENVELOPED || j->n_matches == 0)
                return -EPROTO;
        j->answered_in_call = true;

        candidates_free(j);
        if (!j->hooks.authorized_at_once || find_candidates(j) < 0 || j->n_candidates == 0)
                return -ENOKEY;
        c = &j->candidates[0];
        addresses = c->addresses[0] ? (const char *const *) c->addresses : no_address;
        for (const char *const *a = addresses; *a; a++)
                if (!j->hooks.authorized_at_once(j, *a, c->fingerprint, j->userdata))
                        return -ENOKEY;

        /* A key the token cannot use now: the loop's way says why. */
        r = token_key_uri(j->job.manager->token, c->key, &uri);
        if (r >= 0)
                r = token_load_private_key(j->job.manager->token, uri, &j->key);
        if (r < 0)
                return -ENOKEY;
        free(j->status.key_certificate);
        j->status.key_certificate = strdup(c->fingerprint);
        if (!j->status.key_certificate) {
                j->key = (EVP_PKEY_free(j->key), NULL);
                return -ENOKEY;
        }
        log_debug("Decrypt for %s: key %s, polkit's yes remembered: decrypting at once.", j->job.caller.sender,
                  c->key);
        j->candidate = 0;
        j->phase = PHASE_DECRYPT;
        *ret_index = c->recipient;
        *ret_size_hint = MAX(fd_size_hint(j->current), fd_size_hint(j->job.input));
        return 0;
}

/* The result: the message as it came when it was not S/MIME, else the
 * outer fields back in front of the innermost entity. */
static int work_assemble(OpenJob *j) {
        _cleanup_(worker_message_done) WorkerMessage request = {}, reply = {};
        int r;

        worker_message_init(&request, WORK_OPEN_ASSEMBLE);
        r = worker_message_put_fd(&request, j->job.input);
        if (r >= 0)
                r = worker_message_put_fd(&request, j->current);
        if (r >= 0)
                r = worker_run_put_spool(&request, j->job.spool_dir, fd_size_hint(j->job.input));
        if (r < 0)
                return r;
        r = open_run(j, &request, &reply);
        if (r < 0)
                return r;
        worker_message_get_u64(&reply, &j->status.size);
        j->job.result = worker_message_take_fd(&reply, 0);
        return reply.error < 0 || j->job.result < 0 ? -EBADMSG : 0;
}

static int open_work(Job *job) {
        OpenJob *j = open_job(job);

        /* The first layer is the message, the job's own file here (job_work()). */
        if (j->depth == 0 && j->current < 0) {
                j->current = fcntl(j->job.input, F_DUPFD_CLOEXEC, 3);
                if (j->current < 0)
                        return -errno;
        }

        switch (j->phase) {
        case PHASE_LAYER:
        case PHASE_VERIFY_AGAIN:
                return work_layer(j);
        case PHASE_DECRYPT:
                return work_decrypt(j);
        case PHASE_ASSEMBLE:
                return work_assemble(j);
        }
        return -EINVAL;
}

/* ---- signatures, on the loop ---- */

/* When several signatures disagree, the first here is reported. */
static const char *const signature_precedence[] = {
        "invalid",        "no-certificate",     "revoked",         "untrusted", "expired",    "not-yet-valid",
        "weak-algorithm", "revocation-unknown", "sender-mismatch", "valid",     "not-signed",
};

static int signature_rank(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(signature_precedence); i++)
                if (streq(signature_precedence[i], s))
                        return (int) i;
        return (int) ELEMENTSOF(signature_precedence);
}

static const char *signature_from_validation(CertStatus s) {
        switch (s) {
        case CERT_STATUS_VALID:
                return "valid";
        case CERT_STATUS_EXPIRED:
                return "expired";
        case CERT_STATUS_NOT_YET_VALID:
                return "not-yet-valid";
        case CERT_STATUS_REVOKED:
                return "revoked";
        case CERT_STATUS_WEAK:
                return "weak-algorithm";
        case CERT_STATUS_REVOCATION_UNKNOWN:
                return "revocation-unknown"; /* [Revocation] Unknown=hard, and no current CRL */
        default:
                return "untrusted"; /* no chain, or a certificate not meant for signing mail */
        }
}

/* The first From address the signer's certificate does not carry, or NULL. */
static const char *from_not_of(char **from, const CertInfo *signer) {
        for (char **a = from; a && *a; a++)
                if (!strv_contains(signer->addresses, *a))
                        return *a;
        return NULL;
}

/* Stores the signer and its chain, so that a reply can be encrypted to it;
 * each certificate that is new to the store is on the audit trail with the
 * caller and the mail that brought it, and why (detail). */
static void auto_import(OpenJob *j, STACK_OF(X509) * chain, const char *detail) {
        _cleanup_(strv_freep) char **added = NULL;
        _cleanup_free_ char *message = NULL;
        int r;

        if (!j->job.manager->config->auto_import)
                return;
        r = manager_store_certificates(j->job.manager, chain, false, NULL, &added, &message);
        if (r < 0) {
                log_warning("Cannot store the certificate of a verified signer: %s", strempty(message));
                audit_log(&j->job.caller, &(AuditRecord){
                                                  .event = AUDIT_CERTIFICATE_IMPORT,
                                                  .operation = "auto-import",
                                                  .outcome = "failed",
                                                  .mail_message_id = j->message_id,
                                                  .detail = message,
                                          });
                return;
        }
        for (char **f = added; f && *f; f++)
                audit_log(&j->job.caller, &(AuditRecord){
                                                  .event = AUDIT_CERTIFICATE_IMPORT,
                                                  .operation = "auto-import",
                                                  .outcome = "success",
                                                  .fingerprint = *f,
                                                  .mail_message_id = j->message_id,
                                                  .detail = detail,
                                          });
}

/* A certs-only message (a correspondent's certificates, sent to be written
 * to): each certificate that validates, with its chain, is stored as a
 * signer's would be; the others are left out. The message itself comes
 * back as it is, neither encrypted nor signed. */
static int import_carried_certificates(OpenJob *j) {
        Manager *m = j->job.manager;
        unsigned valid = 0;
        int r;

        for (int i = 0; i < sk_X509_num(j->check.certificates); i++) {
                X509 *x = sk_X509_value(j->check.certificates, i);
                CertPurpose purpose = CERT_PURPOSE_ANY;
                Validation v = {};

                if (X509_check_ca(x) > 0)
                        continue; /* a CA comes in with the chain of a certificate it issued */
                r = validate_certificate_extra(m->validator, x, j->check.certificates, &m->policy, time(NULL),
                                               &purpose, 1, &v);
                if (r < 0)
                        return r;
                if (v.status == CERT_STATUS_VALID) {
                        auto_import(j, v.chain, "a certificate of a certs-only message, valid");
                        valid++;
                } else
                        log_info("A certs-only message carries a certificate that is not stored: %s", v.message);
                validation_done(&v);
        }
        log_info("A certs-only message carried %d certificates, %u of them valid.", sk_X509_num(j->check.certificates),
                 valid);
        return 0;
}

/* Judges one signed layer; the worst judgement over all layers is kept. */
static int judge_signature(OpenJob *j, SignatureCheck *check) {
        Manager *m = j->job.manager;
        const char *verdict;
        _cleanup_free_ char *text = NULL;
        _cleanup_(cert_info_freep) CertInfo *signer = NULL;
        Validation v = {};
        int r;

        if (check->signer) {
                r = cert_info_new(check->signer, &signer);
                if (r < 0)
                        return r;
        }

        if (check->integrity == SIGNATURE_NO_CERTIFICATE) {
                verdict = "no-certificate";
                r = set_text(&text, "Sign: Unable to find certificate for validation.");
        } else if (check->integrity == SIGNATURE_BROKEN) {
                verdict = "invalid";
                r = set_text(&text, "Sign: The content was changed after it was signed; the signature does not match.");
        } else {
                CertPurpose purpose = CERT_PURPOSE_SIGN;

                r = validate_certificate_extra(m->validator, check->signer, check->certificates, &m->policy,
                                               time(NULL), &purpose, 1, &v);
                if (r < 0)
                        return r;
                verdict = signature_from_validation(v.status);

                if (v.status != CERT_STATUS_VALID)
                        r = set_text(&text, "Sign: %s", v.message);
                else if (policy_digest_is_weak(m->config, check->digest_nid)) {
                        verdict = "weak-algorithm";
                        r = set_text(&text, "Sign: The signature uses %s, which is no longer safe.",
                                     OBJ_nid2sn(check->digest_nid));
                } else if (m->config->require_sender_match && j->from_unreadable) {
                        verdict = "sender-mismatch";
                        r = set_text(&text, "Sign: The message's From: field cannot be read as mail addresses, so "
                                            "the signer cannot be said to be its sender.");
                } else if (m->config->require_sender_match && from_not_of(j->from, signer)) {
                        _cleanup_free_ char *addresses = strv_join(signer->addresses, ", ");

                        verdict = "sender-mismatch";
                        r = set_text(&text, "Sign: The message is from %s, but the signer's certificate is for %s.",
                                     from_not_of(j->from, signer),
                                     addresses && addresses[0] ? addresses : "no mail address");
                } else {
                        _cleanup_free_ char *summary = cert_info_summary(signer);

                        r = set_text(&text, "Signed by %s.", strempty(summary));
                        auto_import(j, v.chain, "the signer (or its chain) of a valid signature");
                }
        }
        validation_done(&v);
        if (r < 0)
                return r;

        if (!j->status.signature || signature_rank(verdict) < signature_rank(j->status.signature) ||
            (streq(verdict, "valid") && streq(j->status.signature, "valid"))) {
                j->status.signature = verdict;
                free(j->status.signature_message);
                j->status.signature_message = TAKE_PTR(text);
                cert_info_free(j->status.signer);
                j->status.signer = TAKE_PTR(signer);
        }
        return 0;
}

/* ---- the layers, on the loop ---- */

static void next_layer(OpenJob *j) {
        closep(&j->current);
        j->current = TAKE_FD(j->next);
        j->depth++;
        open_job_submit(j, PHASE_LAYER);
}

static void assembled(OpenJob *j);

/* The result: the message as it came when it was not S/MIME, nothing when
 * its content could not be opened (both made here: no message bytes are
 * read), what the worker assembled with the last layer, or else the outer
 * fields put back in front of the innermost content by a worker. */
static void finish(OpenJob *j) {
        _cleanup_free_ char *message = NULL;

        if (j->job.result < 0 && (!j->with_content || j->depth == 0)) {
                j->job.result = j->with_content ? fcntl(j->job.input, F_DUPFD_CLOEXEC, 3)
                                                : spool_tmpfile_sized(j->job.spool_dir, 0);
                if (j->job.result < 0) {
                        int r = message_fail(&message, j->with_content ? -errno : j->job.result,
                                             "The result cannot be written: %m");

                        open_job_finish(j, r, 0, message);
                        return;
                }
                j->status.size = j->with_content ? fd_size_hint(j->job.input) : 0;
        }
        if (j->job.result >= 0)
                assembled(j);
        else
                open_job_submit(j, PHASE_ASSEMBLE);
}

static void finish_without_content(OpenJob *j) {
        if (!j->status.signature) {
                j->status.signature = "not-signed";
                set_text(&j->status.signature_message, "Not known: the content could not be opened.");
        }
        j->with_content = false;
        closep(&j->job.result); /* not what a worker may have assembled */
        finish(j);
}

static void finish_with_content(OpenJob *j) {
        if (!j->status.encryption) {
                j->status.encryption = "not-encrypted";
                set_text(&j->status.encryption_message, "The message was not encrypted.");
        }
        if (!j->status.signature) {
                j->status.signature = "not-signed";
                set_text(&j->status.signature_message, "The message was not signed.");
        }
        j->with_content = true;
        finish(j);
}

static void signed_layer_checked(OpenJob *j) {
        _cleanup_free_ char *message = NULL;
        int r;

        /* The message lacks the signer's certificate: the store may have it. */
        if (j->check.integrity == SIGNATURE_NO_CERTIFICATE && j->signer_issuer && !j->stored_signer) {
                X509 *x = NULL;

                (void) store_find_by_issuer_serial(j->job.manager->store, j->signer_issuer, j->signer_issuer_size,
                                                   j->signer_serial, &x);
                signer_request_clear(j);
                if (x) {
                        j->stored_signer = x;
                        open_job_submit(j, PHASE_VERIFY_AGAIN);
                        return;
                }
        }
        signer_request_clear(j);
        j->stored_signer = (X509_free(j->stored_signer), NULL);

        r = judge_signature(j, &j->check);
        signature_check_done(&j->check);
        if (r < 0) {
                (void) message_fail(&message, r, "The signature cannot be judged: %m");
                open_job_finish(j, r, 0, message);
                return;
        }
        next_layer(j);
}

/* ---- which key decrypts, and polkit ---- */

static void decrypt_authorize_next(OpenJob *j);

/* The keys of the token the message is encrypted to (the worker process
 * said which of their certificates it names), one certificate each. */
static int find_candidates(OpenJob *j) {
        for (uint32_t i = 0; i < j->n_matches; i++) {
                uint32_t k = j->matches[i];
                DecryptCandidate *c, *more;
                bool known = false;

                for (size_t n = 0; n < j->n_candidates; n++)
                        known = known || streq(j->candidates[n].key, j->recipient_keys[k]);
                if (known)
                        continue; /* one certificate per key */
                if (j->only_key && !strchr(j->only_key, '@') && !streq(j->only_key, j->recipient_keys[k]))
                        continue;
                more = reallocarray(j->candidates, j->n_candidates + 1, sizeof(DecryptCandidate));
                if (!more)
                        return -ENOMEM;
                j->candidates = more;
                c = &j->candidates[j->n_candidates++];
                *c = (DecryptCandidate){.recipient = k, .certificate = sk_X509_value(j->recipients, (int) k)};
                if (!X509_up_ref(c->certificate)) {
                        c->certificate = NULL;
                        return -ENOMEM;
                }
                c->key = strdup(j->recipient_keys[k]);
                c->fingerprint = strdup(j->recipient_fingerprints[k]);
                if (!c->key || !c->fingerprint || certificate_addresses(c->certificate, &c->addresses) < 0)
                        return -ENOMEM;
                /* "key" given as an address: the keys whose certificate names it. */
                if (j->only_key && strchr(j->only_key, '@') && !decrypt_candidate_has_address(c, j->only_key))
                        decrypt_candidate_done(&j->candidates[--j->n_candidates]);
        }
        return 0;
}

/* Every certificate in the store of a key in the token: an enveloped layer
 * may be for any of them. The same for every Decrypt until the store or the
 * token's keys change (its store queries were a tenth of the loop's time
 * per Decrypt): kept in the Manager, stamped like the capability cache. */
typedef struct DecryptRecipients DecryptRecipients;

struct DecryptRecipients {
        STACK_OF(X509) * certificates;
        char **keys; /* the key of each */
        char **fingerprints;
        uint64_t store_generation;
        uint64_t manager_generation;
        bool incomplete; /* a store query failed: used once, not kept */
};

static DecryptRecipients *decrypt_recipients_free(DecryptRecipients *r) {
        if (!r)
                return NULL;
        sk_X509_pop_free(r->certificates, X509_free);
        strv_free(r->keys);
        strv_free(r->fingerprints);
        return mfree(r);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DecryptRecipients *, decrypt_recipients_free);

void manager_open_forget(Manager *m) {
        m->decrypt_recipients = decrypt_recipients_free(m->decrypt_recipients);
}

static int decrypt_recipients_load(Manager *m, DecryptRecipients **ret) {
        _cleanup_(decrypt_recipients_freep) DecryptRecipients *r = calloc(1, sizeof(DecryptRecipients));

        if (!r)
                return -ENOMEM;
        /* Read before the store: a change meanwhile makes these stale, never the other way round. */
        r->store_generation = store_generation(m->store);
        r->manager_generation = m->change_generation;
        r->certificates = sk_X509_new_null();
        r->keys = calloc(1, sizeof(char *));
        r->fingerprints = calloc(1, sizeof(char *));
        if (!r->certificates || !r->keys || !r->fingerprints)
                return -ENOMEM;
        for (size_t k = 0; k < m->n_keys; k++) {
                _cleanup_(strv_freep) char **fingerprints = NULL;

                if (!m->keys[k].spki_sha256[0])
                        continue;
                if (store_find_by_spki(m->store, m->keys[k].spki_sha256, &fingerprints) < 0) {
                        r->incomplete = true;
                        continue;
                }
                for (char **f = fingerprints; *f; f++) {
                        X509 *x = NULL;

                        if (store_get_certificate(m->store, *f, &x, NULL) < 0) {
                                r->incomplete = true;
                                continue;
                        }
                        if (!sk_X509_push(r->certificates, x)) {
                                X509_free(x);
                                return -ENOMEM;
                        }
                        if (strv_extend(&r->keys, m->keys[k].id) < 0 || strv_extend(&r->fingerprints, *f) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(r);
        return 0;
}

static int collect_recipients(OpenJob *j) {
        Manager *m = j->job.manager;
        _cleanup_(decrypt_recipients_freep) DecryptRecipients *once = NULL;
        DecryptRecipients *r = m->decrypt_recipients;
        int e;

        if (!r || r->store_generation != store_generation(m->store) || r->manager_generation != m->change_generation) {
                manager_open_forget(m);
                e = decrypt_recipients_load(m, &r);
                if (e < 0)
                        return e;
                if (r->incomplete)
                        once = r;
                else
                        m->decrypt_recipients = r;
        }
        j->recipients = X509_chain_up_ref(r->certificates);
        j->recipient_keys = strv_copy(r->keys);
        j->recipient_fingerprints = strv_copy(r->fingerprints);
        return j->recipients && j->recipient_keys && j->recipient_fingerprints ? 0 : -ENOMEM;
}

static void decrypt_with_candidate(OpenJob *j) {
        const DecryptCandidate *c = &j->candidates[j->candidate];

        free(j->status.key_certificate);
        j->status.key_certificate = strdup(c->fingerprint);
        if (!j->status.key_certificate) {
                open_job_finish(j, -ENOMEM, 0, "Out of memory.");
                return;
        }
        log_debug("Decrypt for %s: key %s, handing it to a worker.", j->job.caller.sender, c->key);
        open_job_submit(j, PHASE_DECRYPT);
}

void manager_open_job_authorized(OpenJob *j, bool allowed, const char *refusal) {
        if (allowed)
                j->address++;
        else {
                /* Not this key: the next one the message is encrypted to may be the caller's. */
                free(j->refusal);
                j->refusal = strdup(refusal ?: "Not authorized.");
                j->candidate++;
                j->address = 0;
        }
        decrypt_authorize_next(j);
}

/* The caller is asked about each candidate in turn, for every address of
 * its certificate (a key speaks for all of them); the first candidate
 * authorized for all decrypts. */
static void decrypt_authorize_next(OpenJob *j) {
        _cleanup_free_ char *text = NULL;
        int r;

        while (j->candidate < j->n_candidates) {
                const DecryptCandidate *c = &j->candidates[j->candidate];
                const char *address = c->addresses[0] ? c->addresses[j->address] : (j->address == 0 ? "" : NULL);

                if (!address) {
                        decrypt_with_candidate(j);
                        return;
                }
                r = j->hooks.authorize(j, address, c->fingerprint, j->userdata);
                if (r < 0) {
                        open_job_finish(j, r, 0, "Cannot ask whether the caller may use the key.");
                        return;
                }
                if (r == 0)
                        return; /* manager_open_job_authorized() goes on */
                j->address++;
        }

        /* Keys matched, the caller may use none of them. */
        (void) message_fail(
                &text, -EACCES,
                "The message is encrypted to %zu key%s of smimed, and this caller may use none of them: %s",
                j->n_candidates, j->n_candidates == 1 ? "" : "s", strempty(j->refusal));
        open_job_finish(j, -EACCES, 0, text);
}

static void enveloped_layer_read(OpenJob *j) {
        int r;

        candidates_free(j);
        r = find_candidates(j);
        if (r < 0) {
                open_job_finish(j, r, 0, "Out of memory.");
                return;
        }
        if (j->n_candidates == 0 && token_get_state(j->job.manager->token) != TOKEN_STATE_READY) {
                _cleanup_free_ char *text = NULL;

                /* The key may well be in the token; smimed cannot see it now. */
                (void) message_fail(&text, -ENODEV,
                                    "The message is encrypted and the token is %s (%s); try again when it is ready.",
                                    token_state_to_string(token_get_state(j->job.manager->token)),
                                    strempty(token_get_state_reason(j->job.manager->token)));
                open_job_finish(j, -ENODEV, SMIMED_ERR_TOKEN_UNAVAILABLE, text);
                return;
        }
        if (j->n_candidates == 0) {
                j->status.encryption = "no-private-key";
                if (j->only_key)
                        set_text(&j->status.encryption_message, "Encryption: The message is not encrypted to key %s.",
                                 j->only_key);
                else
                        set_text(&j->status.encryption_message, "Encryption: Unable to find private key to decrypt.");
                finish_without_content(j);
                return;
        }
        decrypt_authorize_next(j);
}

/* Every use of a private key is on record, with the addresses and the
 * fingerprint of the certificate polkit was asked about. */
static void audit_decryption(OpenJob *j, int r, const char *message) {
        const DecryptCandidate *c = &j->candidates[j->candidate];
        _cleanup_free_ char *addresses = strv_join(c->addresses, ", ");

        audit_log(&j->job.caller, &(AuditRecord){
                                          .event = AUDIT_DECRYPT,
                                          .operation = "decrypt",
                                          .outcome = r < 0 ? "failed" : "success",
                                          .fingerprint = c->fingerprint,
                                          .key = c->key,
                                          .address = addresses,
                                          .input_sha256 = j->input_sha256,
                                          .mail_message_id = j->message_id,
                                          .detail = r < 0 ? message : NULL,
                                  });
}

static void layer_read(OpenJob *j);

static void decrypted(OpenJob *j, int r, const char *message) {
        const DecryptCandidate *c = &j->candidates[j->candidate];

        if (r < 0) {
                closep(&j->next);
                manager_token_check_later(j->job.manager);
                if (j->worker_error_code == SMIMED_ERR_WORKER_FAILED) {
                        /* The worker process died or overran its limits: the call fails, as in any other step. */
                        open_job_finish(j, r, SMIMED_ERR_WORKER_FAILED, message ? message : strerror(-r));
                        return;
                }
                if (j->token_failed) {
                        _cleanup_free_ char *text = NULL;

                        (void) message_fail(&text, r, "Decryption with the key of %s failed in the token: %s",
                                            c->fingerprint, message ? message : strerror(-r));
                        open_job_finish(j, r, SMIMED_ERR_TOKEN_UNAVAILABLE, text);
                        return;
                }
                j->status.encryption = "failed";
                set_text(&j->status.encryption_message, "Encryption: The message could not be decrypted: %s",
                         message ? message : strerror(-r));
                finish_without_content(j);
                return;
        }

        log_debug("Decrypted a message with key %s.", c->key); /* the audit record says it (manager-smime.c) */
        j->status.encryption = "encrypted";
        free(j->status.key);
        j->status.key = strdup(c->key);
        set_text(&j->status.encryption_message, "Decrypted with the key of certificate %s.", c->fingerprint);
        candidates_free(j);
        /* The worker read the content's layer with the decryption. */
        if (j->layer_error < 0) {
                open_job_finish(j, j->layer_error, j->layer_error_code, j->layer_message ?: strerror(-j->layer_error));
                return;
        }
        layer_read(j);
}

/* A layer's answer is in: what comes next. */
static void layer_read(OpenJob *j) {
        int r;

        if (j->layer == SMIME_LAYER_NONE) {
                finish_with_content(j);
                return;
        }
        if (j->layer == SMIME_LAYER_CERTS) {
                r = import_carried_certificates(j);
                signature_check_done(&j->check);
                if (r < 0) {
                        open_job_finish(j, r, 0, strerror(-r));
                        return;
                }
                finish_with_content(j);
                return;
        }
        if (j->layer == SMIME_LAYER_SIGNED && !j->verify) {
                /* Asked not to: say so, rather than "not signed". */
                j->status.signature = "not-verified";
                set_text(&j->status.signature_message,
                         "The message is signed; the signature was not checked (verify=false).");
                finish_with_content(j);
                return;
        }
        if (j->layer == SMIME_LAYER_ENVELOPED)
                enveloped_layer_read(j);
        else
                signed_layer_checked(j);
}

/* ---- output ---- */

static void assembled(OpenJob *j) {
        j->status.has_content = j->with_content;
        job_write_result(&j->job);
}

/* Back on the loop after each step. */
static void open_worked(Job *job, int r) {
        OpenJob *j = open_job(job);
        _cleanup_free_ char *message = TAKE_PTR(j->worker_message);

        /* Also for a client that left; not for work cancelled before it began. */
        if (j->phase == PHASE_DECRYPT && r != -ECANCELED)
                audit_decryption(j, r, message);
        if (job_abandoned(job))
                return;

        switch (j->phase) {
        case PHASE_LAYER:
                if (r < 0)
                        break;
                layer_read(j);
                return;
        case PHASE_VERIFY_AGAIN:
                if (r < 0)
                        break;
                signed_layer_checked(j);
                return;
        case PHASE_DECRYPT:
                decrypted(j, r, message);
                return;
        case PHASE_ASSEMBLE:
                if (r < 0)
                        break;
                assembled(j);
                return;
        }

        open_job_finish(j, r, j->worker_error_code, message ? message : strerror(-r));
}

/* ---- input ---- */

static void open_spooled(Job *job) {
        OpenJob *j = open_job(job);
        struct stat st;

        if (fstat(j->job.input, &st) < 0 || st.st_size == 0) {
                open_job_finish(j, -EBADMSG, SMIMED_ERR_INVALID_MESSAGE, "The message is empty.");
                return;
        }
        /* The header block is the worker process's to read, with the rest. */
        if (j->decrypt && collect_recipients(j) < 0) {
                open_job_finish(j, -ENOMEM, 0, "Out of memory.");
                return;
        }

        open_job_submit(j, PHASE_LAYER); /* the message is the first layer: open_work() */
}

static void open_free(Job *job) {
        open_job_free(open_job(job));
}

static const JobType decrypt_job_type = {
        .name = "Decrypt",
        .spooled = open_spooled,
        .work = open_work,
        .worked = open_worked,
        .finished = open_finished,
        .free = open_free,
};

static const JobType verify_job_type = {
        .name = "Verify",
        .spooled = open_spooled,
        .work = open_work,
        .worked = open_worked,
        .finished = open_finished,
        .free = open_free,
};

int manager_open_start(Manager *m, const OpenRequest *request, const OpenJobHooks *hooks, void *userdata) {
        _cleanup_(open_job_freep) OpenJob *j = NULL;
        int r;

        j = calloc(1, sizeof(OpenJob));
        if (!j)
                return -ENOMEM;
        j->current = j->next = -1;
        if (request->key) {
                j->only_key = strdup(request->key);
                if (!j->only_key)
                        return -ENOMEM;
        }
        r = job_start(&j->job, m, request->decrypt ? &decrypt_job_type : &verify_job_type, &request->caller,
                      request->input_fd, request->output_fd);
        if (r < 0)
                return r;

        j->decrypt = request->decrypt;
        j->verify = request->verify;
        j->hooks = *hooks;
        j->userdata = userdata;
        TAKE_PTR(j);
        return 0;
}
