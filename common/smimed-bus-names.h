/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where org.smimed1 lives on the bus: spelled here only, for daemon, client
 * and tests. Certificates are SMIMED_CERTIFICATE_PATH_PREFIX "/<sha256 hex>",
 * keys SMIMED_KEY_PATH_PREFIX "/<CKA_ID hex>"; each prefix is itself an object
 * path (where the daemon hangs its fallback vtable), so it has no trailing
 * slash. Not installed: libsmimed's callers never name an object. */

#define SMIMED_BUS_NAME "org.smimed1"
#define SMIMED_MANAGER_PATH "/org/smimed1"
#define SMIMED_MANAGER_INTERFACE "org.smimed1.Manager"
#define SMIMED_CERTIFICATE_INTERFACE "org.smimed1.Certificate"
#define SMIMED_KEY_INTERFACE "org.smimed1.Key"
#define SMIMED_CERTIFICATE_PATH_PREFIX "/org/smimed1/certificate"
#define SMIMED_KEY_PATH_PREFIX "/org/smimed1/key"
