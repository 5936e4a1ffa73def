/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "bus-audit.h"
#include "macro.h"

/* Asking the bus who a sender is costs a synchronous GetConnectionCredentials
 * round trip and reads in /proc: done once per connection, not per call. A
 * unique name is never given to another connection, so an entry is never
 * wrong, only unused once its client has gone; the oldest is replaced.
 * Loop thread only. */
#define CALLER_CACHE_SIZE 64

static AuditCaller caller_cache[CALLER_CACHE_SIZE];
static unsigned caller_cache_next = 0;

static const AuditCaller *caller_cache_find(const char *sender) {
        for (size_t i = 0; i < CALLER_CACHE_SIZE; i++)
                if (caller_cache[i].sender[0] && streq(caller_cache[i].sender, sender))
                        return &caller_cache[i];
        return NULL;
}

void audit_caller_from_message(sd_bus_message *message, AuditCaller *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *unit = NULL, *sender;
        const AuditCaller *cached;

        *ret = (AuditCaller){.uid = (uid_t) -1, .pid = 0};
        sender = sd_bus_message_get_sender(message);
        snprintf(ret->sender, sizeof(ret->sender), "%s", strempty(sender));

        /* Only unique names (":1.42") are bound to one connection. */
        cached = sender && sender[0] == ':' ? caller_cache_find(sender) : NULL;
        if (cached) {
                *ret = *cached;
                return;
        }

        if (sd_bus_query_sender_creds(message,
                                      SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_UNIT | SD_BUS_CREDS_AUGMENT,
                                      &creds) < 0)
                return;
        (void) sd_bus_creds_get_euid(creds, &ret->uid);
        (void) sd_bus_creds_get_pid(creds, &ret->pid);
        if (sd_bus_creds_get_unit(creds, &unit) >= 0 && unit)
                snprintf(ret->unit, sizeof(ret->unit), "%s", unit);

        if (sender && sender[0] == ':' && strlen(sender) < sizeof(ret->sender)) {
                caller_cache[caller_cache_next] = *ret;
                caller_cache_next = (caller_cache_next + 1) % CALLER_CACHE_SIZE;
        }
}

void audit_call(sd_bus_message *message, AuditEvent event, const char *operation, int r, const char *fingerprint,
                const char *key, const char *address, const char *detail) {
        AuditCaller caller;

        audit_caller_from_message(message, &caller);
        audit_log(&caller, &(AuditRecord){
                                   .event = event,
                                   .operation = operation,
                                   .outcome = r < 0 ? "failed" : "success",
                                   .fingerprint = fingerprint,
                                   .key = key,
                                   .address = address,
                                   .detail = r < 0 ? detail : NULL,
                           });
}
