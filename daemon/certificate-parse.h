/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include <openssl/x509.h>

#include "smime-limits.h" /* IMPORT_MAX_SIZE, IMPORT_MAX_ITEMS */

/* Untrusted input to certificates and CRLs. Accepts one or more PEM blocks
 * (CERTIFICATE, TRUSTED CERTIFICATE, PKCS7 for certificates; X509 CRL for
 * CRLs), or one DER object. On failure *ret_message names the bad item
 * ("item 2 of 3 (PEM block PRIVATE KEY): …"). */

int certificates_parse(const void *data, size_t size, STACK_OF(X509) **ret, char **ret_message);
int crls_parse(const void *data, size_t size, STACK_OF(X509_CRL) **ret, char **ret_message);

/* A PKCS#12 file: its key, the certificate that goes with it and the rest.
 * -EBADMSG not PKCS#12 (or unreadable), or a key derivation asks for more
 * than SMIME_MAX_PKCS12_ITERATIONS (refused before it runs); -EBADE the
 * passphrase does not open it (or it is damaged). */
int pkcs12_parse(const void *data, size_t size, const char *passphrase, EVP_PKEY **ret_key, X509 **ret_cert,
                 STACK_OF(X509) **ret_chain, char **ret_message);
