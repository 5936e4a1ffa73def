/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the core tells whoever shows its state (the bus layer): it reports
 * what changed through one hook, and never calls into the bus files. The
 * hook is NULL until the objects are served, and events before that are
 * nobody's business. */

typedef struct Manager Manager;

typedef enum ManagerEventType {
        MANAGER_EVENT_CERTIFICATE_ADDED,   /* names: its fingerprint */
        MANAGER_EVENT_CERTIFICATE_REMOVED, /* names: its fingerprint */
        MANAGER_EVENT_CERTIFICATE_TRUST,   /* names: its fingerprint; its trust flag changed */
        MANAGER_EVENT_CERTIFICATES_STALE,  /* no names: what any certificate shows may have changed
                                            * without a change of the store (keys re-read, validation
                                            * policy changed, another store opened) */
        MANAGER_EVENT_KEY_ADDED,           /* names: its id */
        MANAGER_EVENT_KEY_REMOVED,         /* names: its id */
        MANAGER_EVENT_PROPERTIES_CHANGED,  /* names: the Manager properties whose value changed */
        _MANAGER_EVENT_TYPE_MAX,
} ManagerEventType;

typedef struct ManagerEvent {
        ManagerEventType type;
        char *const *names; /* NULL-terminated; see the types */
} ManagerEvent;

typedef void (*ManagerEventHandler)(Manager *m, const ManagerEvent *event, void *userdata);

/* One subscriber: setting a handler replaces the one before; NULL removes it. */
void manager_set_event_handler(Manager *m, ManagerEventHandler handler, void *userdata);

void manager_notify(Manager *m, ManagerEventType type, char *const *names);
/* The common case of one name (a fingerprint, a key id, a property). */
void manager_notify_one(Manager *m, ManagerEventType type, const char *name);
