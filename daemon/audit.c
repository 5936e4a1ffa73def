/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

/* Asking the bus who a sender is costs a synchronous GetConnectionCredentials
 * round trip and reads in /proc: done once per connection, not per call. A
 * unique name is never given to another connection, so an entry is never
 * wrong, only unused once its client has gone; the oldest is replaced.
 * Loop thread only. */
#define CALLER_CACHE_SIZE 64

static AuditCaller caller_cache[CALLER_CACHE_SIZE];
static unsigned caller_cache_next = 0;

static const AuditCaller *caller_cache_find(const char *sender) {
        for (size_t i = 0; i < CALLER_CACHE_SIZE; i++)
                if (caller_cache[i].sender[0] && streq(caller_cache[i].sender, sender))
                        return &caller_cache[i];
        return NULL;
}

void audit_caller_from_message(sd_bus_message *message, AuditCaller *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *unit = NULL, *sender;
        const AuditCaller *cached;

        *ret = (AuditCaller) { .uid = (uid_t) -1, .pid = 0 };
        sender = sd_bus_message_get_sender(message);
        snprintf(ret->sender, sizeof(ret->sender), "%s", strempty(sender));

        /* Only unique names (":1.42") are bound to one connection. */
        cached = sender && sender[0] == ':' ? caller_cache_find(sender) : NULL;
        if (cached) {
                *ret = *cached;
                return;
        }

        if (sd_bus_query_sender_creds(message, SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_UNIT |
                                                       SD_BUS_CREDS_AUGMENT,
                                      &creds) < 0)
                return;
        (void) sd_bus_creds_get_euid(creds, &ret->uid);
        (void) sd_bus_creds_get_pid(creds, &ret->pid);
        if (sd_bus_creds_get_unit(creds, &unit) >= 0 && unit)
                snprintf(ret->unit, sizeof(ret->unit), "%s", unit);

        if (sender && sender[0] == ':' && strlen(sender) < sizeof(ret->sender)) {
                caller_cache[caller_cache_next] = *ret;
                caller_cache_next = (caller_cache_next + 1) % CALLER_CACHE_SIZE;
        }
}

void audit_log(const AuditCaller *caller, const AuditRecord *a) {
        char uid[32], pid[32];
        const char *unit = caller && caller->unit[0] ? caller->unit : "-";

        snprintf(uid, sizeof(uid), "%d", caller ? (int) caller->uid : -1);
        snprintf(pid, sizeof(pid), "%d", caller ? (int) caller->pid : 0);

        (void) sd_journal_send("MESSAGE_ID=%s", audit_message_id[a->event],
                               "PRIORITY=%d", strcmp(a->outcome, "success") == 0 ? LOG_INFO : LOG_NOTICE,
                               "MESSAGE=smimed audit: %s %s by uid %s", a->operation, a->outcome, uid,
                               "SMIMED_OPERATION=%s", a->operation,
                               "SMIMED_OUTCOME=%s", a->outcome,
                               "SMIMED_CALLER_UID=%s", uid,
                               "SMIMED_CALLER_PID=%s", pid,
                               "SMIMED_CALLER_UNIT=%s", unit,
                               "SMIMED_CALLER_BUS_NAME=%s", caller ? caller->sender : "",
                               "SMIMED_FINGERPRINT=%s", strempty(a->fingerprint),
                               "SMIMED_KEY=%s", strempty(a->key),
                               "SMIMED_ADDRESS=%s", strempty(a->address),
                               "SMIMED_INPUT_SHA256=%s", strempty(a->input_sha256),
                               "SMIMED_MAIL_MESSAGE_ID=%s", strempty(a->mail_message_id),
                               "SMIMED_DETAIL=%s", strempty(a->detail),
                               NULL);

        /* Not under journald (or not only): the same as one line on stderr. */
        if (!log_stderr_is_journal())
                log_info("AUDIT %s outcome=%s uid=%s pid=%s unit=%s fingerprint=%s key=%s address=%s "
                         "input_sha256=%s message_id=%s%s%s%s%s",
                         a->operation, a->outcome, uid, pid, unit, a->fingerprint ?: "-", a->key ?: "-",
                         a->address ?: "-", a->input_sha256 ?: "-", audit_message_id[a->event],
                         a->mail_message_id ? " mail_message_id=" : "", strempty(a->mail_message_id),
                         a->detail ? " detail=" : "", strempty(a->detail));
}

void audit_call(sd_bus_message *message, AuditEvent event, const char *operation, int r, const char *fingerprint,
                const char *key, const char *address, const char *detail) {
        AuditCaller caller;

        audit_caller_from_message(message, &caller);
        audit_log(&caller, &(AuditRecord) {
                                   .event = event,
                                   .operation = operation,
                                   .outcome = r < 0 ? "failed" : "success",
                                   .fingerprint = fingerprint,
                                   .key = key,
                                   .address = address,
                                   .detail = r < 0 ? detail : NULL,
                           });
}
