/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Manager Manager;

/* The org.smimed1.Key objects: one per private key in the token. */
int key_bus_register(Manager *m);

/* "/org/smimed1/key/<CKA_ID hex>" */
char *key_bus_path(const char *id);

void key_bus_emit_added(Manager *m, const char *id);
void key_bus_emit_removed(Manager *m, const char *id);
