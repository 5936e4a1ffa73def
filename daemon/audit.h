/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* The audit trail: every use of a private key, every change to keys, trust
 * or the store, and every denied call, as a journal entry with a MESSAGE_ID
 * per kind of event and fields for who, what and how it went. When stderr
 * is not the journal the same entry also goes there as one line
 * ("AUDIT sign outcome=success uid=… …"). */

typedef enum AuditEvent {
        AUDIT_SIGN,
        AUDIT_DECRYPT,
        AUDIT_KEY_ENROLL,
        AUDIT_KEY_REMOVE,
        AUDIT_CERTIFICATE_IMPORT,
        AUDIT_CERTIFICATE_REMOVE,
        AUDIT_TRUST_CHANGE,
        AUDIT_DENIED,
        _AUDIT_EVENT_MAX,
} AuditEvent;

/* Who called: read from the bus when the call arrives (bus-audit.h). */
typedef struct AuditCaller {
        uid_t uid;
        pid_t pid;
        char unit[256];
        char sender[64];
} AuditCaller;

typedef struct AuditRecord {
        AuditEvent event;
        const char *operation;     /* "sign", "import-pkcs12", the polkit action, … */
        const char *outcome;       /* "success", "failed", "denied" */
        const char *fingerprint;   /* of the certificate, or NULL */
        const char *key;           /* CKA_ID hex, or NULL */
        const char *address;       /* or NULL */
        const char *input_sha256;  /* of the message, or NULL */
        const char *mail_message_id; /* the Message-ID: of the mail that caused it, or NULL */
        const char *detail;        /* a reason, or NULL */
} AuditRecord;

void audit_log(const AuditCaller *caller, const AuditRecord *record);
