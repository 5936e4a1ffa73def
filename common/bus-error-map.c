/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "bus-error-map.h"

const sd_bus_error_map smimed_bus_error_map[] = {
        SD_BUS_ERROR_MAP(SMIMED_ERROR_NO_PRIVATE_KEY, ENOKEY),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_NO_CERTIFICATE, ENOENT),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_CERTIFICATE_INVALID, EKEYREJECTED),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_TOKEN_UNAVAILABLE, ENODEV),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_INVALID_MESSAGE, EBADMSG),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_POLICY_VIOLATION, EPERM),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_DISABLED, ESHUTDOWN),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_INVALID_CONFIG, EINVAL),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_INVALID_ARGUMENT, EINVAL),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_INVALID_FORMAT, EBADMSG),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_STORE_FAILED, EIO),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_BAD_PASSPHRASE, EBADE),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_TIMEOUT, ETIMEDOUT),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_LIMITS_EXCEEDED, EUSERS),
        SD_BUS_ERROR_MAP(SMIMED_ERROR_WORKER_FAILED, ECHILD),
        SD_BUS_ERROR_MAP_END,
};

int smimed_bus_error_map_register(void) {
        /* sd-bus keeps the pointer and ignores a second registration of the
         * same table, so calling this more than once is harmless. */
        return sd_bus_error_add_map(smimed_bus_error_map);
}
