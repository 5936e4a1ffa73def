/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db-internal.h"
#include "log.h"

void db_init(Db *db, const DbOps *ops, char *name) {
        *db = (Db){
                .ops = ops,
                .name = name,
        };
}

static void db_drop_statements(Db *db) {
        for (size_t i = 0; i < db->n_statements; i++)
                db->ops->statement_free(db->statements[i]);
        db->n_statements = 0;
}

Db *db_close(Db *db) {
        if (!db)
                return NULL;
        db_rollback(db);
        db_drop_statements(db);
        free(db->name);
        db->ops->close(db); /* frees db */
        return NULL;
}

DbBackend db_backend(const Db *db) {
        return db->ops->backend;
}

const char *db_name(const Db *db) {
        return db->name;
}

int db_exec(Db *db, const char *sql) {
        return db->ops->exec(db, sql);
}

int db_exec_schema(Db *db, const char *sql) {
        _cleanup_free_ char *dialect = NULL;

        if (!db->ops->schema_dialect)
                return db_exec(db, sql);
        dialect = db->ops->schema_dialect(sql);
        if (!dialect)
                return -ENOMEM;
        return db_exec(db, dialect);
}

int db_begin(Db *db) {
        int r;

        if (db->in_transaction)
                return -EBUSY;
        r = db_exec(db, db->ops->begin_sql);
        if (r < 0)
                return r;
        db->in_transaction = true;
        return 0;
}

int db_commit(Db *db) {
        int r;

        if (!db->in_transaction)
                return -EINVAL;
        r = db_exec(db, "COMMIT");
        if (r < 0)
                return r;
        db->in_transaction = false;
        return 0;
}

void db_rollback(Db *db) {
        if (!db->in_transaction)
                return;
        (void) db_exec(db, "ROLLBACK");
        db->in_transaction = false;
}

bool db_in_transaction(const Db *db) {
        return db->in_transaction;
}

int db_lock_transaction(Db *db, int64_t key) {
        if (!db->in_transaction)
                return -EINVAL;
        return db->ops->lock_transaction(db, key);
}

int db_get_schema_version(Db *db, int *ret) {
        return db->ops->get_schema_version(db, ret);
}

int db_set_schema_version(Db *db, int version) {
        if (!db->in_transaction)
                return -EINVAL;
        return db->ops->set_schema_version(db, version);
}

int db_prepare(Db *db, const char *sql, DbStatement **ret) {
        DbStatement *s;
        int r;

        for (size_t i = 0; i < db->n_statements; i++) {
                s = db->statements[i];
                if (s->sql == sql || streq(s->sql, sql)) {
                        if (s->in_use)
                                return log_error_errno(-EBUSY,
                                                       "Certificate store %s: statement used twice at once: %s",
                                                       db->name, sql);
                        s->in_use = true;
                        *ret = s;
                        return 0;
                }
        }
        if (db->n_statements >= DB_STATEMENT_CACHE_SIZE)
                return log_error_errno(-E2BIG,
                                       "Certificate store %s: more statements than the cache holds; raise "
                                       "DB_STATEMENT_CACHE_SIZE",
                                       db->name);

        r = db->ops->statement_new(db, sql, &s);
        if (r < 0)
                return r;
        s->db = db;
        s->sql = sql;
        s->in_use = true;
        db->statements[db->n_statements++] = s;
        *ret = s;
        return 0;
}

void db_statement_resetp(DbStatement **s) {
        if (!*s)
                return;
        (*s)->db->ops->statement_reset(*s);
        (*s)->in_use = false;
}

void db_reset(DbStatement *s) {
        s->db->ops->statement_reset(s);
}

int db_bind_text(DbStatement *s, unsigned i, const char *value) {
        return value ? s->db->ops->bind_text(s, i, value) : db_bind_null(s, i);
}

int db_bind_blob(DbStatement *s, unsigned i, const void *value, size_t size) {
        return s->db->ops->bind_blob(s, i, value ?: "", size);
}

int db_bind_int64(DbStatement *s, unsigned i, int64_t value) {
        return s->db->ops->bind_int64(s, i, value);
}

int db_bind_null(DbStatement *s, unsigned i) {
        return s->db->ops->bind_null(s, i);
}

int db_step(DbStatement *s, const char *what) {
        return s->db->ops->step(s, what);
}

int db_step_done(DbStatement *s, const char *what) {
        int r = db_step(s, what);

        if (r > 0)
                return log_error_errno(-EIO, "Certificate store %s: %s returned rows where none were expected",
                                       s->db->name, what);
        return r;
}

uint64_t db_changes(DbStatement *s) {
        return s->db->ops->changes(s);
}

bool db_column_is_null(DbStatement *s, unsigned i) {
        return s->db->ops->column_is_null(s, i);
}

const char *db_column_text(DbStatement *s, unsigned i) {
        return s->db->ops->column_text(s, i) ?: "";
}

const void *db_column_blob(DbStatement *s, unsigned i, size_t *ret_size) {
        return s->db->ops->column_blob(s, i, ret_size);
}

int64_t db_column_int64(DbStatement *s, unsigned i) {
        return s->db->ops->column_int64(s, i);
}

int db_notify(Db *db, const char *channel, const char *payload) {
        return db->ops->notify ? db->ops->notify(db, channel, payload) : 0;
}

int db_listen(Db *db, const char *channel) {
        return db->ops->listen ? db->ops->listen(db, channel) : -EOPNOTSUPP;
}

int db_fd(Db *db) {
        return db->ops->fd ? db->ops->fd(db) : -EOPNOTSUPP;
}

int db_sender_id(Db *db) {
        return db->ops->sender_id ? db->ops->sender_id(db) : 0;
}

int db_read_notifications(Db *db, DbNotificationHandler handler, void *userdata) {
        return db->ops->read_notifications ? db->ops->read_notifications(db, handler, userdata) : -EOPNOTSUPP;
}
