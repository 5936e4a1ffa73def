/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libsmimed-internal.h"
#include "macro.h"

/* Change notifications from the signals smimed sends: InterfacesAdded and
 * InterfacesRemoved of its ObjectManager (certificates and keys),
 * PropertiesChanged (a certificate's Trusted, the manager's Enabled,
 * TokenState, …), and NameOwnerChanged of org.smimed1 (started, restarted,
 * stopped). */

#define DBUS_OBJECT_MANAGER_INTERFACE "org.freedesktop.DBus.ObjectManager"

struct smimed_slot {
        unsigned n_ref;
        smimed *smimed; /* NULL once ended */
        sd_bus_slot *matches[4];
        smimed_change_handler handler;
        void *userdata;
        bool floating;
        smimed_slot *prev, *next;
};

static smimed_slot *slot_ref(smimed_slot *slot) {
        slot->n_ref++;
        return slot;
}

/* Off the connection's list, matches removed: the handler is not called again. */
static void slot_end(smimed_slot *slot) {
        if (slot->smimed) {
                if (slot->prev)
                        slot->prev->next = slot->next;
                else
                        slot->smimed->slots = slot->next;
                if (slot->next)
                        slot->next->prev = slot->prev;
                slot->prev = slot->next = NULL;
                slot->smimed = NULL;
        }
        for (size_t i = 0; i < ELEMENTSOF(slot->matches); i++)
                slot->matches[i] = sd_bus_slot_unref(slot->matches[i]);
}

static smimed_slot *slot_unref(smimed_slot *slot) {
        if (!slot || --slot->n_ref > 0)
                return NULL;
        slot_end(slot);
        free(slot);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(smimed_slot *, slot_unref);

_public_ smimed_slot *smimed_slot_unref(smimed_slot *slot) {
        if (!slot)
                return NULL;
        /* The caller's is the only reference outside a dispatch: ending here
         * keeps a handler running now from seeing further changes. */
        slot_end(slot);
        return slot_unref(slot);
}

void slots_disconnect_all(smimed *s) {
        while (s->slots) {
                smimed_slot *slot = s->slots;

                slot_end(slot);
                if (slot->floating) {
                        slot->floating = false;
                        slot_unref(slot);
                }
        }
}

/* Calls the handler unless the subscription ended meanwhile. */
static void slot_emit(smimed_slot *slot, smimed_change kind, const char *id) {
        if (slot->smimed)
                slot->handler(slot->smimed, kind, id, slot->userdata);
}

/* The fingerprint or key id that ends path, when it is under prefix. */
static const char *path_id(const char *path, const char *prefix) {
        size_t n = strlen(prefix);

        if (strncmp(path, prefix, n) != 0 || path[n] != '/' || !path[n + 1])
                return NULL;
        return path + n + 1;
}

static void emit_object(smimed_slot *slot, const char *path, const char *interface, bool added) {
        const char *id;

        if (streq(interface, SMIMED_CERTIFICATE_INTERFACE) && (id = path_id(path, SMIMED_CERTIFICATE_PATH_PREFIX)))
                slot_emit(slot, added ? SMIMED_CHANGE_CERTIFICATE_ADDED : SMIMED_CHANGE_CERTIFICATE_REMOVED, id);
        else if (streq(interface, SMIMED_KEY_INTERFACE) && (id = path_id(path, SMIMED_KEY_PATH_PREFIX)))
                slot_emit(slot, added ? SMIMED_CHANGE_KEY_ADDED : SMIMED_CHANGE_KEY_REMOVED, id);
}

static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(slot_unrefp) smimed_slot *slot = slot_ref(userdata);
        const char *path;
        int r;

        (void) ret_error;
        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                const char *interface;

                r = sd_bus_message_read(m, "s", &interface);
                if (r >= 0)
                        r = sd_bus_message_skip(m, "a{sv}");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r >= 0)
                        emit_object(slot, path, interface, true);
        }
        return 0; /* a signal this library cannot read is not the caller's problem */
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(slot_unrefp) smimed_slot *slot = slot_ref(userdata);
        const char *path, *interface;
        int r;

        (void) ret_error;
        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "s");
        while (r >= 0 && (r = sd_bus_message_read(m, "s", &interface)) > 0)
                emit_object(slot, path, interface, false);
        return 0;
}

/* One property of an object that changed (or was invalidated). */
static void emit_property(smimed_slot *slot, const char *path, const char *interface, const char *name) {
        const char *id;

        if (streq(interface, SMIMED_CERTIFICATE_INTERFACE) && streq(name, "Trusted") &&
            (id = path_id(path, SMIMED_CERTIFICATE_PATH_PREFIX)))
                slot_emit(slot, SMIMED_CHANGE_TRUST, id);
        else if (streq(interface, SMIMED_MANAGER_INTERFACE) && streq(path, SMIMED_MANAGER_PATH) &&
                 streq(name, "CRLUpdated"))
                slot_emit(slot, SMIMED_CHANGE_CRL, NULL);
        else if (streq(interface, SMIMED_MANAGER_INTERFACE) && streq(path, SMIMED_MANAGER_PATH) &&
                 /* the counts change with the objects, announced on their own */
                 !streq(name, "CertificateCount") && !streq(name, "KeyCount"))
                slot_emit(slot, SMIMED_CHANGE_STATE, name);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(slot_unrefp) smimed_slot *slot = slot_ref(userdata);
        const char *path = sd_bus_message_get_path(m), *interface, *name;
        int r;

        (void) ret_error;
        if (!path)
                return 0;
        r = sd_bus_message_read(m, "s", &interface);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &name);
                if (r >= 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r >= 0)
                        emit_property(slot, path, interface, name);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "s");
        while (r >= 0 && (r = sd_bus_message_read(m, "s", &name)) > 0)
                emit_property(slot, path, interface, name);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(slot_unrefp) smimed_slot *slot = slot_ref(userdata);

        (void) m;
        (void) ret_error;
        slot_emit(slot, SMIMED_CHANGE_STATE, NULL);
        return 0;
}

_public_ int smimed_subscribe_changes(smimed *s, smimed_change_handler handler, void *userdata, smimed_slot **ret_slot,
                                      smimed_error *error) {
        static const struct {
                const char *match;
                sd_bus_message_handler_t callback;
        } matches[] = {
                /* From /org/smimed1 (certificates) and /org/smimed1/key (keys). */
                {"type='signal',sender='" SMIMED_BUS_NAME "',path_namespace='" SMIMED_MANAGER_PATH
                 "',interface='" DBUS_OBJECT_MANAGER_INTERFACE "',member='InterfacesAdded'",
                 on_interfaces_added},
                {"type='signal',sender='" SMIMED_BUS_NAME "',path_namespace='" SMIMED_MANAGER_PATH
                 "',interface='" DBUS_OBJECT_MANAGER_INTERFACE "',member='InterfacesRemoved'",
                 on_interfaces_removed},
                {"type='signal',sender='" SMIMED_BUS_NAME "',path_namespace='" SMIMED_MANAGER_PATH
                 "',interface='" DBUS_PROPERTIES_INTERFACE "',member='PropertiesChanged'",
                 on_properties_changed},
                {"type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                 "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" SMIMED_BUS_NAME "'",
                 on_name_owner_changed},
        };
        _cleanup_(slot_unrefp) smimed_slot *slot = NULL;
        int r;

        if (!s || !handler)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");

        slot = calloc(1, sizeof(smimed_slot));
        if (!slot)
                return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        *slot = (smimed_slot){.n_ref = 1, .handler = handler, .userdata = userdata};

        /* Synchronous AddMatch: once this returns, no change is missed. */
        for (size_t i = 0; i < ELEMENTSOF(matches); i++) {
                r = sd_bus_add_match(s->bus, &slot->matches[i], matches[i].match, matches[i].callback, slot);
                if (r < 0)
                        return error_set(error, r, NULL, "Cannot subscribe to smimed's signals.");
        }

        slot->smimed = s;
        slot->next = s->slots;
        if (s->slots)
                s->slots->prev = slot;
        s->slots = slot;

        if (ret_slot)
                *ret_slot = TAKE_PTR(slot);
        else {
                slot->floating = true;
                TAKE_PTR(slot);
        }
        return 0;
}
