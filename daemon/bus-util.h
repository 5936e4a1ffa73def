/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <systemd/sd-bus.h>

#include "bus-call.h"

typedef struct Manager Manager;

/* What the org.smimed1.Manager methods (manager-*-bus.c) share: reading
 * their arguments, their turn, and the core's errors as D-Bus errors. */

/* Turns an error of manager-certificates.c or manager-keys.c into its
 * org.smimed1.Error.* by the table of common/smimed-error.c (e.g. -EBADE
 * BadPassphrase, -ENOKEY NoPrivateKey, -ENODEV TokenUnavailable), except that
 * -EBADMSG/-EFBIG/-E2BIG are InvalidFormat and -EOPNOTSUPP InvalidArgument
 * there; anything the table does not know is StoreFailed. message NULL: the
 * errno's text. */
int bus_error_set_from_manager(sd_bus_error *error, int r, const char *message);
/* The same, sent as the reply to call. */
int bus_reply_manager_error(sd_bus_message *call, int r, const char *message);

/* Reads an a{sv} of options: each key must be one of names, with the type
 * given; values are stored through the pointers in the same order. An
 * unknown key or a value of another type is InvalidArgument. */
typedef struct BusOption {
        const char *name;
        char type;   /* 'b', 's', 'u', 't', or 'S' for as */
        void *value; /* int *, const char **, uint32_t *, uint64_t *, or char *** (a new strv, the caller frees) */
} BusOption;

int bus_read_options(sd_bus_message *message, BusOption *options, size_t n, sd_bus_error *error);

/* A mail address as the core wants it (address_normalize()), or
 * InvalidArgument naming it; allow_empty: "" stays "". */
int bus_read_address(const char *address, bool allow_empty, char **ret, sd_bus_error *error);

/* More recipients than [Policy] MaxRecipients= is LimitsExceeded. */
int bus_check_recipient_count(Manager *m, size_t n, sd_bus_error *error);

/* A call that does its work on the loop waits for its client's turn
 * (client.c): the handler runs then, from the start of the message, and
 * replies; an error it returns is the reply. bus_queue_call() takes the
 * call and returns 1. */
typedef int (*QueuedHandler)(Manager *m, sd_bus_message *message, sd_bus_error *error);

int bus_queue_call(Manager *m, sd_bus_message *message, BusCall *call, QueuedHandler handler);

/* The same for a handler that may answer later: it may take *call (setting
 * it to NULL, and then owns and frees it with bus_call_free()) and return
 * 0, the answer to come; otherwise it replies as a QueuedHandler does. An
 * error it returns is the reply, and then it must not have taken the call. */
typedef int (*QueuedTakingHandler)(Manager *m, BusCall **call, sd_bus_error *error);

int bus_queue_taking_call(Manager *m, sd_bus_message *message, BusCall *call, QueuedTakingHandler handler);

/* For a QueuedTakingHandler: the addresses (normalized, NULL-terminated)
 * the store cannot serve are looked up in the [Directory] first
 * (manager-directory.h). Returns 1 having taken *call: handler answers it,
 * from the start of its message, once the lookups ended (it is called
 * with no [Directory] step of its own to take); 0 when no address needs
 * it (*call untouched: answer now); or an error set in error. */
int bus_directory_resolve_then(Manager *m, char *const *addresses, BusCall **call, QueuedHandler handler,
                               sd_bus_error *error);
