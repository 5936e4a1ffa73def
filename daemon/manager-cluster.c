/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "manager-certificates.h"
#include "manager-cluster.h"
#include "manager-keys.h"
#include "manager.h"
#include "store.h"

#define CLUSTER_RETRY_USEC (1ULL * 1000000ULL)

static void on_announcement(const char *channel, const char *payload, int sender, void *userdata) {
        Manager *m = userdata;
        const char *fingerprint;
        StoreChange change;

        (void) channel;
        /* This node's own changes: it has shown them already. */
        if (sender == db_sender_id(store_db(m->store)))
                return;
        if (store_parse_change(payload, &change, &fingerprint) < 0) {
                log_warning("Certificate store %s: ignoring an announcement that is none of smimed's: %.80s",
                            store_name(m->store), payload);
                return;
        }

        store_changed_elsewhere(m->store);
        switch (change) {
        case STORE_CHANGE_ADDED:
                manager_notify_one(m, MANAGER_EVENT_CERTIFICATE_ADDED, fingerprint);
                manager_update_certificate_count(m);
                break;
        case STORE_CHANGE_REMOVED:
                manager_notify_one(m, MANAGER_EVENT_CERTIFICATE_REMOVED, fingerprint);
                manager_update_certificate_count(m);
                break;
        case STORE_CHANGE_TRUST:
                manager_notify_one(m, MANAGER_EVENT_CERTIFICATE_TRUST, fingerprint);
                manager_notify(m, MANAGER_EVENT_CERTIFICATES_STALE, NULL); /* chains through it */
                break;
        case STORE_CHANGE_CRL:
                manager_crls_changed(m);
                break;
        case STORE_CHANGE_KEYS:
                manager_keys_changed_elsewhere(m);
                break;
        default:
                break;
        }
}

static void cluster_schedule_retry(Manager *m);

/* Nothing tells this node of the others' changes now: compare the shared
 * generation before using anything cached, and try again in a second. */
static void cluster_lost(Manager *m) {
        m->listener_source = sd_event_source_disable_unref(m->listener_source);
        m->listener = db_close(m->listener);
        if (m->store)
                (void) store_check_shared_generation(m->store, true);
        cluster_schedule_retry(m);
}

static int on_listener_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) fd;
        (void) revents;
        if (db_read_notifications(m->listener, on_announcement, m) < 0)
                cluster_lost(m);
        return 0;
}

static int cluster_listen(Manager *m, const Config *config) {
        _cleanup_(db_closep) Db *db = NULL;
        _cleanup_free_ char *message = NULL;
        int fd, r;

        r = manager_open_db(config, &db, &message);
        if (r < 0)
                return log_warning_errno(r, "%s", message ?: "Cannot connect to the certificate store.");
        r = db_listen(db, STORE_CHANNEL);
        if (r < 0)
                return r;
        fd = db_fd(db);
        if (fd < 0)
                return fd;
        r = sd_event_add_io(m->event, &m->listener_source, fd, EPOLLIN, on_listener_io, m);
        if (r < 0)
                return log_warning_errno(r, "Cannot watch the certificate store's announcements: %m");
        m->listener = TAKE_PTR(db);

        /* What the others changed while this node did not listen. */
        if (m->store) {
                (void) store_check_shared_generation(m->store, false);
                store_changed_elsewhere(m->store);
                manager_notify(m, MANAGER_EVENT_CERTIFICATES_STALE, NULL);
                manager_update_certificate_count(m);
        }
        log_info("Certificate store %s: listening for other nodes' changes.", db_name(m->listener));
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) usec;
        m->listener_retry_source = sd_event_source_disable_unref(m->listener_retry_source);
        if (cluster_listen(m, m->config) < 0)
                cluster_lost(m);
        return 0;
}

static void cluster_schedule_retry(Manager *m) {
        int r;

        if (m->listener_retry_source)
                return;
        r = sd_event_add_time_relative(m->event, &m->listener_retry_source, CLOCK_MONOTONIC, CLUSTER_RETRY_USEC, 0,
                                       on_retry, m);
        if (r < 0)
                log_warning_errno(r, "Cannot schedule listening to the certificate store again: %m");
}

void manager_cluster_stop(Manager *m) {
        m->listener_retry_source = sd_event_source_disable_unref(m->listener_retry_source);
        m->listener_source = sd_event_source_disable_unref(m->listener_source);
        m->listener = db_close(m->listener);
}

void manager_cluster_start(Manager *m, const Config *config) {
        manager_cluster_stop(m);
        if (!streq(config->store_backend, "postgresql"))
                return;
        if (cluster_listen(m, config) < 0)
                cluster_lost(m);
}
