/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "bus-error-map.h"
#include "log.h"
#include "manager-bus.h"
#include "manager.h"

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
        return sd_bus_message_append(reply, "t", manager_certificate_count(m));
}

static int property_get_key_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "t", m->key_count);
}

static int method_reload(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *reason = NULL;
        Manager *m = userdata;
        int r;

        r = bus_polkit_check(m->polkit, message, POLKIT_ACTION_MANAGE_CERTIFICATES, NULL, error);
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
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int manager_bus_register(Manager *m) {
        int r;

        r = sd_bus_add_object_vtable(m->bus, &m->manager_slot, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                     manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to serve " SMIMED_MANAGER_INTERFACE ": %m");

        r = sd_bus_add_object_manager(m->bus, &m->object_manager_slot, SMIMED_MANAGER_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to serve the object manager: %m");

        return 0;
}

void manager_bus_emit_changed(Manager *m, const char *property) {
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_properties_changed(m->bus, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, property, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to emit PropertiesChanged for %s: %m", property);
}

void manager_bus_emit_token_changes(Manager *m, TokenState old_state, const char *old_label,
                                    const char *old_reason, uint64_t old_key_count) {
        const char *changed[5];
        size_t n = 0;
        int r;

        if (!m->bus)
                return;

        if (token_get_state(m->token) != old_state)
                changed[n++] = "TokenState";
        if (!streq_ptr(token_get_state_reason(m->token), old_reason))
                changed[n++] = "TokenStateReason";
        if (!streq_ptr(strempty(token_get_label(m->token)), old_label))
                changed[n++] = "TokenLabel";
        if (m->key_count != old_key_count)
                changed[n++] = "KeyCount";
        changed[n] = NULL;

        if (n == 0)
                return;

        r = sd_bus_emit_properties_changed_strv(m->bus, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                                (char **) changed);
        if (r < 0)
                log_warning_errno(r, "Failed to emit PropertiesChanged for the token: %m");
}
