/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <systemd/sd-bus.h>

#include "bus-polkit.h"

typedef struct Manager Manager;

/* What the bus layer keeps: Manager.bus. */
typedef struct ManagerBus {
        sd_bus *connection;
        sd_bus_slot *manager_slot;
        sd_bus_slot *object_manager_slot;
        sd_bus_slot *name_owner_slot; /* clients that disconnect */
        sd_bus_slot *filter_slot;     /* object walks wait for their turn */
        sd_bus_message **admitted;    /* walks whose turn came, dispatched again */
        size_t n_admitted;
        sd_bus_slot *certificate_slot;
        sd_bus_slot *certificate_enumerator_slot;
        sd_bus_slot *key_slot;
        sd_bus_slot *key_enumerator_slot;
        sd_bus_slot *key_object_manager_slot;     /* keys have their own: listing them sends no certificate */
        struct CertificateView *certificate_view; /* the certificate object last asked about */
        struct PendingCall *pending_calls;        /* calls waiting for their input fd */
        PolkitRegistry *polkit;
} ManagerBus;

/* The D-Bus face of the manager: org.smimed1.Manager and the ObjectManager
 * on /org/smimed1 (see dbus/org.smimed1.Manager.xml), the certificate and
 * key objects, and the core's events shown as signals. */
/* Connects to the system bus and serves the objects; from then on the
 * core's events are shown as signals. */
int manager_bus_start(Manager *m);
/* Takes org.smimed1: clients (and D-Bus activation) find smimed from now. */
int manager_bus_request_name(Manager *m);

/* Stops serving, forgets the calls waiting for their turn and closes the
 * connection. */
void manager_bus_done(Manager *m);
