/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus-audit.h"
#include "bus-polkit.h"
#include "log.h"

#define POLKIT_SERVICE "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_CHECK_ALLOW_USER_INTERACTION 1U

typedef struct PolkitQuery PolkitQuery;

struct PolkitQuery {
        PolkitRegistry *registry;
        PolkitQuery *next;

        sd_bus_message *request;   /* the method call waiting for the answer */
        char *action;
        sd_bus_slot *slot;         /* the CheckAuthorization call in flight */
        sd_bus_message *reply;     /* polkit's answer, once it came */
        PolkitCallback callback;   /* instead of dispatching request again */
        void *userdata;
        char *address;             /* details, for the audit trail */
        char *fingerprint;
        char *key;                 /* sender, action and details: what a yes is remembered under */
};

/* polkit's yes, remembered for a little while per caller connection,
 * action and details: a mail server that signs every outgoing message
 * should not wait for polkitd each time. Unique bus names are never reused,
 * so an entry cannot pass to another caller. */
#define POLKIT_CACHE_USEC (10ULL * 1000000ULL)
#define POLKIT_CACHE_MAX 1024

typedef struct PolkitCacheEntry {
        char *key;               /* sender \n action \n details */
        uint64_t expires;
} PolkitCacheEntry;

struct PolkitRegistry {
        PolkitQuery *queries;
        pthread_mutex_t cache_lock; /* a Decrypt's worker thread reads the cache (polkit_registry_remembers()) */
        PolkitCacheEntry cache[POLKIT_CACHE_MAX];
        size_t n_cache;
};

static PolkitQuery *polkit_query_free(PolkitQuery *query) {
        if (!query)
                return NULL;
        sd_bus_slot_unref(query->slot);
        sd_bus_message_unref(query->request);
        sd_bus_message_unref(query->reply);
        free(query->action);
        free(query->address);
        free(query->fingerprint);
        free(query->key);
        return mfree(query);
}

static void polkit_registry_unlink(PolkitRegistry *registry, PolkitQuery *query) {
        for (PolkitQuery **q = &registry->queries; *q; q = &(*q)->next)
                if (*q == query) {
                        *q = query->next;
                        return;
                }
}

int polkit_registry_new(PolkitRegistry **ret) {
        PolkitRegistry *registry = calloc(1, sizeof(PolkitRegistry));

        if (!registry)
                return -ENOMEM;
        pthread_mutex_init(&registry->cache_lock, NULL);
        *ret = registry;
        return 0;
}

PolkitRegistry *polkit_registry_free(PolkitRegistry *registry) {
        if (!registry)
                return NULL;
        for (size_t i = 0; i < registry->n_cache; i++)
                free(registry->cache[i].key);
        pthread_mutex_destroy(&registry->cache_lock);
        while (registry->queries) {
                PolkitQuery *q = registry->queries;
                registry->queries = q->next;
                polkit_query_free(q);
        }
        return mfree(registry);
}

/* A call may need several checks (one per address of a certificate): each
 * is found by its details too. */
static PolkitQuery *polkit_registry_find(PolkitRegistry *registry, sd_bus_message *request, const char *key) {
        for (PolkitQuery *q = registry->queries; q; q = q->next)
                if (!q->callback && q->request == request && streq_ptr(q->key, key))
                        return q;
        return NULL;
}

static int polkit_query_result(PolkitQuery *query, sd_bus_error *error);

static void cache_add(PolkitRegistry *registry, char *key);

static int polkit_on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *query = userdata;
        int r;

        (void) ret_error;

        query->slot = sd_bus_slot_unref(query->slot);
        query->reply = sd_bus_message_ref(reply);

        if (query->callback) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                r = polkit_query_result(query, &e);
                polkit_registry_unlink(query->registry, query);
                if (r > 0 && query->key)
                        cache_add(query->registry, TAKE_PTR(query->key));
                query->callback(r, &e, query->userdata);
                polkit_query_free(query);
                return 1;
        }

        /* Dispatch the original call again; this time its handler finds the answer. */
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(query->request), query->request);
        if (r < 0) {
                log_error_errno(r, "Failed to requeue the call waiting for polkit: %m");
                polkit_registry_unlink(query->registry, query);
                polkit_query_free(query);
        }
        return 1;
}

static int polkit_query_start(PolkitRegistry *registry, sd_bus_message *request, const char *action,
                              const char *const *details, char **key, PolkitCallback callback, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        sd_bus *bus = sd_bus_message_get_bus(request);
        PolkitQuery *query;
        uint32_t flags = 0;
        int r;

        if (sd_bus_message_get_allow_interactive_authorization(request) > 0)
                flags |= POLKIT_CHECK_ALLOW_USER_INTERACTION;

        r = sd_bus_message_new_method_call(bus, &call, POLKIT_SERVICE, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r < 0)
                return r;

        r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s",
                                  sd_bus_message_get_sender(request), action);
        if (r < 0)
                return r;

        r = sd_bus_message_open_container(call, 'a', "{ss}");
        if (r < 0)
                return r;
        for (const char *const *d = details; d && d[0] && d[1]; d += 2) {
                r = sd_bus_message_append(call, "{ss}", d[0], d[1]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(call);
        if (r < 0)
                return r;

        r = sd_bus_message_append(call, "us", flags, "");
        if (r < 0)
                return r;

        query = calloc(1, sizeof(PolkitQuery));
        if (!query)
                return -ENOMEM;
        query->registry = registry;
        query->request = sd_bus_message_ref(request);
        query->callback = callback;
        query->userdata = userdata;
        for (const char *const *d = details; d && d[0] && d[1]; d += 2) {
                if (streq(d[0], "address"))
                        query->address = strdup(d[1]);
                else if (streq(d[0], "fingerprint"))
                        query->fingerprint = strdup(d[1]);
        }
        query->action = strdup(action);
        query->key = TAKE_PTR(*key);
        if (!query->action || !query->key) {
                polkit_query_free(query);
                return -ENOMEM;
        }

        /* An interactive check waits for a person: no timeout then. */
        r = sd_bus_call_async(bus, &query->slot, call, polkit_on_reply, query,
                              flags & POLKIT_CHECK_ALLOW_USER_INTERACTION ? UINT64_MAX : 0);
        if (r < 0) {
                polkit_query_free(query);
                return r;
        }

        query->next = registry->queries;
        registry->queries = query;
        return 0;
}

static int polkit_query_decide(PolkitQuery *query, sd_bus_error *error);

/* polkit's answer, with a denial written to the audit trail. */
static int polkit_query_result(PolkitQuery *query, sd_bus_error *error) {
        AuditCaller caller;
        int r;

        r = polkit_query_decide(query, error);
        if (r < 0) {
                audit_caller_from_message(query->request, &caller);
                audit_log(&caller, &(AuditRecord) {
                                           .event = AUDIT_DENIED,
                                           .operation = query->action,
                                           .outcome = "denied",
                                           .fingerprint = query->fingerprint,
                                           .address = query->address,
                                           .detail = error->name,
                                   });
        }
        return r;
}

static int polkit_query_decide(PolkitQuery *query, sd_bus_error *error) {
        sd_bus_message *reply = query->reply;
        const sd_bus_error *e;
        int authorized, challenge, r;

        e = sd_bus_message_get_error(reply);
        if (e) {
                log_warning("polkit could not decide on %s: %s: %s", query->action, e->name, strempty(e->message));
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Authorization check for %s failed: %s", query->action,
                                         e->message ?: e->name);
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Authorization check for %s failed: malformed polkit reply", query->action);

        if (authorized)
                return 1;
        if (challenge)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                         "Authentication is required for %s; call again allowing interactive authorization.",
                                         query->action);
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "Not authorized: polkit denies %s to this caller.",
                                 query->action);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* sender \n action \n name=value …: built by hand, as it is for every
 * Sign and Decrypt (open_memstream() and fprintf() cost more than the rest
 * of a remembered yes). */
static char *cache_key_of(const char *sender, const char *action, const char *const *details) {
        size_t size = strlen(strempty(sender)) + 1 + strlen(action) + 1;
        char *key, *p;

        for (const char *const *d = details; d && d[0] && d[1]; d += 2)
                size += 1 + strlen(d[0]) + 1 + strlen(d[1]);
        key = malloc(size);
        if (!key)
                return NULL;
        p = stpcpy(stpcpy(stpcpy(key, strempty(sender)), "\n"), action);
        for (const char *const *d = details; d && d[0] && d[1]; d += 2)
                p = stpcpy(stpcpy(stpcpy(stpcpy(p, "\n"), d[0]), "="), d[1]);
        return key;
}

static char *cache_key(sd_bus_message *message, const char *action, const char *const *details) {
        return cache_key_of(sd_bus_message_get_sender(message), action, details);
}

static bool cache_lookup(PolkitRegistry *registry, const char *key) {
        uint64_t now = now_usec();
        bool found = false;

        pthread_mutex_lock(&registry->cache_lock);
        for (size_t i = 0; i < registry->n_cache;) {
                if (registry->cache[i].expires <= now) {
                        free(registry->cache[i].key);
                        registry->cache[i] = registry->cache[--registry->n_cache];
                        continue;
                }
                if (streq(registry->cache[i].key, key)) {
                        found = true;
                        break;
                }
                i++;
        }
        pthread_mutex_unlock(&registry->cache_lock);
        return found;
}

static void cache_add(PolkitRegistry *registry, char *key) {
        pthread_mutex_lock(&registry->cache_lock);
        if (registry->n_cache >= POLKIT_CACHE_MAX) {
                free(registry->cache[0].key);
                registry->cache[0] = registry->cache[--registry->n_cache];
        }
        registry->cache[registry->n_cache++] = (PolkitCacheEntry) { key, now_usec() + POLKIT_CACHE_USEC };
        pthread_mutex_unlock(&registry->cache_lock);
}

bool polkit_registry_remembers(PolkitRegistry *registry, const char *sender, const char *action,
                               const char *const *details) {
        _cleanup_free_ char *key = sender ? cache_key_of(sender, action, details) : NULL;

        return key && cache_lookup(registry, key);
}

int bus_polkit_check(PolkitRegistry *registry, sd_bus_message *message, const char *action,
                     const char *const *details, sd_bus_error *error) {
        _cleanup_free_ char *key = cache_key(message, action, details);
        PolkitQuery *query;
        int r;

        /* The query first: a call dispatched again with polkit's answer must
         * take that answer out of the registry, even when the cache holds a
         * yes by now (another call of the same caller's, answered first);
         * left there, it would keep the call and its fds until the caller
         * disconnects. */
        if (!key)
                return -ENOMEM;
        query = polkit_registry_find(registry, message, key);
        if (!query) {
                if (cache_lookup(registry, key))
                        return 1;
                r = polkit_query_start(registry, message, action, details, &key, NULL, NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to ask polkit about %s: %m", action);
                return 0;
        }

        if (!query->reply)
                return 0; /* still waiting; should not happen, the call is not requeued before */

        polkit_registry_unlink(registry, query);
        r = polkit_query_result(query, error);
        if (r > 0)
                cache_add(registry, TAKE_PTR(query->key));
        polkit_query_free(query);
        return r;
}

int bus_polkit_check_addresses(PolkitRegistry *registry, sd_bus_message *message, const char *action,
                               char *const *addresses, const char *fingerprint, sd_bus_error *error) {
        size_t i = 0;
        int r;

        do {
                const char *details[] = {
                        "address", addresses && addresses[i] ? addresses[i] : "",
                        "fingerprint", strempty(fingerprint),
                        NULL,
                };

                r = bus_polkit_check(registry, message, action, details, error);
                if (r <= 0)
                        return r;
        } while (addresses && addresses[i] && addresses[++i]);
        return 1;
}

int bus_polkit_check_callback(PolkitRegistry *registry, sd_bus_message *message, const char *action,
                              const char *const *details, PolkitCallback callback, void *userdata) {
        _cleanup_free_ char *key = cache_key(message, action, details);
        int r;

        if (!key)
                return -ENOMEM;
        if (cache_lookup(registry, key))
                return 1;

        r = polkit_query_start(registry, message, action, details, &key, callback, userdata);
        if (r < 0)
                return log_error_errno(r, "Failed to ask polkit about %s: %m", action);
        return 0;
}

void polkit_registry_cancel(PolkitRegistry *registry, void *userdata) {
        for (PolkitQuery **q = &registry->queries; *q;) {
                if ((*q)->callback && (*q)->userdata == userdata) {
                        PolkitQuery *gone = *q;

                        *q = gone->next;
                        polkit_query_free(gone);
                } else
                        q = &(*q)->next;
        }
}

unsigned polkit_registry_cancel_sender(PolkitRegistry *registry, const char *sender) {
        unsigned n = 0;

        for (PolkitQuery **q = &registry->queries; *q;) {
                if (!(*q)->callback && streq_ptr(sd_bus_message_get_sender((*q)->request), sender)) {
                        PolkitQuery *gone = *q;

                        *q = gone->next;
                        polkit_query_free(gone);
                        n++;
                } else
                        q = &(*q)->next;
        }
        return n;
}
