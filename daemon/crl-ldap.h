/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRLs at ldap:// and ldaps:// CRL distribution points (RFC 4516 URLs, as
 * CAs write them: ldap://ldap.example.com/cn=Example%20CA,o=Example?
 * certificateRevocationList;binary): an anonymous search of the URL's DN
 * (its scope and filter, else the entry itself) for the URL's attribute,
 * else certificateRevocationList;binary, on the URL's server, the whole
 * exchange within timeout_usec. The first value is the CRL, as DER; one
 * over max_size is -EFBIG. Blocking: for crl-fetch.c's download threads.
 * No D-Bus, no store. */

bool crl_ldap_is_url(const char *uri);

int crl_ldap_get(const char *url, uint64_t timeout_usec, uint64_t max_size, unsigned char **ret, size_t *ret_size,
                 char **ret_message);
