/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "bus-polkit.h"
#include "client.h"
#include "macro.h"

/* A method call counted against its client's limits (client.c) from the
 * moment it is dispatched until it is answered or dropped.
 *
 * A handler starts with bus_call_begin(): the call is counted (or was,
 * when polkit has it dispatched again), or refused with
 * org.smimed1.Error.LimitsExceeded. The BusCall it fills ends the call
 * when it goes out of scope, unless the handler hands it on with
 * bus_call_take() to what answers the call later; a call parked for
 * polkit is simply left counted (bus_call_keep()). */

typedef struct BusCall {
        ClientTable *clients;
        sd_bus_message *call;
} BusCall;

int bus_call_begin(ClientTable *clients, sd_bus_message *call, BusCall *ret, sd_bus_error *error);
void bus_call_end(BusCall *c);

/* Leaves the call counted, for its next dispatch. */
static inline void bus_call_keep(BusCall *c) {
        c->call = NULL;
}

/* A heap copy that owns a reference to the call, for a callback's
 * userdata; bus_call_free() ends and frees it. */
BusCall *bus_call_take(BusCall *c);
void bus_call_free(void *c);
static inline void bus_call_freep(BusCall **c) {
        bus_call_free(*c);
}

/* For a method that answers at once when authorized: bus_call_begin() and
 * bus_polkit_check() together. > 0 authorized (the call is not counted any
 * more: the handler answers it now), 0 parked until polkit answers (counted
 * meanwhile: return 1), < 0 refused with *error set. */
int bus_call_authorize(ClientTable *clients, PolkitRegistry *polkit, sd_bus_message *call, const char *action,
                       const char *const *details, sd_bus_error *error);
/* The same, except that a caller whose effective uid is good_user is
 * authorized without asking polkit, as systemd's bus_verify_polkit_async()
 * treats its good_user. */
int bus_call_authorize_user(ClientTable *clients, PolkitRegistry *polkit, sd_bus_message *call, const char *action,
                            const char *const *details, uid_t good_user, sd_bus_error *error);
