/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "bus-call.h"
#include "bus-error-map.h"
#include "certificate-bus.h"

#include "log.h"
#include "manager-bus.h"
#include "manager-methods-bus.h"
#include "key-bus.h"

#include "bus-pending-call.h"
#include "manager.h"
#include "smimed-bus-names.h"
#include "smimed-error.h"

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

static int property_get_expiring_certificates(sd_bus *bus, const char *path, const char *interface,
                                              const char *property, sd_bus_message *reply, void *userdata,
                                              sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "t", m->expiring_count);
}

static int property_get_expiry_warning_days(sd_bus *bus, const char *path, const char *interface, const char *property,
                                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "u", (uint32_t) m->config->expiry_warning_days);
}

static int property_get_key_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "t", (uint64_t) m->n_keys);
}

static int property_get_crl_updated(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "t", m->crl_updated_usec);
}

int manager_method_reload(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *reason = NULL;
        Manager *m = userdata;
        int r;

        /* smimed's own user too: the unit's ExecReload= runs smimectl reload
         * as User=smimed, and waits for this answer. */
        r = bus_call_authorize_user(m->clients, m->bus->polkit, message, POLKIT_ACTION_MANAGE_CERTIFICATES, NULL,
                                    geteuid(), error);
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
        SD_BUS_PROPERTY("ExpiringCertificates", "t", property_get_expiring_certificates, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ExpiryWarningDays", "u", property_get_expiry_warning_days, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CRLUpdated", "t", property_get_crl_updated, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, manager_method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportCertificates", SD_BUS_ARGS("ay", data, "a{sv}", options),
                                SD_BUS_RESULT("ao", certificates), manager_method_import_certificates,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportCRL", SD_BUS_ARGS("ay", data, "a{sv}", options), SD_BUS_RESULT("u", count),
                                manager_method_import_crl, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("FetchCRLs", SD_BUS_ARGS("a{sv}", options), SD_BUS_RESULT("u", fetched),
                                manager_method_fetch_crls, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("LookupCertificates", SD_BUS_ARGS("s", address, "a{sv}", filter),
                                SD_BUS_RESULT("ao", certificates), manager_method_lookup_certificates,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListCertificates", SD_BUS_ARGS("a{sv}", filter),
                                SD_BUS_RESULT("a(osassstsbbb)", certificates, "t", total),
                                manager_method_list_certificates, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCapabilities", SD_BUS_ARGS("s", sender, "as", recipients, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", sign, "aa{sv}", encrypt), manager_method_get_capabilities,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportPKCS12", SD_BUS_ARGS("h", file, "s", passphrase, "a{sv}", options),
                                SD_BUS_RESULT("o", key, "ao", certificates), manager_method_import_pkcs12,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GenerateKey", SD_BUS_ARGS("s", address, "a{sv}", options),
                                SD_BUS_RESULT("o", key, "s", csr_pem), manager_method_generate_key,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Sign", SD_BUS_ARGS("s", sender, "h", input, "h", output, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", result), manager_method_sign, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Encrypt", SD_BUS_ARGS("as", recipients, "h", input, "h", output, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", result), manager_method_encrypt, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Decrypt", SD_BUS_ARGS("h", input, "h", output, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", status), manager_method_decrypt, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Verify", SD_BUS_ARGS("h", input, "h", output, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", status), manager_method_verify, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportPKCS12Data", SD_BUS_ARGS("ay", file, "s", passphrase, "a{sv}", options),
                                SD_BUS_RESULT("o", key, "ao", certificates), manager_method_import_pkcs12_data,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SignData", SD_BUS_ARGS("s", sender, "ay", message, "a{sv}", options),
                                SD_BUS_RESULT("ay", result, "a{sv}", info), manager_method_sign_data,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("EncryptData", SD_BUS_ARGS("as", recipients, "ay", message, "a{sv}", options),
                                SD_BUS_RESULT("ay", result, "a{sv}", info), manager_method_encrypt_data,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DecryptData", SD_BUS_ARGS("ay", message, "a{sv}", options),
                                SD_BUS_RESULT("ay", result, "a{sv}", status), manager_method_decrypt_data,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("VerifyData", SD_BUS_ARGS("ay", message, "a{sv}", options),
                                SD_BUS_RESULT("ay", result, "a{sv}", status), manager_method_verify_data,
                                SD_BUS_VTABLE_UNPRIVILEGED),
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
