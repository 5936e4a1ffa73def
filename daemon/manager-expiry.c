/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "certificate.h"
#include "log.h"
#include "macro.h"
#include "manager-expiry.h"
#include "manager.h"
#include "openssl-util.h"
#include "strv.h"
#include "x509-cache.h"

#define EXPIRY_MESSAGE_ID "6c3d0e5b2f0a4b1e9d7a8c41f5e2b903"
#define USEC_PER_SEC 1000000ULL
#define SEC_PER_DAY (24ULL * 60 * 60)
#define EXPIRY_PAGE 256

/* Certificates that are not CAs, not expired and expire before now + the
 * warning period. */
static StoreListFilter expiring_filter(const Manager *m, time_t now) {
        return (StoreListFilter){
                .expiring_before = now + (time_t) (m->config->expiry_warning_days * SEC_PER_DAY),
                .is_ca = 0,
        };
}

static int count_expiring(Manager *m, time_t now, uint64_t *ret) {
        StoreListFilter within = expiring_filter(m, now), expired = within;
        uint64_t a, b;
        int r;

        if (m->config->expiry_warning_days == 0) {
                *ret = 0;
                return 0;
        }
        expired.expiring_before = now;
        r = store_count_listed(m->store, &within, &a);
        if (r >= 0)
                r = store_count_listed(m->store, &expired, &b);
        if (r < 0)
                return r;
        *ret = a > b ? a - b : 0;
        return 0;
}

void manager_update_expiring_count(Manager *m) {
        uint64_t count;
        int r;

        if (!m->store)
                return;
        r = count_expiring(m, time(NULL), &count);
        if (r < 0) {
                log_warning_errno(r, "Cannot count the certificates about to expire: %m");
                return;
        }
        if (count == m->expiring_count)
                return;
        m->expiring_count = count;
        manager_notify_one(m, MANAGER_EVENT_PROPERTIES_CHANGED, "ExpiringCertificates");
}

static bool has_private_key(const Manager *m, const char *spki_sha256) {
        return strv_contains(m->key_spkis, spki_sha256);
}

/* One record: the journal's, and a line on stderr when that is not the journal. */
static void announce(Manager *m, const StoreListRow *row, time_t now) {
        _cleanup_(strv_freep) char **addresses = NULL;
        _cleanup_free_ char *joined = NULL;
        _cleanup_(X509_freep) X509 *x509 = x509_cache_parse(row->der, row->der_size);
        bool key = has_private_key(m, row->spki_sha256);
        unsigned days = (unsigned) ((row->not_after - now + (time_t) SEC_PER_DAY - 1) / (time_t) SEC_PER_DAY);
        char date[32];
        struct tm tm;

        if (!x509 || certificate_addresses(x509, &addresses) < 0)
                return;
        joined = strv_join(addresses, ", ");
        if (!joined || !gmtime_r(&row->not_after, &tm) || strftime(date, sizeof(date), "%Y-%m-%d", &tm) == 0)
                return;

        (void) sd_journal_send("MESSAGE_ID=" EXPIRY_MESSAGE_ID, "PRIORITY=%d", key ? LOG_WARNING : LOG_NOTICE,
                               "MESSAGE=Certificate %s of %s expires on %s, in %u day(s)%s", row->fingerprint,
                               joined[0] ? joined : "-", date, days,
                               key ? "; its key is in the token: renew it (smimectl renew)." : ".",
                               "SMIMED_FINGERPRINT=%s", row->fingerprint, "SMIMED_ADDRESS=%s", joined,
                               "SMIMED_NOT_AFTER=%s", date, "SMIMED_DAYS_LEFT=%u", days, "SMIMED_HAS_PRIVATE_KEY=%s",
                               key ? "yes" : "no", NULL);
        if (!log_stderr_is_journal())
                log_full_errno(key ? LOG_WARNING : LOG_NOTICE, 0,
                               "EXPIRING fingerprint=%s address=%s not_after=%s days_left=%u private_key=%s "
                               "message_id=" EXPIRY_MESSAGE_ID,
                               row->fingerprint, joined[0] ? joined : "-", date, days, key ? "yes" : "no");
}

/* Every certificate about to expire, a page at a time. */
static void announce_all(Manager *m) {
        time_t now = time(NULL);
        StoreListFilter filter = expiring_filter(m, now);
        StoreListPage page = {.after_not_after = now, .after_fingerprint = "", .limit = EXPIRY_PAGE};
        char last[SHA256_HEX_SIZE] = "";
        unsigned announced = 0;

        if (m->config->expiry_warning_days == 0 || !m->store)
                return;
        for (;;) {
                StoreListRow *rows = NULL;
                size_t n = 0;
                int r;

                r = store_list_certificates(m->store, &filter, &page, &rows, &n);
                if (r < 0) {
                        log_warning_errno(r, "Cannot list the certificates about to expire: %m");
                        return;
                }
                for (size_t i = 0; i < n; i++)
                        announce(m, &rows[i], now);
                announced += n;
                if (n > 0) {
                        page.after_not_after = rows[n - 1].not_after;
                        memcpy(last, rows[n - 1].fingerprint, sizeof(last));
                        page.after_fingerprint = last;
                }
                store_list_rows_free(rows, n);
                if (n < EXPIRY_PAGE)
                        break;
        }
        log_debug("Announced %u certificate(s) expiring within %" PRIu64 " days.", announced,
                  m->config->expiry_warning_days);
}

static int on_expiry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        announce_all(m);
        manager_update_expiring_count(m); /* time passed: some came closer, some expired */
        (void) sd_event_source_set_time(s, usec + SEC_PER_DAY * USEC_PER_SEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

int manager_expiry_start(Manager *m) {
        uint64_t now;
        int r;

        r = sd_event_now(m->event, CLOCK_BOOTTIME, &now);
        if (r < 0)
                return r;
        /* The first round once the loop runs, then every day. */
        r = sd_event_add_time(m->event, &m->expiry_timer, CLOCK_BOOTTIME, now, 0, on_expiry_timer, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->expiry_timer, "expiry");
        manager_update_expiring_count(m);
        return 0;
}

void manager_expiry_stop(Manager *m) {
        m->expiry_timer = sd_event_source_disable_unref(m->expiry_timer);
}
