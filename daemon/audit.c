/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <systemd/sd-journal.h>

#include "audit.h"
#include "hexdecoct.h"
#include "log.h"
#include "macro.h"

/* One MESSAGE_ID per kind of event, for journalctl MESSAGE_ID=… */
static const char *const audit_message_id[_AUDIT_EVENT_MAX] = {
        [AUDIT_SIGN] = "1bcb0e8fcd0d450aae249525f86340b2",
        [AUDIT_DECRYPT] = "eed11e565f89429690b055459b26f44d",
        [AUDIT_KEY_ENROLL] = "a69543b737c247d5aa7aa1126bfe1763",
        [AUDIT_KEY_REMOVE] = "34391bd0158d4797a3684a1ee04ce378",
        [AUDIT_CERTIFICATE_IMPORT] = "74982e5794484c8982e656a5df6dc719",
        [AUDIT_CERTIFICATE_REMOVE] = "3c880be77bc148b59d2eb47cdbee0eda",
        [AUDIT_TRUST_CHANGE] = "b1b2cbabebdb458e87772fcf2daa8ec6",
        [AUDIT_DENIED] = "d2b346db23e248a9a4fb21e5f58f90a3",
};

/* One journal field: "NAME=" and its value in pieces (NULL ends them). */
#define AUDIT_FIELDS_MAX 16
#define AUDIT_PIECES_MAX 8

typedef struct AuditField {
        const char *pieces[AUDIT_PIECES_MAX];
} AuditField;

/* The fields as iovecs over one buffer: sd_journal_send() formats each
 * field on its own, with an allocation each, about half the cost of an
 * audit record (and a tenth of the loop's time for a small Sign). */
static int journal_send_fields(const AuditField *fields, size_t n) {
        struct iovec iov[AUDIT_FIELDS_MAX];
        _cleanup_free_ char *buffer = NULL;
        size_t size = 0;
        char *p;

        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < AUDIT_PIECES_MAX && fields[i].pieces[j]; j++)
                        size += strlen(fields[i].pieces[j]);
        buffer = malloc(size ? size : 1);
        if (!buffer)
                return -ENOMEM;
        p = buffer;
        for (size_t i = 0; i < n; i++) {
                iov[i].iov_base = p;
                for (size_t j = 0; j < AUDIT_PIECES_MAX && fields[i].pieces[j]; j++)
                        p = mempcpy(p, fields[i].pieces[j], strlen(fields[i].pieces[j]));
                iov[i].iov_len = (size_t) (p - (char *) iov[i].iov_base);
        }
        return sd_journal_sendv(iov, (int) n);
}

void audit_log(const AuditCaller *caller, const AuditRecord *a) {
        char uid[32], pid[32];
        const char *unit = caller && caller->unit[0] ? caller->unit : "-";
        bool success = strcmp(a->outcome, "success") == 0;
        const AuditField fields[] = {
                {{"MESSAGE_ID=", audit_message_id[a->event]}},
                {{"PRIORITY=", success ? STRINGIFY(LOG_INFO) : STRINGIFY(LOG_NOTICE)}},
                {{"MESSAGE=smimed audit: ", a->operation, " ", a->outcome, " by uid ", uid}},
                {{"SMIMED_OPERATION=", a->operation}},
                {{"SMIMED_OUTCOME=", a->outcome}},
                {{"SMIMED_CALLER_UID=", uid}},
                {{"SMIMED_CALLER_PID=", pid}},
                {{"SMIMED_CALLER_UNIT=", unit}},
                {{"SMIMED_CALLER_BUS_NAME=", caller ? caller->sender : ""}},
                {{"SMIMED_FINGERPRINT=", strempty(a->fingerprint)}},
                {{"SMIMED_KEY=", strempty(a->key)}},
                {{"SMIMED_ADDRESS=", strempty(a->address)}},
                {{"SMIMED_INPUT_SHA256=", strempty(a->input_sha256)}},
                {{"SMIMED_MAIL_MESSAGE_ID=", strempty(a->mail_message_id)}},
                {{"SMIMED_DETAIL=", strempty(a->detail)}},
        };

        _Static_assert(ELEMENTSOF(fields) <= AUDIT_FIELDS_MAX, "more audit fields than AUDIT_FIELDS_MAX");
        snprintf(uid, sizeof(uid), "%d", caller ? (int) caller->uid : -1);
        snprintf(pid, sizeof(pid), "%d", caller ? (int) caller->pid : 0);
        (void) journal_send_fields(fields, ELEMENTSOF(fields));

        /* Not under journald (or not only): the same as one line on stderr. */
        if (!log_stderr_is_journal())
                log_info("AUDIT %s outcome=%s uid=%s pid=%s unit=%s fingerprint=%s key=%s address=%s "
                         "input_sha256=%s message_id=%s%s%s%s%s",
                         a->operation, a->outcome, uid, pid, unit, a->fingerprint ?: "-", a->key ?: "-",
                         a->address ?: "-", a->input_sha256 ?: "-", audit_message_id[a->event],
                         a->mail_message_id ? " mail_message_id=" : "", strempty(a->mail_message_id),
                         a->detail ? " detail=" : "", strempty(a->detail));
}
