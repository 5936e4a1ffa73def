/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

typedef struct Manager Manager;

/* Certificates about to expire ([Policy] ExpiryWarningDays=): how many
 * there are (the Manager's ExpiringCertificates, recounted when the store
 * changes and each day), and once a day a journal record for each with its
 * own MESSAGE_ID, the first shortly after start. No D-Bus. */

int manager_expiry_start(Manager *m);
void manager_expiry_stop(Manager *m);
/* Recounts; announces ExpiringCertificates when the number changed. */
void manager_update_expiring_count(Manager *m);
