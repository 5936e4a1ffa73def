/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-audit.h"
#include "bus-util.h"
#include "fd-util.h"
#include "log.h"
#include "manager-bus.h"
#include "manager-methods-bus.h"
#include "manager-open.h"
#include "manager-directory.h"
#include "manager-smime.h"
#include "manager.h"
#include "policy.h"
#include "smimed-error.h"

#include "strv.h"

/* org.smimed1.Manager's message methods: Sign, Encrypt, Decrypt, Verify,
 * and the same with the message as bytes: SignData, EncryptData,
 * DecryptData, VerifyData.
 * Each reads its request, asks polkit where the plan says so, and hands it
 * to the core's job (manager-smime.c, manager-open.c); the job's end is the
 * reply. */

/* A job's failure as the reply to its call: the error's own name, or
 * fallback_name (polkit's answer), or the errno's. */
static void reply_job_error(sd_bus_message *call, int error, SmimedError error_code, const char *fallback_name,
                            const char *message) {
        const char *error_name = smimed_error_to_name(error_code) ?: fallback_name;
        int r;

        if (error_name)
                r = sd_bus_reply_method_errorf(call, error_name, "%s", strempty(message));
        else
                r = sd_bus_reply_method_errnof(call, error, "%s", strempty(message));
        if (r < 0)
                log_debug_errno(r, "Failed to send an error reply: %m");
}

/* The reply could not be built or sent (a *Data result over the bus's
 * limit, say): the caller gets an error instead of waiting for its timeout. */
static void reply_failed(sd_bus_message *call, int error) {
        log_warning_errno(error, "Failed to reply to %s: %m", strempty(sd_bus_message_get_member(call)));
        (void) sd_bus_reply_method_errnof(call, error, "The reply cannot be sent: %m");
}

/* Where a call's message comes from and its result goes: the caller's fds
 * (Sign, Encrypt, Decrypt, Verify), or, for the *Data methods, whose
 * callers cannot pass fds (ruby-dbus, busctl), a sealed memfd of smimed's
 * own with the bytes of the call, and no output fd: the job's result file
 * is read into the reply. */
typedef struct MessageIO {
        int input, output;   /* what the job reads and writes; output -1 for *Data */
        int data_input;      /* *Data: the memfd, owned */
        uint64_t max_result; /* *Data: the largest result the reply may carry */
} MessageIO;

#define MESSAGE_IO_NULL ((MessageIO){.input = -1, .output = -1, .data_input = -1})

static void message_io_done(MessageIO *io) {
        closep(&io->data_input);
        *io = MESSAGE_IO_NULL;
}

/* Reads the message arguments of a call: "hh" (input, output), or with
 * data "ay", which is at most [Policy] MaxDataSize=. */
static int message_io_read(Manager *m, sd_bus_message *message, bool data, MessageIO *ret, sd_bus_error *error) {
        _cleanup_(message_io_done) MessageIO io = MESSAGE_IO_NULL;
        const char *member = sd_bus_message_get_member(message);
        const void *bytes;
        size_t size;
        int r;

        if (!data) {
                r = sd_bus_message_read(message, "hh", &io.input, &io.output);
                if (r < 0)
                        return r;
                *ret = io;
                return 0;
        }

        r = sd_bus_message_read_array(message, 'y', &bytes, &size);
        if (r < 0)
                return r;
        if (size > m->config->max_data_size)
                return sd_bus_error_setf(error, SMIMED_ERROR_LIMITS_EXCEEDED,
                                         "The message is %zu bytes; %s takes at most %" PRIu64
                                         " ([Policy] MaxDataSize=). Pass larger messages as file descriptors (%.*s).",
                                         size, member, m->config->max_data_size,
                                         (int) (strlen(member) - strlen("Data")), member);
        io.data_input = memfd_create("smimed-data-input", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (io.data_input < 0)
                return -errno;
        r = fd_write_all(io.data_input, bytes, size);
        if (r < 0)
                return r;
        /* Sealed, the job reads it where it is (fd_take_sealed()). */
        if (lseek(io.data_input, 0, SEEK_SET) < 0 ||
            fcntl(io.data_input, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                return -errno;
        io.input = io.data_input;
        /* Room for base64 (4/3) and the CMS structure around a message of the
         * limit, and still under the bus's limit for a limit chosen so. */
        io.max_result = m->config->max_data_size / 2 * 3 + 1024 * 1024;
        *ret = io;
        io = MESSAGE_IO_NULL;
        return 0;
}

/* For a *Data call, the job's result (result_fd, read from its start to its
 * end; none: empty) as the reply's first argument. */
static int message_io_append_result(const MessageIO *io, int result_fd, sd_bus_message *reply) {
        struct stat st = {};
        void *p;

        if (io->data_input < 0)
                return 0;
        if (result_fd >= 0 && fstat(result_fd, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_size > io->max_result)
                return -EFBIG;
        if (sd_bus_message_append_array_space(reply, 'y', (size_t) st.st_size, &p) < 0)
                return -ENOMEM;
        return fd_pread_all(result_fd, p, (size_t) st.st_size, 0);
}

/* A result too large for the reply of a *Data call. */
static void reply_result_too_large(sd_bus_message *call, const MessageIO *io) {
        int r = sd_bus_reply_method_errorf(call, SMIMED_ERROR_LIMITS_EXCEEDED,
                                           "The result is larger than %" PRIu64
                                           " bytes, too large for a reply. Pass file descriptors instead.",
                                           io->max_result);
        if (r < 0)
                log_debug_errno(r, "Failed to send an error reply: %m");
}

/* A Sign or Encrypt in the core's hands. */
typedef struct SmimeCall {
        BusCall *call;
        MessageIO io;
} SmimeCall;

static void smime_call_free(void *userdata) {
        SmimeCall *c = userdata;

        if (!c)
                return;
        bus_call_free(c->call);
        message_io_done(&c->io);
        free(c);
}

static void smime_done(SmimeJob *job, int error, SmimedError error_code, const char *message,
                       const SmimeResult *result, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        SmimeCall *c = userdata;
        sd_bus_message *call = c->call->call;
        int r;

        if (error < 0) {
                reply_job_error(call, error, error_code, NULL, message);
                return;
        }

        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0) {
                r = message_io_append_result(&c->io, result->result_fd, reply);
                if (r == -EFBIG)
                        return reply_result_too_large(call, &c->io);
        }
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0 && result->signer)
                r = sd_bus_message_append(reply, "{sv}", "signer", "s", result->signer);
        if (r >= 0 && result->recipients) {
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", "recipients");
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_append_strv(reply, result->recipients);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "{sv}", "sender_included", "b", result->sender_included);
        }
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "size", "t", result->size);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                reply_failed(call, r);
}

/* The common part of Sign and Encrypt once the request is read: checks,
 * polkit for signing, then the job. */
/* Before polkit or the token are asked: a caller's fd that cannot be used
 * as it was opened is refused at once (a *Data call's memfd is smimed's). */
static int check_message_fds(const MessageIO *io, sd_bus_error *error) {
        int r;

        if (io->data_input >= 0)
                return 0;
        r = fd_classify(io->input, O_RDONLY, NULL);
        if (r < 0)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT, "The input cannot be used: %s",
                                         fd_error_to_string(r));
        r = fd_classify(io->output, O_WRONLY, NULL);
        if (r < 0)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT, "The output cannot be used: %s",
                                         fd_error_to_string(r));
        return 0;
}

static int smime_begin(Manager *m, sd_bus_message *message, BusCall *call, SmimeRequest *request, MessageIO *io,
                       sd_bus_error *error) {
        _cleanup_free_ char *reason = NULL;
        SmimedError error_code = 0;
        SmimeCall *c;
        int r;

        r = check_message_fds(io, error);
        if (r < 0)
                return r;

        audit_caller_from_message(message, &request->caller);
        r = manager_smime_prepare(m, request, &error_code, &reason);
        if (r < 0) {
                const char *error_name = smimed_error_to_name(error_code);

                return error_name ? sd_bus_error_set(error, error_name, reason)
                                  : sd_bus_error_set_errnof(error, r, "%s", strempty(reason));
        }

        if (request->sign_as) {
                /* The address asked for first (the one polkit's agent names), then the
                 * certificate's others: the signature vouches for each of them. */
                _cleanup_(strv_freep) char **ordered = NULL;

                const CertInfo *signer = request->signer.info;

                r = strv_extend(&ordered, request->sign_as);
                for (char **a = signer->addresses; r >= 0 && *a; a++)
                        if (!streq(*a, request->sign_as))
                                r = strv_extend(&ordered, *a);
                if (r < 0)
                        return r;
                r = bus_polkit_check_addresses(m->bus->polkit, message, POLKIT_ACTION_SIGN, ordered,
                                               signer->fingerprint, error);
                if (r == 0)
                        bus_call_keep(call);
                if (r <= 0)
                        return r < 0 ? r : 1;
        }

        c = calloc(1, sizeof(SmimeCall));
        if (!c)
                return -ENOMEM;
        c->io = *io;
        *io = MESSAGE_IO_NULL;
        c->call = bus_call_take(call);
        if (!c->call) {
                smime_call_free(c);
                return -ENOMEM;
        }
        r = manager_smime_start(m, request, c->io.input, c->io.output, smime_done, c, smime_call_free);
        if (r < 0) {
                smime_call_free(c);
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                         "The input or output cannot be used: %s", fd_error_to_string(r));
        }
        return 1; /* the reply comes when the output is written */
}

/* The options "digest" (checked by policy), "opaque" and "pss" of a Sign,
 * or of the signature of an Encrypt. */
static int set_sign_options(Manager *m, const char *digest, bool opaque, bool pss, SignOptions *o,
                            sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        int r;

        r = policy_sign_digest(m->config, digest, &o->digest, &message);
        if (r < 0)
                return bus_error_set_from_manager(error, r, message);
        o->opaque = opaque;
        o->pss = pss;
        return 0;
}

/* Sign (data false) and SignData. */
static int sign(Manager *m, sd_bus_message *message, bool data, sd_bus_error *error) {
        _cleanup_(smime_request_done) SmimeRequest request = {};
        _cleanup_(message_io_done) MessageIO io = MESSAGE_IO_NULL;
        _cleanup_(bus_call_end) BusCall call = {};
        const char *sender, *digest = NULL;
        int opaque = false, pss = false, r;
        BusOption options[] = {
                {"opaque", 'b', &opaque},
                {"digest", 's', &digest},
                {"pss", 'b', &pss},
        };

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(message, "s", &sender);
        if (r < 0)
                return r;
        r = message_io_read(m, message, data, &io, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, options, ELEMENTSOF(options), error);
        if (r < 0)
                return r;
        r = bus_read_address(sender, false, &request.sign_as, error);
        if (r < 0)
                return r;
        r = set_sign_options(m, digest, opaque, pss, &request.sign, error);
        if (r < 0)
                return r;

        return smime_begin(m, message, &call, &request, &io, error);
}

int manager_method_sign(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return sign(userdata, message, false, error);
}

int manager_method_sign_data(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return sign(userdata, message, true, error);
}

/* Encrypt (data false) and EncryptData. */
/* An Encrypt waiting for the [Directory] to be asked about its recipients. */
typedef struct EncryptWait {
        sd_bus_message *message;
        BusCall call; /* of message, not a reference of its own */
        SmimeRequest request;
        MessageIO io;
} EncryptWait;

static void encrypt_wait_free(EncryptWait *w) {
        bus_call_end(&w->call);
        smime_request_done(&w->request);
        message_io_done(&w->io);
        sd_bus_message_unref(w->message);
        free(w);
}

static void on_encrypt_directory_done(Manager *m, bool cancelled, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        EncryptWait *w = userdata;
        int r;

        if (cancelled)
                r = sd_bus_error_set(&error, SMIMED_ERROR_DISABLED, "smimed is stopping.");
        else
                r = smime_begin(m, w->message, &w->call, &w->request, &w->io, &error);
        if (r < 0) {
                if (!sd_bus_error_is_set(&error))
                        (void) sd_bus_error_set_errnof(&error, r, "%m");
                r = sd_bus_reply_method_error(w->message, &error);
                if (r < 0)
                        log_debug_errno(r, "Failed to send an error reply: %m");
        }
        encrypt_wait_free(w);
}

/* The recipients the store cannot serve are looked up in the directory
 * first; then the job begins as it would have at once. */
static int encrypt_begin(Manager *m, sd_bus_message *message, BusCall *call, SmimeRequest *request, MessageIO *io,
                         sd_bus_error *error) {
        EncryptWait *w;
        int r;

        w = calloc(1, sizeof(EncryptWait));
        if (!w)
                return -ENOMEM;
        r = manager_directory_resolve(m, request->recipients, on_encrypt_directory_done, w);
        if (r <= 0) {
                free(w);
                if (r < 0)
                        return bus_error_set_from_manager(error, r, NULL);
                return smime_begin(m, message, call, request, io, error);
        }
        w->message = sd_bus_message_ref(message);
        w->call = *call;
        call->call = NULL;
        w->request = *request;
        *request = (SmimeRequest){};
        w->io = *io;
        *io = MESSAGE_IO_NULL;
        return 1;
}

static int encrypt(Manager *m, sd_bus_message *message, bool data, sd_bus_error *error) {
        _cleanup_(smime_request_done) SmimeRequest request = {};
        _cleanup_(message_io_done) MessageIO io = MESSAGE_IO_NULL;
        _cleanup_(strv_freep) char **recipients = NULL;
        _cleanup_(bus_call_end) BusCall call = {};
        const char *cipher = NULL, *sign_as = NULL, *sender = NULL, *digest = NULL;
        int oaep = false, opaque = false, pss = false, r;
        BusOption options[] = {
                {"cipher", 's', &cipher}, {"oaep", 'b', &oaep},     {"sign_as", 's', &sign_as},
                {"sender", 's', &sender}, {"opaque", 'b', &opaque}, {"digest", 's', &digest},
                {"pss", 'b', &pss},
        };

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(message, &recipients);
        if (r < 0)
                return r;
        r = bus_check_recipient_count(m, strv_length(recipients), error);
        if (r < 0)
                return r;
        r = message_io_read(m, message, data, &io, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, options, ELEMENTSOF(options), error);
        if (r < 0)
                return r;

        if (strv_length(recipients) == 0)
                return sd_bus_error_set(error, SMIMED_ERROR_INVALID_ARGUMENT, "No recipients given.");
        request.recipients = calloc(strv_length(recipients) + 1, sizeof(char *));
        if (!request.recipients)
                return -ENOMEM;
        for (size_t i = 0; recipients[i]; i++) {
                r = bus_read_address(recipients[i], false, &request.recipients[i], error);
                if (r < 0)
                        return r;
        }
        if (sign_as) {
                r = bus_read_address(sign_as, false, &request.sign_as, error);
                if (r < 0)
                        return r;
        }
        if (sender || sign_as) {
                r = bus_read_address(sender ?: sign_as, false, &request.sender, error);
                if (r < 0)
                        return r;
        }
        {
                _cleanup_free_ char *text = NULL;

                r = policy_cipher(m->config, cipher, &request.cipher, &text);
                if (r < 0)
                        return bus_error_set_from_manager(error, r, text);
        }
        request.oaep = oaep;
        r = set_sign_options(m, digest, opaque, pss, &request.sign, error);
        if (r < 0)
                return r;

        return encrypt_begin(m, message, &call, &request, &io, error);
}

int manager_method_encrypt(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return encrypt(userdata, message, false, error);
}

int manager_method_encrypt_data(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return encrypt(userdata, message, true, error);
}

static int append_signer(sd_bus_message *reply, const CertInfo *signer) {
        _cleanup_free_ char *summary = cert_info_summary(signer);
        int r;

        if (!summary)
                return -ENOMEM;
        r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", "signer");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', "a{sv}");
        if (r >= 0)
                r = sd_bus_message_append(reply, "a{sv}", 7, "fingerprint", "s", signer->fingerprint, "subject", "s",
                                          signer->subject, "issuer", "s", signer->issuer, "address", "s",
                                          signer->addresses[0] ? signer->addresses[0] : "", "not_before", "t",
                                          (uint64_t) (signer->not_before > 0 ? signer->not_before : 0) * 1000000ULL,
                                          "not_after", "t",
                                          (uint64_t) (signer->not_after > 0 ? signer->not_after : 0) * 1000000ULL,
                                          "summary", "s", summary);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

/* A Decrypt or Verify in the core's hands: its call, and what polkit said
 * when it last refused a key (AccessDenied or InteractiveAuthorizationRequired),
 * which is the reply when it refuses them all. */
typedef struct OpenCall {
        BusCall call;
        MessageIO io;
        PolkitRegistry *polkit;
        OpenJob *job;
        char *refused_name;
} OpenCall;

static void open_call_free(void *userdata) {
        OpenCall *c = userdata;
        sd_bus_message *call;

        if (!c)
                return;
        polkit_registry_cancel(c->polkit, c);
        message_io_done(&c->io);
        free(c->refused_name);
        call = c->call.call;
        bus_call_end(&c->call);
        sd_bus_message_unref(call);
        free(c);
}

static void on_decrypt_answer(int r, const sd_bus_error *error, void *userdata) {
        OpenCall *c = userdata;

        if (r <= 0) {
                free(c->refused_name);
                c->refused_name = strdup(error && error->name ? error->name : SD_BUS_ERROR_ACCESS_DENIED);
        }
        manager_open_job_authorized(c->job, r > 0, error ? error->message : NULL);
}

static int open_authorize(OpenJob *job, const char *address, const char *fingerprint, void *userdata) {
        const char *details[] = {"address", address, "fingerprint", fingerprint, NULL};
        OpenCall *c = userdata;

        c->job = job;
        return bus_polkit_check_callback(c->polkit, c->call.call, POLKIT_ACTION_DECRYPT, details, on_decrypt_answer,
                                         c);
}

static bool open_authorized_at_once(OpenJob *job, const char *address, const char *fingerprint, void *userdata) {
        const char *details[] = {"address", address, "fingerprint", fingerprint, NULL};
        OpenCall *c = userdata;

        (void) job;
        /* From a worker thread: the call's sender is only read, the cache is locked. */
        return polkit_registry_remembers(c->polkit, sd_bus_message_get_sender(c->call.call), POLKIT_ACTION_DECRYPT,
                                         details);
}

static void open_done(OpenJob *job, int error, SmimedError error_code, const char *message, const OpenStatus *s,
                      void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        OpenCall *c = userdata;
        sd_bus_message *call = c->call.call;
        int r;

        if (error < 0) {
                /* polkit's own answer goes back as it came */
                reply_job_error(call, error, error_code, error == -EACCES ? c->refused_name : NULL, message);
                return;
        }

        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0) {
                r = message_io_append_result(&c->io, s->result_fd, reply);
                if (r == -EFBIG)
                        return reply_result_too_large(call, &c->io);
        }
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}", "encryption", "s", s->encryption,
                                          "encryption_message", "s", strempty(s->encryption_message), "signature", "s",
                                          s->signature, "signature_message", "s", strempty(s->signature_message),
                                          "content", "b", s->has_content, "size", "t", s->size);
        if (r >= 0 && s->key)
                r = sd_bus_message_append(reply, "{sv}{sv}", "key", "s", s->key, "key_certificate", "s",
                                          strempty(s->key_certificate));
        if (r >= 0 && s->signer)
                r = append_signer(reply, s->signer);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                reply_failed(call, r);
}

static int open_begin(Manager *m, sd_bus_message *message, bool decrypt, bool data, sd_bus_error *error) {
        static const OpenJobHooks hooks = {
                .done = open_done,
                .authorize = open_authorize,
                .authorized_at_once = open_authorized_at_once,
                .free_userdata = open_call_free,
        };
        _cleanup_(message_io_done) MessageIO io = MESSAGE_IO_NULL;
        _cleanup_(bus_call_end) BusCall call = {};
        OpenRequest request;
        bool verify = true;
        const char *key = NULL;
        OpenCall *c;
        int r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = message_io_read(m, message, data, &io, error);
        if (r < 0)
                return r;
        if (decrypt) {
                int v = verify;
                BusOption options[] = {{"verify", 'b', &v}, {"key", 's', &key}};

                r = bus_read_options(message, options, ELEMENTSOF(options), error);
                verify = v;
        } else
                r = bus_read_options(message, NULL, 0, error);
        if (r < 0)
                return r;

        {
                _cleanup_free_ char *text = NULL;

                r = policy_check_enabled(m->config, &text);
                if (r < 0)
                        return bus_error_set_from_manager(error, r, text);
        }
        r = check_message_fds(&io, error);
        if (r < 0)
                return r;

        c = calloc(1, sizeof(OpenCall));
        if (!c)
                return -ENOMEM;
        c->io = io;
        io = MESSAGE_IO_NULL;
        c->polkit = m->bus->polkit;
        c->call = call;
        c->call.call = sd_bus_message_ref(message);
        call.call = NULL;
        request = (OpenRequest){
                .decrypt = decrypt,
                .verify = verify,
                .key = key && key[0] ? key : NULL,
                .input_fd = c->io.input,
                .output_fd = c->io.output,
        };
        audit_caller_from_message(message, &request.caller);
        r = manager_open_start(m, &request, &hooks, c);
        if (r < 0) {
                open_call_free(c);
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                         "The input or output cannot be used: %s", fd_error_to_string(r));
        }
        return 1;
}

int manager_method_decrypt(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return open_begin(userdata, message, true, false, error);
}

int manager_method_decrypt_data(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return open_begin(userdata, message, true, true, error);
}

int manager_method_verify(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return open_begin(userdata, message, false, false, error);
}

int manager_method_verify_data(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return open_begin(userdata, message, false, true, error);
}
