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
