/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "certificate.h"
#include "validate.h"

typedef struct Manager Manager;

/* What the certificate objects show, for the one certificate last asked
 * about: GetAll reads many properties of one object in a row. Validations are
 * made when a property needs them. */
typedef struct CertificateView {
        CertInfo *info;
        bool trusted;
        time_t loaded_at;
        uint64_t store_generation;
        bool validated;
        Validation validation[3];     /* by CertPurpose */
} CertificateView;

void certificate_view_done(CertificateView *view);

/* The org.smimed1.Certificate objects: a fallback vtable below
 * /org/smimed1/certificate and a node enumerator over the store. */
int certificate_bus_register(Manager *m);

/* "/org/smimed1/certificate/<fingerprint>" */
char *certificate_bus_path(const char *fingerprint);

/* Appends an "ao" of the certificate objects of fingerprints. */
int bus_append_certificate_paths(sd_bus_message *reply, char **fingerprints);

void certificate_bus_emit_added(Manager *m, const char *fingerprint);
void certificate_bus_emit_removed(Manager *m, const char *fingerprint);
void certificate_bus_emit_trusted_changed(Manager *m, const char *fingerprint);
