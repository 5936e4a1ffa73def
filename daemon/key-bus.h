/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager-events.h"

typedef struct Manager Manager;

/* The org.smimed1.Key objects: one per private key in the token. */
int key_bus_register(Manager *m);

/* "/org/smimed1/key/<CKA_ID hex>" */
char *key_bus_path(const char *id);

/* Announces keys that came or went (InterfacesAdded/Removed). */
void key_bus_on_event(Manager *m, const ManagerEvent *event);
void key_bus_done(Manager *m);
