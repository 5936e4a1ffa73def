/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <openssl/x509v3.h>

#include "capabilities.h"
#include "fd-reader.h"
#include "fd-writer.h"
#include "log.h"
#include "manager-certificates.h"
#include "manager-smime.h"
#include "manager.h"
#include "message.h"
#include "mime.h"
#include "smimed-errors.h"
#include "strv.h"

#define SMIME_IO_TIMEOUT_USEC (60ULL * 1000000ULL)

struct SmimeJob {
        Manager *manager;
        SmimeRequest request;
        int input;               /* the spooled input */
        int output;              /* the client's output fd (a duplicate) */
        int result_file;         /* what goes to output */
        FdReader *reader;
        FdWriter *writer;
        SmimeResult result;
        char *input_sha256;
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
        closep(&j->input);
        closep(&j->output);
        closep(&j->result_file);
        smime_request_done(&j->request);
        smime_result_done(&j->result);
        free(j->input_sha256);
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

int manager_tmpfile(Manager *m) {
        _cleanup_free_ char *copy = strdup(m->config->store_path);
        int fd;

        if (!copy)
                return -ENOMEM;
        /* Disk, not memory: messages may be large. */
        fd = open(dirname(copy), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
                return fd;
        fd = memfd_create("smimed-spool", MFD_CLOEXEC);
        return fd >= 0 ? fd : -errno;
}

static int spool_tmpfile(void *userdata) {
        return manager_tmpfile(userdata);
}

static const char *capability_error_name(const char *reason) {
        if (streq(reason, "no-certificate"))
                return SMIMED_ERROR_NO_CERTIFICATE;
        if (streq(reason, "no-private-key"))
                return SMIMED_ERROR_NO_PRIVATE_KEY;
        if (streq(reason, "token-unavailable"))
                return SMIMED_ERROR_TOKEN_UNAVAILABLE;
        return SMIMED_ERROR_CERTIFICATE_INVALID;
}

/* The certificate to use for address, or the error GetCapabilities would
 * have given as its reason. */
static int resolve(Manager *m, const char *address, CertPurpose purpose, Capability *ret, const char **ret_error_name,
                   char **ret_message) {
        _cleanup_(capability_done) Capability c = {};
        CapabilityContext ctx;
        int r;

        manager_capability_context(m, &ctx);
        r = capability_for(&ctx, address, purpose, &c);
        if (r < 0) {
                *ret_error_name = SMIMED_ERROR_STORE_FAILED;
                return message_fail(ret_message, r, "The certificate store cannot be read: %m");
        }
        if (!c.possible) {
                *ret_error_name = capability_error_name(c.reason);
                return message_fail(ret_message, -EKEYREJECTED, "Cannot %s %s: %s (%s)",
                                    purpose == CERT_PURPOSE_SIGN ? "sign as" : "encrypt to", address, c.message,
                                    c.reason);
        }
        *ret = c;
        c = (Capability) {};
        return 0;
}

int manager_smime_prepare(Manager *m, const SmimeRequest *request, char **ret_signer_fingerprint,
                          const char **ret_error_name, char **ret_message) {
        int r;

        if (!m->config->policy_enabled) {
                *ret_error_name = SMIMED_ERROR_DISABLED;
                return message_fail(ret_message, -ESHUTDOWN, "S/MIME is turned off by policy ([Policy] Enabled=no).");
        }

        if (request->sign_as) {
                _cleanup_(capability_done) Capability c = {};

                r = resolve(m, request->sign_as, CERT_PURPOSE_SIGN, &c, ret_error_name, ret_message);
                if (r < 0)
                        return r;
                if (ret_signer_fingerprint) {
                        *ret_signer_fingerprint = strdup(c.info->fingerprint);
                        if (!*ret_signer_fingerprint)
                                return -ENOMEM;
                }
        }

        for (char **a = request->recipients; a && *a; a++) {
                _cleanup_(capability_done) Capability c = {};

                r = resolve(m, *a, CERT_PURPOSE_ENCRYPT, &c, ret_error_name, ret_message);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void x509_stack_freep(STACK_OF(X509) **s) {
        sk_X509_pop_free(*s, X509_free);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);

/* The private key of the certificate, from the token. */
static int load_signing_key(Manager *m, const CertInfo *info, EVP_PKEY **ret, const char **ret_error_name,
                            char **ret_message) {
        _cleanup_free_ char *uri = NULL;
        int r;

        for (size_t i = 0; i < m->n_keys; i++) {
                if (!streq(m->keys[i].spki_sha256, info->spki_sha256))
                        continue;
                r = token_key_uri(m->token, m->keys[i].id, &uri);
                if (r >= 0)
                        r = token_load_private_key(m->token, uri, ret);
                if (r >= 0)
                        return 0;
                *ret_error_name = SMIMED_ERROR_TOKEN_UNAVAILABLE;
                return message_fail(ret_message, r, "The token cannot use the key of %s: %m", info->fingerprint);
        }
        *ret_error_name = SMIMED_ERROR_NO_PRIVATE_KEY;
        return message_fail(ret_message, -ENOKEY, "The private key of %s is not in the token.", info->fingerprint);
}

/* The intermediate CA certificates above leaf (not the leaf, not a root). */
static int chain_extras(Manager *m, X509 *leaf, STACK_OF(X509) **ret) {
        Validation v = {};
        STACK_OF(X509) *extras;
        int r;

        r = validate_certificate(m->store, leaf, CERT_PURPOSE_SIGN, &m->policy, time(NULL), &v);
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

static int job_sign(SmimeJob *j, int entity, int out, const char **ret_error_name, char **ret_message) {
        _cleanup_(capability_done) Capability c = {};
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(x509_stack_freep) STACK_OF(X509) *extras = NULL;
        Manager *m = j->manager;
        int r;

        r = resolve(m, j->request.sign_as, CERT_PURPOSE_SIGN, &c, ret_error_name, ret_message);
        if (r < 0)
                return r;
        r = load_signing_key(m, c.info, &key, ret_error_name, ret_message);
        if (r < 0)
                return r;
        r = chain_extras(m, c.info->x509, &extras);
        if (r < 0)
                return r;

        r = smime_sign(entity, out, c.info->x509, key, extras, &j->request.sign, ret_message);
        if (r < 0) {
                /* -EINVAL: an option the key cannot do (RSA-PSS with an EC key). */
                *ret_error_name = r == -EINVAL ? SMIMED_ERROR_INVALID_ARGUMENT : SMIMED_ERROR_TOKEN_UNAVAILABLE;
                return r;
        }
        log_info("Signed a message as %s with key of certificate %s.", j->request.sign_as, c.info->fingerprint);
        j->result.signer = strdup(c.info->fingerprint);
        return j->result.signer ? 0 : -ENOMEM;
}

static int job_encrypt(SmimeJob *j, int entity, int out, const char **ret_error_name, char **ret_message) {
        _cleanup_(x509_stack_freep) STACK_OF(X509) *certs = sk_X509_new_null();
        _cleanup_(strv_freep) char **fingerprints = NULL;
        Manager *m = j->manager;
        int r;

        if (!certs)
                return -ENOMEM;
        for (char **a = j->request.recipients; *a; a++) {
                _cleanup_(capability_done) Capability c = {};

                r = resolve(m, *a, CERT_PURPOSE_ENCRYPT, &c, ret_error_name, ret_message);
                if (r < 0)
                        return r;
                if (strv_contains(fingerprints, c.info->fingerprint))
                        continue;
                if (strv_extend(&fingerprints, c.info->fingerprint) < 0 || !X509_up_ref(c.info->x509) ||
                    !sk_X509_push(certs, c.info->x509))
                        return -ENOMEM;
        }

        /* The sender's own certificate, so that the sent copy stays readable. */
        if (j->request.sender) {
                _cleanup_(capability_done) Capability c = {};
                CapabilityContext ctx;

                manager_capability_context(m, &ctx);
                r = capability_for(&ctx, j->request.sender, CERT_PURPOSE_ENCRYPT, &c);
                if (r >= 0 && c.possible && !strv_contains(fingerprints, c.info->fingerprint)) {
                        if (strv_extend(&fingerprints, c.info->fingerprint) < 0 || !X509_up_ref(c.info->x509) ||
                            !sk_X509_push(certs, c.info->x509))
                                return -ENOMEM;
                        j->result.sender_included = true;
                } else if (r >= 0 && c.possible)
                        j->result.sender_included = true;
                else
                        log_notice("The sender %s has no certificate to encrypt to; the sent copy is not readable "
                                   "for them.",
                                   j->request.sender);
        }

        r = smime_encrypt(entity, out, certs, j->request.cipher ? j->request.cipher : EVP_aes_256_cbc(),
                          j->request.oaep, ret_message);
        if (r < 0) {
                *ret_error_name = SMIMED_ERROR_CERTIFICATE_INVALID;
                return r;
        }
        j->result.recipients = TAKE_PTR(fingerprints);
        return 0;
}

/* Split, canonicalize, sign and/or encrypt: input → result_file. */
static int job_run(SmimeJob *j, const char **ret_error_name, char **ret_message) {
        _cleanup_(mime_headers_done) MimeHeaders all = {}, outer = {}, content = {};
        _cleanup_free_ LineReader *reader = malloc(sizeof(LineReader));
        _cleanup_free_ Writer *writer = malloc(sizeof(Writer));
        _cleanup_(closep) int entity = -1, signed_entity = -1;
        Manager *m = j->manager;
        struct stat st;
        int r;

        if (!reader || !writer)
                return -ENOMEM;
        if (lseek(j->input, 0, SEEK_SET) < 0)
                return -errno;
        if (fstat(j->input, &st) < 0)
                return -errno;
        if (st.st_size == 0) {
                *ret_error_name = SMIMED_ERROR_INVALID_MESSAGE;
                return message_fail(ret_message, -EBADMSG, "The message is empty.");
        }

        line_reader_init(reader, j->input);
        r = mime_headers_read(reader, &all, ret_message);
        if (r >= 0)
                r = mime_headers_split(&all, &outer, &content);
        if (r < 0) {
                *ret_error_name = SMIMED_ERROR_INVALID_MESSAGE;
                return r;
        }

        j->result_file = manager_tmpfile(m);
        entity = manager_tmpfile(m);
        if (j->result_file < 0 || entity < 0)
                return message_fail(ret_message, j->result_file < 0 ? j->result_file : entity,
                                    "Cannot create a spool file: %m");

        writer_init(writer, entity);
        r = mime_write_canonical_entity(reader, &content, writer, spool_tmpfile, m, ret_message);
        if (r < 0) {
                *ret_error_name = r == -EBADMSG ? SMIMED_ERROR_INVALID_MESSAGE : NULL;
                return r;
        }

        /* The outer headers stay outside, in their order. */
        writer_init(writer, j->result_file);
        mime_headers_write(writer, &outer);
        r = writer_flush(writer);
        if (r < 0)
                return message_fail(ret_message, r, "Cannot write the spool file: %m");

        if (j->request.sign_as && j->request.recipients) {
                /* Sign first, then encrypt the signed entity. */
                signed_entity = manager_tmpfile(m);
                if (signed_entity < 0)
                        return message_fail(ret_message, signed_entity, "Cannot create a spool file: %m");
                r = job_sign(j, entity, signed_entity, ret_error_name, ret_message);
                if (r >= 0)
                        r = job_encrypt(j, signed_entity, j->result_file, ret_error_name, ret_message);
        } else if (j->request.sign_as)
                r = job_sign(j, entity, j->result_file, ret_error_name, ret_message);
        else
                r = job_encrypt(j, entity, j->result_file, ret_error_name, ret_message);
        if (r < 0)
                return r;

        if (fstat(j->result_file, &st) < 0)
                return -errno;
        j->result.size = (uint64_t) st.st_size;
        return 0;
}

static void job_finish(SmimeJob *j, int error, const char *error_name, const char *message) {
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
        j->done(j, error, error_name, message, &j->result, j->userdata);
        smime_job_free(j);
}

static void on_written(FdWriter *writer, int error, void *userdata) {
        SmimeJob *j = userdata;
        _cleanup_free_ char *message = NULL;

        if (error < 0) {
                message_fail(&message, error, "The output cannot be written: %m");
                job_finish(j, error, SMIMED_ERROR_INVALID_ARGUMENT, message);
                return;
        }
        job_finish(j, 0, NULL, NULL);
}

static void on_spooled(FdReader *reader, int error, void *userdata) {
        SmimeJob *j = userdata;
        _cleanup_free_ char *message = NULL;
        const char *error_name = NULL;
        int r;

        j->reader = fd_reader_free(j->reader);

        if (error == -EFBIG) {
                message_fail(&message, error, "The message is larger than [Policy] MaxMessageSize= (%llu bytes).",
                             (unsigned long long) j->manager->config->max_message_size);
                job_finish(j, error, SMIMED_ERROR_INVALID_MESSAGE, message);
                return;
        }
        if (error < 0) {
                message_fail(&message, error, "The input cannot be read: %m");
                job_finish(j, error, SMIMED_ERROR_INVALID_ARGUMENT, message);
                return;
        }

        if (j->request.sign_as)
                j->input_sha256 = audit_sha256_fd(j->input);

        r = job_run(j, &error_name, &message);
        if (r < 0) {
                if (!message)
                        message_fail(&message, r, "S/MIME failed: %m");
                job_finish(j, r, error_name, message);
                return;
        }

        r = fd_writer_new(j->manager->event, j->result_file, j->output, SMIME_IO_TIMEOUT_USEC, on_written, j,
                          &j->writer);
        if (r < 0) {
                message_fail(&message, r, "The output cannot be written: %m");
                job_finish(j, r, SMIMED_ERROR_INVALID_ARGUMENT, message);
        }
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
        j->input = manager_tmpfile(m);
        if (j->input < 0)
                return j->input;
        r = fd_reader_new_to_file(m->event, input_fd, j->input, m->config->max_message_size, SMIME_IO_TIMEOUT_USEC,
                                  on_spooled, j, &j->reader);
        if (r < 0)
                return r;

        /* From here on the job owns the request and the caller's userdata. */
        j->request = *request;
        *request = (SmimeRequest) {};
        j->userdata = userdata;
        j->free_userdata = free_userdata;
        j->next = m->smime_jobs;
        m->smime_jobs = TAKE_PTR(j);
        return 0;
}
