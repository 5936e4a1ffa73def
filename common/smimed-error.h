/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>

#include "smimed-errors.h"

/* smimed's error vocabulary: one constant per org.smimed1.Error.* name, each
 * with exactly one errno, both ways. The daemon picks the name it replies
 * with from here, and libsmimed turns a name back into its errno from the
 * same table (bus-error-map.c derives the sd-bus error map from it), so the
 * two cannot disagree.
 *
 * Not installed: the library's API is the name strings of smimed-errors.h
 * and the errnos; the numbering here is free to change. The constants are
 * SMIMED_ERR_* because SMIMED_ERROR_* are those installed strings. As in
 * dbus-broker, 0 is no error. */
typedef enum SmimedError {
        SMIMED_ERR_NO_PRIVATE_KEY = 1,
        SMIMED_ERR_NO_CERTIFICATE,
        SMIMED_ERR_CERTIFICATE_INVALID,
        SMIMED_ERR_TOKEN_UNAVAILABLE,
        SMIMED_ERR_INVALID_MESSAGE,
        SMIMED_ERR_POLICY_VIOLATION,
        SMIMED_ERR_DISABLED,
        SMIMED_ERR_INVALID_CONFIG,
        SMIMED_ERR_INVALID_ARGUMENT,
        SMIMED_ERR_INVALID_FORMAT,
        SMIMED_ERR_STORE_FAILED,
        SMIMED_ERR_BAD_PASSPHRASE,
        SMIMED_ERR_TIMEOUT,
        SMIMED_ERR_LIMITS_EXCEEDED,
        SMIMED_ERR_WORKER_FAILED,
        SMIMED_ERR_STORE_UNAVAILABLE,
        _SMIMED_ERROR_MAX,
        _SMIMED_ERROR_INVALID = -EINVAL,
} SmimedError;

/* "org.smimed1.Error.…", or NULL for a value that is not one of the above. */
const char *smimed_error_to_name(SmimedError e);
/* The constant of a full error name; _SMIMED_ERROR_INVALID for NULL or a
 * name that is not smimed's. */
SmimedError smimed_error_from_name(const char *name);
/* The errno of e, positive (as errno and sd_bus_error_map hold it), or
 * -EINVAL for a value that is not an error. */
int smimed_error_to_errno(SmimedError e);
/* The constant whose errno is errnum (either sign: daemon code passes its
 * negative returns); _SMIMED_ERROR_INVALID when none has it. */
SmimedError smimed_error_from_errno(int errnum);
