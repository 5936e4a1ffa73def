/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "bus-audit.h"
#include "bus-call.h"
#include "bus-error-map.h"
#include "capabilities.h"
#include "certificate-bus.h"
#include "certificate-parse.h"
#include "fd-util.h"
#include "log.h"
#include "manager-bus.h"
#include "job.h"
#include "key-bus.h"
#include "manager-certificates.h"
#include "manager-keys.h"
#include "manager-open.h"
#include "manager-smime.h"
#include "bus-pending-call.h"
#include "manager.h"
#include "policy.h"
#include "smimed-bus-names.h"
#include "smimed-error.h"
#include "strv.h"

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        (void) bus, (void) path, (void) interface, (void) property, (void) userdata, (void) error;
        return sd_bus_message_append(reply, "s", SMIMED_VERSION);
}

static int property_get_enabled(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "b", m->config->policy_enabled);
}

static int property_get_token_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "s", token_state_to_string(token_get_state(m->token)));
}

static int property_get_token_state_reason(sd_bus *bus, const char *path, const char *interface,
                                           const char *property, sd_bus_message *reply, void *userdata,
                                           sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "s", token_get_state_reason(m->token));
}

static int property_get_token_label(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "s", strempty(token_get_label(m->token)));
}

static int property_get_certificate_count(sd_bus *bus, const char *path, const char *interface,
                                          const char *property, sd_bus_message *reply, void *userdata,
                                          sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "t", m->certificate_count);
}

static int property_get_key_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "t", (uint64_t) m->n_keys);
}

static int method_reload(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *reason = NULL;
        Manager *m = userdata;
        int r;

        r = bus_call_authorize(m->clients, m->bus->polkit, message, POLKIT_ACTION_MANAGE_CERTIFICATES, NULL, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* polkit is asked; the call comes back with its answer */

        r = manager_reload(m, &reason);
        if (r < 0 && reason)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_CONFIG, "%s", reason);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Reload failed: %m");

        return sd_bus_reply_method_return(message, NULL);
}

/* manager-certificates.c and manager-keys.c speak of data they were given:
 * there, data that does not parse, is empty or is too large (-EBADMSG, -EFBIG,
 * -E2BIG) is InvalidFormat, and an unsupported kind of key (-EOPNOTSUPP) an
 * InvalidArgument. Anything else is the table's; what it does not know is
 * the store's failure. */
static SmimedError manager_error(int r) {
        SmimedError e;

        switch (r) {
        case -EBADMSG:
        case -EFBIG:
        case -E2BIG:
                return SMIMED_ERR_INVALID_FORMAT;
        case -EOPNOTSUPP:
                return SMIMED_ERR_INVALID_ARGUMENT;
        }
        e = smimed_error_from_errno(r);
        return e < 0 ? SMIMED_ERR_STORE_FAILED : e;
}

int bus_error_set_from_manager(sd_bus_error *error, int r, const char *message) {
        if (r == -ENOMEM)
                return sd_bus_error_set_errno(error, r);
        if (message)
                return sd_bus_error_set(error, smimed_error_to_name(manager_error(r)), message);
        return sd_bus_error_setf(error, smimed_error_to_name(manager_error(r)), "%s", strerror(-r));
}

/* Reads an a{sv} of options: each key must be one of names, with the type
 * given; values are stored through the pointers in the same order. */
typedef struct BusOption {
        const char *name;
        char type;          /* 'b' or 's' */
        void *value;        /* int * or const char ** */
} BusOption;

static int bus_read_options(sd_bus_message *message, BusOption *options, size_t n, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(message, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
                const char *key;
                BusOption *o = NULL;
                char signature[2];

                r = sd_bus_message_read(message, "s", &key);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        if (streq(options[i].name, key))
                                o = &options[i];
                if (!o)
                        return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT, "Unknown option \"%s\".", key);

                signature[0] = o->type;
                signature[1] = '\0';
                r = sd_bus_message_read(message, "v", signature, o->value);
                if (r < 0)
                        return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                                 "Option \"%s\" takes a value of type %s.", key, signature);
                r = sd_bus_message_exit_container(message);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(message);
}

static int reply_certificate_paths(sd_bus_message *message, char **fingerprints) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = bus_append_certificate_paths(reply, fingerprints);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int read_import_data(sd_bus_message *message, const void **ret_data, size_t *ret_size, sd_bus_error *error) {
        int r;

        r = sd_bus_message_read_array(message, 'y', ret_data, ret_size);
        if (r < 0)
                return r;
        if (*ret_size > IMPORT_MAX_SIZE)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_FORMAT, "The data is larger than %u MiB.",
                                         IMPORT_MAX_SIZE / 1024 / 1024);
        return 0;
}

static int method_import_certificates(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **fingerprints = NULL;
        _cleanup_free_ char *reason = NULL;
        Manager *m = userdata;
        const void *data;
        size_t size;
        int trust = false, r;
        BusOption options[] = { { "trust", 'b', &trust } };

        r = bus_call_authorize(m->clients, m->bus->polkit, message, POLKIT_ACTION_MANAGE_CERTIFICATES, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = read_import_data(message, &data, &size, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, options, ELEMENTSOF(options), error);
        if (r < 0)
                return r;

        r = manager_import_certificates(m, data, size, trust, &fingerprints, &reason);
        audit_call(message, trust ? AUDIT_TRUST_CHANGE : AUDIT_CERTIFICATE_IMPORT,
                   trust ? "import-certificates-trusted" : "import-certificates", r,
                   fingerprints ? fingerprints[0] : NULL, NULL, NULL, reason);
        if (r < 0)
                return bus_error_set_from_manager(error, r, reason);
        return reply_certificate_paths(message, fingerprints);
}

static int method_import_crl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *reason = NULL;
        Manager *m = userdata;
        const void *data;
        unsigned count = 0;
        size_t size;
        int r;

        r = bus_call_authorize(m->clients, m->bus->polkit, message, POLKIT_ACTION_MANAGE_CERTIFICATES, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = read_import_data(message, &data, &size, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, NULL, 0, error);
        if (r < 0)
                return r;

        r = manager_import_crls(m, data, size, &count, &reason);
        audit_call(message, AUDIT_CERTIFICATE_IMPORT, "import-crl", r, NULL, NULL, NULL, reason);
        if (r < 0)
                return bus_error_set_from_manager(error, r, reason);
        return sd_bus_reply_method_return(message, "u", (uint32_t) count);
}

static int read_address(const char *address, bool allow_empty, char **ret, sd_bus_error *error) {
        if (allow_empty && address[0] == '\0')
                return free_and_strdup(ret, "");
        if (address_normalize(address, ret) < 0)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                         "\"%s\" is not a mail address (expected local@domain).", address);
        return 0;
}

static int parse_purpose(const char *s, CertPurpose *ret, sd_bus_error *error) {
        if (!s || streq(s, "any"))
                *ret = CERT_PURPOSE_ANY;
        else if (streq(s, "sign"))
                *ret = CERT_PURPOSE_SIGN;
        else if (streq(s, "encrypt"))
                *ret = CERT_PURPOSE_ENCRYPT;
        else
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                         "Unknown purpose \"%s\" (expected sign, encrypt or any).", s);
        return 0;
}

/* A call that does its work on the loop waits for its client's turn
 * (client.c): the handler runs then, from the start of the message, and
 * replies; an error it returns is the reply. */
typedef int (*QueuedHandler)(Manager *m, sd_bus_message *message, sd_bus_error *error);

typedef struct QueuedCall {
        Manager *manager;
        BusCall *call;
        QueuedHandler handler;
} QueuedCall;

static void queued_call_free(void *userdata) {
        QueuedCall *q = userdata;

        bus_call_free(q->call);
        free(q);
}

static void queued_call_run(void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        QueuedCall *q = userdata;
        sd_bus_message *call = q->call->call;
        int r;

        r = sd_bus_message_rewind(call, true);
        if (r >= 0)
                r = q->handler(q->manager, call, &error);
        if (r < 0) {
                if (!sd_bus_error_is_set(&error))
                        (void) sd_bus_error_set_errnof(&error, r, "%m");
                r = sd_bus_reply_method_error(call, &error);
                if (r < 0)
                        log_debug_errno(r, "Failed to send an error reply: %m");
        }
}

static int queue_call(Manager *m, sd_bus_message *message, BusCall *call, QueuedHandler handler) {
        QueuedCall *q;
        int r;

        q = calloc(1, sizeof(QueuedCall));
        if (!q)
                return -ENOMEM;
        q->manager = m;
        q->handler = handler;
        q->call = bus_call_take(call);
        if (!q->call) {
                free(q);
                return -ENOMEM;
        }
        r = client_queue_work(m->clients, sd_bus_message_get_sender(message), queued_call_run, q, queued_call_free);
        if (r < 0) {
                queued_call_free(q);
                return r;
        }
        return 1;
}

static int check_recipient_count(Manager *m, size_t n, sd_bus_error *error) {
        if (n > m->config->max_recipients)
                return sd_bus_error_setf(error, SMIMED_ERROR_LIMITS_EXCEEDED,
                                         "%zu recipients in one call; smimed takes at most %llu ([Policy] "
                                         "MaxRecipients=).",
                                         n, (unsigned long long) m->config->max_recipients);
        return 0;
}

static int lookup_certificates(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_(strv_freep) char **fingerprints = NULL;
        _cleanup_free_ char *address = NULL;
        const char *raw, *purpose_name = NULL;
        CapabilityContext ctx;
        CertPurpose purpose = CERT_PURPOSE_ANY;
        int usable = false, r;
        BusOption filter[] = { { "purpose", 's', &purpose_name }, { "usable", 'b', &usable } };

        r = sd_bus_message_read(message, "s", &raw);
        if (r < 0)
                return r;
        r = read_address(raw, true, &address, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, filter, ELEMENTSOF(filter), error);
        if (r < 0)
                return r;
        r = parse_purpose(purpose_name, &purpose, error);
        if (r < 0)
                return r;

        manager_capability_context(m, &ctx);
        r = capability_lookup(&ctx, address, purpose, usable, &fingerprints);
        if (r < 0)
                return bus_error_set_from_manager(error, r, NULL);
        return reply_certificate_paths(message, fingerprints);
}

static int method_lookup_certificates(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        Manager *m = userdata;
        int r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        return queue_call(m, message, &call, lookup_certificates);
}

/* asked: the address as the caller wrote it, reported back unchanged. */
static int append_capability(sd_bus_message *reply, const char *asked, const Capability *c) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}", "address", "s", asked, "possible", "b",
                                  c->possible, "reason", "s", c->reason, "message", "s", c->message);
        if (r < 0)
                return r;
        if (c->info) {
                _cleanup_free_ char *path = certificate_bus_path(c->info->fingerprint);
                _cleanup_free_ char *summary = cert_info_summary(c->info);

                if (!path || !summary)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}", "certificate", "o", path,
                                          "fingerprint", "s", c->info->fingerprint, "subject", "s", c->info->subject,
                                          "issuer", "s", c->info->issuer, "not_after", "t",
                                          (uint64_t) (c->info->not_after > 0 ? c->info->not_after : 0) * 1000000ULL,
                                          "summary", "s", summary);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* [Policy] Enabled=no: nothing is possible, and a mail app hides its buttons. */
static int reply_capabilities_disabled(sd_bus_message *reply, const char *sender, char **recipients) {
        static const char message[] = "S/MIME is turned off by the administrator ([Policy] Enabled=no).";
        int r;

        if (sender[0])
                r = sd_bus_message_append(reply, "a{sv}", 4, "address", "s", sender, "possible", "b", 0, "reason", "s",
                                          "feature-disabled", "message", "s", message);
        else
                r = sd_bus_message_append(reply, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (char **a = recipients; r >= 0 && a && *a; a++)
                r = sd_bus_message_append(reply, "a{sv}", 4, "address", "s", *a, "possible", "b", 0, "reason", "s",
                                          "feature-disabled", "message", "s", message);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int get_capabilities(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **recipients = NULL, **normalized = NULL;
        _cleanup_free_ char *sender = NULL;
        const char *raw_sender;
        CapabilityContext ctx;
        int r;

        r = sd_bus_message_read(message, "s", &raw_sender);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(message, &recipients);
        if (r < 0)
                return r;
        r = bus_read_options(message, NULL, 0, error);
        if (r < 0)
                return r;

        r = read_address(raw_sender, true, &sender, error);
        if (r < 0)
                return r;
        normalized = calloc(strv_length(recipients) + 1, sizeof(char *));
        if (!normalized)
                return -ENOMEM;
        for (size_t i = 0; recipients && recipients[i]; i++) {
                r = read_address(recipients[i], false, &normalized[i], error);
                if (r < 0)
                        return r;
        }

        manager_capability_context(m, &ctx);
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;

        if (policy_check_enabled(m->config, NULL) < 0)
                return reply_capabilities_disabled(reply, raw_sender, recipients);

        if (sender[0]) {
                _cleanup_(capability_done) Capability c = {};

                r = capability_for(&ctx, sender, CERT_PURPOSE_SIGN, &c);
                if (r < 0)
                        return bus_error_set_from_manager(error, r, NULL);
                r = append_capability(reply, raw_sender, &c);
        } else
                r = sd_bus_message_append(reply, "a{sv}", 0);
        if (r < 0)
                return r;

        r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; normalized[i]; i++) {
                _cleanup_(capability_done) Capability c = {};

                r = capability_for(&ctx, normalized[i], CERT_PURPOSE_ENCRYPT, &c);
                if (r < 0)
                        return bus_error_set_from_manager(error, r, NULL);
                r = append_capability(reply, recipients[i], &c);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_capabilities(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        _cleanup_(strv_freep) char **recipients = NULL;
        Manager *m = userdata;
        const char *sender;
        int r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        /* A look at the size first: a call over the limit is not queued at all. */
        r = sd_bus_message_read(message, "s", &sender);
        if (r >= 0)
                r = sd_bus_message_read_strv(message, &recipients);
        if (r < 0)
                return r;
        r = check_recipient_count(m, strv_length(recipients), error);
        if (r < 0)
                return r;
        return queue_call(m, message, &call, get_capabilities);
}

static void erase_and_free_void(void *p) {
        erase_and_free(p);
}

static int reply_error(sd_bus_message *call, int r, const char *message) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        bus_error_set_from_manager(&error, r, message);
        return sd_bus_reply_method_error(call, &error);
}

static int reply_read_error(Manager *m, sd_bus_message *call, int error) {
        if (error == -EFBIG)
                return sd_bus_reply_method_errorf(call, SMIMED_ERROR_INVALID_FORMAT, "The file is larger than %u KiB.",
                                                  PKCS12_MAX_SIZE / 1024);
        if (error == -ETIMEDOUT) {
                _cleanup_free_ char *message = NULL;
                SmimedError code = 0;

                job_io_fail(m, error, true, &code, &message);
                return sd_bus_reply_method_errorf(call, smimed_error_to_name(code), "%s", strempty(message));
        }
        return sd_bus_reply_method_errnof(call, error, "Reading the file descriptor failed: %m");
}

static void import_pkcs12_enrolled(int r, const char *reason, const char *id, char **fingerprints, void *userdata) {
        _cleanup_(bus_call_freep) BusCall *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *key_path = NULL;

        audit_call(c->call, AUDIT_KEY_ENROLL, "import-pkcs12", r, fingerprints ? fingerprints[0] : NULL, id, NULL,
                   reason);
        if (r == -ECONNRESET || r == -ESHUTDOWN)
                return; /* nobody to answer, or no time to */
        if (r < 0) {
                (void) reply_error(c->call, r, reason);
                return;
        }

        key_path = key_bus_path(id);
        r = key_path ? sd_bus_message_new_method_return(c->call, &reply) : -ENOMEM;
        if (r >= 0)
                r = sd_bus_message_append(reply, "o", key_path);
        if (r >= 0)
                r = bus_append_certificate_paths(reply, fingerprints);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to reply to ImportPKCS12: %m");
}

/* The file is read: a worker parses it. */
static void import_pkcs12_read(Manager *m, sd_bus_message *call, const void *data, size_t size, int error,
                               void *userdata) {
        _cleanup_(bus_call_end) BusCall bc = { .clients = m->clients, .call = call };
        _cleanup_free_ char *reason = NULL;
        const char *passphrase = userdata;
        const char *sender = sd_bus_message_get_sender(call);
        BusCall *taken;
        int r;

        if (error < 0) {
                (void) reply_read_error(m, call, error);
                return;
        }

        taken = bus_call_take(&bc);
        if (!taken) {
                (void) sd_bus_reply_method_errno(call, ENOMEM, NULL);
                return;
        }
        r = manager_import_pkcs12_start(m, sender, client_id(m->clients, sender), data, size, passphrase,
                                        import_pkcs12_enrolled, taken, &reason);
        if (r < 0) {
                audit_call(call, AUDIT_KEY_ENROLL, "import-pkcs12", r, NULL, NULL, NULL, reason);
                (void) reply_error(call, r, reason);
                bus_call_free(taken);
        }
}

static int method_import_pkcs12(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        Manager *m = userdata;
        const char *passphrase;
        char *copy;
        int fd, r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = bus_polkit_check(m->bus->polkit, message, POLKIT_ACTION_MANAGE_KEYS, NULL, error);
        if (r == 0)
                bus_call_keep(&call);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(message, "hs", &fd, &passphrase);
        if (r < 0)
                return r;
        r = bus_read_options(message, NULL, 0, error);
        if (r < 0)
                return r;

        copy = strdup(passphrase);
        if (!copy)
                return -ENOMEM;
        r = pending_call_start(m, message, fd, PKCS12_MAX_SIZE, import_pkcs12_read, copy, erase_and_free_void);
        if (r < 0)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT, "The file cannot be used: %s",
                                         fd_error_to_string(r));
        bus_call_keep(&call); /* import_pkcs12_read() or what it starts ends it */
        return 1; /* the reply comes when the file has been read */
}

/* A GenerateKey waiting for its worker, with its caller as they were when
 * it came: a caller that left meanwhile cannot be asked any more. */
typedef struct GenerateCall {
        BusCall *call;
        AuditCaller caller;
} GenerateCall;

static void audit_generate_key(const AuditCaller *caller, int r, const char *key_id, const char *address,
                               const char *message) {
        audit_log(caller, &(AuditRecord) {
                                  .event = AUDIT_KEY_ENROLL,
                                  .operation = "generate-key",
                                  .outcome = r < 0 ? "failed" : "success",
                                  .key = key_id,
                                  .address = address,
                                  .detail = r < 0 ? message : NULL,
                          });
}

static void generate_key_done(int r, const char *message, const char *key_id, const char *csr, void *userdata) {
        GenerateCall *g = userdata;
        _cleanup_(bus_call_freep) BusCall *c = g->call;
        sd_bus_message *call = c->call;
        _cleanup_free_ char *key_path = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *address = NULL;

        (void) sd_bus_message_rewind(call, true);
        (void) sd_bus_message_read(call, "s", &address);
        audit_generate_key(&g->caller, r, key_id, address, message);
        free(g);

        if (r < 0) {
                bus_error_set_from_manager(&error, r, message);
                r = sd_bus_reply_method_error(call, &error);
        } else {
                key_path = key_bus_path(key_id);
                r = key_path ? sd_bus_reply_method_return(call, "os", key_path, csr) : -ENOMEM;
        }
        if (r < 0)
                log_warning_errno(r, "Failed to reply to GenerateKey: %m");
}

static int method_generate_key(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        _cleanup_free_ char *address = NULL, *reason = NULL;
        GenerateCall *g;
        const char *raw, *type = NULL, *subject = NULL;
        Manager *m = userdata;
        BusOption options[] = { { "type", 's', &type }, { "subject", 's', &subject } };
        const char *details[] = { "address", NULL, NULL };
        int r;

        r = sd_bus_message_read(message, "s", &raw);
        if (r < 0)
                return r;
        r = read_address(raw, false, &address, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, options, ELEMENTSOF(options), error);
        if (r < 0)
                return r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        details[1] = address;
        r = bus_polkit_check(m->bus->polkit, message, POLKIT_ACTION_MANAGE_KEYS, details, error);
        if (r == 0)
                bus_call_keep(&call);
        if (r <= 0)
                return r < 0 ? r : 1;

        g = calloc(1, sizeof(GenerateCall));
        if (!g)
                return -ENOMEM;
        g->call = bus_call_take(&call);
        if (!g->call) {
                free(g);
                return -ENOMEM;
        }
        audit_caller_from_message(message, &g->caller);
        r = manager_generate_key_start(m, sd_bus_message_get_sender(message), address, type, subject,
                                       generate_key_done, g, &reason);
        if (r < 0) {
                audit_generate_key(&g->caller, r, NULL, address, reason);
                bus_call_free(g->call);
                free(g);
                return bus_error_set_from_manager(error, r, reason);
        }
        return 1; /* the reply comes when the worker is done */
}

static void smime_done(SmimeJob *job, int error, SmimedError error_code, const char *message,
                       const SmimeResult *result, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_message *call = ((BusCall *) userdata)->call;
        int r;

        if (error < 0) {
                const char *error_name = smimed_error_to_name(error_code);

                if (error_name)
                        r = sd_bus_reply_method_errorf(call, error_name, "%s", strempty(message));
                else
                        r = sd_bus_reply_method_errnof(call, error, "%s", strempty(message));
                if (r < 0)
                        log_debug_errno(r, "Failed to send an error reply: %m");
                return;
        }

        r = sd_bus_message_new_method_return(call, &reply);
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
                log_warning_errno(r, "Failed to reply to %s: %m", strempty(sd_bus_message_get_member(call)));
}

/* The common part of Sign and Encrypt once the request is read: checks,
 * polkit for signing, then the job. */
/* Before polkit or the token are asked: a caller's fd that cannot be used
 * as it was opened is refused at once. */
static int check_message_fds(int input, int output, sd_bus_error *error) {
        int r;

        r = fd_classify(input, O_RDONLY, NULL);
        if (r < 0)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT, "The input cannot be used: %s",
                                         fd_error_to_string(r));
        r = fd_classify(output, O_WRONLY, NULL);
        if (r < 0)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT, "The output cannot be used: %s",
                                         fd_error_to_string(r));
        return 0;
}

static int smime_begin(Manager *m, sd_bus_message *message, BusCall *call, SmimeRequest *request, int input,
                       int output, sd_bus_error *error) {
        _cleanup_free_ char *fingerprint = NULL, *reason = NULL;
        _cleanup_(strv_freep) char **addresses = NULL;
        SmimedError error_code = 0;
        BusCall *taken;
        int r;

        r = check_message_fds(input, output, error);
        if (r < 0)
                return r;

        audit_caller_from_message(message, &request->caller);
        r = manager_smime_prepare(m, request, &fingerprint, &addresses, &error_code, &reason);
        if (r < 0) {
                const char *error_name = smimed_error_to_name(error_code);

                return error_name ? sd_bus_error_set(error, error_name, reason)
                                  : sd_bus_error_set_errnof(error, r, "%s", strempty(reason));
        }

        if (request->sign_as) {
                /* The address asked for first (the one polkit's agent names), then the
                 * certificate's others: the signature vouches for each of them. */
                _cleanup_(strv_freep) char **ordered = NULL;

                r = strv_extend(&ordered, request->sign_as);
                for (char **a = addresses; r >= 0 && *a; a++)
                        if (!streq(*a, request->sign_as))
                                r = strv_extend(&ordered, *a);
                if (r < 0)
                        return r;
                r = bus_polkit_check_addresses(m->bus->polkit, message, POLKIT_ACTION_SIGN, ordered, fingerprint,
                                               error);
                if (r == 0)
                        bus_call_keep(call);
                if (r <= 0)
                        return r < 0 ? r : 1;
        }

        taken = bus_call_take(call);
        if (!taken)
                return -ENOMEM;
        r = manager_smime_start(m, request, input, output, smime_done, taken, bus_call_free);
        if (r < 0) {
                bus_call_free(taken);
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT, "The input or output cannot be used: %s",
                                         fd_error_to_string(r));
        }
        return 1; /* the reply comes when the output is written */
}

static int read_sign_options(Manager *m, const char *digest, SignOptions *o, sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        int r;

        r = policy_sign_digest(m->config, digest, &o->digest, &message);
        if (r < 0)
                return bus_error_set_from_manager(error, r, message);
        return 0;
}

static int method_sign(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(smime_request_done) SmimeRequest request = {};
        _cleanup_(bus_call_end) BusCall call = {};
        Manager *m = userdata;
        const char *sender, *digest = NULL;
        int input, output, opaque = false, pss = false, r;
        BusOption options[] = {
                { "opaque", 'b', &opaque },
                { "digest", 's', &digest },
                { "pss", 'b', &pss },
        };

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(message, "shh", &sender, &input, &output);
        if (r < 0)
                return r;
        r = bus_read_options(message, options, ELEMENTSOF(options), error);
        if (r < 0)
                return r;
        r = read_address(sender, false, &request.sign_as, error);
        if (r < 0)
                return r;
        r = read_sign_options(m, digest, &request.sign, error);
        if (r < 0)
                return r;
        request.sign.opaque = opaque;
        request.sign.pss = pss;

        return smime_begin(m, message, &call, &request, input, output, error);
}

static int method_encrypt(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(smime_request_done) SmimeRequest request = {};
        _cleanup_(strv_freep) char **recipients = NULL;
        _cleanup_(bus_call_end) BusCall call = {};
        Manager *m = userdata;
        const char *cipher = NULL, *sign_as = NULL, *sender = NULL, *digest = NULL;
        int input, output, oaep = false, opaque = false, pss = false, r;
        BusOption options[] = {
                { "cipher", 's', &cipher },   { "oaep", 'b', &oaep },     { "sign_as", 's', &sign_as },
                { "sender", 's', &sender },   { "opaque", 'b', &opaque }, { "digest", 's', &digest },
                { "pss", 'b', &pss },
        };

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(message, &recipients);
        if (r < 0)
                return r;
        r = check_recipient_count(m, strv_length(recipients), error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(message, "hh", &input, &output);
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
                r = read_address(recipients[i], false, &request.recipients[i], error);
                if (r < 0)
                        return r;
        }
        if (sign_as) {
                r = read_address(sign_as, false, &request.sign_as, error);
                if (r < 0)
                        return r;
        }
        if (sender || sign_as) {
                r = read_address(sender ?: sign_as, false, &request.sender, error);
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
        r = read_sign_options(m, digest, &request.sign, error);
        if (r < 0)
                return r;
        request.sign.opaque = opaque;
        request.sign.pss = pss;

        return smime_begin(m, message, &call, &request, input, output, error);
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

static void open_done(OpenJob *job, int error, SmimedError error_code, const char *message, const OpenStatus *s,
                      void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        OpenCall *c = userdata;
        sd_bus_message *call = c->call.call;
        int r;

        if (error < 0) {
                const char *error_name = smimed_error_to_name(error_code);

                if (!error_name && error == -EACCES)
                        error_name = c->refused_name; /* polkit's own answer goes back as it came */

                if (error_name)
                        r = sd_bus_reply_method_errorf(call, error_name, "%s", strempty(message));
                else
                        r = sd_bus_reply_method_errnof(call, error, "%s", strempty(message));
                if (r < 0)
                        log_debug_errno(r, "Failed to send an error reply: %m");
                return;
        }

        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}", "encryption", "s", s->encryption,
                                          "encryption_message", "s", strempty(s->encryption_message), "signature",
                                          "s", s->signature, "signature_message", "s",
                                          strempty(s->signature_message), "content", "b", s->has_content, "size",
                                          "t", s->size);
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
                log_warning_errno(r, "Failed to reply to %s: %m", strempty(sd_bus_message_get_member(call)));
}

static int open_begin(Manager *m, sd_bus_message *message, bool decrypt, bool verify, sd_bus_error *error) {
        static const OpenJobHooks hooks = {
                .done = open_done,
                .authorize = open_authorize,
                .free_userdata = open_call_free,
        };
        _cleanup_(bus_call_end) BusCall call = {};
        OpenRequest request;
        OpenCall *c;
        int input, output, r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(message, "hh", &input, &output);
        if (r < 0)
                return r;
        if (decrypt) {
                int v = verify;
                BusOption options[] = { { "verify", 'b', &v } };

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
        r = check_message_fds(input, output, error);
        if (r < 0)
                return r;

        c = calloc(1, sizeof(OpenCall));
        if (!c)
                return -ENOMEM;
        c->polkit = m->bus->polkit;
        c->call = call;
        c->call.call = sd_bus_message_ref(message);
        call.call = NULL;
        request = (OpenRequest){
                .decrypt = decrypt,
                .verify = verify,
                .input_fd = input,
                .output_fd = output,
        };
        audit_caller_from_message(message, &request.caller);
        r = manager_open_start(m, &request, &hooks, c);
        if (r < 0) {
                open_call_free(c);
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT, "The input or output cannot be used: %s",
                                         fd_error_to_string(r));
        }
        return 1;
}

static int method_decrypt(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return open_begin(userdata, message, true, true, error);
}

static int method_verify(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return open_begin(userdata, message, false, true, error);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Enabled", "b", property_get_enabled, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TokenState", "s", property_get_token_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TokenStateReason", "s", property_get_token_state_reason, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TokenLabel", "s", property_get_token_label, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CertificateCount", "t", property_get_certificate_count, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("KeyCount", "t", property_get_key_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportCertificates", SD_BUS_ARGS("ay", data, "a{sv}", options),
                                SD_BUS_RESULT("ao", certificates), method_import_certificates,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportCRL", SD_BUS_ARGS("ay", data, "a{sv}", options), SD_BUS_RESULT("u", count),
                                method_import_crl, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("LookupCertificates", SD_BUS_ARGS("s", address, "a{sv}", filter),
                                SD_BUS_RESULT("ao", certificates), method_lookup_certificates,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCapabilities", SD_BUS_ARGS("s", sender, "as", recipients, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", sign, "aa{sv}", encrypt), method_get_capabilities,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportPKCS12", SD_BUS_ARGS("h", file, "s", passphrase, "a{sv}", options),
                                SD_BUS_RESULT("o", key, "ao", certificates), method_import_pkcs12,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GenerateKey", SD_BUS_ARGS("s", address, "a{sv}", options),
                                SD_BUS_RESULT("o", key, "s", csr_pem), method_generate_key,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Sign", SD_BUS_ARGS("s", sender, "h", input, "h", output, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", result), method_sign, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Encrypt",
                                SD_BUS_ARGS("as", recipients, "h", input, "h", output, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", result), method_encrypt, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Decrypt", SD_BUS_ARGS("h", input, "h", output, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", status), method_decrypt, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Verify", SD_BUS_ARGS("h", input, "h", output, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", status), method_verify, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* sd-bus answers GetManagedObjects and Introspect itself, from every
 * certificate object in the store: each costs far more than one message.
 * Such a call waits for its client's turn like any other (a filter sees it
 * first), then is dispatched again, admitted, for sd-bus to answer. */
static bool is_object_walk(sd_bus_message *message) {
        return sd_bus_message_is_method_call(message, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects") > 0 ||
               sd_bus_message_is_method_call(message, "org.freedesktop.DBus.Introspectable", "Introspect") > 0;
}

typedef struct AdmittedCall {
        Manager *manager;
        BusCall *call;
} AdmittedCall;

static void admitted_call_free(void *userdata) {
        AdmittedCall *a = userdata;

        bus_call_free(a->call);
        free(a);
}

static void admit_call(void *userdata) {
        AdmittedCall *a = userdata;
        Manager *m = a->manager;
        sd_bus_message **more;
        int r;

        more = reallocarray(m->bus->admitted, m->bus->n_admitted + 1, sizeof(sd_bus_message *));
        if (!more) {
                (void) sd_bus_reply_method_errno(a->call->call, ENOMEM, NULL);
                return;
        }
        m->bus->admitted = more;
        r = sd_bus_enqueue_for_read(m->bus->connection, a->call->call);
        if (r < 0) {
                (void) sd_bus_reply_method_errnof(a->call->call, r, "Cannot dispatch the call: %m");
                return;
        }
        m->bus->admitted[m->bus->n_admitted++] = sd_bus_message_ref(a->call->call);
}

static int on_incoming(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(bus_call_end) BusCall call = {};
        Manager *m = userdata;
        AdmittedCall *a;
        int r;

        (void) ret_error;
        if (!is_object_walk(message) || !sd_bus_message_get_sender(message))
                return 0;
        for (size_t i = 0; i < m->bus->n_admitted; i++)
                if (m->bus->admitted[i] == message) {
                        m->bus->admitted[i] = m->bus->admitted[--m->bus->n_admitted];
                        sd_bus_message_unref(message); /* the queue holds it */
                        return 0; /* its turn came: sd-bus answers it now */
                }

        r = bus_call_begin(m->clients, message, &call, &error);
        if (r >= 0) {
                a = calloc(1, sizeof(AdmittedCall));
                r = a ? 0 : -ENOMEM;
        }
        if (r >= 0) {
                a->manager = m;
                a->call = bus_call_take(&call);
                r = a->call ? client_queue_work(m->clients, sd_bus_message_get_sender(message), admit_call, a,
                                                admitted_call_free)
                            : -ENOMEM;
                if (r < 0)
                        admitted_call_free(a);
        }
        if (r < 0) {
                if (!sd_bus_error_is_set(&error))
                        (void) sd_bus_error_set_errnof(&error, r, "%m");
                (void) sd_bus_reply_method_error(message, &error);
        }
        return 1;
}

static void read_bus(unsigned budget, void *userdata) {
        Manager *m = userdata;

        for (unsigned i = 0; i < budget; i++) {
                int r = sd_bus_process(m->bus->connection, NULL);

                if (r < 0)
                        log_debug_errno(r, "Failed to process the bus: %m");
                if (r <= 0)
                        break;
        }
}

/* NameOwnerChanged(name, old_owner, "") for a unique name: a client disconnected. */
static int on_name_owner_changed(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        const char *name, *old_owner, *new_owner;
        Manager *m = userdata;
        unsigned n;
        int r;

        (void) error;
        r = sd_bus_message_read(message, "sss", &name, &old_owner, &new_owner);
        if (r < 0) {
                log_debug_errno(r, "Ignoring a malformed NameOwnerChanged: %m");
                return 0;
        }
        if (name[0] != ':' || new_owner[0] != '\0')
                return 0;
        /* Its calls still waiting for polkit or for their input are dropped
         * here; the core drops its jobs and its share of the limits. */
        n = polkit_registry_cancel_sender(m->bus->polkit, name);
        n += pending_calls_cancel_sender(m, name);
        if (n > 0)
                log_debug("Client %s went away: dropped %u of its calls waiting on the bus side.", name, n);
        manager_client_gone(m, name);
        return 0;
}

static int manager_connect_bus(Manager *m) {
        int r;

        r = sd_bus_open_system_with_description(&m->bus->connection, "smimed");
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");

        r = sd_bus_attach_event(m->bus->connection, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");

        /* Without the bus there is nothing to serve. */
        r = sd_bus_set_exit_on_disconnect(m->bus->connection, true);
        if (r < 0)
                return log_error_errno(r, "Failed to make a lost bus stop the daemon: %m");

        return 0;
}

/* What the core says changed, shown on the bus. */
static void manager_bus_on_event(Manager *m, const ManagerEvent *event, void *userdata) {
        int r;

        (void) userdata;
        switch (event->type) {
        case MANAGER_EVENT_CERTIFICATE_ADDED:
        case MANAGER_EVENT_CERTIFICATE_REMOVED:
        case MANAGER_EVENT_CERTIFICATE_TRUST:
        case MANAGER_EVENT_CERTIFICATES_STALE:
                certificate_bus_on_event(m, event);
                break;
        case MANAGER_EVENT_KEY_ADDED:
        case MANAGER_EVENT_KEY_REMOVED:
                key_bus_on_event(m, event);
                break;
        case MANAGER_EVENT_PROPERTIES_CHANGED:
                r = sd_bus_emit_properties_changed_strv(m->bus->connection, SMIMED_MANAGER_PATH,
                                                        SMIMED_MANAGER_INTERFACE, (char **) event->names);
                if (r < 0)
                        log_warning_errno(r, "Failed to emit PropertiesChanged of the manager: %m");
                break;
        default:
                break;
        }
}

static int manager_bus_register(Manager *m) {
        int r;

        /* One match for every disconnect, installed before the name is taken: a
         * call is always dispatched before its client's NameOwnerChanged, so no
         * client can leave unnoticed while its call is in progress. */
        r = sd_bus_add_match(m->bus->connection, &m->bus->name_owner_slot,
                             "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                             "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg2=''",
                             on_name_owner_changed, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch for clients that disconnect: %m");

        client_table_set_before_turn(m->clients, read_bus, m);

        r = sd_bus_add_filter(m->bus->connection, &m->bus->filter_slot, on_incoming, m);
        if (r < 0)
                return log_error_errno(r, "Failed to install the filter for object walks: %m");

        r = sd_bus_add_object_vtable(m->bus->connection, &m->bus->manager_slot, SMIMED_MANAGER_PATH,
                                     SMIMED_MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to serve " SMIMED_MANAGER_INTERFACE ": %m");

        r = sd_bus_add_object_manager(m->bus->connection, &m->bus->object_manager_slot, SMIMED_MANAGER_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to serve the object manager: %m");

        r = certificate_bus_register(m);
        if (r >= 0)
                r = key_bus_register(m);
        if (r < 0)
                return r;

        manager_set_event_handler(m, manager_bus_on_event, NULL);
        return 0;
}

void manager_bus_done(Manager *m) {
        ManagerBus *b = m->bus;

        if (!b)
                return;
        manager_set_event_handler(m, NULL, NULL);
        pending_calls_free(m);
        certificate_bus_done(m);
        key_bus_done(m);
        sd_bus_slot_unref(b->manager_slot);
        sd_bus_slot_unref(b->object_manager_slot);
        sd_bus_slot_unref(b->name_owner_slot);
        sd_bus_slot_unref(b->filter_slot);
        for (size_t i = 0; i < b->n_admitted; i++)
                sd_bus_message_unref(b->admitted[i]);
        free(b->admitted);
        sd_bus_flush_close_unref(b->connection);
        polkit_registry_free(b->polkit);
        m->bus = mfree(b);
}

int manager_bus_start(Manager *m) {
        int r;

        m->bus = calloc(1, sizeof(ManagerBus));
        if (!m->bus)
                return log_oom();
        r = polkit_registry_new(&m->bus->polkit);
        if (r < 0)
                return log_error_errno(r, "Failed to set up asking polkit: %m");

        r = smimed_bus_error_map_register();
        if (r < 0)
                return log_error_errno(r, "Failed to register the D-Bus error names: %m");
        r = manager_connect_bus(m);
        if (r < 0)
                return r;
        return manager_bus_register(m);
}

int manager_bus_request_name(Manager *m) {
        int r;

        r = sd_bus_request_name(m->bus->connection, SMIMED_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to take the bus name " SMIMED_BUS_NAME ": %m");
        return 0;
}
