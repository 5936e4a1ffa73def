/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libsmimed-internal.h"
#include "macro.h"
#include "strv.h"

/* smimed_list_certificates(): ListCertificates, a page of the store. */

struct smimed_list_filter {
        uint64_t offset;
        uint32_t limit; /* 0: the daemon's default */
        char *status;
        char *address;
        uint64_t expiring_before;
        int ca; /* -1: any */
};

_public_ smimed_list_filter *smimed_list_filter_new(void) {
        smimed_list_filter *f = calloc(1, sizeof(smimed_list_filter));

        if (f)
                f->ca = -1;
        return f;
}

_public_ smimed_list_filter *smimed_list_filter_free(smimed_list_filter *f) {
        if (!f)
                return NULL;
        free(f->status);
        free(f->address);
        free(f);
        return NULL;
}

_public_ int smimed_list_filter_set_offset(smimed_list_filter *f, uint64_t offset) {
        if (!f)
                return -EINVAL;
        f->offset = offset;
        return 0;
}

_public_ int smimed_list_filter_set_limit(smimed_list_filter *f, uint32_t limit) {
        if (!f)
                return -EINVAL;
        f->limit = limit;
        return 0;
}

static int set_string(char **field, const char *value) {
        char *copy = NULL;

        if (value) {
                copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
        }
        free(*field);
        *field = copy;
        return 0;
}

_public_ int smimed_list_filter_set_status(smimed_list_filter *f, const char *status) {
        return f ? set_string(&f->status, status) : -EINVAL;
}

_public_ int smimed_list_filter_set_address(smimed_list_filter *f, const char *prefix) {
        return f ? set_string(&f->address, prefix) : -EINVAL;
}

_public_ int smimed_list_filter_set_expiring_before(smimed_list_filter *f, uint64_t usec) {
        if (!f)
                return -EINVAL;
        f->expiring_before = usec;
        return 0;
}

_public_ int smimed_list_filter_set_ca(smimed_list_filter *f, int ca) {
        if (!f)
                return -EINVAL;
        f->ca = ca < 0 ? -1 : ca > 0;
        return 0;
}

static smimed_certificate_row *row_free(smimed_certificate_row *row) {
        if (!row)
                return NULL;
        free(row->fingerprint);
        strv_free(row->addresses);
        free(row->subject);
        free(row->issuer);
        free(row->status);
        free(row);
        return NULL;
}

_public_ void smimed_certificate_rows_free(smimed_certificate_row **rows) {
        for (smimed_certificate_row **r = rows; r && *r; r++)
                row_free(*r);
        free(rows);
}

static void rows_freep(smimed_certificate_row ***rows) {
        smimed_certificate_rows_free(*rows);
}

static int append_filter(sd_bus_message *m, const smimed_list_filter *f) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && f && f->offset)
                r = sd_bus_message_append(m, "{sv}", "offset", "t", f->offset);
        if (r >= 0 && f && f->limit)
                r = sd_bus_message_append(m, "{sv}", "limit", "u", f->limit);
        if (r >= 0 && f && f->status)
                r = sd_bus_message_append(m, "{sv}", "status", "s", f->status);
        if (r >= 0 && f && f->address)
                r = sd_bus_message_append(m, "{sv}", "address", "s", f->address);
        if (r >= 0 && f && f->expiring_before)
                r = sd_bus_message_append(m, "{sv}", "expiring-before", "t", f->expiring_before);
        if (r >= 0 && f && f->ca >= 0)
                r = sd_bus_message_append(m, "{sv}", "ca", "b", f->ca);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int read_row(sd_bus_message *reply, smimed_certificate_row **ret) {
        const char *path, *fingerprint, *subject, *issuer, *status;
        smimed_certificate_row *row;
        int trusted, is_ca, has_private_key, r;

        row = calloc(1, sizeof(smimed_certificate_row));
        if (!row)
                return -ENOMEM;
        r = sd_bus_message_read(reply, "os", &path, &fingerprint);
        if (r > 0)
                r = sd_bus_message_read_strv(reply, &row->addresses);
        if (r > 0)
                r = sd_bus_message_read(reply, "sstsbbb", &subject, &issuer, &row->not_after, &status, &trusted,
                                        &is_ca, &has_private_key);
        if (r <= 0) {
                row_free(row);
                return r < 0 ? r : -EBADMSG;
        }
        row->fingerprint = strdup(fingerprint);
        row->subject = strdup(subject);
        row->issuer = strdup(issuer);
        row->status = strdup(status);
        row->trusted = trusted;
        row->is_ca = is_ca;
        row->has_private_key = has_private_key;
        if (!row->fingerprint || !row->subject || !row->issuer || !row->status) {
                row_free(row);
                return -ENOMEM;
        }
        *ret = row;
        return 0;
}

_public_ int smimed_list_certificates(smimed *s, const smimed_list_filter *filter, smimed_certificate_row ***ret_rows,
                                      uint64_t *ret_total, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(rows_freep) smimed_certificate_row **rows = NULL;
        uint64_t total;
        size_t n = 0;
        int r;

        if (!s || !ret_rows)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");

        r = sd_bus_message_new_method_call(s->bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "ListCertificates");
        if (r >= 0)
                r = append_filter(m, filter);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        r = sd_bus_call(s->bus, m, 0, &e, &reply);
        if (r < 0)
                return error_from_bus(error, r, &e);

        rows = calloc(1, sizeof(smimed_certificate_row *));
        if (!rows)
                return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        r = sd_bus_message_enter_container(reply, 'a', "(osassstsbbb)");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'r', "osassstsbbb")) > 0) {
                smimed_certificate_row **more = reallocarray(rows, n + 2, sizeof(smimed_certificate_row *));

                if (!more)
                        return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
                rows = more;
                rows[n + 1] = NULL;
                r = read_row(reply, &rows[n]);
                if (r < 0)
                        break;
                n++;
                r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "t", &total);
        if (r < 0)
                return error_set(error, r, NULL, r == -ENOMEM ? strerror(ENOMEM) : bus_bad_reply);
        *ret_rows = TAKE_PTR(rows);
        if (ret_total)
                *ret_total = total;
        return 0;
}
