/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef SMIMED_H
#define SMIMED_H

/* libsmimed: the client side of smimed, the S/MIME key service on the D-Bus
 * system bus (org.smimed1).
 *
 * Every function returns 0 (or a positive count) on success and a negative
 * errno on failure. When the daemon answered with a D-Bus error, the
 * smimed_error passed in (if any) holds its name, e.g.
 * "org.smimed1.Error.TokenUnavailable" (see smimed-errors.h), and a message
 * that can be shown to a person; free it with smimed_error_done().
 *
 * A connection is used from one thread at a time. */

#include <stdbool.h>
#include <stdint.h>

#include "smimed-errors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smimed smimed;

typedef struct smimed_error {
        char *name;      /* D-Bus error name, NULL when none */
        char *message;   /* for people, NULL when none */
} smimed_error;

void smimed_error_done(smimed_error *error);

/* Connects to the system bus (honours DBUS_SYSTEM_BUS_ADDRESS). */
int smimed_open(smimed **ret, smimed_error *error);
/* Connects to the bus at a D-Bus address such as "unix:path=/run/x". */
int smimed_open_address(const char *address, smimed **ret, smimed_error *error);
smimed *smimed_close(smimed *s);

/* Whether smimed may ask polkit to authenticate the user interactively
 * (through an agent) when a call needs it. Off by default; without it such
 * calls fail with org.freedesktop.DBus.Error.InteractiveAuthorizationRequired. */
int smimed_set_allow_interactive_authorization(smimed *s, bool allow);

/* smimed_status(): the manager's properties in one call. */
typedef struct smimed_status_info {
        char *version;
        bool enabled;              /* false: policy turned S/MIME off */
        char *token_state;         /* "ready", "locked", "absent" or "error" */
        char *token_state_reason;  /* why it is not ready, "" when it is */
        char *token_label;
        uint64_t certificate_count;
        uint64_t key_count;
} smimed_status_info;

int smimed_status(smimed *s, smimed_status_info *ret, smimed_error *error);
void smimed_status_info_done(smimed_status_info *info);

/* Asks smimed to re-read its configuration (polkit action
 * org.smimed1.manage-certificates). */
int smimed_reload(smimed *s, smimed_error *error);

/* True when the error means smimed is not on the bus at all. */
bool smimed_error_is_unreachable(const smimed_error *error);

#ifdef __cplusplus
}
#endif

#endif
