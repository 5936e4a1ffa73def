/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509.h>

#include "audit.h"
#include "bus-polkit.h"
#include "fd-reader.h"
#include "fd-writer.h"
#include "log.h"
#include "mail-address.h"
#include "manager-certificates.h"
#include "manager-open.h"
#include "manager-smime.h"
#include "manager.h"
#include "message.h"
#include "mime.h"
#include "smime-open.h"
#include "smime.h"
#include "smimed-errors.h"
#include "strv.h"
#include "validate.h"
#include "worker-pool.h"

struct OpenJob {
        Manager *manager;
        sd_bus_message *call;
        bool decrypt;
        bool verify;

        int input;                 /* the spooled message */
        int output;                /* the client's output fd (a duplicate) */
        int current;               /* the layer being opened */
        int result_file;
        unsigned depth;
        MimeHeaders outer;         /* the message's outer header fields */
        char **from;               /* its From addresses, normalized */
        bool from_unreadable;      /* a From: that is not a list of addresses */

        /* a decryption waiting for polkit */
        CMS_ContentInfo *pending_cms;
        X509 *pending_certificate;
        char *pending_key;
        /* the worker's side of a decryption */
        char *spool_dir;
        int decrypted;
        char *worker_message;
        bool token_failed;         /* the failure was the token's, not the message's */

        bool on_worker;            /* decrypt_work() runs or waits for a worker */
        bool client_gone;          /* finish when the worker is done, without the output */

        OpenStatus status;
        AuditCaller caller;
        FdReader *reader;
        FdWriter *writer;
        OpenJobDone done;
        void *userdata;
        void (*free_userdata)(void *);
        OpenJob *next;
};

void open_status_done(OpenStatus *s) {
        free(s->encryption_message);
        free(s->key);
        free(s->key_certificate);
        free(s->signature_message);
        cert_info_free(s->signer);
        *s = (OpenStatus) {};
}

static void open_job_free(OpenJob *j) {
        if (!j)
                return;
        polkit_registry_cancel(j->manager->polkit, j);
        fd_reader_free(j->reader);
        fd_writer_free(j->writer);
        sd_bus_message_unref(j->call);
        closep(&j->input);
        closep(&j->output);
        closep(&j->current);
        closep(&j->result_file);
        mime_headers_done(&j->outer);
        strv_free(j->from);
        CMS_ContentInfo_free(j->pending_cms);
        X509_free(j->pending_certificate);
        free(j->pending_key);
        free(j->spool_dir);
        closep(&j->decrypted);
        free(j->worker_message);
        open_status_done(&j->status);
        if (j->free_userdata)
                j->free_userdata(j->userdata);
        free(j);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(OpenJob *, open_job_free);

void manager_open_jobs_free(Manager *m) {
        while (m->open_jobs) {
                OpenJob *j = m->open_jobs;

                m->open_jobs = j->next;
                open_job_free(j);
        }
}

static void open_job_finish(OpenJob *j, int error, const char *error_name, const char *message) {
        Manager *m = j->manager;

        for (OpenJob **i = &j->manager->open_jobs; *i; i = &(*i)->next)
                if (*i == j) {
                        *i = j->next;
                        break;
                }
        j->done(j, error, error_name, message, &j->status, j->userdata);
        open_job_free(j);
        manager_job_ended(m);
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

/* The first From address the signer's certificate does not carry, or NULL. */
static const char *from_not_of(char **from, const CertInfo *signer) {
        for (char **a = from; a && *a; a++)
                if (!strv_contains(signer->addresses, *a))
                        return *a;
        return NULL;
}

/* ---- signatures ---- */

/* When several signatures disagree, the first here is reported. */
static const char *const signature_precedence[] = {
        "invalid", "no-certificate", "revoked", "untrusted", "expired", "not-yet-valid", "weak-algorithm",
        "sender-mismatch", "valid", "not-signed",
};

static int signature_rank(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(signature_precedence); i++)
                if (streq(signature_precedence[i], s))
                        return (int) i;
        return (int) ELEMENTSOF(signature_precedence);
}

static X509 *lookup_signer(const X509_NAME *issuer, const ASN1_INTEGER *serial, void *userdata) {
        Manager *m = userdata;
        unsigned char *name = NULL;
        BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        X509 *x = NULL;
        int len = i2d_X509_NAME(issuer, &name);

        if (len > 0 && hex)
                (void) store_find_by_issuer_serial(m->store, name, (size_t) len, hex[0] == '-' ? hex + 1 : hex, &x);
        OPENSSL_free(name);
        OPENSSL_free(hex);
        BN_free(bn);
        return x;
}

/* MD5 never passes; SHA-1 only with AllowSHA1Signatures=yes; the rest as
 * AllowedDigests= says. */
static bool is_weak_digest(int nid, const Config *config) {
        const char *name = smime_digest_name(nid);

        if (nid == NID_sha1)
                return !config->allow_sha1_signatures;
        return !name || !config_digest_allowed(config, name);
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
        default:
                return "untrusted"; /* no chain, or a certificate not meant for signing mail */
        }
}

/* Stores the signer and its chain: a reply can be encrypted to it. */
static void auto_import(OpenJob *j, STACK_OF(X509) *chain) {
        _cleanup_free_ char *message = NULL;
        int r;

        if (!j->manager->config->auto_import)
                return;
        r = manager_store_certificates(j->manager, chain, false, NULL, &message);
        if (r < 0)
                log_warning("Cannot store the certificate of a verified signer: %s", strempty(message));
}

/* Judges one signed layer; the worst judgement over all layers is kept. */
static int judge_signature(OpenJob *j, SignatureCheck *check) {
        Manager *m = j->manager;
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

                r = validate_certificate_extra(m->store, check->signer, check->certificates, &m->policy, time(NULL),
                                               &purpose, 1, &v);
                if (r < 0)
                        return r;
                verdict = signature_from_validation(v.status);

                if (v.status != CERT_STATUS_VALID)
                        r = set_text(&text, "Sign: %s", v.message);
                else if (is_weak_digest(check->digest_nid, m->config)) {
                        verdict = "weak-algorithm";
                        r = set_text(&text, "Sign: The signature uses %s, which is no longer safe.",
                                     OBJ_nid2sn(check->digest_nid));
                } else if (m->config->require_sender_match && j->from_unreadable) {
                        verdict = "sender-mismatch";
                        r = set_text(&text, "Sign: The message's From: field cannot be read as mail addresses, so "
                                            "the signer cannot be said to be its sender.");
                } else if (m->config->require_sender_match && from_not_of(j->from, signer)) {
                        _cleanup_free_ char *addresses = NULL;
                        size_t len = 1;

                        for (char **a = signer->addresses; *a; a++)
                                len += strlen(*a) + 2;
                        addresses = calloc(len, 1);
                        for (char **a = signer->addresses; addresses && *a; a++) {
                                if (a != signer->addresses)
                                        strcat(addresses, ", ");
                                strcat(addresses, *a);
                        }
                        verdict = "sender-mismatch";
                        r = set_text(&text, "Sign: The message is from %s, but the signer's certificate is for %s.",
                                     from_not_of(j->from, signer), addresses && addresses[0] ? addresses : "no mail address");
                } else {
                        _cleanup_free_ char *summary = cert_info_summary(signer);

                        r = set_text(&text, "Signed by %s.", strempty(summary));
                        auto_import(j, v.chain);
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

/* ---- the layers ---- */

static int next_layer_file(OpenJob *j, int fd) {
        closep(&j->current);
        j->current = fd;
        j->depth++;
        return 0;
}

static void open_job_step(OpenJob *j);

static int open_signed_layer(OpenJob *j, const char **ret_error_name, char **ret_message) {
        _cleanup_(signature_check_done) SignatureCheck check = {};
        CMS_ContentInfo *cms = NULL;
        BIO *content = NULL;
        int out, r;

        r = smime_read(j->current, &cms, &content, ret_message);
        if (r < 0) {
                *ret_error_name = SMIMED_ERROR_INVALID_MESSAGE;
                return r;
        }
        out = manager_tmpfile_sized(j->manager, fd_size_hint(j->input));
        if (out < 0) {
                CMS_ContentInfo_free(cms);
                BIO_free(content);
                return message_fail(ret_message, out, "Cannot create a spool file: %m");
        }
        r = smime_verify(cms, content, lookup_signer, j->manager, out, &check, ret_message);
        CMS_ContentInfo_free(cms);
        BIO_free(content);
        if (r < 0) {
                close(out);
                *ret_error_name = SMIMED_ERROR_INVALID_MESSAGE;
                return r;
        }
        r = judge_signature(j, &check);
        if (r < 0) {
                close(out);
                return r;
        }
        return next_layer_file(j, out);
}

/* The token key and certificate the message is encrypted to, if any. */
static int find_decryption_key(OpenJob *j, CMS_ContentInfo *cms) {
        Manager *m = j->manager;

        for (size_t k = 0; k < m->n_keys; k++) {
                _cleanup_(strv_freep) char **fingerprints = NULL;

                if (!m->keys[k].spki_sha256[0] || store_find_by_spki(m->store, m->keys[k].spki_sha256,
                                                                     &fingerprints) < 0)
                        continue;
                for (char **f = fingerprints; *f; f++) {
                        X509 *x = NULL;

                        if (store_get_certificate(m->store, *f, &x, NULL) < 0)
                                continue;
                        if (smime_is_recipient(cms, x)) {
                                j->pending_certificate = x;
                                j->pending_key = strdup(m->keys[k].id);
                                free(j->status.key_certificate);
                                j->status.key_certificate = strdup(*f);
                                return j->pending_key && j->status.key_certificate ? 1 : -ENOMEM;
                        }
                        X509_free(x);
                }
        }
        return 0;
}

static void finish_without_content(OpenJob *j);

/* On a worker: the private-key operation, in the token. */
static int decrypt_work(void *userdata) {
        OpenJob *j = userdata;
        _cleanup_free_ char *uri = NULL;
        EVP_PKEY *key = NULL;
        int r;

        r = token_key_uri(j->manager->token, j->pending_key, &uri);
        if (r >= 0)
                r = token_load_private_key(j->manager->token, uri, &key);
        if (r < 0) {
                j->token_failed = true;
                return message_fail(&j->worker_message, r, "The token cannot use the key: %m");
        }
        j->decrypted = spool_tmpfile_sized(j->spool_dir, fd_size_hint(j->input));
        r = j->decrypted < 0 ? j->decrypted : 0;
        if (r >= 0)
                r = smime_decrypt(j->pending_cms, key, j->pending_certificate, j->decrypted, &j->worker_message);
        EVP_PKEY_free(key);
        /* A message that does not decrypt and a token that stopped answering
         * look alike from here; the token tells which. Reopening it waits
         * for the workers, so nothing changes the token under this call. */
        if (r < 0 && token_probe(j->manager->token, NULL) < 0)
                j->token_failed = true;
        return r;
}

/* Back on the loop. */
static void decrypt_done(int r, void *userdata) {
        OpenJob *j = userdata;
        _cleanup_free_ char *message = TAKE_PTR(j->worker_message);
        int out = TAKE_FD(j->decrypted);

        j->pending_cms = (CMS_ContentInfo_free(j->pending_cms), NULL);
        j->pending_certificate = (X509_free(j->pending_certificate), NULL);

        {
                _cleanup_free_ char *input_sha256 = audit_sha256_fd(j->input);
                const TokenKey *k = NULL;

                for (size_t i = 0; i < j->manager->n_keys; i++)
                        if (streq(j->manager->keys[i].id, j->pending_key))
                                k = &j->manager->keys[i];
                audit_log(&j->caller, &(AuditRecord) {
                                              .event = AUDIT_DECRYPT,
                                              .operation = "decrypt",
                                              .outcome = r < 0 ? "failed" : "success",
                                              .fingerprint = j->status.key_certificate,
                                              .key = j->pending_key,
                                              .address = k ? k->label : NULL,
                                              .input_sha256 = input_sha256,
                                              .detail = r < 0 ? message : NULL,
                                      });
        }

        j->on_worker = false;
        if (j->client_gone) {
                closep(&out);
                open_job_finish(j, -ECONNRESET, NULL, "The client went away before the result was written.");
                return;
        }
        if (r < 0) {
                closep(&out);
                manager_token_check_later(j->manager);
                if (j->token_failed) {
                        _cleanup_free_ char *text = NULL;

                        (void) message_fail(&text, r, "Decryption with the key of %s failed in the token: %s",
                                            j->status.key_certificate, message ? message : strerror(-r));
                        open_job_finish(j, r, SMIMED_ERROR_TOKEN_UNAVAILABLE, text);
                        return;
                }
                j->status.encryption = "failed";
                set_text(&j->status.encryption_message, "Encryption: The message could not be decrypted: %s",
                         message ? message : strerror(-r));
                finish_without_content(j);
                return;
        }

        log_info("Decrypted a message with key %s.", j->pending_key);
        j->status.encryption = "encrypted";
        free(j->status.key);
        j->status.key = TAKE_PTR(j->pending_key);
        set_text(&j->status.encryption_message, "Decrypted with the key of certificate %s.",
                 j->status.key_certificate);
        next_layer_file(j, out);
        open_job_step(j);
}

static void on_decrypt_authorized(int r, const sd_bus_error *error, void *userdata) {
        OpenJob *j = userdata;

        if (r < 0) {
                open_job_finish(j, r, error->name, error->message);
                return;
        }

        free(j->spool_dir);
        j->spool_dir = manager_spool_dir(j->manager);
        log_debug("Decrypt for %s: key %s, handing it to a worker.", j->caller.sender, strempty(j->pending_key));
        j->on_worker = true;
        r = j->spool_dir ? worker_pool_submit(j->manager->workers, client_id(j->manager->clients, j->caller.sender), decrypt_work, decrypt_done, j) : -ENOMEM;
        if (r < 0) {
                j->on_worker = false;
                open_job_finish(j, r, NULL, "Cannot hand the decryption to a worker.");
        }
}

/* Returns 1 when the job waits for polkit, 0 to go on, < 0 on error. */
static int open_enveloped_layer(OpenJob *j, const char **ret_error_name, char **ret_message) {
        CMS_ContentInfo *cms = NULL;
        BIO *content = NULL;
        const char *details[5] = {};
        const TokenKey *key = NULL;
        int r;

        if (!j->decrypt) {
                *ret_error_name = SMIMED_ERROR_INVALID_MESSAGE;
                return message_fail(ret_message, -EBADMSG, "The message is encrypted; open it with Decrypt.");
        }
        r = smime_read(j->current, &cms, &content, ret_message);
        BIO_free(content);
        if (r < 0) {
                *ret_error_name = SMIMED_ERROR_INVALID_MESSAGE;
                return r;
        }
        j->pending_cms = cms;

        r = find_decryption_key(j, cms);
        if (r < 0)
                return r;
        if (r == 0 && token_get_state(j->manager->token) != TOKEN_STATE_READY) {
                /* The key may well be in the token; smimed cannot see it now. */
                *ret_error_name = SMIMED_ERROR_TOKEN_UNAVAILABLE;
                return message_fail(ret_message, -ENODEV,
                                    "The message is encrypted and the token is %s (%s); try again when it is ready.",
                                    token_state_to_string(token_get_state(j->manager->token)),
                                    strempty(token_get_state_reason(j->manager->token)));
        }
        if (r == 0) {
                j->status.encryption = "no-private-key";
                set_text(&j->status.encryption_message, "Encryption: Unable to find private key to decrypt.");
                finish_without_content(j);
                return 1;
        }

        for (size_t k = 0; k < j->manager->n_keys; k++)
                if (streq(j->manager->keys[k].id, j->pending_key))
                        key = &j->manager->keys[k];
        details[0] = "address";
        details[1] = key ? key->label : "";
        details[2] = "fingerprint";
        details[3] = j->status.key_certificate;
        r = bus_polkit_check_callback(j->manager->polkit, j->call, POLKIT_ACTION_DECRYPT, details,
                                      on_decrypt_authorized, j);
        if (r < 0)
                return message_fail(ret_message, r, "Cannot ask polkit: %m");
        if (r > 0)
                /* polkit said yes a moment ago: straight to a worker (or finished on failure). */
                on_decrypt_authorized(1, NULL, j);
        return 1;
}

/* ---- output ---- */

static void on_written(FdWriter *writer, int error, void *userdata) {
        OpenJob *j = userdata;
        _cleanup_free_ char *message = NULL;
        const char *error_name = NULL;

        if (error < 0) {
                manager_io_fail(j->manager, error, false, &error_name, &message);
                open_job_finish(j, error, error_name, message);
                return;
        }
        open_job_finish(j, 0, NULL, NULL);
}

static int copy_fd(int from, int to) {
        char buf[65536];
        ssize_t n;

        if (lseek(from, 0, SEEK_SET) < 0)
                return -errno;
        while ((n = read(from, buf, sizeof(buf))) > 0)
                for (char *p = buf; n > 0;) {
                        ssize_t k = write(to, p, (size_t) n);

                        if (k < 0)
                                return -errno;
                        p += k;
                        n -= k;
                }
        return n < 0 ? -errno : 0;
}

static void write_output(OpenJob *j, bool with_content) {
        _cleanup_free_ Writer *w = malloc(sizeof(Writer));
        _cleanup_free_ char *message = NULL;
        struct stat st;
        int r;

        j->result_file = manager_tmpfile_sized(j->manager, fd_size_hint(j->input));
        r = j->result_file < 0 ? j->result_file : w ? 0 : -ENOMEM;
        if (r >= 0 && with_content) {
                if (j->depth == 0)
                        r = copy_fd(j->input, j->result_file); /* not S/MIME: the message as it came */
                else {
                        /* the outer fields back in front of the innermost entity */
                        writer_init(w, j->result_file);
                        mime_headers_write(w, &j->outer);
                        r = writer_flush(w);
                        if (r >= 0)
                                r = copy_fd(j->current, j->result_file);
                }
        }
        if (r >= 0 && fstat(j->result_file, &st) < 0)
                r = -errno;
        if (r >= 0) {
                j->status.has_content = with_content;
                j->status.size = (uint64_t) st.st_size;
                r = fd_writer_new(j->manager->event, j->result_file, j->output, j->manager->config->io_timeout_usec, on_written, j,
                                  &j->writer);
        }
        if (r < 0) {
                message_fail(&message, r, "The output cannot be written: %m");
                open_job_finish(j, r, SMIMED_ERROR_INVALID_ARGUMENT, message);
        }
}

static void finish_without_content(OpenJob *j) {
        if (!j->status.signature) {
                j->status.signature = "not-signed";
                set_text(&j->status.signature_message, "Not known: the content could not be opened.");
        }
        write_output(j, false);
}

/* Opens layers until the content, or until polkit must be asked. */
static void open_job_step(OpenJob *j) {
        _cleanup_free_ char *message = NULL;
        const char *error_name = NULL;
        int r;

        for (;;) {
                _cleanup_free_ LineReader *reader = malloc(sizeof(LineReader));
                _cleanup_(mime_headers_done) MimeHeaders headers = {};
                SmimeLayer layer;

                if (!reader) {
                        open_job_finish(j, -ENOMEM, NULL, "Out of memory.");
                        return;
                }
                r = lseek(j->current, 0, SEEK_SET) < 0 ? -errno : 0;
                if (r >= 0) {
                        line_reader_init(reader, j->current);
                        r = mime_headers_read(reader, &headers, &message);
                }
                if (r >= 0)
                        r = smime_classify(&headers, &layer, &message);
                if (r >= 0 && layer == SMIME_LAYER_CMS) {
                        CMS_ContentInfo *cms = NULL;
                        BIO *content = NULL;

                        r = smime_read(j->current, &cms, &content, &message);
                        if (r >= 0)
                                r = smime_cms_layer(cms, &layer, &message);
                        CMS_ContentInfo_free(cms);
                        BIO_free(content);
                }
                if (r < 0) {
                        open_job_finish(j, r, r == -EBADMSG ? SMIMED_ERROR_INVALID_MESSAGE : NULL,
                                        message ? message : strerror(-r));
                        return;
                }

                if (layer == SMIME_LAYER_SIGNED && !j->verify) {
                        /* Asked not to: say so, rather than "not signed". */
                        j->status.signature = "not-verified";
                        set_text(&j->status.signature_message,
                                 "The message is signed; the signature was not checked (verify=false).");
                        break;
                }
                if (layer == SMIME_LAYER_NONE)
                        break;

                /* Another layer to open: refuse the one past the limit. */
                if (j->depth >= OPEN_MAX_LAYERS) {
                        open_job_finish(j, -EBADMSG, SMIMED_ERROR_INVALID_MESSAGE,
                                        "S/MIME layers are nested deeper than smimed opens (8).");
                        return;
                }

                if (layer == SMIME_LAYER_SIGNED)
                        r = open_signed_layer(j, &error_name, &message);
                else {
                        r = open_enveloped_layer(j, &error_name, &message);
                        if (r > 0)
                                return; /* waiting for polkit, or finished */
                }
                if (r < 0) {
                        open_job_finish(j, r, error_name, message ? message : strerror(-r));
                        return;
                }
        }

        if (!j->status.encryption) {
                j->status.encryption = "not-encrypted";
                set_text(&j->status.encryption_message, "The message was not encrypted.");
        }
        if (!j->status.signature) {
                j->status.signature = "not-signed";
                set_text(&j->status.signature_message, "The message was not signed.");
        }
        write_output(j, true);
}

static void on_spooled(FdReader *reader, int error, void *userdata) {
        OpenJob *j = userdata;
        _cleanup_free_ char *message = NULL;
        _cleanup_(mime_headers_done) MimeHeaders all = {}, content = {};
        _cleanup_free_ LineReader *lines = malloc(sizeof(LineReader));
        struct stat st;
        int r;

        j->reader = fd_reader_free(j->reader);
        if (error == -EFBIG) {
                message_fail(&message, error, "The message is larger than [Policy] MaxMessageSize= (%llu bytes).",
                             (unsigned long long) j->manager->config->max_message_size);
                open_job_finish(j, error, SMIMED_ERROR_INVALID_MESSAGE, message);
                return;
        }
        if (error < 0) {
                const char *error_name = NULL;

                manager_io_fail(j->manager, error, true, &error_name, &message);
                open_job_finish(j, error, error_name, message);
                return;
        }
        if (fstat(j->input, &st) < 0 || st.st_size == 0) {
                open_job_finish(j, -EBADMSG, SMIMED_ERROR_INVALID_MESSAGE, "The message is empty.");
                return;
        }
        if (!lines) {
                open_job_finish(j, -ENOMEM, NULL, "Out of memory.");
                return;
        }

        lseek(j->input, 0, SEEK_SET);
        line_reader_init(lines, j->input);
        r = mime_headers_read(lines, &all, &message);
        if (r >= 0)
                r = mime_headers_split(&all, &j->outer, &content);
        if (r < 0) {
                open_job_finish(j, r, SMIMED_ERROR_INVALID_MESSAGE, message ? message : strerror(-r));
                return;
        }
        r = mail_header_addresses(&j->outer, "From", &j->from);
        if (r == -ENOMEM) {
                open_job_finish(j, r, NULL, "Out of memory.");
                return;
        }
        j->from_unreadable = r < 0; /* no signature can be said to be the sender's */

        j->current = fcntl(j->input, F_DUPFD_CLOEXEC, 3);
        if (j->current < 0) {
                open_job_finish(j, -errno, NULL, "Cannot duplicate a file descriptor.");
                return;
        }
        open_job_step(j);
}

unsigned manager_open_jobs_cancel_sender(Manager *m, const char *sender) {
        unsigned n = 0;

        for (OpenJob *j = m->open_jobs, *next; j; j = next) {
                next = j->next;
                if (!streq(j->caller.sender, sender))
                        continue;
                n++;
                if (j->on_worker)
                        j->client_gone = true; /* a worker holds it: decrypt_done() finishes it */
                else
                        open_job_finish(j, -ECONNRESET, NULL, "The client went away.");
        }
        return n;
}

int manager_open_start(Manager *m, sd_bus_message *call, bool decrypt, bool verify, int input_fd, int output_fd,
                       OpenJobDone done, void *userdata, void (*free_userdata)(void *)) {
        _cleanup_(open_job_freep) OpenJob *j = NULL;
        int r;

        j = calloc(1, sizeof(OpenJob));
        if (!j)
                return -ENOMEM;
        j->manager = m;
        j->call = sd_bus_message_ref(call);
        audit_caller_from_message(call, &j->caller);
        j->decrypt = decrypt;
        j->verify = verify;
        j->input = j->output = j->current = j->result_file = j->decrypted = -1;
        j->done = done;

        j->output = fcntl(output_fd, F_DUPFD_CLOEXEC, 3);
        if (j->output < 0)
                return -errno;
        j->input = manager_tmpfile_sized(m, fd_size_hint(input_fd));
        if (j->input < 0)
                return j->input;
        r = fd_reader_new_to_file(m->event, input_fd, j->input, m->config->max_message_size,
                                  m->config->io_timeout_usec, on_spooled, j, &j->reader);
        if (r < 0)
                return r;

        j->userdata = userdata;
        j->free_userdata = free_userdata;
        j->next = m->open_jobs;
        m->open_jobs = TAKE_PTR(j);
        manager_job_started(m);
        return 0;
}
