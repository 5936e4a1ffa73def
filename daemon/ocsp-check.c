/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "certificate.h"
#include "fetch-util.h"
#include "ocsp-check.h"
#include "strv.h"

int ocsp_responder_uris(X509 *x509, char ***ret) {
        _cleanup_(strv_freep) char **uris = NULL;
        AUTHORITY_INFO_ACCESS *aia;
        int r = 0;

        aia = X509_get_ext_d2i(x509, NID_info_access, NULL, NULL);
        for (int i = 0; aia && r >= 0 && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
                ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
                const unsigned char *data;
                char *uri;
                int len;

                if (OBJ_obj2nid(ad->method) != NID_ad_OCSP || ad->location->type != GEN_URI)
                        continue;
                data = ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier);
                len = ASN1_STRING_length(ad->location->d.uniformResourceIdentifier);
                if (len < 8 || len > 2048 || memchr(data, '\0', (size_t) len) ||
                    strncasecmp((const char *) data, "http://", 7) != 0)
                        continue;
                uri = strndup((const char *) data, (size_t) len);
                if (!uri) {
                        r = -ENOMEM;
                        break;
                }
                if (strv_contains(uris, uri))
                        free(uri);
                else
                        r = strv_consume(&uris, uri);
        }
        AUTHORITY_INFO_ACCESS_free(aia);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(uris);
        return 0;
}

int ocsp_request_new(X509 *subject, X509 *issuer, OCSP_REQUEST **ret) {
        OCSP_REQUEST *request;
        OCSP_CERTID *id;

        request = OCSP_REQUEST_new();
        id = OCSP_cert_to_id(NULL, subject, issuer);
        if (!request || !id || !OCSP_request_add0_id(request, id)) {
                OCSP_CERTID_free(id);
                OCSP_REQUEST_free(request);
                return -ENOMEM;
        }
        if (!OCSP_request_add1_nonce(request, NULL, -1)) {
                OCSP_REQUEST_free(request);
                return -ENOMEM;
        }
        *ret = request;
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(OCSP_RESPONSE *, OCSP_RESPONSE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OCSP_BASICRESP *, OCSP_BASICRESP_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OCSP_CERTID *, OCSP_CERTID_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free);

static void x509_stack_freep(STACK_OF(X509) * *s) {
        sk_X509_free(*s);
}

/* The signature: by the issuer itself, or by a certificate the issuer
 * issued with id-kp-OCSPSigning. OCSP_NOEXPLICIT: a root's trust for
 * "OCSP signing" (which OpenSSL grants any self-signed root) does not
 * stand in for the delegation. */
static int verify_signer(OCSP_BASICRESP *basic, X509 *issuer) {
        _cleanup_(X509_STORE_freep) X509_STORE *store = X509_STORE_new();
        _cleanup_(x509_stack_freep) STACK_OF(X509) *certs = sk_X509_new_null();
        int ok;

        if (!store || !certs || !X509_STORE_add_cert(store, issuer) || !sk_X509_push(certs, issuer))
                return -ENOMEM;
        /* The issuer may be an intermediate: it is the anchor here. */
        X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
        ok = OCSP_basic_verify(basic, certs, store, OCSP_NOEXPLICIT);
        ERR_clear_error();
        return ok > 0 ? 0 : -EKEYREJECTED;
}

int ocsp_response_check(const void *der, size_t size, OCSP_REQUEST *request, X509 *subject, X509 *issuer, time_t now,
                        OcspAnswer *ret, char **ret_message) {
        _cleanup_(OCSP_RESPONSE_freep) OCSP_RESPONSE *response = NULL;
        _cleanup_(OCSP_BASICRESP_freep) OCSP_BASICRESP *basic = NULL;
        _cleanup_(OCSP_CERTID_freep) OCSP_CERTID *id = NULL;
        ASN1_GENERALIZEDTIME *this_update = NULL, *next_update = NULL, *revoked_at = NULL;
        const unsigned char *p = der;
        OcspAnswer answer = {};
        int status, reason, r;

        if (size == 0 || size > LONG_MAX)
                return fetch_fail(ret_message, -EBADMSG, "The answer is not an OCSP response.");
        response = d2i_OCSP_RESPONSE(NULL, &p, (long) size);
        if (!response || p != (const unsigned char *) der + size) {
                ERR_clear_error();
                return fetch_fail(ret_message, -EBADMSG, "The answer is not an OCSP response.");
        }
        status = OCSP_response_status(response);
        if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL)
                return fetch_fail(ret_message, -EBADMSG, "The responder refused to answer: %s.",
                                  OCSP_response_status_str(status));
        basic = OCSP_response_get1_basic(response);
        if (!basic) {
                ERR_clear_error();
                return fetch_fail(ret_message, -EBADMSG, "The OCSP response is not a basic response.");
        }

        r = verify_signer(basic, issuer);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fetch_fail(ret_message, r,
                                  "The OCSP response is signed neither by the issuer nor by a responder it delegated "
                                  "(id-kp-OCSPSigning).");

        /* 1: the nonces match; -1: the response has none (a response made
         * in advance, RFC 5019): it still has to be current, below. */
        if (request) {
                r = OCSP_check_nonce(request, basic);
                if (r == 0 || r == 3)
                        return fetch_fail(ret_message, -EKEYREJECTED,
                                          "The OCSP response does not carry the nonce of the request.");
        }

        id = OCSP_cert_to_id(NULL, subject, issuer);
        if (!id)
                return -ENOMEM;
        if (!OCSP_resp_find_status(basic, id, &status, &reason, &revoked_at, &this_update, &next_update))
                return fetch_fail(ret_message, -EKEYREJECTED,
                                  "The OCSP response is not about the certificate asked for.");
        if (!this_update || !OCSP_check_validity(this_update, next_update, OCSP_CLOCK_SKEW_SEC, -1)) {
                ERR_clear_error();
                return fetch_fail(ret_message, -EKEYREJECTED,
                                  "The OCSP response is not current (thisUpdate ahead or nextUpdate past).");
        }
        /* OCSP_check_validity() reads the system clock; the caller's now counts too. */
        if (asn1_time_to_time_t(this_update, &answer.this_update) < 0 ||
            (next_update && asn1_time_to_time_t(next_update, &answer.next_update) < 0))
                return fetch_fail(ret_message, -EKEYREJECTED, "The OCSP response has unreadable times.");
        if (answer.this_update > now + OCSP_CLOCK_SKEW_SEC ||
            (answer.next_update > 0 && answer.next_update < now - OCSP_CLOCK_SKEW_SEC))
                return fetch_fail(ret_message, -EKEYREJECTED,
                                  "The OCSP response is not current (thisUpdate ahead or nextUpdate past).");
        if (answer.next_update == 0)
                answer.next_update = now + OCSP_DEFAULT_CACHE_SEC;

        switch (status) {
        case V_OCSP_CERTSTATUS_GOOD:
                answer.status = OCSP_STATUS_GOOD;
                break;
        case V_OCSP_CERTSTATUS_REVOKED:
                answer.status = OCSP_STATUS_REVOKED;
                if (!revoked_at || asn1_time_to_time_t(revoked_at, &answer.revoked_at) < 0)
                        answer.revoked_at = answer.this_update;
                break;
        default:
                answer.status = OCSP_STATUS_UNKNOWN;
                break;
        }
        *ret = answer;
        return 0;
}
