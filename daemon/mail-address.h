/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The mail addresses an RFC 5322 address-list names (the value of a From:,
 * Sender: or To: field), normalized with address_normalize():
 *   Alice <alice@example.com>, "Doe, Bob" <BOB@example.com> (work),
 *   carol@example.com, Team: dave@example.com;
 * gives alice@, bob@, carol@ and dave@example.com. Quoted strings,
 * comments, angle addresses and groups are understood; a mailbox that is
 * not an address smimed understands makes it -EBADMSG. An empty list is
 * an empty strv; more than MAIL_ADDRESS_LIST_MAX addresses is -E2BIG. The
 * same address may come twice. No bus, no OpenSSL. */
#define MAIL_ADDRESS_LIST_MAX 1000U

int mail_address_list(const char *value, char ***ret);

#include "mime.h"

/* The addresses of every field called name (From:, Sender:; any case) in
 * headers, in order. */
int mail_header_addresses(const MimeHeaders *headers, const char *name, char ***ret);

/* Whether every address the From: and Sender: fields of headers name is
 * one of allowed (the addresses of a signing certificate): 0 when so,
 * -EPERM with *ret_message saying which field names what otherwise, and
 * -EBADMSG when a field cannot be read. A message without them passes. */
int mail_check_senders(const MimeHeaders *headers, char *const *allowed, char **ret_message);
