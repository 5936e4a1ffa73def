/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "libsmimed-internal.h"
#include "macro.h"

/* Asynchronous calls: sd_bus_call_async() with a slot per call, run by
 * whatever loop drives the connection. Messages and results travel in
 * memfds (MemoryIO), so smimed never waits for us to read a pipe while we
 * wait for its reply. */

/* ---- driving the connection ---- */

_public_ int smimed_attach_event(smimed *s, struct sd_event *event, int priority) {
        if (!s)
                return -EINVAL;
        return sd_bus_attach_event(s->bus, event, priority);
}

_public_ int smimed_detach_event(smimed *s) {
        if (!s)
                return -EINVAL;
        return sd_bus_detach_event(s->bus);
}

_public_ int smimed_get_fd(smimed *s) {
        if (!s)
                return -EINVAL;
        return sd_bus_get_fd(s->bus);
}

_public_ int smimed_get_events(smimed *s) {
        if (!s)
                return -EINVAL;
        return sd_bus_get_events(s->bus);
}

_public_ int smimed_get_timeout(smimed *s, uint64_t *ret_usec) {
        if (!s || !ret_usec)
                return -EINVAL;
        return sd_bus_get_timeout(s->bus, ret_usec);
}

_public_ int smimed_process(smimed *s) {
        if (!s)
                return -EINVAL;
        return sd_bus_process(s->bus, NULL);
}

_public_ int smimed_wait(smimed *s, uint64_t timeout_usec) {
        if (!s)
                return -EINVAL;
        return sd_bus_wait(s->bus, timeout_usec);
}

/* ---- calls ---- */

typedef enum CallKind {
        CALL_CAPABILITIES,
        CALL_RESULT, /* sign, encrypt */
        CALL_STATUS, /* decrypt, verify */
} CallKind;

struct smimed_call {
        unsigned n_ref;
        smimed *smimed;    /* set while the call is in progress */
        sd_bus_slot *slot; /* likewise */
        bool floating;     /* the library holds a reference until the call ends */
        CallKind kind;
        union {
                smimed_capabilities_handler capabilities;
                smimed_result_handler result;
                smimed_status_handler status;
        } handler;
        void *userdata;
        MemoryIO io;
        smimed_call *prev, *next;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(smimed_call *, smimed_call_unref);

static int call_new(CallKind kind, void *userdata, MemoryIO *io, smimed_call **ret) {
        smimed_call *c = calloc(1, sizeof(smimed_call));

        if (!c)
                return -ENOMEM;
        *c = (smimed_call){
                .n_ref = 1,
                .kind = kind,
                .userdata = userdata,
                .io = {-1, -1},
        };
        if (io) {
                c->io = *io;
                *io = (MemoryIO){-1, -1};
        }
        *ret = c;
        return 0;
}

/* The call is no longer in progress: off the connection's list, its slot
 * (and with it the reply, when it has not come) dropped. */
static void call_end(smimed_call *c) {
        if (c->smimed) {
                if (c->prev)
                        c->prev->next = c->next;
                else
                        c->smimed->calls = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                c->prev = c->next = NULL;
                c->smimed = NULL;
        }
        c->slot = sd_bus_slot_unref(c->slot);
}

/* Drops the library's own reference of a floating call. */
static void call_release(smimed_call *c) {
        if (!c->floating)
                return;
        c->floating = false;
        smimed_call_unref(c);
}

_public_ smimed_call *smimed_call_ref(smimed_call *c) {
        if (c)
                c->n_ref++;
        return c;
}

_public_ smimed_call *smimed_call_unref(smimed_call *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        call_end(c);
        memory_io_done(&c->io);
        free(c);
        return NULL;
}

_public_ int smimed_call_cancel(smimed_call *c) {
        if (!c || !c->slot)
                return 0;
        call_end(c);
        memory_io_done(&c->io);
        call_release(c);
        return 1;
}

_public_ bool smimed_call_is_pending(const smimed_call *c) {
        return c && c->slot;
}

void calls_disconnect_all(smimed *s) {
        while (s->calls)
                smimed_call_cancel(s->calls);
}

static void call_dispatch(smimed_call *c, smimed *s, sd_bus_message *reply) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_(smimed_capabilities_done) smimed_capabilities caps = {};
        _cleanup_(smimed_result_done) smimed_result result = {};
        _cleanup_(smimed_message_status_done) smimed_message_status status = {};
        _cleanup_free_ void *output = NULL;
        size_t size = 0;
        int r = 0;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                int e = sd_bus_message_get_errno(reply);

                r = error_from_bus(&error, e > 0 ? -e : -EIO, sd_bus_message_get_error(reply));
        } else if (c->kind == CALL_CAPABILITIES)
                r = capabilities_read_reply(reply, &caps, &error);
        else if (c->kind == CALL_RESULT)
                r = message_read_result(reply, &result, &error);
        else
                r = message_read_status(reply, &status, &error);
        if (r >= 0 && c->kind != CALL_CAPABILITIES)
                r = memory_io_read_output(&c->io, &output, &size, &error);
        memory_io_done(&c->io);

        switch (c->kind) {
        case CALL_CAPABILITIES:
                c->handler.capabilities(s, r, r < 0 ? &error : NULL, r < 0 ? NULL : &caps, c->userdata);
                break;
        case CALL_RESULT:
                c->handler.result(s, r, r < 0 ? &error : NULL, r < 0 ? NULL : &result, output, size, c->userdata);
                break;
        case CALL_STATUS:
                c->handler.status(s, r, r < 0 ? &error : NULL, r < 0 ? NULL : &status, output, size, c->userdata);
                break;
        }
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(smimed_call_unrefp) smimed_call *c = smimed_call_ref(userdata);
        smimed *s = c->smimed;

        (void) ret_error;
        /* Off the list first: the handler may cancel, unref or close. */
        call_end(c);
        call_dispatch(c, s, reply);
        call_release(c);
        return 0;
}

/* Sends m; the call is in progress until its handler was called or it was
 * cancelled. */
static int call_send(smimed *s, smimed_call *c, sd_bus_message *m, uint64_t timeout_usec, smimed_call **ret_call,
                     smimed_error *error) {
        int r;

        r = sd_bus_call_async(s->bus, &c->slot, m, on_reply, c, timeout_usec);
        if (r < 0) {
                smimed_call_unref(c);
                return error_from_bus(error, r, NULL);
        }
        c->smimed = s;
        c->next = s->calls;
        if (s->calls)
                s->calls->prev = c;
        s->calls = c;

        if (ret_call)
                *ret_call = c;
        else
                c->floating = true;
        return 0;
}

_public_ int smimed_get_capabilities_async(smimed *s, const char *sender, const char *const *recipients,
                                           const smimed_options *o, smimed_capabilities_handler handler,
                                           void *userdata, smimed_call **ret_call, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        smimed_call *c;
        int r;

        if (!s || !handler)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        r = capabilities_call_new(s, sender, recipients, o, &m, error);
        if (r < 0)
                return r;
        r = call_new(CALL_CAPABILITIES, userdata, NULL, &c);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        c->handler.capabilities = handler;
        return call_send(s, c, m, options_timeout(o, 0), ret_call, error);
}

/* A message call on memfds of its own. */
static int message_call_async(smimed *s, MessageMethod method, const char *sender, const char *const *recipients,
                              const void *input, size_t size, const smimed_options *o, smimed_call **ret,
                              sd_bus_message **ret_m, smimed_error *error) {
        _cleanup_(memory_io_done) MemoryIO io = {-1, -1};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = message_check_arguments(s, method, sender, recipients, o, error);
        if (r >= 0)
                r = memory_io_open(input, size, &io, error);
        if (r >= 0)
                r = message_call_new(s, method, sender, recipients, io.input, io.output, o, &m, error);
        if (r < 0)
                return r;
        r = call_new(method == MESSAGE_SIGN || method == MESSAGE_ENCRYPT ? CALL_RESULT : CALL_STATUS, NULL, &io, ret);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        *ret_m = TAKE_PTR(m);
        return 0;
}

_public_ int smimed_sign_async(smimed *s, const char *sender, const void *input, size_t size, const smimed_options *o,
                               smimed_result_handler handler, void *userdata, smimed_call **ret_call,
                               smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        smimed_call *c;
        int r;

        if (!handler)
                return error_set(error, -EINVAL, NULL, "No handler given.");
        r = message_call_async(s, MESSAGE_SIGN, sender, NULL, input, size, o, &c, &m, error);
        if (r < 0)
                return r;
        c->handler.result = handler;
        c->userdata = userdata;
        return call_send(s, c, m, options_timeout(o, MESSAGE_TIMEOUT_USEC), ret_call, error);
}

_public_ int smimed_encrypt_async(smimed *s, const char *const *recipients, const void *input, size_t size,
                                  const smimed_options *o, smimed_result_handler handler, void *userdata,
                                  smimed_call **ret_call, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        smimed_call *c;
        int r;

        if (!handler)
                return error_set(error, -EINVAL, NULL, "No handler given.");
        r = message_call_async(s, MESSAGE_ENCRYPT, NULL, recipients, input, size, o, &c, &m, error);
        if (r < 0)
                return r;
        c->handler.result = handler;
        c->userdata = userdata;
        return call_send(s, c, m, options_timeout(o, MESSAGE_TIMEOUT_USEC), ret_call, error);
}

static int open_async(smimed *s, MessageMethod method, const void *input, size_t size, const smimed_options *o,
                      smimed_status_handler handler, void *userdata, smimed_call **ret_call, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        smimed_call *c;
        int r;

        if (!handler)
                return error_set(error, -EINVAL, NULL, "No handler given.");
        r = message_call_async(s, method, NULL, NULL, input, size, o, &c, &m, error);
        if (r < 0)
                return r;
        c->handler.status = handler;
        c->userdata = userdata;
        return call_send(s, c, m, options_timeout(o, MESSAGE_TIMEOUT_USEC), ret_call, error);
}

_public_ int smimed_decrypt_async(smimed *s, const void *input, size_t size, const smimed_options *o,
                                  smimed_status_handler handler, void *userdata, smimed_call **ret_call,
                                  smimed_error *error) {
        return open_async(s, MESSAGE_DECRYPT, input, size, o, handler, userdata, ret_call, error);
}

_public_ int smimed_verify_async(smimed *s, const void *input, size_t size, const smimed_options *o,
                                 smimed_status_handler handler, void *userdata, smimed_call **ret_call,
                                 smimed_error *error) {
        return open_async(s, MESSAGE_VERIFY, input, size, o, handler, userdata, ret_call, error);
}
