/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager-events.h"

typedef struct Manager Manager;

/* The org.smimed1.Certificate objects: a fallback vtable below
 * /org/smimed1/certificate and a node enumerator over the store. */
int certificate_bus_register(Manager *m);

/* "/org/smimed1/certificate/<fingerprint>" */
char *certificate_bus_path(const char *fingerprint);

/* Appends an "ao" of the certificate objects of fingerprints. */
int bus_append_certificate_paths(sd_bus_message *reply, char **fingerprints);

/* Announces certificate events (InterfacesAdded/Removed, PropertiesChanged
 * of Trusted) and drops the view they make stale. */
void certificate_bus_on_event(Manager *m, const ManagerEvent *event);
/* Stops serving the objects and frees what the bus layer kept of them. */
void certificate_bus_done(Manager *m);
