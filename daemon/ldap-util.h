/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <ldap.h>

/* What smimed's two LDAP clients share: the recipient directory
 * (directory.c) and CRLs at ldap:// distribution points (crl-ldap.c).
 * Blocking: for their worker threads. No D-Bus, no store. */

/* A libldap result code as a negative errno: -ECONNREFUSED (server down,
 * cannot connect), -ETIMEDOUT, -EACCES (bind refused), -ENOMEM, else -EIO. */
int ldap_util_errno(int rc);

/* What is left until deadline (CLOCK_MONOTONIC µs), at least a millisecond. */
struct timeval ldap_util_time_left(uint64_t deadline);
uint64_t ldap_util_now_usec(void);

/* A handle for uri, LDAPv3, no referrals chased, connecting and each
 * operation bounded by what is left until deadline. Nothing is sent yet.
 * A URI libldap does not take is -EINVAL, with *ret_message (what, e.g.
 * "The directory ldap://…", "cannot be used: …"). */
int ldap_util_open(const char *what, const char *uri, uint64_t deadline, LDAP **ret, char **ret_message);
