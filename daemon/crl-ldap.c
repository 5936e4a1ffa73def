/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldap.h>

#include "crl-ldap.h"
#include "fetch-util.h"
#include "ldap-util.h"
#include "macro.h"

#define CRL_ATTRIBUTE "certificateRevocationList"

bool crl_ldap_is_url(const char *uri) {
        return uri && (strncasecmp(uri, "ldap://", 7) == 0 || strncasecmp(uri, "ldaps://", 8) == 0);
}

static void ldap_url_desc_freep(LDAPURLDesc **d) {
        if (*d)
                ldap_free_urldesc(*d);
}

/* "certificateRevocationList;binary" and "certificateRevocationList" are one
 * attribute: the ;binary option only asks for the DER. */
static bool same_attribute(const char *a, const char *b) {
        size_t la = strcspn(a, ";"), lb = strcspn(b, ";");

        return la == lb && strncasecmp(a, b, la) == 0;
}

/* The first value of an attribute of entry named like wanted. */
static int read_value(LDAP *ld, LDAPMessage *entry, const char *wanted, uint64_t max_size, const char *url,
                      unsigned char **ret, size_t *ret_size, char **ret_message) {
        BerElement *ber = NULL;
        int r = -ENOENT;

        for (char *a = ldap_first_attribute(ld, entry, &ber); a; a = ldap_next_attribute(ld, entry, ber)) {
                struct berval **values = NULL;

                if (same_attribute(a, wanted))
                        values = ldap_get_values_len(ld, entry, a);
                ldap_memfree(a);
                if (!values || !values[0]) {
                        ldap_value_free_len(values);
                        continue;
                }
                if (values[0]->bv_len > max_size) {
                        r = fetch_fail(ret_message, -EFBIG,
                                       "The CRL at %s is larger than MaxCRLSize=%llu bytes allows.", url,
                                       (unsigned long long) max_size);
                        ldap_value_free_len(values);
                        break;
                }
                *ret = malloc(MAX(values[0]->bv_len, (ber_len_t) 1));
                if (!*ret) {
                        ldap_value_free_len(values);
                        r = -ENOMEM;
                        break;
                }
                memcpy(*ret, values[0]->bv_val, values[0]->bv_len);
                *ret_size = values[0]->bv_len;
                ldap_value_free_len(values);
                r = 0;
                break;
        }
        ber_free(ber, 0);
        if (r == -ENOENT)
                return fetch_fail(ret_message, r, "The entry at %s has no %s.", url, wanted);
        return r;
}

int crl_ldap_get(const char *url, uint64_t timeout_usec, uint64_t max_size, unsigned char **ret, size_t *ret_size,
                 char **ret_message) {
        _cleanup_(ldap_url_desc_freep) LDAPURLDesc *desc = NULL;
        _cleanup_free_ char *server = NULL, *what = NULL;
        uint64_t deadline = ldap_util_now_usec() + timeout_usec;
        char *attributes[2] = {};
        LDAPMessage *result = NULL, *entry;
        struct timeval tv;
        LDAP *ld = NULL;
        int rc, r;

        rc = ldap_url_parse(url, &desc);
        if (rc != LDAP_URL_SUCCESS || !desc->lud_host || !desc->lud_host[0] || !desc->lud_dn || !desc->lud_dn[0])
                return fetch_fail(ret_message, -EINVAL,
                                  "The CRL distribution point %s is not an LDAP URL with a server "
                                  "and an entry.",
                                  url);
        attributes[0] = desc->lud_attrs && desc->lud_attrs[0] ? desc->lud_attrs[0] : (char *) CRL_ATTRIBUTE ";binary";

        /* The server alone: the rest of the URL is the search. */
        if (desc->lud_port > 0)
                r = asprintf(&server, "%s://%s%s%s:%d", desc->lud_scheme, strchr(desc->lud_host, ':') ? "[" : "",
                             desc->lud_host, strchr(desc->lud_host, ':') ? "]" : "", desc->lud_port);
        else
                r = asprintf(&server, "%s://%s", desc->lud_scheme, desc->lud_host);
        if (r < 0 || asprintf(&what, "The CRL distribution point %s", url) < 0)
                return -ENOMEM;

        r = ldap_util_open(what, server, deadline, &ld, ret_message);
        if (r < 0)
                return r;
        tv = ldap_util_time_left(deadline);
        rc = ldap_search_ext_s(ld, desc->lud_dn,
                               desc->lud_scope == LDAP_SCOPE_DEFAULT ? LDAP_SCOPE_BASE : desc->lud_scope,
                               desc->lud_filter ?: "(objectClass=*)", attributes, 0, NULL, NULL, &tv, 1, &result);
        if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
                r = fetch_fail(ret_message, rc == LDAP_NO_SUCH_OBJECT ? -ENOENT : ldap_util_errno(rc),
                               "The CRL at %s cannot be fetched: %s", url, ldap_err2string(rc));
                goto finish;
        }
        entry = ldap_first_entry(ld, result);
        if (!entry)
                r = fetch_fail(ret_message, -ENOENT, "The CRL at %s cannot be fetched: no entry.", url);
        else
                r = read_value(ld, entry, attributes[0], max_size, url, ret, ret_size, ret_message);

finish:
        ldap_msgfree(result);
        ldap_unbind_ext_s(ld, NULL, NULL);
        return r;
}
