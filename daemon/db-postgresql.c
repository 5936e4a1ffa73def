/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "db-internal.h"
#include "log.h"

/* Type OIDs of the columns whose binary form db_column_int64 reads
 * (pg_type.dat; they never change). */
#define BOOLOID 16
#define INT8OID 20
#define INT2OID 21
#define INT4OID 23

#define MAX_PARAMETERS 16

typedef struct PgDb {
        Db db; /* first */
        PGconn *conn;
        unsigned next_statement;
        uint64_t timeout_usec; /* for an answer; 0: wait */
        bool broken;           /* an answer did not come in time: connect again */
} PgDb;

typedef struct PgStatement {
        DbStatement statement; /* first */
        char name[32];
        bool prepared;
        int n_parameters;
        const char *values[MAX_PARAMETERS];
        int lengths[MAX_PARAMETERS];
        int formats[MAX_PARAMETERS];
        char numbers[MAX_PARAMETERS][24];
        PGresult *result; /* once run */
        int row;          /* the current row, -1 before the first */
} PgStatement;

static PgStatement *pg_statement(DbStatement *s) {
        return (PgStatement *) s;
}

static PGconn *conn_of(Db *db) {
        return ((PgDb *) db)->conn;
}

/* SQLSTATE classes and codes, PostgreSQL's appendix A. */
static int sqlstate_errno(const char *state) {
        if (!state)
                return -EIO;
        if (streq(state, "23505"))
                return -EEXIST;
        if (strncmp(state, "08", 2) == 0 || streq(state, "57P01") || streq(state, "57P02") || streq(state, "57P03"))
                return -ENOTCONN;
        if (streq(state, "40001") || streq(state, "40P01") || streq(state, "55P03"))
                return -EBUSY;
        if (streq(state, "57014"))
                return -ETIMEDOUT;
        if (streq(state, "53100"))
                return -ENOSPC;
        if (streq(state, "53200"))
                return -ENOMEM;
        if (streq(state, "25006") || strncmp(state, "28", 2) == 0 || streq(state, "42501"))
                return -EROFS;
        return -EIO;
}

/* The server's message without its severity and detail lines, or libpq's. */
static int pg_error(Db *db, const PGresult *result, const char *what) {
        const char *message = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        int r;

        if (!message || !*message)
                message = PQerrorMessage(conn_of(db));
        if (PQstatus(conn_of(db)) == CONNECTION_BAD || ((PgDb *) db)->broken)
                r = -ENOTCONN;
        else
                r = result ? sqlstate_errno(PQresultErrorField(result, PG_DIAG_SQLSTATE)) : -EIO;
        return log_error_errno(r, "Certificate store %s: %s failed: %.*s", db->name, what,
                               (int) strcspn(message, "\n"), message);
}

/* A connection the server or the network dropped is made again before the
 * next statement; the server forgot the prepared statements, and any
 * transaction is gone (its COMMIT fails). */
static int pg_ensure_connected(Db *db) {
        PgDb *pg = (PgDb *) db;

        if (PQstatus(conn_of(db)) == CONNECTION_OK && !pg->broken)
                return 0;
        pg->broken = false;
        for (size_t i = 0; i < db->n_statements; i++)
                pg_statement(db->statements[i])->prepared = false;
        PQreset(conn_of(db));
        if (PQstatus(conn_of(db)) != CONNECTION_OK)
                return log_error_errno(-ENOTCONN, "Certificate store %s: cannot connect: %.*s", db->name,
                                       (int) strcspn(PQerrorMessage(conn_of(db)), "\n"), PQerrorMessage(conn_of(db)));
        log_info("Certificate store %s: connected again.", db->name);
        return 0;
}

/* The result of what was just sent (sent: what PQsend*() returned), waiting
 * at most the connection's timeout: a server that does not answer (stopped,
 * a network that drops packets) must not hold the caller, who holds the
 * event loop. Then the connection counts as broken (made again next time)
 * and NULL comes back. Of several results (statements in one string), the
 * first error, else the last. */
static PGresult *pg_wait(Db *db, int sent) {
        PgDb *pg = (PgDb *) db;
        PGresult *result = NULL, *r;
        uint64_t deadline = 0;

        if (!sent)
                return NULL;
        if (pg->timeout_usec > 0) {
                struct timespec ts;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                deadline = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL + pg->timeout_usec;
        }
        while (PQisBusy(pg->conn)) {
                struct pollfd p = {.fd = PQsocket(pg->conn), .events = POLLIN};
                int timeout_ms = -1, k;

                if (deadline > 0) {
                        struct timespec ts;
                        uint64_t now;

                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        now = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
                        timeout_ms = now >= deadline ? 0 : (int) ((deadline - now + 999) / 1000);
                }
                k = poll(&p, 1, timeout_ms);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        pg->broken = true;
                        log_error("Certificate store %s: no answer within %" PRIu64 " ms; connecting again next time.",
                                  db->name, pg->timeout_usec / 1000);
                        return NULL;
                }
                if (!PQconsumeInput(pg->conn))
                        break;
        }
        while ((r = PQgetResult(pg->conn))) {
                ExecStatusType status = PQresultStatus(r);
                bool failed = status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;

                if (result && PQresultStatus(result) != PGRES_COMMAND_OK &&
                    PQresultStatus(result) != PGRES_TUPLES_OK) {
                        PQclear(r); /* keep the first error */
                        continue;
                }
                PQclear(result);
                result = r;
                (void) failed;
        }
        return result;
}

static void pg_close(Db *db) {
        PQfinish(conn_of(db));
        free(db);
}

static int pg_exec(Db *db, const char *sql) {
        PGresult *result;
        int r = 0;

        /* Nothing to roll back where the server forgot the transaction
         * (or will, with the connection made again). */
        if (streq(sql, "ROLLBACK") && (PQtransactionStatus(conn_of(db)) == PQTRANS_IDLE || ((PgDb *) db)->broken))
                return 0;
        r = pg_ensure_connected(db);
        if (r < 0)
                return r;
        result = pg_wait(db, PQsendQuery(conn_of(db), sql));
        /* As pg_step(): outside a transaction, once more on a new connection. */
        if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK &&
            PQstatus(conn_of(db)) == CONNECTION_BAD && !((PgDb *) db)->broken && !db->in_transaction) {
                PQclear(result);
                r = pg_ensure_connected(db);
                if (r < 0)
                        return r;
                result = pg_wait(db, PQsendQuery(conn_of(db), sql));
        }
        if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK)
                r = pg_error(db, result, sql);
        PQclear(result);
        return r;
}

/* Whole words only: "BLOB" and "INTEGER" are types there, never names. */
static char *pg_schema_dialect(const char *sql) {
        static const struct {
                const char *from, *to;
        } words[] = {
                {"BLOB", "BYTEA"},
                {"INTEGER", "BIGINT"},
                {"WITHOUT ROWID", ""},
        };
        _cleanup_free_ char *out = NULL;
        size_t n = 0, size = strlen(sql) * 2 + 1;

        out = malloc(size);
        if (!out)
                return NULL;
        for (const char *p = sql; *p;) {
                bool replaced = false;

                for (size_t i = 0; i < ELEMENTSOF(words) && !replaced; i++) {
                        size_t len = strlen(words[i].from);

                        if (strncmp(p, words[i].from, len) != 0)
                                continue;
                        if ((p > sql && (isalnum((unsigned char) p[-1]) || p[-1] == '_')) ||
                            isalnum((unsigned char) p[len]) || p[len] == '_')
                                continue;
                        memcpy(out + n, words[i].to, strlen(words[i].to));
                        n += strlen(words[i].to);
                        p += len;
                        replaced = true;
                }
                if (!replaced)
                        out[n++] = *p++;
        }
        out[n] = '\0';
        return TAKE_PTR(out);
}

/* Prepared on the server under a name of its own; again after a reconnection. */
static int pg_prepare(DbStatement *s) {
        PgStatement *p = pg_statement(s);
        PGresult *result;
        int r = 0;

        result = pg_wait(s->db, PQsendPrepare(conn_of(s->db), p->name, s->sql, 0, NULL));
        if (PQresultStatus(result) != PGRES_COMMAND_OK)
                r = pg_error(s->db, result, "prepare");
        PQclear(result);
        if (r < 0)
                return r;
        result = pg_wait(s->db, PQsendDescribePrepared(conn_of(s->db), p->name));
        if (PQresultStatus(result) != PGRES_COMMAND_OK)
                r = pg_error(s->db, result, "describing a statement");
        else
                p->n_parameters = PQnparams(result);
        PQclear(result);
        if (r < 0)
                return r;
        if (p->n_parameters > MAX_PARAMETERS)
                return log_error_errno(-E2BIG, "Certificate store %s: a statement with %d parameters: %s", s->db->name,
                                       p->n_parameters, s->sql);
        p->prepared = true;
        return 0;
}

static int pg_statement_new(Db *db, const char *sql, DbStatement **ret) {
        PgDb *pg = (PgDb *) db;
        _cleanup_free_ PgStatement *s = NULL;
        int r;

        r = pg_ensure_connected(db);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(PgStatement));
        if (!s)
                return -ENOMEM;
        s->row = -1;
        s->statement.db = db;
        s->statement.sql = sql;
        snprintf(s->name, sizeof(s->name), "smimed_%u", pg->next_statement++);
        r = pg_prepare(&s->statement);
        if (r < 0)
                return r;
        *ret = &TAKE_PTR(s)->statement;
        return 0;
}

static void pg_statement_free(DbStatement *s) {
        PQclear(pg_statement(s)->result);
        /* The server forgets it with the connection; DEALLOCATE would cost a round trip. */
        free(s);
}

static void pg_statement_reset(DbStatement *s) {
        PgStatement *p = pg_statement(s);

        p->result = (PQclear(p->result), NULL);
        p->row = -1;
        memset(p->values, 0, sizeof(p->values));
        memset(p->lengths, 0, sizeof(p->lengths));
        memset(p->formats, 0, sizeof(p->formats));
}

static int parameter(DbStatement *s, unsigned i) {
        PgStatement *p = pg_statement(s);

        if (i < 1 || (int) i > p->n_parameters)
                return log_error_errno(-ERANGE, "Certificate store %s: no parameter %u in: %s", s->db->name, i,
                                       s->sql);
        return (int) i - 1;
}

static int pg_bind_text(DbStatement *s, unsigned i, const char *value) {
        int k = parameter(s, i);

        if (k < 0)
                return k;
        pg_statement(s)->values[k] = value;
        pg_statement(s)->formats[k] = 0;
        return 0;
}

/* bytea's binary form is the bytes. */
static int pg_bind_blob(DbStatement *s, unsigned i, const void *value, size_t size) {
        int k = parameter(s, i);

        if (k < 0)
                return k;
        if (size > INT32_MAX)
                return -E2BIG;
        pg_statement(s)->values[k] = value;
        pg_statement(s)->lengths[k] = (int) size;
        pg_statement(s)->formats[k] = 1;
        return 0;
}

/* As text: the server converts it to whatever integer type the parameter is. */
static int pg_bind_int64(DbStatement *s, unsigned i, int64_t value) {
        int k = parameter(s, i);

        if (k < 0)
                return k;
        snprintf(pg_statement(s)->numbers[k], sizeof(pg_statement(s)->numbers[k]), "%" PRId64, value);
        pg_statement(s)->values[k] = pg_statement(s)->numbers[k];
        pg_statement(s)->formats[k] = 0;
        return 0;
}

static int pg_bind_null(DbStatement *s, unsigned i) {
        int k = parameter(s, i);

        if (k < 0)
                return k;
        pg_statement(s)->values[k] = NULL;
        return 0;
}

static bool pg_run(DbStatement *s) {
        PgStatement *p = pg_statement(s);
        ExecStatusType status;

        p->result = pg_wait(s->db, PQsendQueryPrepared(conn_of(s->db), p->name, p->n_parameters, p->values, p->lengths,
                                                       p->formats, 1));
        status = PQresultStatus(p->result);
        return status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
}

static int pg_step(DbStatement *s, const char *what) {
        PgStatement *p = pg_statement(s);
        int r;

        if (!p->result) {
                r = pg_ensure_connected(s->db);
                if (r >= 0 && !p->prepared)
                        r = pg_prepare(s);
                if (r < 0)
                        return r;
                /* A connection the server dropped since the last statement
                 * (a restart, a failover) shows only now. Outside a
                 * transaction the statement runs again on a new one: nothing
                 * of a transaction is lost, and a retried read or
                 * announcement changes nothing. */
                if (!pg_run(s) && PQstatus(conn_of(s->db)) == CONNECTION_BAD && !((PgDb *) s->db)->broken &&
                    !s->db->in_transaction) {
                        p->result = (PQclear(p->result), NULL);
                        r = pg_ensure_connected(s->db);
                        if (r >= 0)
                                r = pg_prepare(s);
                        if (r < 0)
                                return r;
                        (void) pg_run(s);
                }
                if (PQresultStatus(p->result) != PGRES_TUPLES_OK && PQresultStatus(p->result) != PGRES_COMMAND_OK) {
                        r = pg_error(s->db, p->result, what);
                        p->result = (PQclear(p->result), NULL);
                        return r;
                }
        }
        if (PQresultStatus(p->result) != PGRES_TUPLES_OK)
                return 0;
        if (p->row + 1 >= PQntuples(p->result))
                return 0;
        p->row++;
        return 1;
}

static uint64_t pg_changes(DbStatement *s) {
        PgStatement *p = pg_statement(s);

        return p->result ? strtoull(PQcmdTuples(p->result), NULL, 10) : 0;
}

static bool pg_column_is_null(DbStatement *s, unsigned i) {
        PgStatement *p = pg_statement(s);

        return PQgetisnull(p->result, p->row, (int) i);
}

static const char *pg_column_text(DbStatement *s, unsigned i) {
        PgStatement *p = pg_statement(s);

        /* Binary text is the characters, with a NUL after them. */
        return pg_column_is_null(s, i) ? NULL : PQgetvalue(p->result, p->row, (int) i);
}

static const void *pg_column_blob(DbStatement *s, unsigned i, size_t *ret_size) {
        PgStatement *p = pg_statement(s);

        if (pg_column_is_null(s, i)) {
                *ret_size = 0;
                return NULL;
        }
        *ret_size = (size_t) PQgetlength(p->result, p->row, (int) i);
        return PQgetvalue(p->result, p->row, (int) i);
}

static int64_t pg_column_int64(DbStatement *s, unsigned i) {
        PgStatement *p = pg_statement(s);
        const unsigned char *v;
        uint64_t n = 0;
        int len;

        if (pg_column_is_null(s, i))
                return 0;
        v = (const unsigned char *) PQgetvalue(p->result, p->row, (int) i);
        len = PQgetlength(p->result, p->row, (int) i);
        switch (PQftype(p->result, (int) i)) {
        case INT8OID:
        case INT4OID:
        case INT2OID:
        case BOOLOID:
                for (int k = 0; k < len; k++)
                        n = n << 8 | v[k];
                /* Sign-extend the narrower ones. */
                if (len < 8 && len > 0 && (v[0] & 0x80))
                        n |= ~UINT64_C(0) << (len * 8);
                return (int64_t) n;
        default:
                log_error("Certificate store %s: column %u is not an integer (type %u): %s", s->db->name, i,
                          (unsigned) PQftype(p->result, (int) i), s->sql);
                return 0;
        }
}

static int pg_lock_transaction(Db *db, int64_t key) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(db, "SELECT pg_advisory_xact_lock($1)", &s);
        if (r < 0)
                return r;
        r = db_bind_int64(s, 1, key);
        if (r < 0)
                return r;
        r = db_step(s, "taking a lock");
        return r < 0 ? r : 0;
}

static int pg_get_schema_version(Db *db, int *ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        /* An empty database has no table yet; it is made under the migration lock. */
        r = db_prepare(db, "SELECT to_regclass('smimed_schema') IS NOT NULL", &s);
        if (r < 0)
                return r;
        r = db_step(s, "looking for the schema version");
        if (r < 0)
                return r;
        if (r == 0 || db_column_int64(s, 0) == 0) {
                *ret = 0;
                return 0;
        }
        db_statement_resetp(&s);
        s = NULL;
        r = db_prepare(db, "SELECT max(version) FROM smimed_schema", &s);
        if (r < 0)
                return r;
        r = db_step(s, "reading the schema version");
        if (r < 0)
                return r;
        *ret = r > 0 ? (int) db_column_int64(s, 0) : 0;
        return 0;
}

static int pg_set_schema_version(Db *db, int version) {
        char sql[256];

        snprintf(sql, sizeof(sql),
                 "CREATE TABLE IF NOT EXISTS smimed_schema (version BIGINT NOT NULL);"
                 " DELETE FROM smimed_schema; INSERT INTO smimed_schema VALUES (%d)",
                 version);
        return db_exec(db, sql);
}

static int pg_notify(Db *db, const char *channel, const char *payload) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(db, "SELECT pg_notify($1, $2)", &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, channel);
        db_bind_text(s, 2, payload);
        r = db_step(s, "announcing a change");
        return r < 0 ? r : 0;
}

static int pg_listen(Db *db, const char *channel) {
        _cleanup_free_ char *sql = NULL;
        char *quoted;

        quoted = PQescapeIdentifier(conn_of(db), channel, strlen(channel));
        if (!quoted)
                return -ENOMEM;
        if (asprintf(&sql, "LISTEN %s", quoted) < 0)
                sql = NULL;
        PQfreemem(quoted);
        if (!sql)
                return -ENOMEM;
        return db_exec(db, sql);
}

static int pg_fd(Db *db) {
        int fd = PQsocket(conn_of(db));

        return fd < 0 ? -ENOTCONN : fd;
}

static int pg_sender_id(Db *db) {
        return PQbackendPID(conn_of(db));
}

static int pg_read_notifications(Db *db, DbNotificationHandler handler, void *userdata) {
        PGnotify *n;

        if (!PQconsumeInput(conn_of(db)) || PQstatus(conn_of(db)) != CONNECTION_OK)
                return log_warning_errno(-ENOTCONN,
                                         "Certificate store %s: lost the connection that hears of "
                                         "changes: %.*s",
                                         db->name, (int) strcspn(PQerrorMessage(conn_of(db)), "\n"),
                                         PQerrorMessage(conn_of(db)));
        while ((n = PQnotifies(conn_of(db)))) {
                handler(n->relname, n->extra, n->be_pid, userdata);
                PQfreemem(n);
        }
        return 0;
}

static void ignore_notice(void *userdata, const char *message) {
        (void) userdata;
        (void) message;
}

static const DbOps pg_ops = {
        .backend = DB_POSTGRESQL,
        .begin_sql = "BEGIN",
        .close = pg_close,
        .exec = pg_exec,
        .schema_dialect = pg_schema_dialect,
        .statement_new = pg_statement_new,
        .statement_free = pg_statement_free,
        .statement_reset = pg_statement_reset,
        .bind_text = pg_bind_text,
        .bind_blob = pg_bind_blob,
        .bind_int64 = pg_bind_int64,
        .bind_null = pg_bind_null,
        .step = pg_step,
        .changes = pg_changes,
        .column_is_null = pg_column_is_null,
        .column_text = pg_column_text,
        .column_blob = pg_column_blob,
        .column_int64 = pg_column_int64,
        .lock_transaction = pg_lock_transaction,
        .notify = pg_notify,
        .listen = pg_listen,
        .fd = pg_fd,
        .sender_id = pg_sender_id,
        .read_notifications = pg_read_notifications,
        .get_schema_version = pg_get_schema_version,
        .set_schema_version = pg_set_schema_version,
};

int db_open_postgresql(const char *conninfo, const char *password, uint64_t timeout_usec, Db **ret,
                       char **ret_message) {
        /* The password goes beside the connection string, never into it, so
         * no message that quotes the string shows it; "dbname" is the
         * string, expanded (the last argument), and may set an
         * application_name of its own. */
        const char *keywords[5] = {"application_name", "connect_timeout", "dbname"},
                   *values[5] = {"smimed", NULL, conninfo};
        _cleanup_(db_closep) Db *db = NULL;
        char connect_timeout[32];
        PgDb *pg;
        char *name;

        *ret_message = NULL;
        /* libpq's connect_timeout is whole seconds, at least 2; the string may set its own. */
        snprintf(connect_timeout, sizeof(connect_timeout), "%" PRIu64,
                 timeout_usec > 0 ? (timeout_usec + 999999) / 1000000 : 0);
        values[1] = connect_timeout;
        if (password) {
                keywords[3] = "password";
                values[3] = password;
        }
        pg = calloc(1, sizeof(PgDb));
        if (!pg)
                return -ENOMEM;
        pg->conn = PQconnectdbParams(keywords, values, 1);
        if (!pg->conn) {
                free(pg);
                return -ENOMEM;
        }
        if (asprintf(&name, "PostgreSQL database %s on %s", PQdb(pg->conn) ?: "?",
                     PQhost(pg->conn) ?: "the default host") < 0) {
                PQfinish(pg->conn);
                free(pg);
                return -ENOMEM;
        }
        db_init(&pg->db, &pg_ops, name);
        db = &pg->db;
        pg->timeout_usec = timeout_usec;

        if (PQstatus(pg->conn) != CONNECTION_OK) {
                const char *message = PQerrorMessage(pg->conn);

                if (asprintf(ret_message, "Cannot connect to the certificate store, %s: %.*s", name,
                             (int) strcspn(message, "\n"), message) < 0)
                        *ret_message = NULL;
                return -ENOTCONN;
        }
        PQsetNoticeProcessor(pg->conn, ignore_notice, NULL);
        *ret = TAKE_PTR(db);
        return 0;
}
