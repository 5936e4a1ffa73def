/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct CMS_ContentInfo_st CMS_ContentInfo; /* openssl/cms.h, not needed by mime.c */

/* Every limit smimed puts on the structure of untrusted input, in one place:
 * how much of it a message, a certificate or a PKCS#12 file may carry before
 * smimed refuses it (or, for addresses, stops looking). Each one bounds work
 * that OpenSSL or smimed would otherwise do per element, on the event loop
 * every client waits on. docs/smimed.8 (LIMITS) lists them for
 * administrators: keep the two in step. */

/* ---- CMS: checked by smime_read() on every layer it returns ---- */

/* digestAlgorithms of a SignedData. A signer names one; CMS_verify() chains
 * one digest BIO per entry over the content, so 60,000 entries overflowed
 * its stack and 10,000 hashed a message 10,000 times. 16 is more than the
 * digests that exist in S/MIME. */
#define SMIME_MAX_DIGEST_ALGORITHMS 16U

/* signerInfos of a SignedData. Mail has one signer, seldom two (an RSA and
 * an EC signature); each costs a certificate search and a public-key
 * operation. */
#define SMIME_MAX_SIGNER_INFOS 16U

/* recipientInfos of an (auth)enveloped-data, and recipients in all: the
 * recipientEncryptedKeys of a key-agreement recipientInfo count one each.
 * Mail to a large list is encrypted once per member; every recipient is
 * compared with every certificate smimed holds a key for. */
#define SMIME_MAX_RECIPIENT_INFOS 1024U

/* Certificates a message carries (SignedData certificates, or the
 * originatorInfo of an enveloped-data). A signer's chain is 2 to 5; each
 * is decoded, searched for the signer and offered to chain building. */
#define SMIME_MAX_CERTIFICATES 64U

/* CRLs a message carries. Mail seldom carries any; each can be large and
 * is decoded in full. */
#define SMIME_MAX_CRLS 16U

/* Attributes of one signerInfo, signed and unsigned together (S/MIME signs
 * 4 to 8: contentType, messageDigest, signingTime, smimeCapabilities, …;
 * unsigned ones are counter-signatures and time stamps), and the
 * attributes of an (auth)enveloped-data. */
#define SMIME_MAX_ATTRIBUTES 64U

/* TEST ONLY. When the environment variable SMIMED_TEST_NO_STRUCTURE_LIMITS
 * is "1" as smimed starts (it is read once), the CMS limits above are not
 * checked, so that tests can hand the messages that crashed smimed to a
 * process that must survive them. Never set it on a real system. */
#define SMIME_NO_STRUCTURE_LIMITS_ENV "SMIMED_TEST_NO_STRUCTURE_LIMITS"

/* ---- certificates ---- */

/* rfc822Name entries of subjectAltName (or, without any, emailAddress
 * attributes of the subject) that certificate_addresses() considers: the
 * first 256 count, the rest are ignored. 150,000 of them took 35 s to
 * de-duplicate in one Verify; no person has 256 addresses. */
#define SMIME_MAX_CERTIFICATE_ADDRESSES 256U

/* ---- PKCS#12 (ImportPKCS12) ---- */

/* Iterations of every key derivation in a PKCS#12 file: its MAC, the PBE or
 * PBKDF2 of each encrypted part and shrouded key; for scrypt N·r·p counts.
 * A KDF runs on the event loop: 100,000,000 took 12 s. 1,000,000 takes
 * about 0.4 s (PBKDF2-SHA256, or scrypt with N·r·p = 1,000,000), and is
 * above what exporters use (OpenSSL 2048, current guidance 600,000). */
#define SMIME_MAX_PKCS12_ITERATIONS 1000000U

/* ---- MIME (mime.c) ---- */

/* The header block of a message or part: far above real mail, small enough
 * to hold in memory. */
#define MIME_MAX_HEADER_BLOCK (1024U * 1024U)
/* A header line (a field may be folded over several): the line reader's
 * buffer; RFC 5322 allows 998 bytes. */
#define MIME_MAX_HEADER_LINE 65536U
/* Nesting of multiparts; the walker keeps one boundary per level. */
#define MIME_MAX_DEPTH 32

/* ---- certificate and CRL import (certificate-parse.c) ---- */

/* The data of one ImportCertificates or ImportCRL call. */
#define IMPORT_MAX_SIZE (16U * 1024U * 1024U)
/* PEM blocks in it. */
#define IMPORT_MAX_ITEMS 100000U

/* Whether the CMS structure limits apply (see SMIME_NO_STRUCTURE_LIMITS_ENV). */
bool smime_structure_limits_enabled(void);

/* Counts the parts of an untrusted CMS ContentInfo (DER or BER, indefinite
 * lengths too) against the limits above, with OpenSSL's ASN.1 decoder and
 * a template of its shape, before OpenSSL's CMS code sees it; the content
 * itself is skipped, never copied. 0 when within; -EBADMSG with *ret_message
 * naming the limit ("The message carries 60000 digest algorithms; smimed
 * accepts at most 16 (SMIME_MAX_DIGEST_ALGORITHMS)."); -EINVAL, without a
 * message, for bytes that do not have the shape of a ContentInfo (the
 * shape takes all OpenSSL's CMS decoder takes, and more). */
int smime_limits_check_der(const unsigned char *der, size_t size, char **ret_message);

/* The counts only a parsed structure shows: recipients in all, key-agreement
 * ones counting their recipientEncryptedKeys. 0 or -EBADMSG as above. */
int smime_limits_check_cms(CMS_ContentInfo *cms, char **ret_message);
