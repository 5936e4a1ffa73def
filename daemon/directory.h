/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <systemd/sd-event.h>

#include "macro.h"

/* Recipients' certificates from an LDAP directory ([Directory]), with
 * libldap, on threads of their own: the event loop never waits for the
 * server. Each lookup connects, binds (simply, or anonymously), searches
 * with the configured filter, the address escaped as RFC 4515 says, and
 * reads userSMIMECertificate (PKCS#7) then userCertificate;binary (DER); it
 * ends within TimeoutSec=. At most one lookup per address runs at a time;
 * an address the directory does not know is not asked for again for
 * DIRECTORY_NEGATIVE_USEC (or CacheSec=, when shorter), and after a failure
 * of the server no address is for DIRECTORY_RETRY_USEC. State is in memory
 * only. No D-Bus, no store: the caller stores what it is handed. */

#define DIRECTORY_NEGATIVE_USEC (15ULL * 60ULL * 1000000ULL)
#define DIRECTORY_RETRY_USEC (30ULL * 1000000ULL)
#define DIRECTORY_MAX_RUNNING 4U
#define DIRECTORY_MAX_ENTRIES 16
#define DIRECTORY_MAX_CERTIFICATES 32

typedef struct Directory Directory;

typedef struct DirectorySettings {
        const char *uri;
        const char *base;
        const char *filter; /* with one %s; %% is a % */
        const char *bind_dn;
        const char *password; /* NULL: an anonymous bind */
        uint64_t timeout_usec;
        uint64_t cache_usec;
} DirectorySettings;

/* On the loop: how a lookup of address ended. 0 with the certificates found
 * (certs is the callback's to keep, with sk_X509_pop_free()), -ENOENT when
 * the directory has no certificate for it, -ECANCELED when the directory
 * is going away, another negative errno when the server failed (message
 * says how). */
typedef void (*DirectoryDone)(int r, const char *address, STACK_OF(X509) * certs, const char *message, void *userdata);

int directory_new(sd_event *event, Directory **ret);
/* Waits for the lookups in progress (each ends within its timeout); their
 * callers are told -ECANCELED. */
Directory *directory_free(Directory *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Directory *, directory_free);

/* Applies to lookups started from now on; forgets the caches when the
 * server or the search changed. */
int directory_configure(Directory *d, const DirectorySettings *settings);

/* Looks address (normalized) up, unless a lookup of it runs already (then
 * done is called when that ends). Returns 1 when done will be called, 0
 * when the answer is known without asking (the address was not found
 * lately, or the server failed lately), or a negative errno. */
int directory_lookup(Directory *d, const char *address, DirectoryDone done, void *userdata);

/* How many searches were sent to the server: for tests and benchmarks. */
uint64_t directory_searches(const Directory *d);

/* The filter for address: settings' filter with its %s replaced by the
 * address escaped as RFC 4515 says (*, (, ), \ and NUL as \2A, \28, \29,
 * \5C, \00: libldap's ldap_bv2escaped_filter_value()). */
int directory_filter(const char *filter, const char *address, char **ret);

/* A lookup, blocking: what a lookup thread does. For tests. */
int directory_search(const DirectorySettings *settings, const char *address, STACK_OF(X509) * *ret,
                     char **ret_message);
