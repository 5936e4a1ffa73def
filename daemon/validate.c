/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "openssl-util.h"
#include "certificate.h"
#include "validate.h"

#define CHAIN_MAX_CERTIFICATES 32
#define CHAIN_MAX_DEPTH 10

static const char *const cert_status_table[_CERT_STATUS_MAX] = {
        [CERT_STATUS_VALID] = "valid",
        [CERT_STATUS_EXPIRED] = "expired",
        [CERT_STATUS_NOT_YET_VALID] = "not-yet-valid",
        [CERT_STATUS_REVOKED] = "revoked",
        [CERT_STATUS_UNTRUSTED] = "untrusted",
        [CERT_STATUS_WRONG_USAGE] = "wrong-usage",
        [CERT_STATUS_WEAK] = "weak",
        [CERT_STATUS_REVOCATION_UNKNOWN] = "revocation-unknown",
};

const char *cert_status_to_string(CertStatus status) {
        if (status < 0 || status >= _CERT_STATUS_MAX)
                return NULL;
        return cert_status_table[status];
}

/* When several things are wrong, the one reported is the first here. */
static const CertStatus status_precedence[] = {
        CERT_STATUS_REVOKED,
        CERT_STATUS_UNTRUSTED,
        CERT_STATUS_EXPIRED,
        CERT_STATUS_NOT_YET_VALID,
        CERT_STATUS_WEAK,
        CERT_STATUS_WRONG_USAGE,
        CERT_STATUS_REVOCATION_UNKNOWN,
};

static int status_rank(CertStatus s) {
        for (size_t i = 0; i < ELEMENTSOF(status_precedence); i++)
                if (status_precedence[i] == s)
                        return (int) i;
        return (int) ELEMENTSOF(status_precedence);
}

/* The first problem found for each status, and the worst of them. */
typedef struct Findings {
        char *message[_CERT_STATUS_MAX];
        bool any;
        /* The CRL just found unusable for the certificate at that depth:
         * OpenSSL goes on to apply it when told to go on. */
        const X509_CRL *unusable_crl;
        int unusable_crl_depth;
        /* Depths whose revocation is not known: no CRL of their issuer, or
         * one past its nextUpdate or not the issuer's. */
        uint32_t revocation_unknown;
        char *revocation_note; /* the first of them, in words */
        bool note_revocation;  /* REVOCATION_POLICY_SOFT: say so in a valid result */
        /* Depths whose CRL is not to be asked for: OCSP answered, or is being asked. */
        uint32_t crl_not_wanted;
        char *revocation_source; /* the leaf's answer and where it came from */
} Findings;

static void findings_done(Findings *f) {
        for (size_t i = 0; i < _CERT_STATUS_MAX; i++)
                free(f->message[i]);
        free(f->revocation_note);
        free(f->revocation_source);
}

/* Revocation at depth cannot be told, because of what (a CRL "is missing"). */
static void revocation_unknown(Findings *f, X509 *x, int depth, const char *what) {
        char issuer[256] = "";

        if (depth < 0 || depth >= 32)
                return;
        f->revocation_unknown |= 1U << depth;
        if (f->revocation_note || !x)
                return;
        if (X509_NAME_get_text_by_NID(X509_get_issuer_name(x), NID_commonName, issuer, sizeof(issuer)) <= 0)
                X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
        if (asprintf(&f->revocation_note, "Revocation was not checked: the CRL of \"%s\" %s.", issuer, what) < 0)
                f->revocation_note = NULL;
}

static void finding(Findings *f, CertStatus status, const char *format, ...) _printf_(3, 4);
static void finding(Findings *f, CertStatus status, const char *format, ...) {
        va_list ap;

        f->any = true;
        if (f->message[status])
                return;
        va_start(ap, format);
        if (vasprintf(&f->message[status], format, ap) < 0)
                f->message[status] = NULL;
        va_end(ap);
        if (!f->message[status])
                f->message[status] = strdup("");
}

static CertStatus findings_worst(const Findings *f) {
        CertStatus worst = CERT_STATUS_VALID;

        for (size_t i = 0; i < _CERT_STATUS_MAX; i++)
                if (i != CERT_STATUS_VALID && f->message[i] &&
                    (worst == CERT_STATUS_VALID || status_rank((CertStatus) i) < status_rank(worst)))
                        worst = (CertStatus) i;
        return worst;
}

/* "the certificate" for the leaf, "its issuing CA "X"" above it. */
static char *who(X509 *x, int depth) {
        char cn[256] = "";
        char *s;

        if (depth == 0)
                return strdup("The certificate");
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) <= 0)
                X509_NAME_oneline(X509_get_subject_name(x), cn, sizeof(cn));
        if (asprintf(&s, "The CA certificate \"%s\"", cn) < 0)
                return NULL;
        return s;
}

bool certificate_allows(X509 *x509, CertPurpose purpose) {
        uint32_t ku = X509_get_key_usage(x509);
        uint32_t flags = X509_get_extension_flags(x509);
        int pkey_id = EVP_PKEY_get_base_id(X509_get0_pubkey(x509));

        if (flags & EXFLAG_XKUSAGE) {
                uint32_t xku = X509_get_extended_key_usage(x509);

                if (!(xku & (XKU_SMIME | XKU_ANYEKU)))
                        return false;
        }

        switch (purpose) {
        case CERT_PURPOSE_SIGN:
                return ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);
        case CERT_PURPOSE_ENCRYPT:
                if (pkey_id == EVP_PKEY_EC || pkey_id == EVP_PKEY_X25519 || pkey_id == EVP_PKEY_X448)
                        return ku & KU_KEY_AGREEMENT;
                if (pkey_id == EVP_PKEY_RSA)
                        return ku & KU_KEY_ENCIPHERMENT;
                return false;
        case CERT_PURPOSE_ANY:
                return certificate_allows(x509, CERT_PURPOSE_SIGN) || certificate_allows(x509, CERT_PURPOSE_ENCRYPT);
        }
        return false;
}

/* Gathers every certificate the lookup knows that may sit above x509 in a
 * chain, trust anchors into trusted, the rest into untrusted, and their CRLs. */
typedef struct ChainMaterial {
        const ValidationLookup *lookup;
        X509_STORE *trusted;
        STACK_OF(X509) *untrusted;
        STACK_OF(X509_CRL) *crls;
        STACK_OF(X509) *seen;
        STACK_OF(X509) *queue;
        STACK_OF(X509) *extra;   /* borrowed: certificates a message brought along */
} ChainMaterial;

static void chain_material_done(ChainMaterial *m) {
        X509_STORE_free(m->trusted);
        sk_X509_pop_free(m->untrusted, X509_free);
        sk_X509_CRL_pop_free(m->crls, X509_CRL_free);
        sk_X509_pop_free(m->seen, X509_free);
        sk_X509_pop_free(m->queue, X509_free);
}

static bool seen_already(STACK_OF(X509) *seen, X509 *x) {
        for (int i = 0; i < sk_X509_num(seen); i++)
                if (X509_cmp(sk_X509_value(seen, i), x) == 0)
                        return true;
        return false;
}

static int collect_crl(ChainMaterial *m, X509 *issuer) {
        X509_CRL *crl = NULL;
        int r;

        r = m->lookup->get_crl(m->lookup->userdata, issuer, &crl);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (!sk_X509_CRL_push(m->crls, crl)) {
                X509_CRL_free(crl);
                return -ENOMEM;
        }
        return 0;
}

static int take_candidate(X509 *x, bool trusted, void *userdata) {
        ChainMaterial *m = userdata;
        int r;

        if (sk_X509_num(m->seen) >= CHAIN_MAX_CERTIFICATES || seen_already(m->seen, x))
                return 0;
        if (!X509_up_ref(x) || !sk_X509_push(m->seen, x))
                return -ENOMEM;

        if (trusted) {
                if (!X509_STORE_add_cert(m->trusted, x))
                        return -ENOMEM;
        } else {
                if (!X509_up_ref(x) || !sk_X509_push(m->untrusted, x))
                        return -ENOMEM;
        }

        r = collect_crl(m, x);
        if (r < 0)
                return r;

        /* Keep climbing unless it is self-issued. */
        if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0) {
                if (!X509_up_ref(x) || !sk_X509_push(m->queue, x))
                        return -ENOMEM;
        }
        return 0;
}

static int chain_material_collect(ChainMaterial *m, X509 *leaf, bool leaf_trusted) {
        int r;

        m->trusted = X509_STORE_new();
        m->untrusted = sk_X509_new_null();
        m->crls = sk_X509_CRL_new_null();
        m->seen = sk_X509_new_null();
        m->queue = sk_X509_new_null();
        if (!m->trusted || !m->untrusted || !m->crls || !m->seen || !m->queue)
                return -ENOMEM;

        /* The leaf itself may be an anchor (a trusted CA, or a self-signed
         * certificate an admin chose to trust). */
        if (leaf_trusted && !X509_STORE_add_cert(m->trusted, leaf))
                return -ENOMEM;
        if (!X509_up_ref(leaf) || !sk_X509_push(m->seen, leaf))
                return -ENOMEM;
        if (X509_NAME_cmp(X509_get_subject_name(leaf), X509_get_issuer_name(leaf)) != 0) {
                if (!X509_up_ref(leaf) || !sk_X509_push(m->queue, leaf))
                        return -ENOMEM;
        }

        for (int depth = 0; depth < CHAIN_MAX_DEPTH && sk_X509_num(m->queue) > 0; depth++) {
                STACK_OF(X509) *level = m->queue;

                m->queue = sk_X509_new_null();
                if (!m->queue) {
                        sk_X509_pop_free(level, X509_free);
                        return -ENOMEM;
                }
                for (int i = 0; i < sk_X509_num(level); i++) {
                        r = m->lookup->foreach_issuer(m->lookup->userdata, sk_X509_value(level, i), take_candidate,
                                                      m);
                        /* Then what the message brought: never anchors, only links. */
                        for (int k = 0; r >= 0 && m->extra && k < sk_X509_num(m->extra); k++) {
                                X509 *x = sk_X509_value(m->extra, k);

                                if (X509_NAME_cmp(X509_get_subject_name(x),
                                                  X509_get_issuer_name(sk_X509_value(level, i))) == 0)
                                        r = take_candidate(x, false, m);
                        }
                        if (r < 0) {
                                sk_X509_pop_free(level, X509_free);
                                return r;
                        }
                }
                sk_X509_pop_free(level, X509_free);
        }
        return 0;
}

/* Where a verification's Findings hang on its X509_STORE_CTX; made once,
 * whichever thread validates first. */
static int verify_errors_index = -1;
static pthread_once_t verify_errors_once = PTHREAD_ONCE_INIT;

static void verify_errors_index_make(void) {
        verify_errors_index = X509_STORE_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void record_verify_error(Findings *f, X509_STORE_CTX *ctx) {
        int error = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        X509 *x = X509_STORE_CTX_get_current_cert(ctx);
        _cleanup_free_ char *subject = x ? who(x, depth) : strdup("A certificate in the chain");
        char date[11];
        time_t t;

        switch (error) {
        case X509_V_ERR_CRL_SIGNATURE_FAILURE:
        case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
        case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
                /* Not the issuer's word: it revokes nothing. */
                f->unusable_crl = X509_STORE_CTX_get0_current_crl(ctx);
                f->unusable_crl_depth = depth;
                revocation_unknown(f, x, depth, "is not signed by its issuer");
                return;

        case X509_V_ERR_UNABLE_TO_GET_CRL:
                revocation_unknown(f, x, depth, "is missing");
                return;
        case X509_V_ERR_CRL_HAS_EXPIRED:
                /* It still says what it revoked (OpenSSL applies it), not what was revoked since. */
                revocation_unknown(f, x, depth, "is past its next update");
                return;
        case X509_V_ERR_CRL_NOT_YET_VALID:
        case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
        case X509_V_ERR_DIFFERENT_CRL_SCOPE:
                revocation_unknown(f, x, depth, "cannot be used");
                return;

        case X509_V_ERR_CERT_REVOKED:
                if (f->unusable_crl && f->unusable_crl == X509_STORE_CTX_get0_current_crl(ctx) &&
                    f->unusable_crl_depth == depth)
                        return;
                finding(f, CERT_STATUS_REVOKED, "%s has been revoked by its issuer; do not use it.", strempty(subject));
                return;

        case X509_V_ERR_CERT_HAS_EXPIRED:
                if (x && asn1_time_to_time_t(X509_get0_notAfter(x), &t) >= 0) {
                        format_date(t, date);
                        finding(f, CERT_STATUS_EXPIRED, "%s expired on %s; a new certificate is needed.",
                                strempty(subject), date);
                } else
                        finding(f, CERT_STATUS_EXPIRED, "%s has expired; a new certificate is needed.",
                                strempty(subject));
                return;

        case X509_V_ERR_CERT_NOT_YET_VALID:
                if (x && asn1_time_to_time_t(X509_get0_notBefore(x), &t) >= 0) {
                        format_date(t, date);
                        finding(f, CERT_STATUS_NOT_YET_VALID, "%s is not valid before %s.", strempty(subject), date);
                } else
                        finding(f, CERT_STATUS_NOT_YET_VALID, "%s is not valid yet.", strempty(subject));
                return;

        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: {
                char issuer[256] = "";

                if (x)
                        X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
                finding(f, CERT_STATUS_UNTRUSTED,
                        "No chain to a trusted CA: the issuer %s of %s is not in the store; import it "
                        "(and trust its root CA).",
                        issuer, x && depth == 0 ? "the certificate" : "a CA certificate");
                return;
        }

        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_CERT_UNTRUSTED: {
                char cn[256] = "";

                if (x && X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) <= 0)
                        X509_NAME_oneline(X509_get_subject_name(x), cn, sizeof(cn));
                finding(f, CERT_STATUS_UNTRUSTED,
                        "No chain to a trusted CA: the root \"%s\" is not a trust anchor; import it with trust "
                        "if you trust it.",
                        cn);
                return;
        }

        default:
                finding(f, CERT_STATUS_UNTRUSTED, "%s failed verification: %s.", strempty(subject),
                        X509_verify_cert_error_string(error));
                return;
        }
}

static int verify_callback(int ok, X509_STORE_CTX *ctx) {
        Findings *f = X509_STORE_CTX_get_ex_data(ctx, verify_errors_index);

        if (!ok && f)
                record_verify_error(f, ctx);
        return 1; /* go on: every problem is collected, the worst one reported */
}

static bool is_weak_digest(int md_nid, const ValidationPolicy *policy) {
        switch (md_nid) {
        case NID_md2:
        case NID_md4:
        case NID_md5:
                return true;
        case NID_sha1:
                return !policy->allow_sha1_signatures;
        default:
                return false;
        }
}

/* Key sizes and signature digests, checked by us so the message can say
 * exactly what is too weak. The anchor's self-signature is not checked: trust
 * in it comes from the admin, not from that signature. */
static void check_strength(Findings *f, STACK_OF(X509) *chain, const ValidationPolicy *policy) {
        for (int depth = 0; depth < sk_X509_num(chain); depth++) {
                X509 *x = sk_X509_value(chain, depth);
                EVP_PKEY *pkey = X509_get0_pubkey(x);
                _cleanup_free_ char *subject = who(x, depth);
                int md_nid = NID_undef, bits;

                if (pkey && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
                        bits = EVP_PKEY_get_bits(pkey);
                        if (bits < (int) policy->minimum_rsa_bits)
                                finding(f, CERT_STATUS_WEAK,
                                        "%s has an RSA key of %d bits; at least %u bits are required.",
                                        strempty(subject), bits, policy->minimum_rsa_bits);
                }

                if (X509_check_issued(x, x) == X509_V_OK && depth == sk_X509_num(chain) - 1)
                        continue;
                if (X509_get_signature_info(x, &md_nid, NULL, NULL, NULL) && is_weak_digest(md_nid, policy))
                        finding(f, CERT_STATUS_WEAK, "%s is signed with %s, which is no longer safe.",
                                strempty(subject), OBJ_nid2sn(md_nid));
        }
}

/* Why x may not be used for purpose, or NULL when it may. */
static const char *usage_problem(X509 *x, CertPurpose purpose) {
        uint32_t flags = X509_get_extension_flags(x);

        if (X509_check_ca(x) > 0 && purpose == CERT_PURPOSE_ANY)
                return NULL; /* a CA certificate is not for mail itself */
        if (certificate_allows(x, purpose))
                return NULL;

        if ((flags & EXFLAG_XKUSAGE) && !(X509_get_extended_key_usage(x) & (XKU_SMIME | XKU_ANYEKU)))
                return "The certificate is not for mail: its extended key usage lacks emailProtection.";
        switch (purpose) {
        case CERT_PURPOSE_SIGN:
                return "The certificate's key usage does not allow signing mail.";
        case CERT_PURPOSE_ENCRYPT:
                return "The certificate's key usage does not allow encrypting mail.";
        default:
                return "The certificate's key usage allows neither signing nor encrypting mail.";
        }
}

static void common_name(X509_NAME *name, char *out, size_t size) {
        if (X509_NAME_get_text_by_NID(name, NID_commonName, out, (int) size) <= 0)
                X509_NAME_oneline(name, out, (int) size);
}

/* "2026-01-02 03:04:05 UTC" */
static void format_time(time_t t, char out[32]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                strcpy(out, "?");
}

static char *describe_ocsp(const OcspAnswer *a) {
        char checked[32], next[32], since[32];
        char *s;

        format_time(a->checked_at, checked);
        format_time(a->next_update, next);
        format_time(a->revoked_at, since);
        if (asprintf(&s, "%s%s%s by OCSP (%s) at %s, next update %s", ocsp_status_to_string(a->status),
                     a->status == OCSP_STATUS_REVOKED ? " since " : "", a->status == OCSP_STATUS_REVOKED ? since : "",
                     a->uri, checked, next) < 0)
                return NULL;
        return s;
}

/* What OCSP says of each certificate below the anchor of a chain to one,
 * under the methods that ask it. revoked is revoked; good settles what the
 * CRLs left unknown; no answer makes revocation unknown under ocsp, and
 * leaves it to the CRL under ocsp-then-crl. Where no current answer is
 * kept, a responder is asked (want_ocsp), and the CRL is not asked for
 * here: the owner falls back to it if OCSP gives none. */
static int judge_ocsp(Findings *f, const ValidationLookup *lookup, STACK_OF(X509) * chain,
                      const ValidationPolicy *policy, time_t now) {
        int n = sk_X509_num(chain);

        if (policy->revocation == REVOCATION_POLICY_NONE || policy->method == REVOCATION_METHOD_CRL)
                return 0;
        if (policy->method == REVOCATION_METHOD_OCSP) {
                /* The CRLs' absence says nothing here; only their revocations count. */
                f->revocation_unknown = 0;
                f->revocation_note = mfree(f->revocation_note);
        }
        if (f->message[CERT_STATUS_UNTRUSTED] || !lookup->get_ocsp)
                return 0;

        for (int depth = 0; depth < n - 1 && depth < 32; depth++) {
                X509 *x = sk_X509_value(chain, depth), *issuer = sk_X509_value(chain, depth + 1);
                OcspAnswer a = {};
                bool have;
                int r;

                r = lookup->get_ocsp(lookup->userdata, x, &a);
                if (r < 0 && r != -ENOENT)
                        return r;
                have = r >= 0 && a.next_update > now;
                if (have && depth == 0) {
                        free(f->revocation_source);
                        f->revocation_source = describe_ocsp(&a);
                }
                if (have && a.status == OCSP_STATUS_REVOKED) {
                        _cleanup_free_ char *subject = who(x, depth);

                        finding(f, CERT_STATUS_REVOKED,
                                "%s has been revoked by its issuer (said its OCSP responder %s); do not use it.",
                                strempty(subject), a.uri);
                        f->crl_not_wanted |= 1U << depth;
                } else if (have && a.status == OCSP_STATUS_GOOD) {
                        f->revocation_unknown &= ~(1U << depth);
                        f->crl_not_wanted |= 1U << depth;
                } else {
                        if (!have) {
                                if (lookup->want_ocsp)
                                        lookup->want_ocsp(lookup->want_crl_userdata, x, issuer);
                                f->crl_not_wanted |= 1U << depth;
                        }
                        if (policy->method == REVOCATION_METHOD_OCSP) {
                                char name[256] = "";

                                f->revocation_unknown |= 1U << depth;
                                common_name(X509_get_subject_name(x), name, sizeof(name));
                                if (!f->revocation_note &&
                                    asprintf(&f->revocation_note,
                                             "Revocation was not checked: no OCSP responder gave an answer for "
                                             "\"%s\".",
                                             name) < 0)
                                        f->revocation_note = NULL;
                        }
                }
                ocsp_answer_done(&a);
        }
        return 0;
}

/* The leaf's answer from the CRL of its issuer, when OCSP gave none. */
static void describe_crl(Findings *f, STACK_OF(X509_CRL) * crls, STACK_OF(X509) * chain,
                         const ValidationPolicy *policy) {
        X509 *leaf = sk_X509_value(chain, 0);
        X509_REVOKED *revoked = NULL;
        char issuer[256] = "", last[32], next[32];
        time_t t = 0;

        if (f->revocation_source || sk_X509_num(chain) < 2 || (f->revocation_unknown & 1U) ||
            policy->revocation == REVOCATION_POLICY_NONE || f->message[CERT_STATUS_UNTRUSTED])
                return;
        for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
                X509_CRL *crl = sk_X509_CRL_value(crls, i);

                if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(leaf)) != 0 ||
                    X509_CRL_verify(crl, X509_get0_pubkey(sk_X509_value(chain, 1))) != 1)
                        continue;
                common_name(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
                (void) asn1_time_to_time_t(X509_CRL_get0_lastUpdate(crl), &t);
                format_time(t, last);
                t = 0;
                if (X509_CRL_get0_nextUpdate(crl))
                        (void) asn1_time_to_time_t(X509_CRL_get0_nextUpdate(crl), &t);
                if (t > 0)
                        format_time(t, next);
                else
                        strcpy(next, "not said");
                if (asprintf(&f->revocation_source, "%s by the CRL of \"%s\" issued %s, next update %s",
                             X509_CRL_get0_by_cert(crl, &revoked, leaf) == 1 ? "revoked" : "good", issuer, last,
                             next) < 0)
                        f->revocation_source = NULL;
                return;
        }
}

/* What an unknown revocation comes to under policy, and a CRL asked for
 * where one would tell. The top of the chain is an anchor (or no chain was
 * found, which is worse): no CRL speaks for it. Only a chain to an anchor
 * has its CRLs fetched: the distribution points of anything else are
 * anyone's choice. */
static void judge_revocation(Findings *f, const ValidationLookup *lookup, STACK_OF(X509) * chain,
                             const ValidationPolicy *policy) {
        int n = sk_X509_num(chain);
        bool any = false;

        for (int depth = 0; depth < n - 1 && depth < 32; depth++)
                if (f->revocation_unknown & (1U << depth)) {
                        any = true;
                        if (lookup->want_crl && policy->revocation != REVOCATION_POLICY_NONE &&
                            policy->method != REVOCATION_METHOD_OCSP && !(f->crl_not_wanted & (1U << depth)) &&
                            !f->message[CERT_STATUS_UNTRUSTED])
                                lookup->want_crl(lookup->want_crl_userdata, sk_X509_value(chain, depth),
                                                 sk_X509_value(chain, depth + 1));
                }
        if (!any || !f->revocation_note)
                return;
        if (policy->revocation == REVOCATION_POLICY_HARD)
                finding(f, CERT_STATUS_REVOCATION_UNKNOWN, "%s", f->revocation_note);
        else if (policy->revocation == REVOCATION_POLICY_SOFT)
                f->note_revocation = true;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX *, X509_STORE_CTX_free);

/* Runs OpenSSL's chain building and verification over what the lookup knows;
 * every problem it meets becomes a finding. Returns the chain it built. */
static int verify_chain(ChainMaterial *m, X509 *x509, time_t now, Findings *findings, STACK_OF(X509) **ret_chain) {
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = NULL;
        STACK_OF(X509) *chain;
        X509_VERIFY_PARAM *param;

        ctx = X509_STORE_CTX_new();
        if (!ctx || !X509_STORE_CTX_init(ctx, m->trusted, x509, m->untrusted))
                return -ENOMEM;
        X509_STORE_CTX_set0_crls(ctx, m->crls);
        X509_STORE_CTX_set_verify_cb(ctx, verify_callback);
        X509_STORE_CTX_set_ex_data(ctx, verify_errors_index, findings);

        param = X509_STORE_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_time(param, now);
        /* Strength is judged by check_strength() against smimed's policy. */
        X509_VERIFY_PARAM_set_auth_level(param, 0);
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_CRL_CHECK |
                                                   X509_V_FLAG_CRL_CHECK_ALL);

        if (X509_verify_cert(ctx) < 0)
                return -EIO;

        chain = X509_STORE_CTX_get1_chain(ctx);
        if (!chain) {
                chain = sk_X509_new_null();
                if (!chain)
                        return -ENOMEM;
                if (!X509_up_ref(x509) || !sk_X509_push(chain, x509)) {
                        sk_X509_pop_free(chain, X509_free);
                        return -ENOMEM;
                }
        }
        *ret_chain = chain;
        return 0;
}

/* One verdict for purpose from what the chain showed: the worst finding, a
 * usage problem counted as wrong-usage. */
static int validation_make(const Findings *chain_findings, X509 *x509, STACK_OF(X509) *chain, CertPurpose purpose,
                           Validation *ret) {
        const char *usage = usage_problem(x509, purpose);
        CertStatus status = findings_worst(chain_findings);
        char date[11], *message = NULL;

        if (usage && (status == CERT_STATUS_VALID || status_rank(CERT_STATUS_WRONG_USAGE) < status_rank(status)))
                status = CERT_STATUS_WRONG_USAGE;

        if (status == CERT_STATUS_WRONG_USAGE && usage)
                message = strdup(usage);
        else if (status != CERT_STATUS_VALID)
                message = strdup(chain_findings->message[status]);
        else {
                time_t not_after = 0;

                (void) asn1_time_to_time_t(X509_get0_notAfter(x509), &not_after);
                format_date(not_after, date);
                if (asprintf(&message, "The certificate is valid until %s.%s%s", date,
                             chain_findings->note_revocation ? " " : "",
                             chain_findings->note_revocation ? chain_findings->revocation_note : "") < 0)
                        message = NULL;
        }
        if (!message)
                return -ENOMEM;

        ret->chain = X509_chain_up_ref(chain);
        if (!ret->chain) {
                free(message);
                return -ENOMEM;
        }
        ret->revocation = chain_findings->revocation_source ? strdup(chain_findings->revocation_source) : NULL;
        if (chain_findings->revocation_source && !ret->revocation) {
                sk_X509_pop_free(ret->chain, X509_free);
                free(message);
                return -ENOMEM;
        }
        ret->status = status;
        ret->message = message;
        return 0;
}

#define VALIDATION_CACHE_SIZE 256

typedef struct CachedValidation {
        char fingerprint[SHA256_HEX_SIZE];
        CertPurpose purpose;
        uint64_t generation;
        time_t now;
        ValidationPolicy policy;
        Validation validation;
} CachedValidation;

struct Validator {
        ValidationLookup lookup;
        /* Validations repeat: GetCapabilities and Sign ask about the same few
         * certificates many times a second. A result holds for the same
         * lookup generation, policy and second. The loop validates; the
         * mutex keeps the cache right should a worker ever do so. */
        pthread_mutex_t lock;
        CachedValidation cache[VALIDATION_CACHE_SIZE];
        size_t cache_next;
};

int validator_new(const ValidationLookup *lookup, Validator **ret) {
        Validator *v;

        if (!lookup || !lookup->foreach_issuer || !lookup->get_crl || !lookup->is_trust_anchor || !lookup->generation)
                return -EINVAL;
        v = calloc(1, sizeof(Validator));
        if (!v)
                return -ENOMEM;
        v->lookup = *lookup;
        if (pthread_mutex_init(&v->lock, NULL) != 0) {
                free(v);
                return -ENOMEM;
        }
        *ret = v;
        return 0;
}

Validator *validator_free(Validator *v) {
        if (!v)
                return NULL;
        for (size_t i = 0; i < VALIDATION_CACHE_SIZE; i++)
                validation_done(&v->cache[i].validation);
        pthread_mutex_destroy(&v->lock);
        return mfree(v);
}

int validate_certificate_purposes(Validator *v, X509 *x509, const ValidationPolicy *policy, time_t now,
                                  const CertPurpose *purposes, size_t n, Validation *ret) {
        return validate_certificate_extra(v, x509, NULL, policy, now, purposes, n, ret);
}

int validate_certificate_extra(Validator *v, X509 *x509, STACK_OF(X509) *extra, const ValidationPolicy *policy,
                               time_t now, const CertPurpose *purposes, size_t n, Validation *ret) {
        _cleanup_(findings_done) Findings findings = {};
        _cleanup_(chain_material_done) ChainMaterial m = { .lookup = &v->lookup, .extra = extra };
        _cleanup_(sk_X509_free_allp) STACK_OF(X509) *chain = NULL;
        bool trusted = false;
        int r;

        (void) pthread_once(&verify_errors_once, verify_errors_index_make);
        if (verify_errors_index < 0)
                return -ENOMEM;

        r = v->lookup.is_trust_anchor(v->lookup.userdata, x509, &trusted);
        if (r < 0)
                return r;

        r = chain_material_collect(&m, x509, trusted);
        if (r < 0)
                return r;
        r = verify_chain(&m, x509, now, &findings, &chain);
        if (r < 0)
                return r;
        check_strength(&findings, chain, policy);
        r = judge_ocsp(&findings, &v->lookup, chain, policy, now);
        if (r < 0)
                return r;
        describe_crl(&findings, m.crls, chain, policy);
        judge_revocation(&findings, &v->lookup, chain, policy);

        for (size_t i = 0; i < n; i++) {
                r = validation_make(&findings, x509, chain, purposes[i], &ret[i]);
                if (r < 0) {
                        for (size_t j = 0; j < i; j++)
                                validation_done(&ret[j]);
                        return r;
                }
        }
        return 0;
}

static int validation_copy(const Validation *from, Validation *to) {
        *to = (Validation) { .status = from->status };
        to->message = strdup(from->message);
        to->chain = X509_chain_up_ref(from->chain);
        to->revocation = from->revocation ? strdup(from->revocation) : NULL;
        if (!to->message || !to->chain || (from->revocation && !to->revocation)) {
                validation_done(to);
                return -ENOMEM;
        }
        return 0;
}

static CachedValidation *validation_cache_find(Validator *v, const char *fingerprint, CertPurpose purpose,
                                               uint64_t generation, const ValidationPolicy *policy, time_t now) {
        for (size_t i = 0; i < VALIDATION_CACHE_SIZE; i++) {
                CachedValidation *c = &v->cache[i];

                if (c->validation.message && c->purpose == purpose && c->now == now && c->generation == generation &&
                    c->policy.minimum_rsa_bits == policy->minimum_rsa_bits &&
                    c->policy.allow_sha1_signatures == policy->allow_sha1_signatures &&
                    c->policy.revocation == policy->revocation && c->policy.method == policy->method &&
                    streq(c->fingerprint, fingerprint))
                        return c;
        }
        return NULL;
}

/* Where a new result goes. An entry of another second (or lookup
 * generation) can never be found again, yet holds its chain: the result for
 * the same certificate and purpose replaces it, else any such dead entry,
 * and only then the oldest of the ring. So the cache holds about one entry
 * per certificate and purpose in use, not 256 copies of the same chains
 * made in the last few seconds (seen as RSS growth in tests/test-load.c). */
static CachedValidation *validation_cache_slot(Validator *v, const char *fingerprint, CertPurpose purpose,
                                               uint64_t generation, time_t now) {
        CachedValidation *dead = NULL, *c;

        for (size_t i = 0; i < VALIDATION_CACHE_SIZE; i++) {
                c = &v->cache[i];
                if (!c->validation.message)
                        dead = dead ?: c;
                else if (c->purpose == purpose && streq(c->fingerprint, fingerprint))
                        return c;
                else if (c->now != now || c->generation != generation)
                        dead = dead ?: c;
        }
        if (dead)
                return dead;

        c = &v->cache[v->cache_next];
        v->cache_next = (v->cache_next + 1) % VALIDATION_CACHE_SIZE;
        return c;
}

int validate_certificate(Validator *v, X509 *x509, CertPurpose purpose, const ValidationPolicy *policy, time_t now,
                         Validation *ret) {
        char fingerprint[SHA256_HEX_SIZE];
        CachedValidation *c;
        uint64_t generation;
        int r;

        r = x509_fingerprint(x509, fingerprint);
        if (r < 0)
                return r;
        /* Read before validating: a change meanwhile makes the entry stale, never the other way round. */
        generation = v->lookup.generation(v->lookup.userdata);

        pthread_mutex_lock(&v->lock);
        c = validation_cache_find(v, fingerprint, purpose, generation, policy, now);
        r = c ? validation_copy(&c->validation, ret) : 1;
        pthread_mutex_unlock(&v->lock);
        if (r <= 0)
                return r;

        r = validate_certificate_purposes(v, x509, policy, now, &purpose, 1, ret);
        if (r < 0)
                return r;

        pthread_mutex_lock(&v->lock);
        c = validation_cache_slot(v, fingerprint, purpose, generation, now);
        validation_done(&c->validation);
        if (validation_copy(ret, &c->validation) >= 0) {
                memcpy(c->fingerprint, fingerprint, sizeof(fingerprint));
                c->purpose = purpose;
                c->generation = generation;
                c->now = now;
                c->policy = *policy;
        }
        pthread_mutex_unlock(&v->lock);
        return 0;
}

void validation_done(Validation *v) {
        free(v->message);
        free(v->revocation);
        sk_X509_pop_free(v->chain, X509_free);
        *v = (Validation) {};
}
