/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "cms-edit.h"
#include "macro.h"

#define TAG_SEQUENCE 0x30
#define TAG_SET 0x31
#define TAG_CONTEXT(n) (0xa0 | (n)) /* [n], constructed */

typedef STACK_OF(ASN1_TYPE) Elements;

static void elements_free(Elements *e) {
        sk_ASN1_TYPE_pop_free(e, ASN1_TYPE_free);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Elements *, elements_free);

/* The whole encoding of an element decoded as ANY: for SEQUENCE, SET and
 * tagged ones OpenSSL keeps it as it came. */
static int element_tlv(const ASN1_TYPE *t, const unsigned char **ret, size_t *ret_size) {
        int type = ASN1_TYPE_get(t);

        if (type != V_ASN1_SEQUENCE && type != V_ASN1_SET && type != V_ASN1_OTHER)
                return -EINVAL;
        *ret = ASN1_STRING_get0_data(t->value.asn1_string);
        *ret_size = (size_t) ASN1_STRING_length(t->value.asn1_string);
        return 0;
}

static unsigned char element_tag(const ASN1_TYPE *t) {
        const unsigned char *tlv;
        size_t size;

        return element_tlv(t, &tlv, &size) < 0 || size == 0 ? 0 : tlv[0];
}

static int element_replace(ASN1_TYPE *t, const unsigned char *tlv, size_t size) {
        ASN1_STRING *s = ASN1_STRING_type_new(ASN1_TYPE_get(t));

        if (!s || !ASN1_STRING_set(s, tlv, (int) size)) {
                ASN1_STRING_free(s);
                return -ENOMEM;
        }
        ASN1_TYPE_set(t, ASN1_TYPE_get(t), s);
        return 0;
}

/* The elements of the SEQUENCE (set false) or SET OF whose encoding is tlv,
 * whatever its tag. */
static int elements_open(const unsigned char *tlv, size_t size, bool set, Elements **ret) {
        _cleanup_free_ unsigned char *copy = NULL;
        const unsigned char *p;

        if (size == 0)
                return -EINVAL;
        copy = malloc(size);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, tlv, size);
        copy[0] = set ? TAG_SET : TAG_SEQUENCE;
        p = copy;
        *ret = set ? d2i_ASN1_SET_ANY(NULL, &p, (long) size) : d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long) size);
        return *ret ? 0 : -EBADMSG;
}

/* Encodes the elements again, with tag in front. */
static int elements_close(const Elements *e, bool set, unsigned char tag, unsigned char **ret, size_t *ret_size) {
        unsigned char *der = NULL;
        int len = set ? i2d_ASN1_SET_ANY(e, &der) : i2d_ASN1_SEQUENCE_ANY(e, &der);

        if (len <= 0)
                return -ENOMEM;
        der[0] = tag;
        *ret = der;
        *ret_size = (size_t) len;
        return 0;
}

static int repeat_first(Elements *e, size_t n) {
        if (sk_ASN1_TYPE_num(e) <= 0 || (size_t) sk_ASN1_TYPE_num(e) > n)
                return -EINVAL;
        while ((size_t) sk_ASN1_TYPE_num(e) < n) {
                ASN1_TYPE *first = sk_ASN1_TYPE_value(e, 0), *copy = ASN1_TYPE_new();

                if (!copy || !ASN1_TYPE_set1(copy, ASN1_TYPE_get(first), first->value.ptr) ||
                    !sk_ASN1_TYPE_push(e, copy)) {
                        ASN1_TYPE_free(copy);
                        return -ENOMEM;
                }
        }
        return 0;
}

/* An attribute nobody knows, for sets that have to be made. */
static int new_attribute_set(unsigned char tag, ASN1_TYPE **ret) {
        static const unsigned char value[] = "smimed test";
        X509_ATTRIBUTE *a = X509_ATTRIBUTE_create_by_txt(NULL, "1.3.6.1.4.1.99999.1", V_ASN1_UTF8STRING, value,
                                                        (int) sizeof(value) - 1);
        unsigned char *der = NULL, *tlv = NULL;
        _cleanup_(elements_freep) Elements *e = sk_ASN1_TYPE_new_null();
        ASN1_TYPE *t = ASN1_TYPE_new();
        const unsigned char *p;
        size_t size;
        int len, r = -ENOMEM;

        len = a ? i2d_X509_ATTRIBUTE(a, &der) : -1;
        X509_ATTRIBUTE_free(a);
        p = der;
        if (len > 0 && e && t && d2i_ASN1_TYPE(&t, &p, len) && sk_ASN1_TYPE_push(e, t)) {
                t = NULL;
                r = elements_close(e, true, tag, &tlv, &size);
        }
        OPENSSL_free(der);
        ASN1_TYPE_free(t);
        if (r < 0)
                return r;
        p = tlv;
        *ret = d2i_ASN1_TYPE(NULL, &p, (long) size);
        OPENSSL_free(tlv);
        return *ret ? 0 : -ENOMEM;
}

static int find_tag(const Elements *e, unsigned char tag) {
        for (int i = 0; i < sk_ASN1_TYPE_num(e); i++)
                if (element_tag(sk_ASN1_TYPE_value(e, i)) == tag)
                        return i;
        return -1;
}

/* What to do with the set once found: repeat its first element up to n, or
 * count its elements. */
typedef struct Edit {
        size_t n;
        bool count_only;
        size_t count;
} Edit;

/* Applies the edit to the set element t (a SET OF, maybe implicitly
 * tagged), or to the SEQUENCE OF when sequence. */
static int edit_set(ASN1_TYPE *t, bool sequence, Edit *edit) {
        _cleanup_(elements_freep) Elements *e = NULL;
        const unsigned char *tlv;
        unsigned char *out = NULL;
        size_t size, out_size;
        int r;

        r = element_tlv(t, &tlv, &size);
        if (r >= 0)
                r = elements_open(tlv, size, !sequence, &e);
        if (r < 0)
                return r;
        edit->count = (size_t) sk_ASN1_TYPE_num(e);
        if (edit->count_only)
                return 0;
        r = repeat_first(e, edit->n);
        if (r >= 0)
                r = elements_close(e, !sequence, tlv[0], &out, &out_size);
        if (r >= 0)
                r = element_replace(t, out, out_size);
        OPENSSL_free(out);
        return r;
}

/* The attribute set with tag in a SignerInfo or EnvelopedData whose
 * elements are e; made (with one attribute) at the end when absent. */
static int edit_attributes(Elements *e, unsigned char tag, bool make, Edit *edit) {
        int i = find_tag(e, tag);
        ASN1_TYPE *made = NULL;

        if (i < 0 && edit->count_only) {
                edit->count = 0;
                return 0;
        }
        if (i < 0) {
                if (!make || new_attribute_set(tag, &made) < 0)
                        return -ENOENT;
                if (!sk_ASN1_TYPE_push(e, made)) {
                        ASN1_TYPE_free(made);
                        return -ENOMEM;
                }
                i = sk_ASN1_TYPE_num(e) - 1;
        }
        return edit_set(sk_ASN1_TYPE_value(e, i), false, edit);
}

/* Opens the element at index i of parent as SEQUENCE (set false) or SET,
 * lets fn change it, and puts it back. */
typedef int (*InnerEdit)(Elements *inner, CmsEditSet set, Edit *edit);

static int edit_inside(Elements *parent, int i, bool set, InnerEdit fn, CmsEditSet which, Edit *edit) {
        _cleanup_(elements_freep) Elements *inner = NULL;
        ASN1_TYPE *t = i >= 0 ? sk_ASN1_TYPE_value(parent, i) : NULL;
        const unsigned char *tlv;
        unsigned char *out = NULL;
        size_t size, out_size;
        int r;

        if (!t)
                return -ENOENT;
        r = element_tlv(t, &tlv, &size);
        if (r >= 0)
                r = elements_open(tlv, size, set, &inner);
        if (r >= 0)
                r = fn(inner, which, edit);
        if (r < 0 || edit->count_only)
                return r;
        r = elements_close(inner, set, tlv[0], &out, &out_size);
        if (r >= 0)
                r = element_replace(t, out, out_size);
        OPENSSL_free(out);
        return r;
}

static int edit_signer_info(Elements *si, CmsEditSet which, Edit *edit) {
        if (which == CMS_EDIT_SIGNED_ATTRIBUTES)
                return edit_attributes(si, TAG_CONTEXT(0), false, edit);
        return edit_attributes(si, TAG_CONTEXT(1), true, edit);
}

static int edit_first_signer_info(Elements *sis, CmsEditSet which, Edit *edit) {
        return edit_inside(sis, 0, false, edit_signer_info, which, edit);
}

static int edit_kari(Elements *kari, CmsEditSet which, Edit *edit) {
        int last = sk_ASN1_TYPE_num(kari) - 1;

        return last < 0 ? -ENOENT : edit_set(sk_ASN1_TYPE_value(kari, last), true, edit);
}

static int edit_first_kari(Elements *ris, CmsEditSet which, Edit *edit) {
        if (sk_ASN1_TYPE_num(ris) < 1 || element_tag(sk_ASN1_TYPE_value(ris, 0)) != TAG_CONTEXT(1))
                return -ENOENT;
        return edit_inside(ris, 0, false, edit_kari, which, edit);
}

static int edit_signed_data(Elements *sd, CmsEditSet which, Edit *edit) {
        int last = sk_ASN1_TYPE_num(sd) - 1;

        switch (which) {
        case CMS_EDIT_DIGEST_ALGORITHMS:
                return sk_ASN1_TYPE_num(sd) < 2 ? -ENOENT : edit_set(sk_ASN1_TYPE_value(sd, 1), false, edit);
        case CMS_EDIT_CERTIFICATES:
        case CMS_EDIT_CRLS: {
                int i = find_tag(sd, which == CMS_EDIT_CERTIFICATES ? TAG_CONTEXT(0) : TAG_CONTEXT(1));

                if (i < 0 && edit->count_only) {
                        edit->count = 0;
                        return 0;
                }
                return i < 0 ? -ENOENT : edit_set(sk_ASN1_TYPE_value(sd, i), false, edit);
        }
        case CMS_EDIT_SIGNER_INFOS:
                return last < 0 ? -ENOENT : edit_set(sk_ASN1_TYPE_value(sd, last), false, edit);
        case CMS_EDIT_SIGNED_ATTRIBUTES:
        case CMS_EDIT_UNSIGNED_ATTRIBUTES:
                return edit_inside(sd, last, true, edit_first_signer_info, which, edit);
        default:
                return -EINVAL;
        }
}

static int edit_enveloped_data(Elements *ed, CmsEditSet which, Edit *edit) {
        int ris = find_tag(ed, TAG_SET);

        switch (which) {
        case CMS_EDIT_RECIPIENT_INFOS:
                return ris < 0 ? -ENOENT : edit_set(sk_ASN1_TYPE_value(ed, ris), false, edit);
        case CMS_EDIT_RECIPIENT_ENCRYPTED_KEYS:
                return edit_inside(ed, ris, true, edit_first_kari, which, edit);
        case CMS_EDIT_UNPROTECTED_ATTRIBUTES:
                return edit_attributes(ed, TAG_CONTEXT(1), true, edit);
        default:
                return -EINVAL;
        }
}

/* Edits the content ([0] EXPLICIT, t) of a ContentInfo. */
static int edit_content(ASN1_TYPE *t, int nid, CmsEditSet which, Edit *edit) {
        _cleanup_(elements_freep) Elements *inner = NULL;
        const unsigned char *tlv, *p;
        unsigned char *out = NULL, *wrapped = NULL, *q;
        size_t size, out_size;
        long len;
        int tag, class, r, total;

        r = element_tlv(t, &tlv, &size);
        if (r < 0)
                return r;
        p = tlv;
        if (ASN1_get_object(&p, &len, &tag, &class, (long) size) & 0x80)
                return -EBADMSG;
        /* Indefinite: len is 0, the content runs to the end-of-contents. */
        r = elements_open(p, size - (size_t) (p - tlv), false, &inner);
        if (r < 0)
                return r;
        if (nid == NID_pkcs7_signed)
                r = edit_signed_data(inner, which, edit);
        else if (nid == NID_pkcs7_enveloped || nid == NID_id_smime_ct_authEnvelopedData)
                r = edit_enveloped_data(inner, which, edit);
        else
                r = -EINVAL;
        if (r < 0 || edit->count_only)
                return r;

        r = elements_close(inner, false, TAG_SEQUENCE, &out, &out_size);
        if (r < 0)
                return r;
        total = ASN1_object_size(1, (int) out_size, 0);
        wrapped = q = OPENSSL_malloc((size_t) total);
        if (wrapped) {
                ASN1_put_object(&q, 1, (int) out_size, 0, V_ASN1_CONTEXT_SPECIFIC);
                memcpy(q, out, out_size);
                r = element_replace(t, wrapped, (size_t) total);
        } else
                r = -ENOMEM;
        OPENSSL_free(out);
        OPENSSL_free(wrapped);
        return r;
}

static int edit_der(const unsigned char *der, size_t size, CmsEditSet which, Edit *edit, unsigned char **ret,
                    size_t *ret_size) {
        _cleanup_(elements_freep) Elements *ci = NULL;
        ASN1_TYPE *type, *content;
        int r;

        r = elements_open(der, size, false, &ci);
        if (r < 0)
                return r;
        if (sk_ASN1_TYPE_num(ci) != 2)
                return -EBADMSG;
        type = sk_ASN1_TYPE_value(ci, 0);
        content = sk_ASN1_TYPE_value(ci, 1);
        if (ASN1_TYPE_get(type) != V_ASN1_OBJECT)
                return -EBADMSG;
        r = edit_content(content, OBJ_obj2nid(type->value.object), which, edit);
        if (r < 0 || edit->count_only)
                return r;
        return elements_close(ci, false, TAG_SEQUENCE, ret, ret_size);
}

int cms_edit_repeat(const unsigned char *der, size_t size, CmsEditSet set, size_t n, unsigned char **ret,
                    size_t *ret_size) {
        Edit edit = { .n = n };

        return edit_der(der, size, set, &edit, ret, ret_size);
}

int cms_edit_count(const unsigned char *der, size_t size, CmsEditSet set, size_t *ret) {
        Edit edit = { .count_only = true };
        int r;

        r = edit_der(der, size, set, &edit, NULL, NULL);
        if (r < 0)
                return r;
        *ret = edit.count;
        return 0;
}

int cms_edit_der(CMS_ContentInfo *cms, BIO *stream_in, unsigned char **ret, size_t *ret_size) {
        BIO *out = BIO_new(BIO_s_mem());
        char *data;
        long len;
        int ok;

        if (!out)
                return -ENOMEM;
        ok = stream_in ? i2d_CMS_bio_stream(out, cms, stream_in, CMS_STREAM) : i2d_CMS_bio(out, cms);
        len = BIO_get_mem_data(out, &data);
        if (ok && len > 0) {
                *ret = OPENSSL_memdup(data, (size_t) len);
                *ret_size = (size_t) len;
        }
        BIO_free(out);
        return ok && len > 0 ? (*ret ? 0 : -ENOMEM) : -EIO;
}

/* base64 of der in lines of 64, each ending in "\n". */
static char *base64_lines(const unsigned char *der, size_t size) {
        size_t lines = (size + 47) / 48, cap = lines * 66 + 1, n = 0;
        char *out = malloc(cap);

        if (!out)
                return NULL;
        for (size_t off = 0; off < size; off += 48) {
                size_t chunk = size - off < 48 ? size - off : 48;

                n += (size_t) EVP_EncodeBlock((unsigned char *) out + n, der + off, (int) chunk);
                out[n++] = '\n';
        }
        out[n] = '\0';
        return out;
}

char *cms_edit_pkcs7_mime(const char *headers, const char *smime_type, const unsigned char *der, size_t size) {
        _cleanup_free_ char *b64 = base64_lines(der, size);
        char *s = NULL;

        if (!b64 || asprintf(&s,
                             "%sMIME-Version: 1.0\nContent-Disposition: attachment; filename=\"smime.p7m\"\n"
                             "Content-Type: application/pkcs7-mime; smime-type=%s; name=\"smime.p7m\"\n"
                             "Content-Transfer-Encoding: base64\n\n%s",
                             strempty(headers), smime_type, b64) < 0)
                return NULL;
        return s;
}

char *cms_edit_p7m_attachment(const char *headers, const unsigned char *der, size_t size) {
        _cleanup_free_ char *b64 = base64_lines(der, size);
        char *s = NULL;

        if (!b64 || asprintf(&s,
                             "%sMIME-Version: 1.0\nContent-Type: application/octet-stream; name=\"smime.p7m\"\n"
                             "Content-Disposition: attachment; filename=\"smime.p7m\"\n"
                             "Content-Transfer-Encoding: base64\n\n%s",
                             strempty(headers), b64) < 0)
                return NULL;
        return s;
}

char *cms_edit_multipart_signed(const char *headers, const char *entity, const unsigned char *der, size_t size) {
        _cleanup_free_ char *b64 = base64_lines(der, size);
        char *s = NULL;

        if (!b64 || asprintf(&s,
                             "%sMIME-Version: 1.0\nContent-Type: multipart/signed; "
                             "protocol=\"application/pkcs7-signature\"; micalg=\"sha-256\"; "
                             "boundary=\"----limits-boundary\"\n\n"
                             "This is an S/MIME signed message\n\n"
                             "------limits-boundary\n%s\n------limits-boundary\n"
                             "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\n"
                             "Content-Transfer-Encoding: base64\n"
                             "Content-Disposition: attachment; filename=\"smime.p7s\"\n\n"
                             "%s\n------limits-boundary--\n",
                             strempty(headers), entity, b64) < 0)
                return NULL;
        return s;
}
