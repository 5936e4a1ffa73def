/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* A private OpenLDAP slapd for a test: a slapd.conf in a scratch directory
 * (mdb, the schemas core, cosine and inetorgperson, index objectClass eq
 * and mail eq), the suffix LDAP_SERVER_SUFFIX with ou=people under it,
 * listening on ldapi:// in the directory and on ldap://127.0.0.1:PORT/,
 * logging its operations (loglevel stats) to DIR/slapd.log. About 0.3 s to
 * start; ready when a connect to its socket succeeds. */

#define LDAP_SERVER_SUFFIX "dc=example,dc=com"
#define LDAP_SERVER_PEOPLE "ou=people,dc=example,dc=com"
#define LDAP_SERVER_ROOT_DN "cn=admin,dc=example,dc=com"
#define LDAP_SERVER_ROOT_PW "secret"

typedef struct LdapServer {
        char *dir;
        char *ldapi_uri; /* ldapi://%2F… */
        char *ldap_uri;  /* ldap://127.0.0.1:PORT/ */
        char *log_path;
        uint16_t port;
        int pid; /* 0: not running */
        bool paused;
} LdapServer;

int ldap_server_start(LdapServer **ret);
/* Stops slapd (SIGTERM, waited for); resume starts it again on the same data. */
int ldap_server_stop(LdapServer *s);
int ldap_server_resume(LdapServer *s);
/* SIGSTOP / SIGCONT: a server that accepts connections and answers nothing. */
int ldap_server_pause(LdapServer *s);
int ldap_server_unpause(LdapServer *s);
LdapServer *ldap_server_free(LdapServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(LdapServer *, ldap_server_free);

/* Adds an inetOrgPerson uid=UID under ou=people with mail, and der (a DER
 * certificate, may be NULL) as userSMIMECertificate (as a PKCS#7 bundle made
 * of it) when smime, else as userCertificate;binary. Over ldapi as the root DN. */
int ldap_server_add_person(LdapServer *s, const char *uid, const char *mail, const unsigned char *der, size_t size,
                           bool smime);

/* Adds a cRLDistributionPoint cn=CN under the suffix with der (a DER CRL)
 * as certificateRevocationList;binary. */
int ldap_server_add_crl(LdapServer *s, const char *cn, const unsigned char *der, size_t size);

/* How many searches slapd's log shows whose filter contains text (as slapd
 * logs it: values escaped, e.g. "(mail=a\2Ab@example.com)"). */
int ldap_server_count_searches(LdapServer *s, const char *text, unsigned *ret);
