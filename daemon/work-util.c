/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "work-util.h"

int work_fail(WorkerMessage *reply, int error, SmimedError error_code, const char *message) {
        worker_reply_init(reply, error, error_code, message ? message : strerror(-error));
        return 0;
}

static int work_fail_va(WorkerMessage *reply, int error, SmimedError error_code, const char *format, va_list ap)
        _printf_(4, 0);
static int work_fail_va(WorkerMessage *reply, int error, SmimedError error_code, const char *format, va_list ap) {
        _cleanup_free_ char *text = NULL;

        (void) message_failv(&text, error, format, ap);
        return work_fail(reply, error, error_code, text);
}

int work_fail_errno(WorkerMessage *reply, int error, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = work_fail_va(reply, error, 0, format, ap);
        va_end(ap);
        return r;
}

int work_fail_message(WorkerMessage *reply, int error, SmimedError error_code, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = work_fail_va(reply, error, error_code, format, ap);
        va_end(ap);
        return r;
}

int work_reply_done(WorkerMessage *reply) {
        return reply->error < 0 ? reply->error : 0;
}

int work_spool(WorkerSession *s, WorkerMessage *request, unsigned index, uint64_t size_hint) {
        int fd = worker_message_take_fd(request, index);

        return fd >= 0 ? fd : worker_session_spool(s, size_hint);
}

int work_scratch(WorkerSession *s, WorkerMessage *request, unsigned index, uint64_t size_hint) {
        int fd = worker_message_take_fd(request, index);

        return fd >= 0 ? fd : worker_session_scratch(s, size_hint);
}
