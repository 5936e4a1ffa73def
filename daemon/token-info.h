/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <p11-kit/pkcs11.h>

/* How often C_GetTokenInfo is asked again when it says CKR_GENERAL_ERROR:
 * SoftHSM2 says so now and then when several processes open one token at
 * the same moment (a cluster's nodes through p11-kit server, smimed and an
 * admin's tool), and the next try answers. */
#define TOKEN_INFO_TRIES 5

/* C_GetTokenInfo, tried again on CKR_GENERAL_ERROR. */
CK_RV token_get_info(CK_FUNCTION_LIST *module, CK_SLOT_ID slot, CK_TOKEN_INFO *ret);
