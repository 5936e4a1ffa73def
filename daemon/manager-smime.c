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
#include "fd-reader.h"
#include "fd-util.h"
#include "fd-writer.h"
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
        Manager *manager;
        SmimeRequest request;
        int input;               /* the spooled input */
        int output;              /* the client's output fd (a duplicate) */
        int result_file;         /* what goes to output */
        ClientCharge charge;     /* the input's bytes, against the spool quotas */
        FdReader *reader;
        FdWriter *writer;
        SmimeResult result;
        char *input_sha256;
        EVP_PKEY *key;           /* the token's signing key, for the worker process's ask */
        bool on_worker;          /* job_execute() runs or waits for a worker */
        bool client_gone;        /* finish when the worker is done, without the output */

        /* decided on the loop, for the worker */
        struct {
                char *spool_dir;
                uint64_t input_size;
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
        SmimeJob *next;
};

void smime_request_done(SmimeRequest *r) {
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
        fd_reader_free(j->reader);
        fd_writer_free(j->writer);
        client_charge_done(&j->charge);
        closep(&j->input);
        closep(&j->output);
        closep(&j->result_file);
        smime_request_done(&j->request);
        smime_result_done(&j->result);
        free(j->input_sha256);
        EVP_PKEY_free(j->key);
        free(j->plan.spool_dir);
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

static void smime_job_unlink(SmimeJob *j) {
        for (SmimeJob **i = &j->manager->smime_jobs; *i; i = &(*i)->next)
                if (*i == j) {
                        *i = j->next;
                        return;
                }
}

void manager_smime_jobs_free(Manager *m) {
        while (m->smime_jobs) {
                SmimeJob *j = m->smime_jobs;

                m->smime_jobs = j->next;
                smime_job_free(j);
        }
}

int manager_io_fail(Manager *m, int error, bool input, SmimedError *ret_error_code, char **ret_message) {
        uint64_t usec = m->config->io_timeout_usec;

        if (error == -ETIMEDOUT) {
                *ret_error_code = SMIMED_ERR_TIMEOUT;
                return message_fail(ret_message, error,
                                    input ? "The input did not reach its end within [Policy] IOTimeoutSec=%llu.%06llu."
                                          : "The output was not taken within [Policy] IOTimeoutSec=%llu.%06llu.",
                                    (unsigned long long) (usec / 1000000ULL), (unsigned long long) (usec % 1000000ULL));
        }
        *ret_error_code = SMIMED_ERR_INVALID_ARGUMENT;
        return message_fail(ret_message, error, input ? "The input cannot be read: %m" : "The output cannot be written: %m");
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
        r = capability_for(&ctx, address, purpose, &c);
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

int manager_smime_prepare(Manager *m, const SmimeRequest *request, char **ret_signer_fingerprint,
                          char ***ret_signer_addresses, SmimedError *ret_error_code, char **ret_message) {
        int r;

        r = policy_check_enabled(m->config, ret_message);
        if (r < 0) {
                *ret_error_code = SMIMED_ERR_DISABLED;
                return r;
        }

        if (request->sign_as) {
                _cleanup_(capability_done) Capability c = {};

                r = resolve(m, request->sign_as, CERT_PURPOSE_SIGN, &c, ret_error_code, ret_message);
                if (r < 0)
                        return r;
                if (ret_signer_fingerprint) {
                        *ret_signer_fingerprint = strdup(c.info->fingerprint);
                        if (!*ret_signer_fingerprint)
                                return -ENOMEM;
                }
                if (ret_signer_addresses) {
                        *ret_signer_addresses = strv_copy(c.info->addresses);
                        if (!*ret_signer_addresses)
                                return -ENOMEM;
                }
        }

        for (char **a = request->recipients; a && *a; a++) {
                _cleanup_(capability_done) Capability c = {};

                r = resolve(m, *a, CERT_PURPOSE_ENCRYPT, &c, ret_error_code, ret_message);
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
                r = token_key_uri(m->token, m->keys[i].id, ret);
                if (r >= 0)
                        return 0;
                *ret_error_code = SMIMED_ERR_TOKEN_UNAVAILABLE;
                return message_fail(ret_message, r, "The token cannot name the key of %s: %m", info->fingerprint);
        }
        *ret_error_code = SMIMED_ERR_NO_PRIVATE_KEY;
        return message_fail(ret_message, -ENOKEY, "The private key of %s is not in the token.", info->fingerprint);
}

/* The intermediate CA certificates above leaf (not the leaf, not a root). */
static int chain_extras(Manager *m, X509 *leaf, STACK_OF(X509) **ret) {
        Validation v = {};
        STACK_OF(X509) *extras;
        int r;

        r = validate_certificate(m->validator, leaf, CERT_PURPOSE_SIGN, &m->policy, time(NULL), &v);
        if (r < 0)
                return r;
        extras = sk_X509_new_null();
        for (int i = 1; extras && i < sk_X509_num(v.chain); i++) {
                X509 *x = sk_X509_value(v.chain, i);

                if (X509_check_issued(x, x) == X509_V_OK)
                        continue; /* the root: the recipient must have it already */
                if (!X509_up_ref(x) || !sk_X509_push(extras, x)) {
                        sk_X509_pop_free(extras, X509_free);
                        extras = NULL;
                }
        }
        validation_done(&v);
        if (!extras)
                return -ENOMEM;
        *ret = extras;
        return 0;
}

/* What the loop decides before a worker does the work: who signs with which
 * key and chain, who gets it. */
static int plan_sign(SmimeJob *j, SmimedError *ret_error_code, char **ret_message) {
        _cleanup_(capability_done) Capability c = {};
        Manager *m = j->manager;
        int r;

        r = resolve(m, j->request.sign_as, CERT_PURPOSE_SIGN, &c, ret_error_code, ret_message);
        if (r < 0)
                return r;
        r = signing_key_uri(m, c.info, &j->plan.key_uri, ret_error_code, ret_message);
        if (r < 0)
                return r;
        r = chain_extras(m, c.info->x509, &j->plan.extras);
        if (r < 0)
                return r;
        j->plan.signer_addresses = strv_copy(c.info->addresses);
        if (!j->plan.signer_addresses || !X509_up_ref(c.info->x509))
                return -ENOMEM;
        j->plan.signer = c.info->x509;
        j->result.signer = strdup(c.info->fingerprint);
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
        Manager *m = j->manager;
        int r;

        j->plan.recipients = sk_X509_new_null();
        j->result.recipients = calloc(1, sizeof(char *));
        if (!j->plan.recipients || !j->result.recipients)
                return -ENOMEM;

        for (char **a = j->request.recipients; *a; a++) {
                _cleanup_(capability_done) Capability c = {};

                r = resolve(m, *a, CERT_PURPOSE_ENCRYPT, &c, ret_error_code, ret_message);
                if (r >= 0)
                        r = plan_add_recipient(j, c.info);
                if (r < 0)
                        return r;
        }

        /* The sender's own certificate, so that the sent copy stays readable. */
        if (j->request.sender) {
                _cleanup_(capability_done) Capability c = {};
                CapabilityContext ctx;

                manager_capability_context(m, &ctx);
                r = capability_for(&ctx, j->request.sender, CERT_PURPOSE_ENCRYPT, &c);
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

        j->plan.spool_dir = spool_dir_for(j->manager->config->store_path);
        if (!j->plan.spool_dir)
                return -ENOMEM;
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

        return spool_tmpfile_sized(j->plan.spool_dir, size_hint);
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
static int job_execute(void *userdata) {
        SmimeJob *j = userdata;
        const WorkerCallbacks cb = {.key_op = job_key_op, .spool = job_spool, .userdata = j};
        _cleanup_(worker_message_done) WorkerMessage request = {}, reply = {};
        int error = 0, r;

        if (j->request.sign_as) {
                r = token_load_private_key(j->manager->token, j->plan.key_uri, &j->key);
                if (r < 0) {
                        j->error_code = SMIMED_ERR_TOKEN_UNAVAILABLE;
                        return message_fail(&j->error_message, r, "The token cannot use the signing key: %m");
                }
        }

        worker_message_init(&request, WORK_SMIME_OUT);
        put_sign_request(j, &request);
        r = worker_message_put_fd(&request, j->input);
        /* The spool files it needs: the result, the entity, the signed entity. */
        for (unsigned i = 0; r >= 0 && i < (j->request.sign_as && j->request.recipients ? 3U : 2U); i++)
                r = worker_run_put_spool(&request, j->plan.spool_dir, fd_size_hint(j->input));
        if (r < 0)
                return r;
        r = worker_run(&request, &cb, j->input, &reply, &error, &j->error_code, &j->error_message);
        j->key = (EVP_PKEY_free(j->key), NULL);
        if (r >= 0)
                r = error;
        if (r >= 0) {
                worker_message_get_u64(&reply, &j->result.size);
                worker_message_get_string(&reply, &j->input_sha256);
                j->result_file = worker_message_take_fd(&reply, 0);
                if (reply.error < 0 || j->result_file < 0)
                        r = -EBADMSG;
        }
        /* Every use of a private key is on record with the message's digest. */
        if (j->request.sign_as && !j->input_sha256)
                j->input_sha256 = sha256_fd(j->input);
        return r;
}

static void job_finish(SmimeJob *j, int error, SmimedError error_code, const char *message) {
        Manager *m = j->manager;

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
        smime_job_unlink(j);
        j->done(j, error, error_code, message, &j->result, j->userdata);
        smime_job_free(j);
        manager_job_ended(m);
}

static void on_written(FdWriter *writer, int error, void *userdata) {
        SmimeJob *j = userdata;
        _cleanup_free_ char *message = NULL;
        SmimedError error_code = 0;

        if (error < 0) {
                manager_io_fail(j->manager, error, false, &error_code, &message);
                job_finish(j, error, error_code, message);
                return;
        }
        job_finish(j, 0, 0, NULL);
}

static void job_executed(int r, void *userdata);

static int charge_input(size_t n, void *userdata) {
        SmimeJob *j = userdata;

        return client_charge_add(&j->charge, n);
}

static void on_spooled(FdReader *reader, int error, void *userdata) {
        SmimeJob *j = userdata;
        _cleanup_free_ char *message = NULL;
        SmimedError error_code = 0;
        int r;

        j->reader = fd_reader_free(j->reader);

        if (error == -EFBIG) {
                message_fail(&message, error, "The message is larger than [Policy] MaxMessageSize= (%llu bytes).",
                             (unsigned long long) j->manager->config->max_message_size);
                job_finish(j, error, SMIMED_ERR_INVALID_MESSAGE, message);
                return;
        }
        if (error == -EDQUOT) {
                job_finish(j, error, SMIMED_ERR_LIMITS_EXCEEDED, j->charge.message);
                return;
        }
        if (error < 0) {
                manager_io_fail(j->manager, error, true, &error_code, &message);
                job_finish(j, error, error_code, message);
                return;
        }

        r = job_plan(j, &error_code, &message);
        if (r < 0) {
                if (!message)
                        message_fail(&message, r, "S/MIME failed: %m");
                job_finish(j, r, error_code, message);
                return;
        }

        /* The worker owns the job's insides from here on: everything the loop says about it first. */
        log_debug("%s for %s: %" PRIu64 " bytes read, handing it to a worker.",
                  j->request.recipients ? "Encrypt" : "Sign", j->request.caller.sender, fd_size_hint(j->input));
        j->on_worker = true;
        r = worker_pool_submit(j->manager->workers, client_id(j->manager->clients, j->request.caller.sender), job_execute, job_executed, j);
        if (r < 0) {
                j->on_worker = false;
                message_fail(&message, r, "Cannot hand the work to a worker: %m");
                job_finish(j, r, 0, message);
        }
}

/* Back on the loop. */
static void job_executed(int r, void *userdata) {
        SmimeJob *j = userdata;
        _cleanup_free_ char *message = NULL;

        j->on_worker = false;
        if (j->client_gone) {
                /* Nobody to write the result to; the audit trail still records the key's use. */
                job_finish(j, -ECONNRESET, 0, "The client went away before the result was written.");
                return;
        }

        if (r < 0) {
                if (!j->error_message)
                        message_fail(&j->error_message, r, "S/MIME failed: %m");
                if (j->error_code == SMIMED_ERR_TOKEN_UNAVAILABLE)
                        manager_token_check_later(j->manager);
                job_finish(j, r, j->error_code, j->error_message);
                return;
        }

        if (j->request.sign_as)
                log_info("Signed a message as %s with the key of certificate %s.", j->request.sign_as,
                         j->result.signer);
        r = fd_writer_new(j->manager->event, j->result_file, j->output, j->manager->config->io_timeout_usec, on_written, j,
                          &j->writer);
        if (r < 0) {
                message_fail(&message, r, "The output cannot be written: %m");
                job_finish(j, r, SMIMED_ERR_INVALID_ARGUMENT, message);
        }
}

unsigned manager_smime_jobs_cancel_sender(Manager *m, const char *sender) {
        unsigned n = 0;

        for (SmimeJob *j = m->smime_jobs, *next; j; j = next) {
                next = j->next;
                if (!streq(j->request.caller.sender, sender))
                        continue;
                n++;
                if (j->on_worker)
                        j->client_gone = true; /* a worker holds it: job_executed() finishes it */
                else
                        job_finish(j, -ECONNRESET, 0, "The client went away.");
        }
        return n;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(SmimeJob *, smime_job_free);

int manager_smime_start(Manager *m, SmimeRequest *request, int input_fd, int output_fd, SmimeJobDone done,
                        void *userdata, void (*free_userdata)(void *)) {
        _cleanup_(smime_job_freep) SmimeJob *j = NULL;
        int r;

        j = calloc(1, sizeof(SmimeJob));
        if (!j)
                return -ENOMEM;
        j->manager = m;
        j->input = j->output = j->result_file = -1;
        j->done = done;

        j->output = fcntl(output_fd, F_DUPFD_CLOEXEC, 3);
        if (j->output < 0)
                return -errno;
        j->input = spool_tmpfile_for(m->config->store_path, fd_size_hint(input_fd));
        if (j->input < 0)
                return j->input;
        r = client_charge_init(&j->charge, m->clients, request->caller.sender);
        if (r < 0)
                return r;
        r = fd_reader_new_to_file(m->event, input_fd, j->input, m->config->max_message_size,
                                  m->config->io_timeout_usec, charge_input, on_spooled, j, &j->reader);
        if (r < 0)
                return r;

        /* From here on the job owns the request and the caller's userdata. */
        j->request = *request;
        *request = (SmimeRequest) {};
        j->userdata = userdata;
        j->free_userdata = free_userdata;
        j->next = m->smime_jobs;
        m->smime_jobs = TAKE_PTR(j);
        manager_job_started(m);
        return 0;
}
