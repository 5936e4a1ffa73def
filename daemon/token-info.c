/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"
#include "token-info.h"

CK_RV token_get_info(CK_FUNCTION_LIST *module, CK_SLOT_ID slot, CK_TOKEN_INFO *ret) {
        CK_RV rv = CKR_GENERAL_ERROR;

        for (unsigned i = 0; i < TOKEN_INFO_TRIES && rv == CKR_GENERAL_ERROR; i++) {
                rv = module->C_GetTokenInfo(slot, ret);
                if (rv == CKR_GENERAL_ERROR)
                        log_debug("C_GetTokenInfo of slot %lu: general error, try %u of %u.", (unsigned long) slot,
                                  i + 1, TOKEN_INFO_TRIES);
        }
        return rv;
}
