/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sys/time.h>
#include <time.h>

#include "fetch-util.h"
#include "ldap-util.h"

int ldap_util_errno(int rc) {
        switch (rc) {
        case LDAP_SERVER_DOWN:
        case LDAP_CONNECT_ERROR:
                return -ECONNREFUSED;
        case LDAP_TIMEOUT:
        case LDAP_TIMELIMIT_EXCEEDED:
                return -ETIMEDOUT;
        case LDAP_INVALID_CREDENTIALS:
        case LDAP_INAPPROPRIATE_AUTH:
        case LDAP_INSUFFICIENT_ACCESS:
                return -EACCES;
        case LDAP_NO_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

uint64_t ldap_util_now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

struct timeval ldap_util_time_left(uint64_t deadline) {
        uint64_t now = ldap_util_now_usec(), left = deadline > now ? deadline - now : 0;

        if (left < 1000)
                left = 1000;
        return (struct timeval){.tv_sec = (time_t) (left / 1000000ULL), .tv_usec = (suseconds_t) (left % 1000000ULL)};
}

int ldap_util_open(const char *what, const char *uri, uint64_t deadline, LDAP **ret, char **ret_message) {
        struct timeval tv = ldap_util_time_left(deadline);
        int rc, version = LDAP_VERSION3;
        LDAP *ld = NULL;

        rc = ldap_initialize(&ld, uri);
        if (rc != LDAP_SUCCESS)
                return fetch_fail(ret_message, -EINVAL, "%s cannot be used: %s", what, ldap_err2string(rc));
        (void) ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
        (void) ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
        (void) ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
        (void) ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
        *ret = ld;
        return 0;
}
