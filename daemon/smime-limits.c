/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "log.h"
#include "message.h"
#include "smime-limits.h"

/* The shape of a CMS ContentInfo as OpenSSL's CMS templates (cms_asn1.c)
 * decode it, with only the parts smimed counts spelt out. Everything else
 * is SKIP: any one element, whose content is neither copied nor kept, so
 * that the 100 MB eContent of an opaque message costs nothing here.
 * Counted SETs hold one NULL per element. Wherever OpenSSL accepts
 * something, the shape must too; it may accept more (CMS refuses that
 * later). */

static int skip_new(ASN1_VALUE **pval, const ASN1_ITEM *it) {
        *pval = NULL;
        return 1;
}

static void skip_free(ASN1_VALUE **pval, const ASN1_ITEM *it) {
        *pval = NULL;
}

/* The decoder has found the element's end (asn1_find_end() for indefinite
 * lengths); nothing to keep. */
static int skip_c2i(ASN1_VALUE **pval, const unsigned char *cont, int len, int utype, char *free_cont,
                    const ASN1_ITEM *it) {
        return 1;
}

static const ASN1_PRIMITIVE_FUNCS skip_funcs = {
        .prim_new = skip_new,
        .prim_free = skip_free,
        .prim_clear = skip_free,
        .prim_c2i = skip_c2i,
};

static_ASN1_ITEM_start(SKIP)
        ASN1_ITYPE_PRIMITIVE, V_ASN1_ANY, NULL, 0, &skip_funcs, 0, "SKIP"
ASN1_ITEM_end(SKIP)

typedef struct ShapeSignerInfo {
        ASN1_VALUE *version, *sid, *digest_algorithm;
        STACK_OF(ASN1_VALUE) *signed_attrs;
        ASN1_VALUE *signature_algorithm, *signature;
        STACK_OF(ASN1_VALUE) *unsigned_attrs;
} ShapeSignerInfo;

ASN1_SEQUENCE(ShapeSignerInfo) = {
        ASN1_SIMPLE(ShapeSignerInfo, version, SKIP),
        ASN1_SIMPLE(ShapeSignerInfo, sid, SKIP),
        ASN1_SIMPLE(ShapeSignerInfo, digest_algorithm, SKIP),
        ASN1_IMP_SET_OF_OPT(ShapeSignerInfo, signed_attrs, SKIP, 0),
        ASN1_SIMPLE(ShapeSignerInfo, signature_algorithm, SKIP),
        ASN1_SIMPLE(ShapeSignerInfo, signature, SKIP),
        ASN1_IMP_SET_OF_OPT(ShapeSignerInfo, unsigned_attrs, SKIP, 1),
} static_ASN1_SEQUENCE_END(ShapeSignerInfo)

typedef struct ShapeSignedData {
        ASN1_VALUE *version;
        STACK_OF(ASN1_VALUE) *digest_algorithms;
        ASN1_VALUE *encap_content_info;
        STACK_OF(ASN1_VALUE) *certificates, *crls;
        STACK_OF(ASN1_VALUE) *signer_infos; /* of ShapeSignerInfo */
} ShapeSignedData;

ASN1_SEQUENCE(ShapeSignedData) = {
        ASN1_SIMPLE(ShapeSignedData, version, SKIP),
        ASN1_SET_OF(ShapeSignedData, digest_algorithms, SKIP),
        ASN1_SIMPLE(ShapeSignedData, encap_content_info, SKIP),
        ASN1_IMP_SET_OF_OPT(ShapeSignedData, certificates, SKIP, 0),
        ASN1_IMP_SET_OF_OPT(ShapeSignedData, crls, SKIP, 1),
        ASN1_SET_OF(ShapeSignedData, signer_infos, ShapeSignerInfo),
} static_ASN1_SEQUENCE_END(ShapeSignedData)

typedef struct ShapeOriginatorInfo {
        STACK_OF(ASN1_VALUE) *certificates, *crls;
} ShapeOriginatorInfo;

ASN1_SEQUENCE(ShapeOriginatorInfo) = {
        ASN1_IMP_SET_OF_OPT(ShapeOriginatorInfo, certificates, SKIP, 0),
        ASN1_IMP_SET_OF_OPT(ShapeOriginatorInfo, crls, SKIP, 1),
} static_ASN1_SEQUENCE_END(ShapeOriginatorInfo)

typedef struct ShapeEnvelopedData {
        ASN1_VALUE *version;
        ShapeOriginatorInfo *originator_info;
        STACK_OF(ASN1_VALUE) *recipient_infos;
        ASN1_VALUE *encrypted_content_info;
        STACK_OF(ASN1_VALUE) *unprotected_attrs;
} ShapeEnvelopedData;

ASN1_SEQUENCE(ShapeEnvelopedData) = {
        ASN1_SIMPLE(ShapeEnvelopedData, version, SKIP),
        ASN1_IMP_OPT(ShapeEnvelopedData, originator_info, ShapeOriginatorInfo, 0),
        ASN1_SET_OF(ShapeEnvelopedData, recipient_infos, SKIP),
        ASN1_SIMPLE(ShapeEnvelopedData, encrypted_content_info, SKIP),
        ASN1_IMP_SET_OF_OPT(ShapeEnvelopedData, unprotected_attrs, SKIP, 1),
} static_ASN1_SEQUENCE_END(ShapeEnvelopedData)

/* RFC 5083 tags authAttrs [1] and unauthAttrs [2]; OpenSSL's template has
 * [2] and [3]. Either is taken, so that the shape accepts what OpenSSL
 * does and counts the attributes of both. */
typedef struct ShapeAuthEnvelopedData {
        ASN1_VALUE *version;
        ShapeOriginatorInfo *originator_info;
        STACK_OF(ASN1_VALUE) *recipient_infos;
        ASN1_VALUE *auth_encrypted_content_info;
        STACK_OF(ASN1_VALUE) *auth_attrs_rfc, *auth_attrs_openssl;
        ASN1_VALUE *mac;
        STACK_OF(ASN1_VALUE) *unauth_attrs_rfc, *unauth_attrs_openssl;
} ShapeAuthEnvelopedData;

ASN1_SEQUENCE(ShapeAuthEnvelopedData) = {
        ASN1_SIMPLE(ShapeAuthEnvelopedData, version, SKIP),
        ASN1_IMP_OPT(ShapeAuthEnvelopedData, originator_info, ShapeOriginatorInfo, 0),
        ASN1_SET_OF(ShapeAuthEnvelopedData, recipient_infos, SKIP),
        ASN1_SIMPLE(ShapeAuthEnvelopedData, auth_encrypted_content_info, SKIP),
        ASN1_IMP_SET_OF_OPT(ShapeAuthEnvelopedData, auth_attrs_rfc, SKIP, 1),
        ASN1_IMP_SET_OF_OPT(ShapeAuthEnvelopedData, auth_attrs_openssl, SKIP, 2),
        ASN1_SIMPLE(ShapeAuthEnvelopedData, mac, SKIP),
        ASN1_IMP_SET_OF_OPT(ShapeAuthEnvelopedData, unauth_attrs_rfc, SKIP, 2),
        ASN1_IMP_SET_OF_OPT(ShapeAuthEnvelopedData, unauth_attrs_openssl, SKIP, 3),
} static_ASN1_SEQUENCE_END(ShapeAuthEnvelopedData)

typedef struct ShapeContentInfo {
        ASN1_OBJECT *content_type;
        union {
                ShapeSignedData *signed_data;
                ShapeEnvelopedData *enveloped_data;
                ShapeAuthEnvelopedData *auth_enveloped_data;
                ASN1_VALUE *other;
        } d;
} ShapeContentInfo;

/* Other content types (data, digested, compressed, …) have nothing
 * counted; smime_cms_layer() refuses them. */
ASN1_ADB_TEMPLATE(shape_other) = ASN1_EXP(ShapeContentInfo, d.other, SKIP, 0);

ASN1_ADB(ShapeContentInfo) = {
        ADB_ENTRY(NID_pkcs7_signed, ASN1_EXP(ShapeContentInfo, d.signed_data, ShapeSignedData, 0)),
        ADB_ENTRY(NID_pkcs7_enveloped, ASN1_EXP(ShapeContentInfo, d.enveloped_data, ShapeEnvelopedData, 0)),
        ADB_ENTRY(NID_id_smime_ct_authEnvelopedData,
                  ASN1_EXP(ShapeContentInfo, d.auth_enveloped_data, ShapeAuthEnvelopedData, 0)),
} ASN1_ADB_END(ShapeContentInfo, 0, content_type, 0, &shape_other_tt, NULL);

ASN1_SEQUENCE(ShapeContentInfo) = {
        ASN1_SIMPLE(ShapeContentInfo, content_type, ASN1_OBJECT),
        ASN1_ADB_OBJECT(ShapeContentInfo),
} static_ASN1_SEQUENCE_END(ShapeContentInfo)

static void shape_free(ShapeContentInfo *shape) {
        ASN1_item_free((ASN1_VALUE *) shape, ASN1_ITEM_rptr(ShapeContentInfo));
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ShapeContentInfo *, shape_free);

static size_t count(const STACK_OF(ASN1_VALUE) *sk) {
        return sk ? (size_t) sk_ASN1_VALUE_num(sk) : 0;
}

static int over(size_t n, size_t max, const char *what, const char *name, char **ret_message) {
        if (n <= max)
                return 0;
        return message_fail(ret_message, -EBADMSG, "The message carries %zu %s; smimed accepts at most %zu (%s).", n,
                            what, max, name);
}

/* over() with the constant's name: CHECK(n, SMIME_MAX_CRLS, "CRLs"). */
#define CHECK(n, limit, what)                                                  \
        do {                                                                   \
                int r_ = over((n), (limit), (what), #limit, ret_message);      \
                if (r_ < 0)                                                    \
                        return r_;                                             \
        } while (0)

static int check_originator(const ShapeOriginatorInfo *o, char **ret_message) {
        CHECK(o ? count(o->certificates) : 0, SMIME_MAX_CERTIFICATES, "certificates");
        CHECK(o ? count(o->crls) : 0, SMIME_MAX_CRLS, "CRLs");
        return 0;
}

static int check_signed(const ShapeSignedData *sd, char **ret_message) {
        STACK_OF(ASN1_VALUE) *infos = sd->signer_infos;

        CHECK(count(sd->digest_algorithms), SMIME_MAX_DIGEST_ALGORITHMS, "digest algorithms");
        CHECK(count(infos), SMIME_MAX_SIGNER_INFOS, "signerInfos");
        CHECK(count(sd->certificates), SMIME_MAX_CERTIFICATES, "certificates");
        CHECK(count(sd->crls), SMIME_MAX_CRLS, "CRLs");
        for (size_t i = 0; i < count(infos); i++) {
                const ShapeSignerInfo *si = (const ShapeSignerInfo *) sk_ASN1_VALUE_value(infos, (int) i);
                size_t n = count(si->signed_attrs) + count(si->unsigned_attrs);
                char what[64];

                snprintf(what, sizeof(what), "attributes in signerInfo %zu", i + 1);
                CHECK(n, SMIME_MAX_ATTRIBUTES, what);
        }
        return 0;
}

static int check_enveloped(const ShapeEnvelopedData *ed, char **ret_message) {
        CHECK(count(ed->recipient_infos), SMIME_MAX_RECIPIENT_INFOS, "recipientInfos");
        CHECK(count(ed->unprotected_attrs), SMIME_MAX_ATTRIBUTES, "unprotected attributes");
        return check_originator(ed->originator_info, ret_message);
}

static int check_auth_enveloped(const ShapeAuthEnvelopedData *ad, char **ret_message) {
        CHECK(count(ad->recipient_infos), SMIME_MAX_RECIPIENT_INFOS, "recipientInfos");
        CHECK(count(ad->auth_attrs_rfc) + count(ad->auth_attrs_openssl) + count(ad->unauth_attrs_rfc) +
                      count(ad->unauth_attrs_openssl),
              SMIME_MAX_ATTRIBUTES, "attributes");
        return check_originator(ad->originator_info, ret_message);
}

int smime_limits_check_der(const unsigned char *der, size_t size, char **ret_message) {
        _cleanup_(shape_freep) ShapeContentInfo *shape = NULL;
        const unsigned char *p = der;

        if (size > LONG_MAX)
                return -EINVAL;
        shape = (ShapeContentInfo *) ASN1_item_d2i(NULL, &p, (long) size, ASN1_ITEM_rptr(ShapeContentInfo));
        if (!shape) {
                ERR_clear_error();
                return -EINVAL;
        }

        switch (OBJ_obj2nid(shape->content_type)) {
        case NID_pkcs7_signed:
                return check_signed(shape->d.signed_data, ret_message);
        case NID_pkcs7_enveloped:
                return check_enveloped(shape->d.enveloped_data, ret_message);
        case NID_id_smime_ct_authEnvelopedData:
                return check_auth_enveloped(shape->d.auth_enveloped_data, ret_message);
        default:
                return 0;
        }
}

int smime_limits_check_cms(CMS_ContentInfo *cms, char **ret_message) {
        STACK_OF(CMS_RecipientInfo) *infos;
        size_t n = 0;

        switch (OBJ_obj2nid(CMS_get0_type(cms))) {
        case NID_pkcs7_enveloped:
        case NID_id_smime_ct_authEnvelopedData:
                break;
        default:
                return 0;
        }
        infos = CMS_get0_RecipientInfos(cms);
        for (int i = 0; infos && i < sk_CMS_RecipientInfo_num(infos); i++) {
                CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(infos, i);

                if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE) {
                        STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);

                        n += reks ? (size_t) sk_CMS_RecipientEncryptedKey_num(reks) : 0;
                } else
                        n++;
        }
        CHECK(n, SMIME_MAX_RECIPIENT_INFOS, "recipients (recipientInfos, and recipientEncryptedKeys of key agreement)");
        return 0;
}

static bool limits_enabled = true;

static void read_environment(void) {
        const char *v = getenv(SMIME_NO_STRUCTURE_LIMITS_ENV);

        limits_enabled = !(v && streq(v, "1"));
        if (!limits_enabled)
                log_warning("%s=1: the CMS structure limits are off. This is for tests only.",
                            SMIME_NO_STRUCTURE_LIMITS_ENV);
}

bool smime_structure_limits_enabled(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        (void) pthread_once(&once, read_environment);
        return limits_enabled;
}
