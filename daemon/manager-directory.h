/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "capabilities.h"

typedef struct Manager Manager;

/* Recipients' certificates from the [Directory]: before GetCapabilities,
 * LookupCertificates and Encrypt answer, the addresses the store cannot
 * serve (no usable certificate, or only one the directory gave longer than
 * CacheSec= ago) are looked up there (directory.c, off the loop); what is
 * found is stored as from the directory, and the call then answers from
 * the store as always. A directory that fails or is slow leaves the store's
 * answer, within TimeoutSec=. No D-Bus. */

int manager_directory_start(Manager *m);
/* [Directory] of the running config; a directory removed stops being asked. */
void manager_directory_apply(Manager *m);
void manager_directory_stop(Manager *m);

/* Called once all lookups ended; cancelled when smimed is stopping. */
typedef void (*ManagerDirectoryDone)(Manager *m, bool cancelled, void *userdata);

/* Looks the addresses (normalized, NULL-terminated) up that need it.
 * Returns 0 when none does (done is not called), 1 when done will be,
 * or a negative errno. */
int manager_directory_resolve(Manager *m, char *const *addresses, ManagerDirectoryDone done, void *userdata);

/* When the certificate was last fetched from the directory; 0 when it did
 * not come from there. */
int manager_certificate_directory_fetched(Manager *m, const char *fingerprint, time_t *ret);
