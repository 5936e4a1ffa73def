/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "log.h"
#include "message.h"

typedef struct WorkItem WorkItem;
typedef struct Client Client;
typedef struct UserCalls UserCalls;

struct WorkItem {
        ClientWork run;
        void *userdata;
        void (*free_userdata)(void *);
        WorkItem *next;
};

struct Client {
        char *sender;
        uid_t uid;
        uint64_t id;
        uint64_t *serials;          /* its calls in flight */
        unsigned n_serials;
        unsigned allocated;
        uint64_t spooled;
        WorkItem *queue, *queue_tail;
        bool in_ring;               /* waits for its turn on the loop */
        Client *next;               /* in the table */
        Client *ring_next;          /* in the ring of clients with queued work */
};

struct UserCalls {
        uid_t uid;
        unsigned n;
        UserCalls *next;
};

struct ClientTable {
        ClientLimits limits;
        Client *clients;
        UserCalls *users;
        unsigned n_calls;
        uint64_t spooled;
        uint64_t next_id;
        Client *ring_head, *ring_tail;
        /* The client whose work runs now (its id; 0: none), and whether that
         * work queued more for it: it goes back in line only after the calls
         * that came meanwhile, so that a long job's next turn does not come
         * before them. */
        uint64_t running_id;
        bool running_requeued;
        sd_event_source *dispatch;
        ClientBeforeTurn before_turn;
        void *before_turn_userdata;
};

/* How many bus messages are read before a turn, at most. */
#define CLIENT_READ_BUDGET 256U

static void work_item_free(WorkItem *w) {
        if (w->free_userdata)
                w->free_userdata(w->userdata);
        free(w);
}

static Client *client_free(Client *c) {
        if (!c)
                return NULL;
        while (c->queue) {
                WorkItem *w = c->queue;

                c->queue = w->next;
                work_item_free(w);
        }
        free(c->serials);
        free(c->sender);
        return mfree(c);
}

static Client *client_find(ClientTable *t, const char *sender) {
        if (!sender)
                return NULL;
        for (Client *c = t->clients; c; c = c->next)
                if (streq(c->sender, sender))
                        return c;
        return NULL;
}

static Client *client_get(ClientTable *t, const char *sender, uid_t uid) {
        Client *c = client_find(t, sender);

        if (c || !sender)
                return c;
        c = calloc(1, sizeof(Client));
        if (!c)
                return NULL;
        c->sender = strdup(sender);
        if (!c->sender)
                return client_free(c);
        c->uid = uid;
        c->id = ++t->next_id;
        c->next = t->clients;
        t->clients = c;
        return c;
}

static UserCalls *user_calls(ClientTable *t, uid_t uid, bool create) {
        UserCalls *u;

        for (u = t->users; u; u = u->next)
                if (u->uid == uid)
                        return u;
        if (!create)
                return NULL;
        u = calloc(1, sizeof(UserCalls));
        if (!u)
                return NULL;
        u->uid = uid;
        u->next = t->users;
        t->users = u;
        return u;
}

static void user_calls_drop(ClientTable *t, uid_t uid, unsigned n) {
        for (UserCalls **i = &t->users; *i; i = &(*i)->next) {
                UserCalls *u = *i;

                if (u->uid != uid)
                        continue;
                u->n = u->n > n ? u->n - n : 0;
                if (u->n == 0) {
                        *i = u->next;
                        free(u);
                }
                return;
        }
}

/* A client with nothing in flight and nothing queued is forgotten at once:
 * the table holds only the clients that hold something. */
static void client_maybe_drop(ClientTable *t, Client *c) {
        if (c->n_serials > 0 || c->spooled > 0 || c->queue || c->in_ring)
                return;
        for (Client **i = &t->clients; *i; i = &(*i)->next)
                if (*i == c) {
                        *i = c->next;
                        break;
                }
        client_free(c);
}

static int on_dispatch(sd_event_source *s, void *userdata);

int client_table_new(sd_event *event, ClientTable **ret) {
        _cleanup_(client_table_freep) ClientTable *t = NULL;
        int r;

        t = calloc(1, sizeof(ClientTable));
        if (!t)
                return -ENOMEM;
        t->limits = (ClientLimits) {
                .max_calls_per_client = UINT32_MAX,
                .max_calls_per_user = UINT32_MAX,
                .max_calls = UINT32_MAX,
                .spool_quota_per_client = UINT64_MAX,
                .spool_quota = UINT64_MAX,
        };

        /* As urgent as reading the bus, which it reads itself before each
         * turn (before_turn): queued work is not starved by new calls. */
        r = sd_event_add_defer(event, &t->dispatch, on_dispatch, t);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(t->dispatch, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(t->dispatch, "client-work");

        *ret = TAKE_PTR(t);
        return 0;
}

ClientTable *client_table_free(ClientTable *t) {
        if (!t)
                return NULL;
        sd_event_source_disable_unref(t->dispatch);
        while (t->clients) {
                Client *c = t->clients;

                t->clients = c->next;
                client_free(c);
        }
        while (t->users) {
                UserCalls *u = t->users;

                t->users = u->next;
                free(u);
        }
        return mfree(t);
}

void client_table_set_limits(ClientTable *t, const ClientLimits *limits) {
        t->limits = *limits;
}

static int limit_reached(char **ret_message, const char *what, unsigned limit, const char *key) {
        return message_fail(ret_message, -EUSERS, "%s %u calls in progress, the most smimed takes ([Policy] %s=%u); "
                            "try again when one has finished.", what, limit, key, limit);
}

int client_call_begin(ClientTable *t, const char *sender, uid_t uid, uint64_t serial, char **ret_message) {
        Client *c = client_get(t, sender, uid);
        UserCalls *u;

        if (!c)
                return -ENOMEM;
        for (unsigned i = 0; i < c->n_serials; i++)
                if (c->serials[i] == serial)
                        return 0;

        if (c->n_serials >= t->limits.max_calls_per_client) {
                client_maybe_drop(t, c);
                return limit_reached(ret_message, "This client has", t->limits.max_calls_per_client,
                                     "MaxCallsPerClient");
        }
        u = user_calls(t, uid, false);
        if (u && u->n >= t->limits.max_calls_per_user) {
                client_maybe_drop(t, c);
                return limit_reached(ret_message, "The clients of this user have", t->limits.max_calls_per_user,
                                     "MaxCallsPerUser");
        }
        if (t->n_calls >= t->limits.max_calls) {
                client_maybe_drop(t, c);
                log_warning("Refusing a call of %s: smimed has %u calls in progress ([Policy] MaxCalls=).", sender,
                            t->n_calls);
                return limit_reached(ret_message, "smimed has", t->limits.max_calls, "MaxCalls");
        }

        if (c->n_serials == c->allocated) {
                unsigned n = c->allocated ? c->allocated * 2 : 4;
                uint64_t *s = reallocarray(c->serials, n, sizeof(uint64_t));

                if (!s)
                        return -ENOMEM;
                c->serials = s;
                c->allocated = n;
        }
        u = user_calls(t, uid, true);
        if (!u)
                return -ENOMEM;
        c->serials[c->n_serials++] = serial;
        u->n++;
        t->n_calls++;
        return 1;
}

void client_call_end(ClientTable *t, const char *sender, uint64_t serial) {
        Client *c = client_find(t, sender);

        if (!c)
                return;
        for (unsigned i = 0; i < c->n_serials; i++) {
                if (c->serials[i] != serial)
                        continue;
                c->serials[i] = c->serials[--c->n_serials];
                user_calls_drop(t, c->uid, 1);
                t->n_calls--;
                client_maybe_drop(t, c);
                return;
        }
}

unsigned client_calls(ClientTable *t, const char *sender) {
        Client *c = client_find(t, sender);

        return c ? c->n_serials : 0;
}

unsigned client_table_calls(const ClientTable *t) {
        return t->n_calls;
}

uint64_t client_id(ClientTable *t, const char *sender) {
        Client *c = client_find(t, sender);

        return c ? c->id : 0;
}

int client_spool_charge(ClientTable *t, const char *sender, uint64_t bytes, char **ret_message) {
        Client *c = client_find(t, sender);

        if (c && (bytes > t->limits.spool_quota_per_client || c->spooled > t->limits.spool_quota_per_client - bytes))
                return message_fail(ret_message, -EDQUOT,
                                    "This client's messages in progress take more than [Policy] "
                                    "SpoolQuotaPerClient=%llu bytes; try again when one has finished.",
                                    (unsigned long long) t->limits.spool_quota_per_client);
        if (bytes > t->limits.spool_quota || t->spooled > t->limits.spool_quota - bytes) {
                log_warning("Refusing more input of %s: the messages in progress take %llu bytes ([Policy] "
                            "SpoolQuota=).",
                            strempty(sender), (unsigned long long) t->spooled);
                return message_fail(ret_message, -EDQUOT,
                                    "The messages in progress take more than [Policy] SpoolQuota=%llu bytes; try "
                                    "again later.",
                                    (unsigned long long) t->limits.spool_quota);
        }
        if (c)
                c->spooled += bytes;
        t->spooled += bytes;
        return 0;
}

void client_spool_release(ClientTable *t, const char *sender, uint64_t bytes) {
        Client *c = client_find(t, sender);

        t->spooled = t->spooled > bytes ? t->spooled - bytes : 0;
        if (!c)
                return;
        c->spooled = c->spooled > bytes ? c->spooled - bytes : 0;
        client_maybe_drop(t, c);
}

int client_charge_init(ClientCharge *c, ClientTable *t, const char *sender) {
        *c = (ClientCharge) { .table = t, .sender = strdup(strempty(sender)) };
        return c->sender ? 0 : -ENOMEM;
}

int client_charge_add(ClientCharge *c, uint64_t bytes) {
        int r;

        c->message = mfree(c->message);
        r = client_spool_charge(c->table, c->sender, bytes, &c->message);
        if (r >= 0)
                c->bytes += bytes;
        return r;
}

void client_charge_done(ClientCharge *c) {
        if (c->table && c->bytes > 0)
                client_spool_release(c->table, c->sender, c->bytes);
        free(c->sender);
        free(c->message);
        *c = (ClientCharge) {};
}

uint64_t client_table_spooled(const ClientTable *t) {
        return t->spooled;
}

static void ring_push(ClientTable *t, Client *c) {
        c->ring_next = NULL;
        c->in_ring = true;
        if (t->ring_tail)
                t->ring_tail->ring_next = c;
        else
                t->ring_head = c;
        t->ring_tail = c;
}

static Client *ring_pop(ClientTable *t) {
        Client *c = t->ring_head;

        if (!c)
                return NULL;
        t->ring_head = c->ring_next;
        if (!t->ring_head)
                t->ring_tail = NULL;
        c->ring_next = NULL;
        c->in_ring = false;
        return c;
}

static void ring_remove(ClientTable *t, Client *c) {
        Client *prev = NULL;

        for (Client *i = t->ring_head; i; prev = i, i = i->ring_next) {
                if (i != c)
                        continue;
                if (prev)
                        prev->ring_next = c->ring_next;
                else
                        t->ring_head = c->ring_next;
                if (t->ring_tail == c)
                        t->ring_tail = prev;
                break;
        }
        c->ring_next = NULL;
        c->in_ring = false;
}

void client_table_set_before_turn(ClientTable *t, ClientBeforeTurn fn, void *userdata) {
        t->before_turn = fn;
        t->before_turn_userdata = userdata;
}

/* One item of the client whose turn it is; then the next client's turn. */
static int on_dispatch(sd_event_source *s, void *userdata) {
        ClientTable *t = userdata;
        Client *c;
        WorkItem *w;

        (void) s;
        /* Calls that came meanwhile take their place in line first: otherwise
         * reading one message per turn would serve clients in arrival order. */
        if (t->before_turn)
                t->before_turn(CLIENT_READ_BUDGET, t->before_turn_userdata);
        c = ring_pop(t);
        if (!c) {
                (void) sd_event_source_set_enabled(t->dispatch, SD_EVENT_OFF);
                return 0;
        }
        w = c->queue;
        c->queue = w->next;
        if (!c->queue)
                c->queue_tail = NULL;
        else
                ring_push(t, c);
        if (!t->ring_head)
                (void) sd_event_source_set_enabled(t->dispatch, SD_EVENT_OFF);

        /* run() may end the call, and with it drop the client. */
        t->running_id = c->id;
        t->running_requeued = false;
        w->run(w->userdata);
        work_item_free(w);
        if (t->running_requeued) {
                uint64_t id = t->running_id;

                if (t->before_turn)
                        t->before_turn(CLIENT_READ_BUDGET, t->before_turn_userdata);
                /* It holds queued work, so it is still in the table. */
                for (c = t->clients; c; c = c->next)
                        if (c->id == id && c->queue && !c->in_ring)
                                ring_push(t, c);
        }
        t->running_id = 0;
        t->running_requeued = false;
        return 0;
}

int client_queue_work(ClientTable *t, const char *sender, ClientWork run, void *userdata,
                      void (*free_userdata)(void *)) {
        Client *c = client_find(t, sender);
        WorkItem *w;
        int r;

        if (!c)
                return -ENOENT; /* only for a call counted with client_call_begin() */
        w = calloc(1, sizeof(WorkItem));
        if (!w)
                return -ENOMEM;
        r = sd_event_source_set_enabled(t->dispatch, SD_EVENT_ON);
        if (r < 0) {
                free(w);
                return r;
        }
        w->run = run;
        w->userdata = userdata;
        w->free_userdata = free_userdata;
        if (c->queue_tail)
                c->queue_tail->next = w;
        else
                c->queue = w;
        c->queue_tail = w;
        if (c->in_ring)
                return 0;
        if (c->id == t->running_id)
                t->running_requeued = true; /* in line after the run (on_dispatch) */
        else
                ring_push(t, c);
        return 0;
}

unsigned client_table_forget(ClientTable *t, const char *sender) {
        Client *c = client_find(t, sender);
        unsigned n = 0;

        if (!c)
                return 0;
        if (c->in_ring)
                ring_remove(t, c);
        /* Out of the table first: freeing a queued call ends it
         * (client_call_end()), which would otherwise find the client, drop
         * it with its last call and free it under this loop. Its calls leave
         * the counts here, all at once. */
        for (Client **i = &t->clients; *i; i = &(*i)->next)
                if (*i == c) {
                        *i = c->next;
                        break;
                }
        user_calls_drop(t, c->uid, c->n_serials);
        t->n_calls -= c->n_serials;
        c->n_serials = 0;
        while (c->queue) {
                WorkItem *w = c->queue;

                c->queue = w->next;
                work_item_free(w);
                n++;
        }
        c->queue_tail = NULL;
        /* The spool files of its work still running leave the total as they are freed. */
        client_free(c);
        return n;
}
