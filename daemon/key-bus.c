/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus-audit.h"
#include "bus-call.h"
#include "bus-util.h"
#include "certificate-bus.h"
#include "key-bus.h"
#include "log.h"
#include "manager-bus.h"
#include "manager-keys.h"
#include "manager.h"
#include "smimed-bus-names.h"
#include "strv.h"

char *key_bus_path(const char *id) {
        char *path;

        if (asprintf(&path, SMIMED_KEY_PATH_PREFIX "/%s", id) < 0)
                return NULL;
        return path;
}

static const TokenKey *key_from_path(Manager *m, const char *path) {
        if (strncmp(path, SMIMED_KEY_PATH_PREFIX "/", strlen(SMIMED_KEY_PATH_PREFIX) + 1) != 0)
                return NULL;
        return manager_find_key(m, path + strlen(SMIMED_KEY_PATH_PREFIX) + 1);
}

static int key_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                    sd_bus_error *error) {
        if (!key_from_path(userdata, path))
                return 0;
        *found = userdata;
        return 1;
}

static int key_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        _cleanup_(strv_freep) char **paths = NULL;
        Manager *m = userdata;

        paths = calloc(m->n_keys + 1, sizeof(char *));
        if (!paths)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_keys; i++) {
                paths[i] = key_bus_path(m->keys[i].id);
                if (!paths[i])
                        return -ENOMEM;
        }
        *nodes = TAKE_PTR(paths);
        return 0;
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const TokenKey *key = key_from_path(userdata, path);

        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "s", key->id);
        if (streq(property, "Label"))
                return sd_bus_message_append(reply, "s", key->label);
        return sd_bus_message_append(reply, "s", key->algorithm);
}

static int property_get_bits(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const TokenKey *key = key_from_path(userdata, path);

        return sd_bus_message_append(reply, "u", (uint32_t) key->bits);
}

static int property_get_uri(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const TokenKey *key = key_from_path(userdata, path);
        _cleanup_free_ char *uri = NULL;
        int r;

        r = manager_key_uri(userdata, key->id, &uri);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s", uri);
}

static int property_get_certificates(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const TokenKey *key = key_from_path(userdata, path);
        _cleanup_(strv_freep) char **fingerprints = NULL;
        int r;

        r = manager_key_certificates(userdata, key, &fingerprints);
        if (r < 0)
                return bus_error_set_from_manager(error, r, NULL);
        return bus_append_certificate_paths(reply, fingerprints);
}

static int method_remove(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const TokenKey *key = key_from_path(m, sd_bus_message_get_path(message));
        _cleanup_free_ char *id = NULL, *reason = NULL;
        const char *details[] = { "key", key->id, "address", key->label, NULL };
        int r;

        r = bus_call_authorize(m->clients, m->bus->polkit, message, POLKIT_ACTION_MANAGE_KEYS, details, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        id = strdup(key->id); /* the key goes away under us */
        if (!id)
                return -ENOMEM;
        r = manager_remove_key(m, id, &reason);
        audit_call(message, AUDIT_KEY_REMOVE, "remove-key", r, NULL, id, NULL, reason);
        if (r < 0)
                return bus_error_set_from_manager(error, r, reason);
        return sd_bus_reply_method_return(message, NULL);
}

#define CONST SD_BUS_VTABLE_PROPERTY_CONST

static const sd_bus_vtable key_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", property_get_string, 0, CONST),
        SD_BUS_PROPERTY("Label", "s", property_get_string, 0, CONST),
        SD_BUS_PROPERTY("Algorithm", "s", property_get_string, 0, CONST),
        SD_BUS_PROPERTY("Bits", "u", property_get_bits, 0, CONST),
        SD_BUS_PROPERTY("URI", "s", property_get_uri, 0, CONST),
        SD_BUS_PROPERTY("Certificates", "ao", property_get_certificates, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_remove, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int key_bus_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus->connection, &m->bus->key_slot, SMIMED_KEY_PATH_PREFIX,
                                       SMIMED_KEY_INTERFACE, key_vtable, key_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to serve " SMIMED_KEY_INTERFACE ": %m");
        r = sd_bus_add_node_enumerator(m->bus->connection, &m->bus->key_enumerator_slot, SMIMED_KEY_PATH_PREFIX,
                                       key_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "Failed to enumerate key objects: %m");
        /* GetManagedObjects here lists the keys alone, and their
         * InterfacesAdded/Removed come from here. */
        r = sd_bus_add_object_manager(m->bus->connection, &m->bus->key_object_manager_slot, SMIMED_KEY_PATH_PREFIX);
        if (r < 0)
                return log_error_errno(r, "Failed to serve the object manager of the keys: %m");
        return 0;
}

void key_bus_on_event(Manager *m, const ManagerEvent *event) {
        bool added = event->type == MANAGER_EVENT_KEY_ADDED;
        int r;

        if (!m->bus->key_slot)
                return;
        for (char *const *id = event->names; id && *id; id++) {
                _cleanup_free_ char *path = key_bus_path(*id);

                if (!path) {
                        log_oom();
                        return;
                }
                r = added ? sd_bus_emit_interfaces_added(m->bus->connection, path, SMIMED_KEY_INTERFACE, NULL)
                          : sd_bus_emit_interfaces_removed(m->bus->connection, path, SMIMED_KEY_INTERFACE, NULL);
                if (r < 0)
                        log_warning_errno(r, "Failed to announce key %s: %m", *id);
        }
}

void key_bus_done(Manager *m) {
        m->bus->key_slot = sd_bus_slot_unref(m->bus->key_slot);
        m->bus->key_enumerator_slot = sd_bus_slot_unref(m->bus->key_enumerator_slot);
        m->bus->key_object_manager_slot = sd_bus_slot_unref(m->bus->key_object_manager_slot);
}
