/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db-internal.h"
#include "log.h"

typedef struct SqliteDb {
        Db db; /* first */
        sqlite3 *handle;
} SqliteDb;

typedef struct SqliteStatement {
        DbStatement statement; /* first */
        sqlite3_stmt *stmt;
} SqliteStatement;

static sqlite3 *handle_of(Db *db) {
        return ((SqliteDb *) db)->handle;
}

static sqlite3_stmt *stmt_of(DbStatement *s) {
        return ((SqliteStatement *) s)->stmt;
}

static int sqlite_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EROFS;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CONSTRAINT:
                return rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE ? -EEXIST : -EIO;
        default:
                return -EIO;
        }
}

/* SQLite says "disk I/O error" for most failed writes; what the kernel said
 * tells the admin what to do: make room, or make the store writable. */
static int sqlite_write_errno(int rc, int system_errno) {
        if ((rc & 0xff) != SQLITE_IOERR && (rc & 0xff) != SQLITE_FULL)
                return 0;
        if (system_errno == ENOSPC || system_errno == EDQUOT || system_errno == EFBIG)
                return -ENOSPC;
        if (system_errno == EROFS || system_errno == EPERM || system_errno == EACCES)
                return -EROFS;
        return 0;
}

static int sqlite_error(Db *db, int rc, const char *what) {
        int system_errno = sqlite3_system_errno(handle_of(db)), r;

        r = sqlite_write_errno(rc, system_errno);
        if (r == 0)
                r = sqlite_errno(rc);
        if (system_errno == 0)
                return log_error_errno(r, "Certificate store %s: %s failed: %s", db->name, what,
                                       sqlite3_errmsg(handle_of(db)));
        return log_error_errno(r, "Certificate store %s: %s failed: %s (%s)", db->name, what,
                               sqlite3_errmsg(handle_of(db)), strerror(system_errno));
}

static void sqlite_close(Db *db) {
        sqlite3_close(handle_of(db));
        free(db);
}

static int sqlite_exec(Db *db, const char *sql) {
        int rc;

        /* After an I/O error or a full disk SQLite may have rolled back already. */
        if (streq(sql, "ROLLBACK") && sqlite3_get_autocommit(handle_of(db)))
                return 0;
        rc = sqlite3_exec(handle_of(db), sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : sqlite_error(db, rc, sql);
}

/* "$1" is a named parameter to SQLite, numbered by where it first appears;
 * "?1" is parameter 1 wherever it is. */
static char *sqlite_dialect(const char *sql) {
        char *copy = strdup(sql);

        for (char *p = copy; p && *p; p++)
                if (*p == '$' && p[1] >= '0' && p[1] <= '9')
                        *p = '?';
        return copy;
}

static int sqlite_statement_new(Db *db, const char *sql, DbStatement **ret) {
        _cleanup_free_ SqliteStatement *s = NULL;
        _cleanup_free_ char *text = sqlite_dialect(sql);
        int rc;

        s = calloc(1, sizeof(SqliteStatement));
        if (!s || !text)
                return -ENOMEM;
        rc = sqlite3_prepare_v3(handle_of(db), text, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(db, rc, "prepare");
        *ret = &TAKE_PTR(s)->statement;
        return 0;
}

static void sqlite_statement_free(DbStatement *s) {
        sqlite3_finalize(stmt_of(s));
        free(s);
}

static void sqlite_statement_reset(DbStatement *s) {
        (void) sqlite3_reset(stmt_of(s));
        (void) sqlite3_clear_bindings(stmt_of(s));
}

static int bind_result(DbStatement *s, int rc) {
        return rc == SQLITE_OK ? 0 : sqlite_error(s->db, rc, "binding a parameter");
}

static int sqlite_bind_text(DbStatement *s, unsigned i, const char *value) {
        return bind_result(s, sqlite3_bind_text(stmt_of(s), (int) i, value, -1, SQLITE_STATIC));
}

static int sqlite_bind_blob(DbStatement *s, unsigned i, const void *value, size_t size) {
        if (size > INT32_MAX)
                return -E2BIG;
        return bind_result(s, sqlite3_bind_blob(stmt_of(s), (int) i, value, (int) size, SQLITE_STATIC));
}

static int sqlite_bind_int64(DbStatement *s, unsigned i, int64_t value) {
        return bind_result(s, sqlite3_bind_int64(stmt_of(s), (int) i, (sqlite3_int64) value));
}

static int sqlite_bind_null(DbStatement *s, unsigned i) {
        return bind_result(s, sqlite3_bind_null(stmt_of(s), (int) i));
}

static int sqlite_step(DbStatement *s, const char *what) {
        int rc = sqlite3_step(stmt_of(s));

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return sqlite_error(s->db, rc, what);
}

static uint64_t sqlite_changes(DbStatement *s) {
        return (uint64_t) sqlite3_changes64(handle_of(s->db));
}

static bool sqlite_column_is_null(DbStatement *s, unsigned i) {
        return sqlite3_column_type(stmt_of(s), (int) i) == SQLITE_NULL;
}

static const char *sqlite_column_text(DbStatement *s, unsigned i) {
        return (const char *) sqlite3_column_text(stmt_of(s), (int) i);
}

static const void *sqlite_column_blob(DbStatement *s, unsigned i, size_t *ret_size) {
        const void *p = sqlite3_column_blob(stmt_of(s), (int) i);

        *ret_size = (size_t) sqlite3_column_bytes(stmt_of(s), (int) i);
        return p;
}

static int64_t sqlite_column_int64(DbStatement *s, unsigned i) {
        return sqlite3_column_int64(stmt_of(s), (int) i);
}

/* BEGIN IMMEDIATE holds the write lock already. */
static int sqlite_lock_transaction(Db *db, int64_t key) {
        (void) db;
        (void) key;
        return 0;
}

static int sqlite_get_schema_version(Db *db, int *ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(db, "PRAGMA user_version", &s);
        if (r < 0)
                return r;
        r = db_step(s, "reading the schema version");
        if (r < 0)
                return r;
        *ret = r > 0 ? (int) db_column_int64(s, 0) : 0;
        return 0;
}

static int sqlite_set_schema_version(Db *db, int version) {
        char pragma[64];

        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version);
        return db_exec(db, pragma);
}

static const DbOps sqlite_ops = {
        .backend = DB_SQLITE,
        .begin_sql = "BEGIN IMMEDIATE",
        .close = sqlite_close,
        .exec = sqlite_exec,
        .statement_new = sqlite_statement_new,
        .statement_free = sqlite_statement_free,
        .statement_reset = sqlite_statement_reset,
        .bind_text = sqlite_bind_text,
        .bind_blob = sqlite_bind_blob,
        .bind_int64 = sqlite_bind_int64,
        .bind_null = sqlite_bind_null,
        .step = sqlite_step,
        .changes = sqlite_changes,
        .column_is_null = sqlite_column_is_null,
        .column_text = sqlite_column_text,
        .column_blob = sqlite_column_blob,
        .column_int64 = sqlite_column_int64,
        .lock_transaction = sqlite_lock_transaction,
        .get_schema_version = sqlite_get_schema_version,
        .set_schema_version = sqlite_set_schema_version,
};

int db_open_sqlite(const char *path, Db **ret, char **ret_message) {
        _cleanup_(db_closep) Db *db = NULL;
        SqliteDb *s;
        char *name;
        int rc, r;

        *ret_message = NULL;
        s = calloc(1, sizeof(SqliteDb));
        name = strdup(path);
        if (!s || !name) {
                free(s);
                free(name);
                return -ENOMEM;
        }
        db_init(&s->db, &sqlite_ops, name);
        db = &s->db;

        rc = sqlite3_open_v2(path, &s->handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                if (asprintf(ret_message, "Cannot open the certificate store %s: %s", path,
                             s->handle ? sqlite3_errmsg(s->handle) : sqlite3_errstr(rc)) < 0)
                        *ret_message = NULL;
                return sqlite_errno(rc);
        }
        sqlite3_extended_result_codes(s->handle, 1);
        sqlite3_busy_timeout(s->handle, 5000);

        r = db_exec(db, "PRAGMA journal_mode = WAL");
        if (r >= 0)
                r = db_exec(db, "PRAGMA synchronous = FULL");
        if (r >= 0)
                r = db_exec(db, "PRAGMA foreign_keys = ON");
        if (r < 0) {
                if (asprintf(ret_message, "Cannot open the certificate store %s: %s", path,
                             sqlite3_errmsg(s->handle)) < 0)
                        *ret_message = NULL;
                return r;
        }
        *ret = TAKE_PTR(db);
        return 0;
}
