/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "capabilities.h"
#include "store.h"
#include "validate.h"

/* The store as validation and capabilities see it: the lookups they take,
 * answered by SQL. The store must outlive what holds them. */

ValidationLookup store_validation_lookup(Store *store);
CapabilityLookup store_capability_lookup(Store *store);
