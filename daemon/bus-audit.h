/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "audit.h"

/* Who sent message: uid, pid, unit and unique name, asked of the bus once
 * per connection. What cannot be learned stays unset (uid -1, pid 0). */
void audit_caller_from_message(sd_bus_message *message, AuditCaller *ret);

/* audit_log() for the caller of message, with outcome from r (>= 0 success,
 * < 0 failed) and detail the failure's message. */
void audit_call(sd_bus_message *message, AuditEvent event, const char *operation, int r, const char *fingerprint,
                const char *key, const char *address, const char *detail);
