/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "config.h"

typedef struct Manager Manager;

/* Several smimed on one store (PostgreSQL): each hears the others'
 * announcements on a connection of its own and shows their changes as its
 * own (the same events, so the same D-Bus signals), drops what it cached,
 * and re-reads the token's keys when another enrolled one. While that
 * connection is down it is tried again every second, and the store's
 * shared generation is checked before anything cached is used instead. */

/* Starts listening for the store config names (nothing for SQLite);
 * replaces what listened before. */
void manager_cluster_start(Manager *m, const Config *config);
void manager_cluster_stop(Manager *m);
