/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "strv.h"
#include "bus-audit.h"
#include "bus-pending-call.h"
#include "bus-util.h"
#include "fd-util.h"
#include "job.h"
#include "certificate-bus.h"
#include "key-bus.h"
#include "log.h"
#include "manager-keys.h"
#include "manager-bus.h"
#include "manager-methods-bus.h"
#include "manager.h"
#include "smimed-errors.h"

/* org.smimed1.Manager's key methods: ImportPKCS12, GenerateKey. */

static void erase_and_free_void(void *p) {
        erase_and_free(p);
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
                (void) bus_reply_manager_error(c->call, r, reason);
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
        _cleanup_(bus_call_end) BusCall bc = {.clients = m->clients, .call = call};
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
                (void) bus_reply_manager_error(call, r, reason);
                bus_call_free(taken);
        }
}

int manager_method_import_pkcs12(sd_bus_message *message, void *userdata, sd_bus_error *error) {
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
        return 1;             /* the reply comes when the file has been read */
}

/* A GenerateKey waiting for its worker, with its caller as they were when
 * it came: a caller that left meanwhile cannot be asked any more. */
typedef struct GenerateCall {
        BusCall *call;
        AuditCaller caller;
} GenerateCall;

static void audit_generate_key(const AuditCaller *caller, int r, const char *key_id, const char *address,
                               const char *message) {
        audit_log(caller, &(AuditRecord){
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

int manager_method_generate_key(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        _cleanup_free_ char *address = NULL, *reason = NULL;
        _cleanup_(strv_freep) char **more = NULL, **more_normalized = NULL;
        GenerateCall *g;
        const char *raw, *type = NULL, *subject = NULL, *renew = NULL;
        Manager *m = userdata;
        BusOption options[] = {
                {"type", 's', &type},
                {"subject", 's', &subject},
                {"addresses", 'S', &more},
                {"renew", 's', &renew},
        };
        const char *details[] = {"address", NULL, NULL};
        int r;

        r = sd_bus_message_read(message, "s", &raw);
        if (r < 0)
                return r;
        r = bus_read_address(raw, false, &address, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, options, ELEMENTSOF(options), error);
        if (r < 0)
                return r;
        for (char **a = more; a && *a; a++) {
                _cleanup_free_ char *normalized = NULL;

                r = bus_read_address(*a, false, &normalized, error);
                if (r < 0)
                        return r;
                if (strv_consume(&more_normalized, TAKE_PTR(normalized)) < 0)
                        return -ENOMEM;
        }

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
        r = manager_generate_key_start(m, sd_bus_message_get_sender(message),
                                       &(GenerateKeyRequest){
                                               .address = address,
                                               .more_addresses = more_normalized,
                                               .type = type,
                                               .subject = subject,
                                               .renew = renew,
                                       },
                                       generate_key_done, g, &reason);
        if (r < 0) {
                audit_generate_key(&g->caller, r, NULL, address, reason);
                bus_call_free(g->call);
                free(g);
                return bus_error_set_from_manager(error, r, reason);
        }
        return 1; /* the reply comes when the worker is done */
}

/* ImportPKCS12 with the file's bytes in the call, for clients that cannot
 * pass file descriptors. */
int manager_method_import_pkcs12_data(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        Manager *m = userdata;
        const char *passphrase;
        const void *data;
        size_t size;
        int r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = bus_polkit_check(m->bus->polkit, message, POLKIT_ACTION_MANAGE_KEYS, NULL, error);
        if (r == 0)
                bus_call_keep(&call);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read_array(message, 'y', &data, &size);
        if (r < 0)
                return r;
        r = sd_bus_message_read(message, "s", &passphrase);
        if (r < 0)
                return r;
        r = bus_read_options(message, NULL, 0, error);
        if (r < 0)
                return r;
        if (size > PKCS12_MAX_SIZE)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_FORMAT, "The file is larger than %u KiB.",
                                         PKCS12_MAX_SIZE / 1024);
        if (size > m->config->max_data_size)
                return sd_bus_error_setf(error, SMIMED_ERROR_LIMITS_EXCEEDED,
                                         "The file is %zu bytes; ImportPKCS12Data takes at most %" PRIu64
                                         " ([Policy] MaxDataSize=).",
                                         size, m->config->max_data_size);

        bus_call_keep(&call); /* import_pkcs12_read() ends it */
        import_pkcs12_read(m, message, data, size, 0, (void *) passphrase);
        return 1;
}
