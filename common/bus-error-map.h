/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "smimed-errors.h"

/* The org.smimed1.Error.* names and the errno each one maps to. Register it
 * once per process with smimed_bus_error_map_register(). */
extern const sd_bus_error_map smimed_bus_error_map[];

int smimed_bus_error_map_register(void);
