/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "strv.h"
#include "x509-cache.h"

#define STATEMENT_CACHE_SIZE 48

struct Store {
        sqlite3 *db;
        char *path;
        uint64_t generation;
        bool in_transaction;

        /* Every statement store.c runs, prepared once: parsing the SQL cost
         * more than running it. Keyed by the text, which is always one of
         * the literals in this file. */
        struct {
                const char *sql;
                sqlite3_stmt *stmt;
        } statements[STATEMENT_CACHE_SIZE];
        size_t n_statements;
};

/* Each entry takes the schema from version i to i + 1. Append, never edit. */
static const char *const migrations[] = {
        /* 0 → 1 */
        "CREATE TABLE certificate ("
        "  fingerprint TEXT PRIMARY KEY NOT NULL,"
        "  der BLOB NOT NULL,"
        "  subject_name BLOB NOT NULL,"
        "  issuer_name BLOB NOT NULL,"
        "  serial TEXT NOT NULL,"
        "  spki_sha256 TEXT NOT NULL,"
        "  not_before INTEGER NOT NULL,"
        "  not_after INTEGER NOT NULL,"
        "  is_ca INTEGER NOT NULL,"
        "  trusted INTEGER NOT NULL DEFAULT 0,"
        "  imported_at INTEGER NOT NULL"
        ");"
        "CREATE INDEX certificate_subject_name ON certificate(subject_name);"
        "CREATE INDEX certificate_issuer_serial ON certificate(issuer_name, serial);"
        "CREATE INDEX certificate_spki ON certificate(spki_sha256);"
        "CREATE INDEX certificate_not_before ON certificate(not_before);"
        "CREATE TABLE address ("
        "  address TEXT NOT NULL,"
        "  fingerprint TEXT NOT NULL REFERENCES certificate(fingerprint) ON DELETE CASCADE,"
        "  PRIMARY KEY (address, fingerprint)"
        ") WITHOUT ROWID;"
        "CREATE INDEX address_fingerprint ON address(fingerprint);"
        "CREATE TABLE crl ("
        "  issuer_name BLOB PRIMARY KEY NOT NULL,"
        "  this_update INTEGER NOT NULL,"
        "  next_update INTEGER,"
        "  der BLOB NOT NULL"
        ");",
};

uint64_t store_generation(const Store *store) {
        return store->generation;
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
        default:
                return -EIO;
        }
}

/* SQLite says "disk I/O error" for most failed writes; what the kernel said
 * tells the admin what to do: make room, or make the store writable. */
static int store_write_errno(int rc, int system_errno) {
        if ((rc & 0xff) != SQLITE_IOERR && (rc & 0xff) != SQLITE_FULL)
                return 0;
        if (system_errno == ENOSPC || system_errno == EDQUOT || system_errno == EFBIG)
                return -ENOSPC;
        if (system_errno == EROFS || system_errno == EPERM || system_errno == EACCES)
                return -EROFS;
        return 0;
}

static int store_error(Store *store, int rc, const char *what) {
        int system_errno = sqlite3_system_errno(store->db), r;

        r = store_write_errno(rc, system_errno);
        if (r == 0)
                r = sqlite_errno(rc);
        if (system_errno == 0)
                return log_error_errno(r, "Certificate store %s: %s failed: %s", store->path, what,
                                       sqlite3_errmsg(store->db));
        return log_error_errno(r, "Certificate store %s: %s failed: %s (%s)", store->path, what,
                               sqlite3_errmsg(store->db), strerror(system_errno));
}

static int store_exec(Store *store, const char *sql) {
        int rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : store_error(store, rc, sql);
}

/* Gives a statement from store_prepare() back, ready for the next use. */
static void statement_resetp(sqlite3_stmt **s) {
        if (!*s)
                return;
        (void) sqlite3_reset(*s);
        (void) sqlite3_clear_bindings(*s);
}

/* The prepared statement for sql, from the cache; release it with
 * statement_resetp. A statement is not used twice at once: no store function
 * calls another while it steps through rows. */
static int store_prepare(Store *store, const char *sql, sqlite3_stmt **ret) {
        sqlite3_stmt *stmt;
        int rc;

        for (size_t i = 0; i < store->n_statements; i++)
                if (store->statements[i].sql == sql || streq(store->statements[i].sql, sql)) {
                        if (sqlite3_stmt_busy(store->statements[i].stmt))
                                return log_error_errno(-EBUSY, "store: statement used twice at once: %s", sql);
                        *ret = store->statements[i].stmt;
                        return 0;
                }
        if (store->n_statements >= STATEMENT_CACHE_SIZE)
                return log_error_errno(-E2BIG, "store: more statements than the cache holds; raise STATEMENT_CACHE_SIZE");

        rc = sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
        if (rc != SQLITE_OK)
                return store_error(store, rc, "prepare");
        store->statements[store->n_statements].sql = sql;
        store->statements[store->n_statements].stmt = stmt;
        store->n_statements++;
        *ret = stmt;
        return 0;
}

static int store_schema_version(Store *store, int *ret) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        int r;

        r = store_prepare(store, "PRAGMA user_version", &s);
        if (r < 0)
                return r;
        if (sqlite3_step(s) != SQLITE_ROW)
                return store_error(store, sqlite3_errcode(store->db), "reading the schema version");
        *ret = sqlite3_column_int(s, 0);
        return 0;
}

static int store_migrate(Store *store, char **ret_message) {
        int version = 0, r;

        r = store_schema_version(store, &version);
        if (r < 0)
                return r;
        if (version > (int) ELEMENTSOF(migrations)) {
                if (asprintf(ret_message,
                             "The certificate store %s has schema version %d, newer than this smimed knows (%zu).",
                             store->path, version, ELEMENTSOF(migrations)) < 0)
                        *ret_message = NULL;
                return -EPROTONOSUPPORT;
        }

        for (; version < (int) ELEMENTSOF(migrations); version++) {
                char pragma[64];

                r = store_begin(store);
                if (r < 0)
                        return r;
                snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
                r = store_exec(store, migrations[version]);
                if (r >= 0)
                        r = store_exec(store, pragma);
                if (r >= 0)
                        r = store_commit(store);
                if (r < 0) {
                        store_rollback(store);
                        return r;
                }
                log_info("Certificate store %s: schema migrated to version %d.", store->path, version + 1);
        }
        return 0;
}

int store_open(const char *path, Store **ret, char **ret_message) {
        _cleanup_(store_freep) Store *store = NULL;
        int rc, r;

        *ret_message = NULL;
        store = calloc(1, sizeof(Store));
        if (!store)
                return -ENOMEM;
        store->path = strdup(path);
        if (!store->path)
                return -ENOMEM;

        rc = sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                if (asprintf(ret_message, "Cannot open the certificate store %s: %s", path,
                             store->db ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc)) < 0)
                        *ret_message = NULL;
                return sqlite_errno(rc);
        }
        sqlite3_extended_result_codes(store->db, 1);
        sqlite3_busy_timeout(store->db, 5000);

        r = store_exec(store, "PRAGMA journal_mode = WAL");
        if (r >= 0)
                r = store_exec(store, "PRAGMA synchronous = FULL");
        if (r >= 0)
                r = store_exec(store, "PRAGMA foreign_keys = ON");
        if (r >= 0)
                r = store_migrate(store, ret_message);
        if (r < 0) {
                if (!*ret_message && asprintf(ret_message, "Cannot open the certificate store %s: %s", path,
                                              sqlite3_errmsg(store->db)) < 0)
                        *ret_message = NULL;
                return r;
        }

        *ret = TAKE_PTR(store);
        return 0;
}

Store *store_free(Store *store) {
        if (!store)
                return NULL;
        if (store->in_transaction)
                store_rollback(store);
        for (size_t i = 0; i < store->n_statements; i++)
                sqlite3_finalize(store->statements[i].stmt);
        sqlite3_close(store->db);
        free(store->path);
        return mfree(store);
}

int store_begin(Store *store) {
        int r;

        if (store->in_transaction)
                return -EBUSY;
        r = store_exec(store, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        store->in_transaction = true;
        return 0;
}

int store_commit(Store *store) {
        int r;

        r = store_exec(store, "COMMIT");
        if (r < 0)
                return r;
        store->in_transaction = false;
        store->generation++;
        return 0;
}

void store_rollback(Store *store) {
        if (!store->in_transaction)
                return;
        /* After an I/O error or a full disk SQLite may have rolled back already. */
        if (!sqlite3_get_autocommit(store->db))
                (void) store_exec(store, "ROLLBACK");
        store->in_transaction = false;
}

static int step_done(Store *store, sqlite3_stmt *s, const char *what) {
        int rc = sqlite3_step(s);

        return rc == SQLITE_DONE ? 0 : store_error(store, rc, what);
}

int store_add_certificate(Store *store, const CertInfo *info, bool trusted, bool *ret_added) {
        _cleanup_(statement_resetp) sqlite3_stmt *insert = NULL, *address = NULL, *trust = NULL;
        int r;

        /* Not INSERT OR IGNORE: that also skips a row that breaks a NOT NULL
         * constraint, and the certificate would pass for one already there. */
        r = store_prepare(store,
                          "INSERT INTO certificate (fingerprint, der, subject_name, issuer_name, serial,"
                          " spki_sha256, not_before, not_after, is_ca, trusted, imported_at)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
                          &insert);
        if (r < 0)
                return r;
        sqlite3_bind_text(insert, 1, info->fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_blob(insert, 2, info->der, (int) info->der_size, SQLITE_STATIC);
        sqlite3_bind_blob(insert, 3, info->subject_name_der, (int) info->subject_name_der_size, SQLITE_STATIC);
        sqlite3_bind_blob(insert, 4, info->issuer_name_der, (int) info->issuer_name_der_size, SQLITE_STATIC);
        sqlite3_bind_text(insert, 5, info->serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 6, info->spki_sha256, -1, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 7, (sqlite3_int64) info->not_before);
        sqlite3_bind_int64(insert, 8, (sqlite3_int64) info->not_after);
        sqlite3_bind_int(insert, 9, info->is_ca);
        sqlite3_bind_int(insert, 10, trusted);
        sqlite3_bind_int64(insert, 11, (sqlite3_int64) time(NULL));
        r = step_done(store, insert, "adding a certificate");
        if (r < 0)
                return r;
        *ret_added = sqlite3_changes(store->db) > 0;

        if (!*ret_added) {
                if (!trusted)
                        return 0;
                r = store_prepare(store, "UPDATE certificate SET trusted = 1 WHERE fingerprint = ?", &trust);
                if (r < 0)
                        return r;
                sqlite3_bind_text(trust, 1, info->fingerprint, -1, SQLITE_STATIC);
                return step_done(store, trust, "trusting a certificate");
        }

        r = store_prepare(store, "INSERT INTO address (address, fingerprint) VALUES (?, ?) ON CONFLICT DO NOTHING",
                          &address);
        if (r < 0)
                return r;
        for (char **a = info->addresses; *a; a++) {
                sqlite3_reset(address);
                sqlite3_bind_text(address, 1, *a, -1, SQLITE_STATIC);
                sqlite3_bind_text(address, 2, info->fingerprint, -1, SQLITE_STATIC);
                r = step_done(store, address, "adding an address");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Runs one statement that changes the row of fingerprint, in its own
 * transaction unless one is open. */
static int store_change_one(Store *store, const char *sql, const char *fingerprint, int value, const char *what) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        bool own = !store->in_transaction;
        int r;

        if (own) {
                r = store_begin(store);
                if (r < 0)
                        return r;
        }
        r = store_prepare(store, sql, &s);
        if (r >= 0) {
                sqlite3_bind_text(s, 1, fingerprint, -1, SQLITE_STATIC);
                if (value >= 0)
                        sqlite3_bind_int(s, 2, value);
                r = step_done(store, s, what);
        }
        if (r >= 0 && sqlite3_changes(store->db) == 0)
                r = -ENOENT;
        if (own) {
                if (r >= 0)
                        r = store_commit(store);
                if (r < 0)
                        store_rollback(store);
        }
        return r;
}

int store_remove_certificate(Store *store, const char *fingerprint) {
        return store_change_one(store, "DELETE FROM certificate WHERE fingerprint = ?", fingerprint, -1,
                                "removing a certificate");
}

int store_set_trusted(Store *store, const char *fingerprint, bool trusted) {
        return store_change_one(store, "UPDATE certificate SET trusted = ?2 WHERE fingerprint = ?1", fingerprint,
                                trusted, "changing trust");
}

int store_count_certificates(Store *store, uint64_t *ret) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        int r;

        r = store_prepare(store, "SELECT COUNT(*) FROM certificate", &s);
        if (r < 0)
                return r;
        if (sqlite3_step(s) != SQLITE_ROW)
                return store_error(store, sqlite3_errcode(store->db), "counting certificates");
        *ret = (uint64_t) sqlite3_column_int64(s, 0);
        return 0;
}

/* The certificate in column of s. d2i_X509 is the dearest part of a
 * lookup (OpenSSL 3 decodes the public key through its decoder framework),
 * and every Sign and Encrypt looks its certificates up again: parsed
 * through the cache the worker protocol uses too. */
static int column_x509(sqlite3_stmt *s, int column, X509 **ret) {
        const unsigned char *der = sqlite3_column_blob(s, column);
        int size = sqlite3_column_bytes(s, column);
        X509 *x;

        if (!der || size <= 0)
                return -EBADMSG;
        x = x509_cache_parse(der, (size_t) size);
        if (!x)
                return -EBADMSG;
        *ret = x;
        return 0;
}

int store_get_certificate(Store *store, const char *fingerprint, X509 **ret, bool *ret_trusted) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        int rc, r;

        r = store_prepare(store, "SELECT der, trusted FROM certificate WHERE fingerprint = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, fingerprint, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(store, rc, "reading a certificate");
        if (ret_trusted)
                *ret_trusted = sqlite3_column_int(s, 1);
        return ret ? column_x509(s, 0, ret) : 0;
}

/* The first column of every row of s, as a strv. */
static int collect_fingerprints(Store *store, sqlite3_stmt *s, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        int rc, r;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                r = strv_extend(&l, (const char *) sqlite3_column_text(s, 0));
                if (r < 0)
                        return r;
        }
        if (rc != SQLITE_DONE)
                return store_error(store, rc, "looking up certificates");

        *ret = TAKE_PTR(l);
        return 0;
}

int store_find_by_address(Store *store, const char *address, char ***ret) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        int r;

        if (address && address[0]) {
                r = store_prepare(store,
                                  "SELECT a.fingerprint FROM address a JOIN certificate c USING (fingerprint)"
                                  " WHERE a.address = ? ORDER BY c.not_before DESC, c.fingerprint",
                                  &s);
                if (r < 0)
                        return r;
                sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
        } else {
                r = store_prepare(store, "SELECT fingerprint FROM certificate ORDER BY not_before DESC, fingerprint",
                                  &s);
                if (r < 0)
                        return r;
        }

        return collect_fingerprints(store, s, ret);
}

int store_find_by_spki(Store *store, const char *spki_sha256, char ***ret) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        int r;

        r = store_prepare(store,
                          "SELECT fingerprint FROM certificate WHERE spki_sha256 = ? ORDER BY not_before DESC, "
                          "fingerprint",
                          &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, spki_sha256, -1, SQLITE_STATIC);
        return collect_fingerprints(store, s, ret);
}

int store_find_by_issuer_serial(Store *store, const unsigned char *issuer_der, size_t size, const char *serial,
                                X509 **ret) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        int rc, r;

        r = store_prepare(store, "SELECT der FROM certificate WHERE issuer_name = ? AND serial = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_blob(s, 1, issuer_der, (int) size, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, serial, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(store, rc, "looking up a certificate by issuer and serial");
        return column_x509(s, 0, ret);
}

int store_foreach_by_subject(Store *store, const unsigned char *name_der, size_t size, StoreCertificateCallback cb,
                             void *userdata) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        int rc, r;

        r = store_prepare(store, "SELECT der, trusted FROM certificate WHERE subject_name = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_blob(s, 1, name_der, (int) size, SQLITE_STATIC);

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                X509 *x;

                if (column_x509(s, 0, &x) < 0)
                        continue;
                r = cb(x, sqlite3_column_int(s, 1), userdata);
                X509_free(x);
                if (r < 0)
                        return r;
        }
        if (rc != SQLITE_DONE)
                return store_error(store, rc, "looking up issuers");
        return 0;
}

int store_put_crl(Store *store, X509_CRL *crl, bool *ret_stored) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        unsigned char *name = NULL, *der = NULL;
        time_t this_update, next_update = 0;
        int name_size, der_size, r;

        if (asn1_time_to_time_t(X509_CRL_get0_lastUpdate(crl), &this_update) < 0)
                return -EINVAL;
        (void) asn1_time_to_time_t(X509_CRL_get0_nextUpdate(crl), &next_update);

        name_size = i2d_X509_NAME(X509_CRL_get_issuer(crl), &name);
        der_size = i2d_X509_CRL(crl, &der);
        if (name_size <= 0 || der_size <= 0) {
                OPENSSL_free(name);
                OPENSSL_free(der);
                return -EINVAL;
        }

        /* Keep the newest CRL of each issuer; an older one changes nothing. */
        r = store_prepare(store,
                          "INSERT INTO crl (issuer_name, this_update, next_update, der) VALUES (?1, ?2, ?3, ?4)"
                          " ON CONFLICT (issuer_name) DO UPDATE SET this_update = ?2, next_update = ?3, der = ?4"
                          " WHERE ?2 > crl.this_update",
                          &s);
        if (r >= 0) {
                sqlite3_bind_blob(s, 1, name, name_size, SQLITE_STATIC);
                sqlite3_bind_int64(s, 2, (sqlite3_int64) this_update);
                if (next_update > 0)
                        sqlite3_bind_int64(s, 3, (sqlite3_int64) next_update);
                else
                        sqlite3_bind_null(s, 3);
                sqlite3_bind_blob(s, 4, der, der_size, SQLITE_STATIC);
                r = step_done(store, s, "adding a CRL");
                if (r >= 0)
                        *ret_stored = sqlite3_changes(store->db) > 0;
        }
        OPENSSL_free(name);
        OPENSSL_free(der);
        return r;
}

int store_get_crl(Store *store, const unsigned char *name_der, size_t size, X509_CRL **ret) {
        _cleanup_(statement_resetp) sqlite3_stmt *s = NULL;
        const unsigned char *der, *p;
        X509_CRL *crl;
        int rc, r;

        r = store_prepare(store, "SELECT der FROM crl WHERE issuer_name = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_blob(s, 1, name_der, (int) size, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(store, rc, "reading a CRL");

        der = p = sqlite3_column_blob(s, 0);
        crl = der ? d2i_X509_CRL(NULL, &p, sqlite3_column_bytes(s, 0)) : NULL;
        if (!crl)
                return -EBADMSG;
        *ret = crl;
        return 0;
}
