/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "config.h"
#include "fd-reader.h"
#include "manager-bus.h"
#include "manager.h"
#include "bus-pending-call.h"

struct PendingCall {
        Manager *manager;
        sd_bus_message *call;
        FdReader *reader;
        PendingCallDone done;
        void *userdata;
        void (*free_userdata)(void *);
        PendingCall *next;
};

static void pending_call_free(PendingCall *p) {
        if (!p)
                return;
        fd_reader_free(p->reader);
        sd_bus_message_unref(p->call);
        if (p->free_userdata)
                p->free_userdata(p->userdata);
        free(p);
}

static void pending_call_unlink(Manager *m, PendingCall *p) {
        for (PendingCall **i = &m->bus->pending_calls; *i; i = &(*i)->next)
                if (*i == p) {
                        *i = p->next;
                        return;
                }
}

static void on_read(FdReader *reader, int error, void *userdata) {
        PendingCall *p = userdata;
        const void *data;
        size_t size;

        data = fd_reader_data(reader, &size);
        pending_call_unlink(p->manager, p);
        p->done(p->manager, p->call, data, size, error, p->userdata);
        pending_call_free(p);
}

int pending_call_start(Manager *m, sd_bus_message *call, int fd, size_t max_size, PendingCallDone done, void *userdata,
                       void (*free_userdata)(void *)) {
        PendingCall *p;
        int r;

        p = calloc(1, sizeof(PendingCall));
        if (!p) {
                if (free_userdata)
                        free_userdata(userdata);
                return -ENOMEM;
        }
        p->manager = m;
        p->call = sd_bus_message_ref(call);
        p->done = done;
        p->userdata = userdata;
        p->free_userdata = free_userdata;

        r = fd_reader_new(m->event, fd, max_size, m->config->io_timeout_usec, on_read, p, &p->reader);
        if (r < 0) {
                pending_call_free(p);
                return r;
        }
        p->next = m->bus->pending_calls;
        m->bus->pending_calls = p;
        return 0;
}

unsigned pending_calls_cancel_sender(Manager *m, const char *sender) {
        unsigned n = 0;

        for (PendingCall *p = m->bus->pending_calls, *next; p; p = next) {
                next = p->next;
                if (!streq_ptr(sd_bus_message_get_sender(p->call), sender))
                        continue;
                pending_call_unlink(m, p);
                p->done(m, p->call, NULL, 0, -ECONNRESET, p->userdata);
                pending_call_free(p);
                n++;
        }
        return n;
}

void pending_calls_free(Manager *m) {
        while (m->bus->pending_calls) {
                PendingCall *p = m->bus->pending_calls;

                m->bus->pending_calls = p->next;
                pending_call_free(p);
        }
}
