/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "bus-util.h"

#include "log.h"
#include "manager-directory.h"
#include "manager.h"
#include "smimed-error.h"
#include "strv.h"

/* manager-certificates.c and manager-keys.c speak of data they were given:
 * there, data that does not parse, is empty or is too large (-EBADMSG, -EFBIG,
 * -E2BIG) is InvalidFormat, and an unsupported kind of key (-EOPNOTSUPP) an
 * InvalidArgument. Anything else is the table's; what it does not know is
 * the store's failure. */
static SmimedError manager_error(int r) {
        SmimedError e;

        switch (r) {
        case -EBADMSG:
        case -EFBIG:
        case -E2BIG:
                return SMIMED_ERR_INVALID_FORMAT;
        case -EOPNOTSUPP:
                return SMIMED_ERR_INVALID_ARGUMENT;
        }
        e = smimed_error_from_errno(r);
        return e < 0 ? SMIMED_ERR_STORE_FAILED : e;
}

int bus_error_set_from_manager(sd_bus_error *error, int r, const char *message) {
        if (r == -ENOMEM)
                return sd_bus_error_set_errno(error, r);
        if (message)
                return sd_bus_error_set(error, smimed_error_to_name(manager_error(r)), message);
        return sd_bus_error_setf(error, smimed_error_to_name(manager_error(r)), "%s", strerror(-r));
}

int bus_read_options(sd_bus_message *message, BusOption *options, size_t n, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(message, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
                const char *key;
                BusOption *o = NULL;
                char signature[2];

                r = sd_bus_message_read(message, "s", &key);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        if (streq(options[i].name, key))
                                o = &options[i];
                if (!o)
                        return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT, "Unknown option \"%s\".", key);

                if (o->type == 'S') {
                        char ***l = o->value;

                        strv_free(*l);
                        *l = NULL;
                        r = sd_bus_message_enter_container(message, 'v', "as");
                        if (r >= 0)
                                r = sd_bus_message_read_strv(message, l);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(message);
                        if (r < 0)
                                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                                         "Option \"%s\" takes a value of type as.", key);
                } else {
                        signature[0] = o->type;
                        signature[1] = '\0';
                        r = sd_bus_message_read(message, "v", signature, o->value);
                        if (r < 0)
                                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                                         "Option \"%s\" takes a value of type %s.", key, signature);
                }
                r = sd_bus_message_exit_container(message);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(message);
}

int bus_read_address(const char *address, bool allow_empty, char **ret, sd_bus_error *error) {
        if (allow_empty && address[0] == '\0')
                return free_and_strdup(ret, "");
        if (address_normalize(address, ret) < 0)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                         "\"%s\" is not a mail address (expected local@domain).", address);
        return 0;
}

typedef struct QueuedCall {
        Manager *manager;
        BusCall *call;
        QueuedHandler handler;
        QueuedTakingHandler taking_handler;
} QueuedCall;

static void queued_call_free(void *userdata) {
        QueuedCall *q = userdata;

        bus_call_free(q->call);
        free(q);
}

static void queued_call_run(void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        QueuedCall *q = userdata;
        sd_bus_message *call = q->call->call;
        int r;

        r = sd_bus_message_rewind(call, true);
        if (r >= 0 && q->taking_handler)
                r = q->taking_handler(q->manager, &q->call, &error);
        else if (r >= 0)
                r = q->handler(q->manager, call, &error);
        if (r < 0) {
                if (!sd_bus_error_is_set(&error))
                        (void) sd_bus_error_set_errnof(&error, r, "%m");
                r = sd_bus_reply_method_error(call, &error);
                if (r < 0)
                        log_debug_errno(r, "Failed to send an error reply: %m");
        }
}

static int queue_call(Manager *m, sd_bus_message *message, BusCall *call, QueuedHandler handler,
                      QueuedTakingHandler taking_handler) {
        QueuedCall *q;
        int r;

        q = calloc(1, sizeof(QueuedCall));
        if (!q)
                return -ENOMEM;
        q->manager = m;
        q->handler = handler;
        q->taking_handler = taking_handler;
        q->call = bus_call_take(call);
        if (!q->call) {
                free(q);
                return -ENOMEM;
        }
        r = client_queue_work(m->clients, sd_bus_message_get_sender(message), queued_call_run, q, queued_call_free);
        if (r < 0) {
                queued_call_free(q);
                return r;
        }
        return 1;
}

int bus_queue_call(Manager *m, sd_bus_message *message, BusCall *call, QueuedHandler handler) {
        return queue_call(m, message, call, handler, NULL);
}

int bus_queue_taking_call(Manager *m, sd_bus_message *message, BusCall *call, QueuedTakingHandler handler) {
        return queue_call(m, message, call, NULL, handler);
}

/* A queued call waiting for the [Directory]. */
typedef struct DirectoryWait {
        BusCall *call;
        QueuedHandler handler;
} DirectoryWait;

static void on_directory_done(Manager *m, bool cancelled, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        DirectoryWait *w = userdata;
        int r;

        if (cancelled)
                r = sd_bus_error_set(&error, SMIMED_ERROR_DISABLED, "smimed is stopping.");
        else {
                r = sd_bus_message_rewind(w->call->call, true);
                if (r >= 0)
                        r = w->handler(m, w->call->call, &error);
        }
        if (r < 0) {
                if (!sd_bus_error_is_set(&error))
                        (void) sd_bus_error_set_errnof(&error, r, "%m");
                r = sd_bus_reply_method_error(w->call->call, &error);
                if (r < 0)
                        log_debug_errno(r, "Failed to send an error reply: %m");
        }
        bus_call_free(w->call);
        free(w);
}

int bus_directory_resolve_then(Manager *m, char *const *addresses, BusCall **call, QueuedHandler handler,
                               sd_bus_error *error) {
        DirectoryWait *w;
        int r;

        w = calloc(1, sizeof(DirectoryWait));
        if (!w)
                return -ENOMEM;
        *w = (DirectoryWait){.call = *call, .handler = handler};
        r = manager_directory_resolve(m, addresses, on_directory_done, w);
        if (r <= 0) {
                free(w);
                return r < 0 ? bus_error_set_from_manager(error, r, NULL) : 0;
        }
        *call = NULL;
        return 1;
}

int bus_check_recipient_count(Manager *m, size_t n, sd_bus_error *error) {
        if (n > m->config->max_recipients)
                return sd_bus_error_setf(error, SMIMED_ERROR_LIMITS_EXCEEDED,
                                         "%zu recipients in one call; smimed takes at most %llu ([Policy] "
                                         "MaxRecipients=).",
                                         n, (unsigned long long) m->config->max_recipients);
        return 0;
}

int bus_reply_manager_error(sd_bus_message *call, int r, const char *message) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        bus_error_set_from_manager(&error, r, message);
        return sd_bus_reply_method_error(call, &error);
}
