/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* One connection to the SQL database the certificate store lives in: an
 * SQLite file (the embedded default) or a PostgreSQL server (a cluster's
 * shared store). The store writes its SQL once, for both:
 *   - parameters are $1, $2, … (each may appear more than once);
 *   - schema text uses BLOB and INTEGER (64-bit); PostgreSQL gets BYTEA and
 *     BIGINT, and "WITHOUT ROWID" is dropped for it (db_exec_schema);
 *   - nothing else that differs: ON CONFLICT … DO NOTHING, RETURNING,
 *     lower(), LIMIT/OFFSET mean the same in both.
 * Errors are negative errno, logged with the database's own message:
 * -EEXIST a unique or primary key violated (other constraints: -EIO), -ENOTCONN the server is gone
 * (the connection is reset on the next call), -EBUSY locked, -ENOSPC,
 * -EROFS, -EBADMSG a corrupt file, -EIO anything else. */

typedef struct Db Db;
typedef struct DbStatement DbStatement;

typedef enum DbBackend {
        DB_SQLITE,
        DB_POSTGRESQL,
} DbBackend;

/* path: the SQLite file, made when missing. */
int db_open_sqlite(const char *path, Db **ret, char **ret_message);
/* conninfo: a libpq connection string ("host=/run/postgresql dbname=smimed");
 * password: NULL, or the password (never logged, never in a message);
 * timeout_usec: how long to wait for a connection or an answer (0: as long
 * as it takes); past it the call fails with -ENOTCONN and the connection is
 * made again on the next one. */
int db_open_postgresql(const char *conninfo, const char *password, uint64_t timeout_usec, Db **ret,
                       char **ret_message);
Db *db_close(Db *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(Db *, db_close);

DbBackend db_backend(const Db *db);
/* For messages: the SQLite path, or "PostgreSQL database NAME on HOST". */
const char *db_name(const Db *db);

/* SQL without parameters or rows, several statements allowed. */
int db_exec(Db *db, const char *sql);
/* Schema text, as above, in this backend's dialect. */
int db_exec_schema(Db *db, const char *sql);

/* BEGIN (SQLite: IMMEDIATE, so a writer waits at the start, not the
 * end), COMMIT, ROLLBACK. db_rollback does nothing outside a transaction. */
int db_begin(Db *db);
int db_commit(Db *db);
void db_rollback(Db *db);
bool db_in_transaction(const Db *db);

/* Inside a transaction: waits until no other connection to the same
 * database holds this lock, and holds it until the transaction ends (the
 * schema migration takes it, so two nodes starting at once migrate once).
 * SQLite's BEGIN IMMEDIATE already excludes other writers. */
int db_lock_transaction(Db *db, int64_t key);

/* The schema version (0 for an empty database) and setting it, inside the
 * migration's transaction. */
int db_get_schema_version(Db *db, int *ret);
int db_set_schema_version(Db *db, int version);

/* The prepared statement for sql (kept per connection, keyed by the text,
 * which should be a literal); give it back with db_statement_resetp (the
 * _cleanup_ form), which drops its bindings and rows. A statement is not
 * used twice at once. */
int db_prepare(Db *db, const char *sql, DbStatement **ret);
void db_statement_resetp(DbStatement **s);
/* Drops the bindings and rows, to run the statement again. */
void db_reset(DbStatement *s);

/* Parameters count from 1. Text and blobs are not copied: they must live
 * until the statement is reset. */
int db_bind_text(DbStatement *s, unsigned i, const char *value);
int db_bind_blob(DbStatement *s, unsigned i, const void *value, size_t size);
int db_bind_int64(DbStatement *s, unsigned i, int64_t value);
int db_bind_null(DbStatement *s, unsigned i);

/* Runs the statement on the first call, then walks its rows: 1 when a row
 * is there to read, 0 when done. what names the work for the log. */
int db_step(DbStatement *s, const char *what);
/* db_step() expecting no row (an INSERT, UPDATE or DELETE): 0 when done. */
int db_step_done(DbStatement *s, const char *what);
/* Rows the statement inserted, changed or deleted. */
uint64_t db_changes(DbStatement *s);

/* Columns of the current row count from 0. Pointers are valid until the
 * next step or the reset. A NULL is "" / size 0 / 0. */
bool db_column_is_null(DbStatement *s, unsigned i);
const char *db_column_text(DbStatement *s, unsigned i);
const void *db_column_blob(DbStatement *s, unsigned i, size_t *ret_size);
int64_t db_column_int64(DbStatement *s, unsigned i);

/* Notifications between the connections of one database (PostgreSQL's
 * NOTIFY/LISTEN; SQLite has none: db_notify does nothing there and
 * db_listen is -EOPNOTSUPP). A notification is sent when the transaction
 * it is part of commits, and not at all when it rolls back. */
int db_notify(Db *db, const char *channel, const char *payload);
int db_listen(Db *db, const char *channel);
/* The connection's socket, to poll for notifications, or -EOPNOTSUPP. */
int db_fd(Db *db);
/* The server process of this connection: notifications name the sender's. */
int db_sender_id(Db *db);
typedef void (*DbNotificationHandler)(const char *channel, const char *payload, int sender, void *userdata);
/* Reads what arrived on db_fd() and calls handler for each notification;
 * -ENOTCONN when the connection is gone (open a new one and db_listen again). */
int db_read_notifications(Db *db, DbNotificationHandler handler, void *userdata);
