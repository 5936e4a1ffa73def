/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include <openssl/x509.h>

/* Untrusted input to certificates and CRLs. Accepts one or more PEM blocks
 * (CERTIFICATE, TRUSTED CERTIFICATE, PKCS7 for certificates; X509 CRL for
 * CRLs), or one DER object. On failure *ret_message names the bad item
 * ("item 2 of 3 (PEM block PRIVATE KEY): …"). */

#define IMPORT_MAX_SIZE (16U * 1024U * 1024U)
#define IMPORT_MAX_ITEMS 100000U

int certificates_parse(const void *data, size_t size, STACK_OF(X509) **ret, char **ret_message);
int crls_parse(const void *data, size_t size, STACK_OF(X509_CRL) **ret, char **ret_message);

/* A PKCS#12 file: its key, the certificate that goes with it and the rest.
 * -EBADMSG not PKCS#12 (or unreadable), -EBADR the passphrase does not open
 * it (or it is damaged). */
int pkcs12_parse(const void *data, size_t size, const char *passphrase, EVP_PKEY **ret_key, X509 **ret_cert,
                 STACK_OF(X509) **ret_chain, char **ret_message);
