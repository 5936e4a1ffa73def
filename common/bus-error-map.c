/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>

#include <systemd/sd-bus.h>

#include "bus-error-map.h"
#include "smimed-error.h"

/* Built from the table, never written by hand: one row per error, and the
 * end marker. */
static sd_bus_error_map map[_SMIMED_ERROR_MAX];
static pthread_once_t map_once = PTHREAD_ONCE_INIT;

static void map_build(void) {
        size_t n = 0;

        for (SmimedError e = 1; e < _SMIMED_ERROR_MAX; e++)
                map[n++] = (sd_bus_error_map) SD_BUS_ERROR_MAP(smimed_error_to_name(e), smimed_error_to_errno(e));
        map[n] = (sd_bus_error_map) SD_BUS_ERROR_MAP_END;
}

int smimed_bus_error_map_register(void) {
        int r;

        r = pthread_once(&map_once, map_build);
        if (r != 0)
                return -r;
        /* sd-bus keeps the pointer and ignores a second registration of the
         * same table. */
        return sd_bus_error_add_map(map);
}
