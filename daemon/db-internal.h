/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "db.h"

/* What db.c asks of a backend (db-sqlite.c, db-postgresql.c). A backend's
 * connection embeds Db first, its statements DbStatement first. */

#define DB_STATEMENT_CACHE_SIZE 64

typedef struct DbOps {
        DbBackend backend;
        const char *begin_sql;

        void (*close)(Db *db);
        int (*exec)(Db *db, const char *sql);
        /* The schema text in this backend's dialect; NULL when out of memory. */
        char *(*schema_dialect)(const char *sql);

        int (*statement_new)(Db *db, const char *sql, DbStatement **ret);
        void (*statement_free)(DbStatement *s);
        void (*statement_reset)(DbStatement *s);

        int (*bind_text)(DbStatement *s, unsigned i, const char *value);
        int (*bind_blob)(DbStatement *s, unsigned i, const void *value, size_t size);
        int (*bind_int64)(DbStatement *s, unsigned i, int64_t value);
        int (*bind_null)(DbStatement *s, unsigned i);

        int (*step)(DbStatement *s, const char *what);
        uint64_t (*changes)(DbStatement *s);
        bool (*column_is_null)(DbStatement *s, unsigned i);
        const char *(*column_text)(DbStatement *s, unsigned i);
        const void *(*column_blob)(DbStatement *s, unsigned i, size_t *ret_size);
        int64_t (*column_int64)(DbStatement *s, unsigned i);

        int (*lock_transaction)(Db *db, int64_t key);
        int (*notify)(Db *db, const char *channel, const char *payload);
        int (*listen)(Db *db, const char *channel);
        int (*fd)(Db *db);
        int (*sender_id)(Db *db);
        int (*read_notifications)(Db *db, DbNotificationHandler handler, void *userdata);
        int (*get_schema_version)(Db *db, int *ret);
        int (*set_schema_version)(Db *db, int version);
} DbOps;

struct Db {
        const DbOps *ops;
        char *name;
        bool in_transaction;

        /* Every statement the store runs, prepared once: parsing the SQL
         * costs more than running it. */
        DbStatement *statements[DB_STATEMENT_CACHE_SIZE];
        size_t n_statements;
};

struct DbStatement {
        Db *db;
        const char *sql; /* the caller's text, the cache's key */
        bool in_use;
};

/* For the backends: sets up db, taking name. */
void db_init(Db *db, const DbOps *ops, char *name);
