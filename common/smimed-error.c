/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "smimed-error.h"

/* The one table. Each errno appears once: it is what libsmimed returns for
 * the name, and the name smimed replies with for it. The installed
 * smimed-errors.h documents these errnos; tests/test-smimed-error.c checks
 * that, the round trip, and dbus/org.smimed1.Manager.xml's list. */
static const struct {
        const char *name;
        int errnum;
} table[_SMIMED_ERROR_MAX] = {
        [SMIMED_ERR_NO_PRIVATE_KEY] = {SMIMED_ERROR_NO_PRIVATE_KEY, ENOKEY},
        [SMIMED_ERR_NO_CERTIFICATE] = {SMIMED_ERROR_NO_CERTIFICATE, ENOENT},
        [SMIMED_ERR_CERTIFICATE_INVALID] = {SMIMED_ERROR_CERTIFICATE_INVALID, EKEYREJECTED},
        [SMIMED_ERR_TOKEN_UNAVAILABLE] = {SMIMED_ERROR_TOKEN_UNAVAILABLE, ENODEV},
        [SMIMED_ERR_INVALID_MESSAGE] = {SMIMED_ERROR_INVALID_MESSAGE, EBADMSG},
        [SMIMED_ERR_POLICY_VIOLATION] = {SMIMED_ERROR_POLICY_VIOLATION, EPERM},
        [SMIMED_ERR_DISABLED] = {SMIMED_ERROR_DISABLED, ESHUTDOWN},
        [SMIMED_ERR_INVALID_CONFIG] = {SMIMED_ERROR_INVALID_CONFIG, EUCLEAN},
        [SMIMED_ERR_INVALID_ARGUMENT] = {SMIMED_ERROR_INVALID_ARGUMENT, EINVAL},
        [SMIMED_ERR_INVALID_FORMAT] = {SMIMED_ERROR_INVALID_FORMAT, EMEDIUMTYPE},
        [SMIMED_ERR_STORE_FAILED] = {SMIMED_ERROR_STORE_FAILED, EIO},
        [SMIMED_ERR_BAD_PASSPHRASE] = {SMIMED_ERROR_BAD_PASSPHRASE, EBADE},
        [SMIMED_ERR_TIMEOUT] = {SMIMED_ERROR_TIMEOUT, ETIMEDOUT},
        [SMIMED_ERR_LIMITS_EXCEEDED] = {SMIMED_ERROR_LIMITS_EXCEEDED, EUSERS},
        [SMIMED_ERR_WORKER_FAILED] = {SMIMED_ERROR_WORKER_FAILED, ECHILD},
        [SMIMED_ERR_STORE_UNAVAILABLE] = {SMIMED_ERROR_STORE_UNAVAILABLE, ENOTCONN},
};

static bool valid(SmimedError e) {
        return e > 0 && e < _SMIMED_ERROR_MAX;
}

const char *smimed_error_to_name(SmimedError e) {
        return valid(e) ? table[e].name : NULL;
}

SmimedError smimed_error_from_name(const char *name) {
        if (!name)
                return _SMIMED_ERROR_INVALID;
        for (SmimedError e = 1; e < _SMIMED_ERROR_MAX; e++)
                if (strcmp(table[e].name, name) == 0)
                        return e;
        return _SMIMED_ERROR_INVALID;
}

int smimed_error_to_errno(SmimedError e) {
        return valid(e) ? table[e].errnum : -EINVAL;
}

SmimedError smimed_error_from_errno(int errnum) {
        errnum = abs(errnum);
        for (SmimedError e = 1; e < _SMIMED_ERROR_MAX; e++)
                if (table[e].errnum == errnum)
                        return e;
        return _SMIMED_ERROR_INVALID;
}
