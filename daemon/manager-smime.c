/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <openssl/x509v3.h>

#include "capabilities.h"
#include "job.h"
#include "fd-util.h"
#include "log.h"
#include "mail-address.h"
#include "manager-certificates.h"
#include "manager-smime.h"
#include "manager.h"
#include "policy.h"
#include "message.h"
#include "mime.h"
#include "smimed-error.h"
#include "spool.h"
#include "strv.h"
#include "worker-pool.h"
#include "worker-run.h"
#include "work-requests.h"
#include "sha256-fd.h"
#include "key-op.h"

struct SmimeJob {
        Job job; /* first: the path it takes */
        SmimeRequest request;
        SmimeResult result;
        char *input_sha256;
        EVP_PKEY *key; /* the token's signing key, for the worker process's ask */

        /* decided on the loop, for the worker */
        struct {
                char *key_uri;
                X509 *signer;
                char **signer_addresses;  /* From: and Sender: must name only these */
                STACK_OF(X509) *extras;
                STACK_OF(X509) *recipients;
        } plan;
        /* how the worker failed */
        SmimedError error_code;
        char *error_message;
        SmimeJobDone done;
        void *userdata;
        void (*free_userdata)(void *);
};

void smime_request_done(SmimeRequest *r) {
        size_t n = strv_length(r->recipients);

        for (size_t i = 0; r->recipient_certificates && i < n; i++)
                capability_done(&r->recipient_certificates[i]);
        free(r->recipient_certificates);
        capability_done(&r->signer);
        free(r->sign_as);
        strv_free(r->recipients);
        free(r->sender);
        *r = (SmimeRequest) {};
}

void smime_result_done(SmimeResult *r) {
        free(r->signer);
        strv_free(r->recipients);
        *r = (SmimeResult) {};
}

static void smime_job_free(SmimeJob *j) {
        if (!j)
                return;
        job_done(&j->job);
        smime_request_done(&j->request);
        smime_result_done(&j->result);
        free(j->input_sha256);
        EVP_PKEY_free(j->key);
        free(j->plan.key_uri);
        X509_free(j->plan.signer);
        strv_free(j->plan.signer_addresses);
        sk_X509_pop_free(j->plan.extras, X509_free);
        sk_X509_pop_free(j->plan.recipients, X509_free);
        free(j->error_message);
        if (j->free_userdata)
                j->free_userdata(j->userdata);
        free(j);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(SmimeJob *, smime_job_free);

static SmimeJob *smime_job(Job *job) {
        return (SmimeJob *) job;
}

static SmimedError capability_error_code(const char *reason) {
        if (streq(reason, "no-certificate"))
                return SMIMED_ERR_NO_CERTIFICATE;
        if (streq(reason, "no-private-key"))
                return SMIMED_ERR_NO_PRIVATE_KEY;
        if (streq(reason, "token-unavailable"))
                return SMIMED_ERR_TOKEN_UNAVAILABLE;
        return SMIMED_ERR_CERTIFICATE_INVALID;
}

/* The certificate to use for address, or the error GetCapabilities would
 * have given as its reason. */
static int resolve(Manager *m, const char *address, CertPurpose purpose, Capability *ret, SmimedError *ret_error_code,
                   char **ret_message) {
        _cleanup_(capability_done) Capability c = {};
        CapabilityContext ctx;
        int r;

        manager_capability_context(m, &ctx);
        r = capability_for_cached(m->capability_cache, &ctx, address, purpose, &c);
        if (r < 0) {
                *ret_error_code = SMIMED_ERR_STORE_FAILED;
                return message_fail(ret_message, r, "The certificate store cannot be read: %m");
        }
        if (!c.possible) {
                *ret_error_code = capability_error_code(c.reason);
                return message_fail(ret_message, -EKEYREJECTED, "Cannot %s %s: %s (%s)",
                                    purpose == CERT_PURPOSE_SIGN ? "sign as" : "encrypt to", address, c.message,
                                    c.reason);
        }
        *ret = c;
        c = (Capability) {};
        return 0;
}

int manager_smime_prepare(Manager *m, SmimeRequest *request, SmimedError *ret_error_code, char **ret_message) {
        size_t n = strv_length(request->recipients);
        int r;

        r = policy_check_enabled(m->config, ret_message);
        if (r < 0) {
                *ret_error_code = SMIMED_ERR_DISABLED;
                return r;
        }

        /* A call polkit asked about comes again: it is prepared anew. */
        capability_done(&request->signer);
        if (request->sign_as) {
                r = resolve(m, request->sign_as, CERT_PURPOSE_SIGN, &request->signer, ret_error_code, ret_message);
                if (r < 0)
                        return r;
        }

        if (!request->recipient_certificates && n > 0) {
                request->recipient_certificates = calloc(n, sizeof(Capability));
                if (!request->recipient_certificates)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                capability_done(&request->recipient_certificates[i]);
                r = resolve(m, request->recipients[i], CERT_PURPOSE_ENCRYPT, &request->recipient_certificates[i],
                            ret_error_code, ret_message);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The URI of the token key for the certificate, or the error. */
static int signing_key_uri(Manager *m, const CertInfo *info, char **ret, SmimedError *ret_error_code,
                           char **ret_message) {
        int r;

        for (size_t i = 0; i < m->n_keys; i++) {
                if (!streq(m->keys[i].spki_sha256, info->spki_sha256))
                        continue;
                if (token_get_state(m->token) != TOKEN_STATE_READY || !m->keys[i].uri)
                        r = token_key_uri(m->token, m->keys[i].id, ret); /* its error */
                else {
                        *ret = strdup(m->keys[i].uri);
                        r = *ret ? 0 : -ENOMEM;
                }
                if (r >= 0)
                        return 0;
                *ret_error_code = SMIMED_ERR_TOKEN_UNAVAILABLE;
                return message_fail(ret_message, r, "The token cannot name the key of %s: %m", info->fingerprint);
        }
        *ret_error_code = SMIMED_ERR_NO_PRIVATE_KEY;
        return message_fail(ret_message, -ENOKEY, "The private key of %s is not in the token.", info->fingerprint);
}

/* The intermediate CA certificates of a validated chain (not the leaf, not
 * a root). */
static int chain_extras(STACK_OF(X509) * chain, STACK_OF(X509) * *ret) {
        STACK_OF(X509) * extras;

        extras = sk_X509_new_null();
        for (int i = 1; extras && i < sk_X509_num(chain); i++) {
                X509 *x = sk_X509_value(chain, i);

                if (X509_check_issued(x, x) == X509_V_OK)
                        continue; /* the root: the recipient must have it already */
                if (!X509_up_ref(x) || !sk_X509_push(extras, x)) {
                        sk_X509_pop_free(extras, X509_free);
                        extras = NULL;
                }
        }
        if (!extras)
                return -ENOMEM;
        *ret = extras;
        return 0;
}

/* What the loop decides before a worker does the work: who signs with which
 * key and chain, who gets it. */
static int plan_sign(SmimeJob *j, SmimedError *ret_error_code, char **ret_message) {
        const Capability *c = &j->request.signer;
        int r;

        /* The key is looked up now: the token may have changed while the message was read. */
        r = signing_key_uri(j->job.manager, c->info, &j->plan.key_uri, ret_error_code, ret_message);
        if (r < 0)
                return r;
        r = chain_extras(c->chain, &j->plan.extras);
        if (r < 0)
                return r;
        j->plan.signer_addresses = strv_copy(c->info->addresses);
        if (!j->plan.signer_addresses || !X509_up_ref(c->info->x509))
                return -ENOMEM;
        j->plan.signer = c->info->x509;
        j->result.signer = strdup(c->info->fingerprint);
        return j->result.signer ? 0 : -ENOMEM;
}

static int plan_add_recipient(SmimeJob *j, const CertInfo *info) {
        if (strv_contains(j->result.recipients, info->fingerprint))
                return 0;
        if (strv_extend(&j->result.recipients, info->fingerprint) < 0 || !X509_up_ref(info->x509))
                return -ENOMEM;
        if (!sk_X509_push(j->plan.recipients, info->x509)) {
                X509_free(info->x509);
                return -ENOMEM;
        }
        return 0;
}

static int plan_encrypt(SmimeJob *j, SmimedError *ret_error_code, char **ret_message) {
        Manager *m = j->job.manager;
        int r;

        j->plan.recipients = sk_X509_new_null();
        j->result.recipients = calloc(1, sizeof(char *));
        if (!j->plan.recipients || !j->result.recipients)
                return -ENOMEM;

        for (size_t i = 0; j->request.recipients[i]; i++) {
                r = plan_add_recipient(j, j->request.recipient_certificates[i].info);
                if (r < 0)
                        return r;
        }

        /* The sender's own certificate, so that the sent copy stays readable. */
        if (j->request.sender) {
                _cleanup_(capability_done) Capability c = {};
                CapabilityContext ctx;

                manager_capability_context(m, &ctx);
                r = capability_for_cached(m->capability_cache, &ctx, j->request.sender, CERT_PURPOSE_ENCRYPT, &c);
                if (r >= 0 && c.possible) {
                        r = plan_add_recipient(j, c.info);
                        if (r < 0)
                                return r;
                        j->result.sender_included = true;
                } else
                        log_notice("The sender %s has no certificate to encrypt to; the sent copy is not readable "
                                   "for them.",
                                   j->request.sender);
        }
        return 0;
}

static int job_plan(SmimeJob *j, SmimedError *ret_error_code, char **ret_message) {
        int r;

        if (j->request.sign_as) {
                r = plan_sign(j, ret_error_code, ret_message);
                if (r < 0)
                        return r;
        }
        if (j->request.recipients) {
                r = plan_encrypt(j, ret_error_code, ret_message);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- on a worker thread: the worker process does the message work ---- */

static int job_spool(uint64_t size_hint, void *userdata) {
        SmimeJob *j = userdata;

        return spool_tmpfile_sized(j->job.spool_dir, size_hint);
}

/* The worker process asks for the signature: only that, only with the key
 * of the certificate polkit allowed. */
static int job_key_op(const KeyOpRequest *request, uint8_t **ret, size_t *ret_size, void *userdata) {
        SmimeJob *j = userdata;

        if (!j->key || request->kind != KEY_OP_SIGN)
                return -EPERM;
        return key_op_perform(j->key, request, ret, ret_size);
}

static void put_sign_request(SmimeJob *j, WorkerMessage *m) {
        const SignOptions *o = &j->request.sign;

        worker_message_put_bool(m, j->request.sign_as);
        worker_message_put_bool(m, o->opaque);
        worker_message_put_string(m, j->request.sign_as && o->digest ? EVP_MD_get0_name(o->digest) : NULL);
        worker_message_put_bool(m, o->pss);
        worker_message_put_x509(m, j->plan.signer);
        worker_message_put_x509_stack(m, j->plan.extras);
        worker_message_put_strv(m, j->plan.signer_addresses);
        worker_message_put_bool(m, j->request.recipients);
        worker_message_put_x509_stack(m, j->plan.recipients);
        worker_message_put_string(m, EVP_CIPHER_get0_name(j->request.cipher ? j->request.cipher : EVP_aes_256_cbc()));
        worker_message_put_bool(m, j->request.oaep);
}

/* Split, canonicalize, sign and/or encrypt: input → result_file, in the
 * worker process; the signature in the token, on this thread. */
static int smime_work(Job *job) {
        SmimeJob *j = smime_job(job);
        const WorkerCallbacks cb = {.key_op = job_key_op, .spool = job_spool, .userdata = j};
        _cleanup_(worker_message_done) WorkerMessage request = {}, reply = {};
        uint64_t input_size = fd_size_hint(j->job.input);
        unsigned n_spools = 1;
        int error = 0, r;

        if (j->request.sign_as) {
                r = token_load_private_key(j->job.manager->token, j->plan.key_uri, &j->key);
                if (r < 0) {
                        j->error_code = SMIMED_ERR_TOKEN_UNAVAILABLE;
                        return message_fail(&j->error_message, r, "The token cannot use the signing key: %m");
                }
        }

        worker_message_init(&request, WORK_SMIME_OUT);
        put_sign_request(j, &request);
        r = worker_message_put_fd(&request, j->job.input);
        /* The spool files it needs: the result, and for a large message its
         * scratch files on disk (the entity, the signed entity, one for a
         * body it must re-encode), which it would otherwise ask for in round
         * trips of their own. For a small one it has memfds of its own, kept
         * from earlier requests (worker_session_scratch()). */
        if (input_size > SPOOL_MEMORY_MAX)
                n_spools = j->request.sign_as && j->request.recipients ? 4U : 3U;
        for (unsigned i = 0; r >= 0 && i < n_spools; i++)
                r = worker_run_put_spool(&request, j->job.spool_dir, input_size);
        if (r < 0)
                return r;
        r = worker_run(&request, &cb, j->job.input, &reply, &error, &j->error_code, &j->error_message);
        j->key = (EVP_PKEY_free(j->key), NULL);
        if (r >= 0)
                r = error;
        if (r >= 0) {
                worker_message_get_u64(&reply, &j->result.size);
                worker_message_get_string(&reply, &j->input_sha256);
                j->job.result = worker_message_take_fd(&reply, 0);
                if (reply.error < 0 || j->job.result < 0)
                        r = -EBADMSG;
        }
        /* Every use of a private key is on record with the message's digest. */
        if (j->request.sign_as && !j->input_sha256)
                j->input_sha256 = sha256_fd(j->job.input);
        return r;
}

static void smime_finished(Job *job, int error, SmimedError error_code, const char *message) {
        SmimeJob *j = smime_job(job);

        /* Every use of a private key is on record, the failed ones too. */
        if (j->request.sign_as)
                audit_log(&j->request.caller, &(AuditRecord) {
                                                      .event = AUDIT_SIGN,
                                                      .operation = j->request.recipients ? "sign-encrypt" : "sign",
                                                      .outcome = error < 0 ? "failed" : "success",
                                                      .fingerprint = j->result.signer,
                                                      .address = j->request.sign_as,
                                                      .input_sha256 = j->input_sha256,
                                                      .detail = error < 0 ? message : NULL,
                                              });
        j->result.result_fd = error < 0 ? -1 : job->result;
        j->done(j, error, error_code, message, &j->result, j->userdata);
}

static void smime_spooled(Job *job) {
        SmimeJob *j = smime_job(job);
        _cleanup_free_ char *message = NULL;
        SmimedError error_code = 0;
        int r;

        r = job_plan(j, &error_code, &message);
        if (r < 0) {
                if (!message)
                        message_fail(&message, r, "S/MIME failed: %m");
                job_finish(job, r, error_code, message);
                return;
        }
        job_submit(job);
}

/* Back on the loop. */
static void smime_worked(Job *job, int r) {
        SmimeJob *j = smime_job(job);

        /* Nobody to write the result to; the audit trail still records the key's use. */
        if (job_abandoned(job))
                return;
        if (r < 0) {
                if (!j->error_message)
                        message_fail(&j->error_message, r, "S/MIME failed: %m");
                if (j->error_code == SMIMED_ERR_TOKEN_UNAVAILABLE)
                        manager_token_check_later(job->manager);
                job_finish(job, r, j->error_code, j->error_message);
                return;
        }
        /* Debug only: the audit record says it, and a second journal entry
         * per message would halve what journald takes before its rate limit
         * drops entries, audit records included. */
        if (j->request.sign_as)
                log_debug("Signed a message as %s with the key of certificate %s.", j->request.sign_as,
                          j->result.signer);
        job_write_result(job);
}

static void smime_free(Job *job) {
        smime_job_free(smime_job(job));
}

static const JobType sign_job_type = {
        .name = "Sign",
        .spooled = smime_spooled,
        .work = smime_work,
        .worked = smime_worked,
        .finished = smime_finished,
        .free = smime_free,
};

static const JobType encrypt_job_type = {
        .name = "Encrypt",
        .spooled = smime_spooled,
        .work = smime_work,
        .worked = smime_worked,
        .finished = smime_finished,
        .free = smime_free,
};

int manager_smime_start(Manager *m, SmimeRequest *request, int input_fd, int output_fd, SmimeJobDone done,
                        void *userdata, void (*free_userdata)(void *)) {
        _cleanup_(smime_job_freep) SmimeJob *j = NULL;
        int r;

        if ((request->sign_as && !request->signer.info) || (request->recipients && !request->recipient_certificates))
                return -EINVAL; /* not prepared */
        j = calloc(1, sizeof(SmimeJob));
        if (!j)
                return -ENOMEM;
        r = job_start(&j->job, m, request->recipients ? &encrypt_job_type : &sign_job_type, &request->caller, input_fd,
                      output_fd);
        if (r < 0)
                return r;

        /* From here on the job owns the request and the caller's userdata. */
        j->request = *request;
        *request = (SmimeRequest) {};
        j->done = done;
        j->userdata = userdata;
        j->free_userdata = free_userdata;
        TAKE_PTR(j);
        return 0;
}
