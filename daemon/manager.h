/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "client.h"
#include "config.h"
#include "manager-events.h"
#include "store.h"
#include "token.h"
#include "validate.h"

/* The daemon's state: configuration, token, bus and event loop. */
typedef struct Manager {
        sd_event *event;
        struct ManagerBus *bus;               /* the bus layer's (manager-bus.h); NULL until it serves */
        ClientTable *clients;                 /* per-client limits and turns */
        ManagerEventHandler event_handler;    /* who shows what changed: the bus layer */
        void *event_userdata;

        char *config_path;
        Config *config;

        Token *token;
        sd_event_source *token_rescan_source;  /* look for the token again, or ask the ready one */
        sd_event_source *token_check_source;   /* ask it now: a private-key operation failed */
        sd_event_source *trim_source;          /* give freed memory back: the last job ended */
        unsigned n_jobs;                       /* S/MIME jobs (Sign, Encrypt, Decrypt, Verify) running */
        unsigned n_jobs_peak;                  /* the most at once since the heaps were last trimmed */
        unsigned n_jobs_since_trim;
        uint64_t trimmed_usec;        /* when (CLOCK_MONOTONIC), 0: never */
        TokenKey *keys;               /* the token's private keys, when it is ready */
        size_t n_keys;
        char **key_spkis;             /* their public key hashes, to match certificates */

        Store *store;
        struct Db *listener; /* hears other nodes' changes (manager-cluster.c) */
        sd_event_source *listener_source;
        sd_event_source *listener_retry_source;
        Validator *validator;         /* over the store, with its cache of results */
        struct CapabilityCache *capability_cache; /* answers for addresses (capabilities.h), the loop's */
        uint64_t change_generation;               /* bumped by every manager_notify(): answers may differ */
        struct DecryptRecipients *decrypt_recipients; /* the token's keys' certificates (manager-open.c) */
        uint64_t certificate_count;
        uint64_t expiring_count;       /* of them, expiring within ExpiryWarningDays= (manager-expiry.c) */
        sd_event_source *expiry_timer; /* the daily announcement */
        uint64_t crl_updated_usec; /* when a newer CRL was last stored, here or by another node */
        ValidationPolicy policy;
        struct Job *jobs;                     /* Sign, Encrypt, Decrypt and Verify in progress (job.h) */
        struct GenerateJob *generate_jobs;    /* GenerateKey in progress, on workers */
        struct Pkcs12Job *pkcs12_jobs;        /* ImportPKCS12 files being read, on workers */
        bool stopping;                        /* SIGTERM came: the loop ends after the last generation */
        struct WorkerPool *workers;           /* token and CPU work off the loop */
        struct CrlFetcher *crl_fetcher;       /* CRLs from distribution points (manager-revocation.c) */
        struct Directory *directory;          /* recipients' certificates from LDAP (manager-directory.c) */
        struct OcspFetcher *ocsp_fetcher;     /* OCSP responders asked (manager-revocation.c) */
} Manager;

/* On success the manager owns config. */
int manager_new(const char *config_path, Config *config, Manager **ret);
/* Lets the worker threads finish what they do and ends the jobs (their
 * calls let go, their questions to polkit are withdrawn). Before the bus
 * side goes: a job's end reaches it. manager_free() does it too. */
void manager_stop_jobs(Manager *m);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Opens the store and starts the workers; then the bus layer serves the
 * objects (manager_bus_start()), and manager_start_token() opens the token,
 * so that its state is announced to whoever already listens. */
int manager_start(Manager *m);
void manager_start_token(Manager *m);
/* Runs until SIGTERM/SIGINT (returns 0) or the bus goes away (returns > 0). */
int manager_run(Manager *m);

/* Re-reads the configuration file. When it is bad, nothing changes and
 * *ret_message (if given) says why, naming the file, line and key. */
int manager_reload(Manager *m, char **ret_message);

TokenState manager_token_state(const Manager *m);

/* The bus client sender (a unique name) disconnected: its calls in progress
 * are dropped with everything they hold (fds, spool files, polkit queries);
 * work a worker is doing is dropped when it returns. */
void manager_client_gone(Manager *m, const char *sender);

/* A private-key operation failed: asks the token, from the event loop, whether
 * it still answers, and reopens it when it does not (TokenState changes). */
void manager_token_check_later(Manager *m);
/* Called when an S/MIME job has started, and when it has ended and been freed. */
void manager_job_started(Manager *m);
void manager_job_ended(Manager *m);
/* A key generation was answered: after SIGTERM, the last one ends the loop. */
void manager_generation_ended(Manager *m);
