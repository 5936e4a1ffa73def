/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "bus-audit.h"
#include "bus-call.h"
#include "smimed-errors.h"

int bus_call_begin(ClientTable *clients, sd_bus_message *call, BusCall *ret, sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        AuditCaller caller;
        uint64_t serial = 0;
        int r;

        *ret = (BusCall) {};
        audit_caller_from_message(call, &caller);
        r = sd_bus_message_get_cookie(call, &serial);
        if (r < 0)
                return r;
        r = client_call_begin(clients, sd_bus_message_get_sender(call), caller.uid, serial, &message);
        if (r == -EUSERS)
                return sd_bus_error_set(error, SMIMED_ERROR_LIMITS_EXCEEDED, message);
        if (r < 0)
                return r;
        *ret = (BusCall) { .clients = clients, .call = call };
        return 0;
}

void bus_call_end(BusCall *c) {
        uint64_t serial = 0;

        if (!c || !c->call)
                return;
        if (sd_bus_message_get_cookie(c->call, &serial) >= 0)
                client_call_end(c->clients, sd_bus_message_get_sender(c->call), serial);
        c->call = NULL;
}

BusCall *bus_call_take(BusCall *c) {
        BusCall *copy = malloc(sizeof(BusCall));

        if (!copy)
                return NULL;
        *copy = (BusCall) { .clients = c->clients, .call = sd_bus_message_ref(c->call) };
        c->call = NULL;
        return copy;
}

void bus_call_free(void *p) {
        BusCall *c = p;
        sd_bus_message *call;

        if (!c)
                return;
        call = c->call;
        bus_call_end(c);
        sd_bus_message_unref(call);
        free(c);
}

int bus_call_authorize(ClientTable *clients, PolkitRegistry *polkit, sd_bus_message *call, const char *action,
                       const char *const *details, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall c = {};
        int r;

        r = bus_call_begin(clients, call, &c, error);
        if (r < 0)
                return r;
        r = bus_polkit_check(polkit, call, action, details, error);
        if (r == 0)
                bus_call_keep(&c);
        return r;
}

int bus_call_authorize_user(ClientTable *clients, PolkitRegistry *polkit, sd_bus_message *call, const char *action,
                            const char *const *details, uid_t good_user, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall c = {};
        AuditCaller caller;
        int r;

        audit_caller_from_message(call, &caller);
        if (caller.uid == (uid_t) -1 || caller.uid != good_user)
                return bus_call_authorize(clients, polkit, call, action, details, error);
        /* Counted against the caller's limits all the same. */
        r = bus_call_begin(clients, call, &c, error);
        return r < 0 ? r : 1;
}
