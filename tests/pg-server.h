/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "macro.h"

/* A private PostgreSQL server for a test: initdb in a scratch directory (as
 * the system user "postgres", which Debian's postgresql package makes),
 * trust authentication, a unix socket only (listen_addresses=''), fsync off.
 * About 1.5 s to start. */
typedef struct PgServer {
        char *dir;      /* 0755, the data directory and the socket inside */
        char *bin_dir;  /* /usr/lib/postgresql/N/bin */
        char *conninfo; /* "host=<socket dir> dbname=postgres user=postgres" */
        bool running;
} PgServer;

int pg_server_start(PgServer **ret);
/* Stops it (fast shutdown) and starts it again on the same data, as an
 * admin's restart or a failover would: connections are dropped. */
int pg_server_stop(PgServer *s);
int pg_server_resume(PgServer *s);
PgServer *pg_server_free(PgServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(PgServer *, pg_server_free);
