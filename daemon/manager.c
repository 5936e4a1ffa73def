/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/signalfd.h>

#include <systemd/sd-daemon.h>

#include "capabilities.h"
#include "job.h"
#include "log.h"
#include "manager-certificates.h"
#include "manager-cluster.h"
#include "manager-keys.h"
#include "manager-open.h"
#include "manager-expiry.h"
#include "manager-directory.h"
#include "manager-revocation.h"
#include "manager-smime.h"
#include "manager.h"
#include "strv.h"
#include "worker-pool.h"
#include "worker-run.h"

static void manager_token_schedule_rescan(Manager *m);

static unsigned manager_worker_count(Manager *m) {
        long n = m->config->token_workers > 0 ? (long) m->config->token_workers : sysconf(_SC_NPROCESSORS_ONLN);

        return n > 0 ? (unsigned) n : 1;
}

/* What validation needs of [Policy]. */
static void manager_apply_policy(Manager *m) {
        m->policy = (ValidationPolicy){
                .minimum_rsa_bits = (unsigned) m->config->minimum_rsa_bits,
                .allow_sha1_signatures = m->config->allow_sha1_signatures,
                .revocation = streq(m->config->revocation_method, "none") ? REVOCATION_POLICY_NONE
                              : m->config->revocation_unknown_hard        ? REVOCATION_POLICY_HARD
                                                                          : REVOCATION_POLICY_SOFT,
                .method = streq(m->config->revocation_method, "ocsp")            ? REVOCATION_METHOD_OCSP
                          : streq(m->config->revocation_method, "ocsp-then-crl") ? REVOCATION_METHOD_OCSP_THEN_CRL
                                                                                 : REVOCATION_METHOD_CRL,
        };
        manager_revocation_apply(m);
        manager_directory_apply(m);
        client_table_set_limits(m->clients, &(ClientLimits) {
                                                    .max_calls_per_client = (unsigned) m->config->max_calls_per_client,
                                                    .max_calls_per_user = (unsigned) m->config->max_calls_per_user,
                                                    .max_calls = (unsigned) m->config->max_calls,
                                                    .spool_quota_per_client = m->config->spool_quota_per_client,
                                                    .spool_quota = m->config->spool_quota,
                                            });
        manager_notify(m, MANAGER_EVENT_CERTIFICATES_STALE, NULL);

        /* Workers under other limits are replaced: the spares now, the
         * threads' own before their next request. */
        if (worker_run_set_limits(&(WorkerLimits) {
                    .memory_max = m->config->worker_memory_max,
                    .cpu_seconds = (unsigned) ((m->config->worker_cpu_usec + 999999ULL) / 1000000ULL),
                    .timeout_usec = m->config->worker_timeout_usec,
            }) > 0 &&
            m->workers) {
                worker_run_stop_spares();
                if (worker_run_start_spares(worker_pool_size(m->workers)) < 0)
                        log_warning("Cannot start the worker processes ahead; they start with the next calls.");
        }
}

int manager_new(const char *config_path, Config *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;

        m->config_path = strdup(config_path);
        if (!m->config_path)
                return -ENOMEM;

        r = token_new(config, &m->token);
        if (r < 0)
                return r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;

        r = client_table_new(m->event, &m->clients);
        if (r < 0)
                return r;

        r = capability_cache_new(&m->capability_cache);
        if (r < 0)
                return r;

        m->config = config; /* owned from here on, and only on success */
        manager_apply_policy(m);
        *ret = TAKE_PTR(m);
        return 0;
}

void manager_stop_jobs(Manager *m) {
        /* The workers first (they finish what they do), then the jobs, which
         * may still be waiting for polkit. */
        m->workers = worker_pool_free(m->workers);
        worker_run_stop_spares();
        jobs_free(m);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        sd_event_source_disable_unref(m->token_rescan_source);
        sd_event_source_disable_unref(m->token_check_source);
        manager_stop_jobs(m);
        manager_revocation_stop(m); /* its downloads end within FetchTimeoutSec= */
        manager_expiry_stop(m);
        manager_directory_stop(m);  /* its lookups end within [Directory] TimeoutSec= */
        manager_generate_jobs_free(m);
        manager_pkcs12_jobs_free(m);
        sd_event_source_disable_unref(m->trim_source); /* after the jobs: an ending job may ask for one */
        client_table_free(m->clients);                 /* after everything that ends calls */
        token_keys_free(m->keys, m->n_keys);
        strv_free(m->key_spkis);
        token_free(m->token);
        manager_cluster_stop(m);
        validator_free(m->validator);
        capability_cache_free(m->capability_cache);
        manager_open_forget(m);
        store_free(m->store);
        config_free(m->config);
        free(m->config_path);
        sd_event_unref(m->event);
        return mfree(m);
}

void manager_client_gone(Manager *m, const char *sender) {
        uint64_t id = client_id(m->clients, sender);
        unsigned n;

        /* Its messages no worker has started on yet are not done at all. */
        if (m->workers && id > 0)
                (void) worker_pool_cancel_owner(m->workers, id);
        n = jobs_cancel_sender(m, sender);
        n += manager_generate_jobs_cancel_sender(m, sender);
        n += manager_pkcs12_jobs_cancel_sender(m, sender);
        n += client_table_forget(m->clients, sender);
        if (n > 0)
                log_debug("Client %s went away: dropped %u of its calls.", sender, n);
}

TokenState manager_token_state(const Manager *m) {
        return token_get_state(m->token);
}

void manager_set_event_handler(Manager *m, ManagerEventHandler handler, void *userdata) {
        m->event_handler = handler;
        m->event_userdata = userdata;
}

void manager_notify(Manager *m, ManagerEventType type, char *const *names) {
        /* Whatever changed (keys, the token, the policy, certificates), remembered answers are stale. */
        m->change_generation++;
        if (m->event_handler)
                m->event_handler(m, &(ManagerEvent){.type = type, .names = names}, m->event_userdata);
}

void manager_notify_one(Manager *m, ManagerEventType type, const char *name) {
        manager_notify(m, type, (char *const[]){(char *) name, NULL});
}

/* The Manager properties of the token that changed, in one event. */
static void manager_notify_token_changes(Manager *m, TokenState old_state, const char *old_label,
                                         const char *old_reason, uint64_t old_key_count) {
        char *changed[5];
        size_t n = 0;

        if (token_get_state(m->token) != old_state)
                changed[n++] = (char *) "TokenState";
        if (!streq_ptr(token_get_state_reason(m->token), old_reason))
                changed[n++] = (char *) "TokenStateReason";
        if (!streq_ptr(strempty(token_get_label(m->token)), old_label))
                changed[n++] = (char *) "TokenLabel";
        if (m->n_keys != old_key_count)
                changed[n++] = (char *) "KeyCount";
        changed[n] = NULL;
        if (n > 0)
                manager_notify(m, MANAGER_EVENT_PROPERTIES_CHANGED, changed);
}

/* Opens the token (first putting replacement in its place, when given) and
 * tells bus clients what changed. */
static void manager_token_open(Manager *m, Token *replacement) {
        TokenState old_state = token_get_state(m->token);
        _cleanup_free_ char *old_label = NULL, *old_reason = NULL;
        uint64_t old_key_count = m->n_keys;
        TokenState state;

        old_label = strdup(strempty(token_get_label(m->token)));
        old_reason = strdup(token_get_state_reason(m->token));

        /* The workers use the token: let them finish before it changes. */
        if (m->workers)
                worker_pool_drain(m->workers);
        if (replacement) {
                token_free(m->token);
                m->token = replacement;
        }

        state = token_open(m->token);
        manager_refresh_keys(m);

        if (state != old_state || !streq_ptr(old_reason, token_get_state_reason(m->token))) {
                if (state == TOKEN_STATE_READY)
                        log_info("Token \"%s\" is ready (%zu private keys).", token_get_label(m->token),
                                 m->n_keys);
                else
                        log_warning("Token is %s: %s", token_state_to_string(state),
                                    token_get_state_reason(m->token));
        }

        manager_notify_token_changes(m, old_state, old_label, old_reason, old_key_count);
        manager_token_schedule_rescan(m);
}

/* A ready token that stopped answering (pulled out, its storage gone, the
 * HSM restarted) does not come back by itself: the module must be loaded
 * again. Returns whether it still answers. */
static bool manager_token_probe(Manager *m) {
        _cleanup_free_ char *message = NULL;

        if (token_probe(m->token, &message) >= 0)
                return true;
        log_warning("%s; loading the PKCS#11 module again.", strempty(message));
        manager_token_open(m, NULL);
        return false;
}

static int manager_on_token_rescan(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) usec;

        m->token_rescan_source = sd_event_source_disable_unref(m->token_rescan_source);
        if (token_get_state(m->token) != TOKEN_STATE_READY)
                manager_token_open(m, NULL);
        else if (manager_token_probe(m))
                manager_token_schedule_rescan(m);
        return 0;
}

static int manager_on_token_check(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        (void) s;
        m->token_check_source = sd_event_source_disable_unref(m->token_check_source);
        if (token_get_state(m->token) == TOKEN_STATE_READY)
                (void) manager_token_probe(m);
        return 0;
}

void manager_token_check_later(Manager *m) {
        int r;

        if (m->token_check_source || token_get_state(m->token) != TOKEN_STATE_READY)
                return;
        /* Not from inside the worker callback that failed: reopening drains the workers. */
        r = sd_event_add_defer(m->event, &m->token_check_source, manager_on_token_check, m);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a check of the token: %m");
}

/* glibc keeps freed memory for reuse, much of it in the middle of its heaps
 * where its own trimming never reaches: after a burst of concurrent messages
 * a daemon that then idles for hours would hold on to its peak. So when the
 * last job ends after a time when several ran at once, the heaps are
 * trimmed, before the next bus message is read (the source outranks the
 * bus). One client at a time reuses the same memory and is left alone: a
 * trim costs the next message page faults. So do clients that take turns:
 * two of them bring the count of jobs to 0 between most messages, and a
 * trim each time (and the heap growing back) took 14 % of the loop's time.
 * At most one trim per TRIM_INTERVAL_USEC or TRIM_EVERY_JOBS jobs, then;
 * one held back is made when the interval is over, if nothing runs then. */
#define TRIM_INTERVAL_USEC (1000U * 1000U)
#define TRIM_EVERY_JOBS 64U

static int manager_on_trim(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) usec;
        m->trim_source = sd_event_source_disable_unref(m->trim_source);
        if (m->n_jobs > 0)
                return 0; /* the next job to end asks again */
        (void) malloc_trim(0);
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &m->trimmed_usec);
        m->n_jobs_peak = 0;
        m->n_jobs_since_trim = 0;
        return 0;
}

void manager_job_started(Manager *m) {
        m->n_jobs++;
        m->n_jobs_since_trim++;
        if (m->n_jobs > m->n_jobs_peak)
                m->n_jobs_peak = m->n_jobs;
}

void manager_job_ended(Manager *m) {
        uint64_t when = 0;
        int r;

        if (m->n_jobs > 0)
                m->n_jobs--;
        if (m->n_jobs > 0 || m->n_jobs_peak < 2 || m->trim_source)
                return;
        /* 0: at once, in the next turn of the loop. */
        if (m->n_jobs_since_trim < TRIM_EVERY_JOBS && m->trimmed_usec > 0)
                when = m->trimmed_usec + TRIM_INTERVAL_USEC;
        r = sd_event_add_time(m->event, &m->trim_source, CLOCK_MONOTONIC, when, 0, manager_on_trim, m);
        if (r >= 0)
                r = sd_event_source_set_priority(m->trim_source, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                log_debug_errno(r, "Failed to schedule giving back freed memory: %m");
}

/* An absent token may be plugged in, a failed module may recover, a ready one
 * is asked whether it still answers. A locked one waits for a reload:
 * retrying a refused PIN only brings the token closer to locking itself. */
static void manager_token_schedule_rescan(Manager *m) {
        TokenState state = token_get_state(m->token);
        int r;

        m->token_rescan_source = sd_event_source_disable_unref(m->token_rescan_source);
        if (state == TOKEN_STATE_LOCKED)
                return;

        r = sd_event_add_time_relative(m->event, &m->token_rescan_source, CLOCK_MONOTONIC,
                                       m->config->token_rescan_usec, 0, manager_on_token_rescan, m);
        if (r < 0)
                log_error_errno(r, "Failed to schedule a token rescan, the token will not be looked for again: %m");
}

static bool token_config_changed(const Config *a, const Config *b) {
        return !streq_ptr(a->token_module, b->token_module) || !streq_ptr(a->token_uri, b->token_uri) ||
               !streq_ptr(a->token_pin_file, b->token_pin_file);
}

int manager_reload(Manager *m, char **ret_message) {
        _cleanup_(config_error_done) ConfigError error = {};
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(token_freep) Token *token = NULL;
        bool enabled_changed, warning_days_changed;
        int r;

        r = config_load_with_own_dropins(m->config_path, streq(m->config_path, CONFIG_DEFAULT_PATH), &config, &error);
        if (r < 0) {
                _cleanup_free_ char *message = config_error_to_string(&error);

                log_error("Reload refused, keeping the running configuration: %s", strempty(message));
                if (ret_message)
                        *ret_message = TAKE_PTR(message);
                return r;
        }

        /* A new Token reads the PIN again: reloading is how an admin says "try again". It
         * keeps the PINs the same token refused, though: the same wrong PIN is not tried
         * twice, whatever the reloads. */
        if (token_get_state(m->token) != TOKEN_STATE_READY || token_config_changed(m->config, config)) {
                r = token_new(config, &token);
                if (r < 0)
                        return r;
                if (streq_ptr(m->config->token_module, config->token_module) &&
                    streq_ptr(m->config->token_uri, config->token_uri))
                        token_inherit_refused_pins(token, m->token);
        }

        /* Another store: open it now, so that a bad one refuses the reload. */
        if (manager_store_config_changed(m->config, config)) {
                r = manager_open_store(m, config, ret_message);
                if (r < 0)
                        return r;
        }

        enabled_changed = m->config->policy_enabled != config->policy_enabled;
        warning_days_changed = m->config->expiry_warning_days != config->expiry_warning_days;
        config_free(m->config);
        m->config = TAKE_PTR(config);
        manager_apply_policy(m);
        manager_update_expiring_count(m); /* ExpiryWarningDays= may have changed */
        log_info("Configuration reloaded from %s.", m->config_path);

        if (enabled_changed)
                manager_notify_one(m, MANAGER_EVENT_PROPERTIES_CHANGED, "Enabled");
        if (warning_days_changed)
                manager_notify_one(m, MANAGER_EVENT_PROPERTIES_CHANGED, "ExpiryWarningDays");
        if (token)
                manager_token_open(m, TAKE_PTR(token));
        return 0;
}

/* SIGHUP, as systemctl reload sends it (ExecReload=): the same as the bus's
 * Reload(), without polkit (only root and smimed's own user can signal it),
 * with systemd told while it happens. A refused configuration is logged
 * and the running one stays. */
static int manager_on_reload_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        _cleanup_free_ char *message = NULL;
        Manager *m = userdata;
        struct timespec ts;

        (void) s;
        (void) si;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading the configuration\nMONOTONIC_USEC=%llu",
                          (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000ULL);
        (void) manager_reload(m, &message);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Token %s", token_state_to_string(manager_token_state(m)));
        return 0;
}

/* SIGTERM or SIGINT. A key generation cannot be interrupted inside the
 * token, and its caller should learn how it ended: smimed waits for those
 * in progress (manager_job_ended() ends the loop after the last one). A
 * second signal does not wait. */
static int manager_on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) si;
        if (m->generate_jobs && !m->stopping) {
                log_info("Stopping: waiting for the token to finish the key generations in progress.");
                m->stopping = true;
                return 0;
        }
        return sd_event_exit(m->event, 0);
}

/* Ahead of everything else the loop has to do: an admin's stop is not one
 * more call in the line of a busy daemon. The event loop owns the source. */
static int manager_watch_stop_signal(Manager *m, int sig) {
        sd_event_source *s = NULL;
        int r;

        r = sd_event_add_signal(m->event, &s, sig, manager_on_stop_signal, m);
        if (r < 0)
                return r;
        r = sd_event_source_set_priority(s, SD_EVENT_PRIORITY_IMPORTANT);
        if (r >= 0)
                r = sd_event_source_set_floating(s, true);
        sd_event_source_unref(s);
        return r;
}

void manager_generation_ended(Manager *m) {
        if (m->stopping && !m->generate_jobs)
                (void) sd_event_exit(m->event, 0);
}

/* Each call in flight holds up to about this many fds: the two it passed,
 * their duplicates, the spool files and the work files of its worker. */
#define FDS_PER_CALL 10U
#define FDS_BASE 256U

/* [Policy] MaxCalls= decides how many fds smimed may need: the soft limit
 * is raised towards the hard one (the unit's LimitNOFILE=) to fit, and a
 * limit too small for it is said, since the calls would then fail with
 * "Too many open files" instead of LimitsExceeded. */
static void manager_fit_fd_limit(Manager *m) {
        rlim_t want = (rlim_t) m->config->max_calls * FDS_PER_CALL + FDS_BASE;
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
                struct rlimit raised = { .rlim_cur = want < rl.rlim_max ? want : rl.rlim_max, .rlim_max = rl.rlim_max };

                if (setrlimit(RLIMIT_NOFILE, &raised) >= 0)
                        rl = raised;
        }
        if (rl.rlim_cur < want)
                log_warning("RLIMIT_NOFILE is %llu, but [Policy] MaxCalls=%llu may need %llu file descriptors; "
                            "raise LimitNOFILE= or lower MaxCalls=.",
                            (unsigned long long) rl.rlim_cur, (unsigned long long) m->config->max_calls,
                            (unsigned long long) want);
}

int manager_start(Manager *m) {
        int r;

        manager_fit_fd_limit(m);

        r = manager_watch_stop_signal(m, SIGTERM);
        if (r >= 0)
                r = manager_watch_stop_signal(m, SIGINT);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGTERM and SIGINT: %m");
        r = sd_event_add_signal(m->event, NULL, SIGHUP, manager_on_reload_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGHUP: %m");

        {
                _cleanup_free_ char *message = NULL;

                r = manager_open_store(m, m->config, &message);
                if (r < 0)
                        return log_error_errno(r, "%s", message ?: "Cannot open the certificate store.");
        }

        r = worker_pool_new(m->event, manager_worker_count(m), &m->workers);
        if (r < 0)
                return log_error_errno(r, "Failed to start the workers: %m");
        /* The sandboxed processes the threads hand message work to. */
        r = worker_run_start_spares(worker_pool_size(m->workers));
        if (r < 0)
                return log_error_errno(r, "Failed to start the worker processes: %m");

        r = manager_revocation_start(m);
        if (r < 0)
                return log_error_errno(r, "Failed to start the threads that fetch CRLs: %m");
        r = manager_expiry_start(m);
        if (r < 0)
                return log_error_errno(r, "Failed to start the daily expiry announcement: %m");
        r = manager_directory_start(m);
        if (r < 0)
                return log_error_errno(r, "Failed to start the threads that ask the directory: %m");
        return 0;
}

void manager_start_token(Manager *m) {
        manager_token_open(m, NULL);
}

int manager_run(Manager *m) {
        int r;

        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");

        (void) sd_notify(false, "STOPPING=1");
        if (r != 0)
                log_error("Lost the connection to the bus, smimed stopping.");
        else
                log_info("smimed stopping.");
        return r; /* the loop's exit code: 0 after SIGTERM, non-zero when the bus went away */
}
