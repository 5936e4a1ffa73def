/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Teaches sd-bus the errno of each org.smimed1.Error.* name, from the table
 * of smimed-error.c, so that sd_bus_error_get_errno() and the return value of
 * sd_bus_call() agree with what the daemon meant. Once per process; calling
 * it again (from any thread) is harmless. */
int smimed_bus_error_map_register(void);
