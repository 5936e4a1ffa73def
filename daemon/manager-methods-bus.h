/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* The handlers of org.smimed1.Manager's methods, by area; manager-bus.c
 * puts them in its one vtable. userdata is the Manager. */

/* manager-bus.c */
int manager_method_reload(sd_bus_message *message, void *userdata, sd_bus_error *error);

/* manager-certificates-bus.c */
int manager_method_import_certificates(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_import_crl(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_fetch_crls(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_lookup_certificates(sd_bus_message *message, void *userdata, sd_bus_error *error);

/* manager-list-bus.c */
int manager_method_list_certificates(sd_bus_message *message, void *userdata, sd_bus_error *error);

/* manager-capabilities-bus.c */
int manager_method_get_capabilities(sd_bus_message *message, void *userdata, sd_bus_error *error);

/* manager-keys-bus.c */
int manager_method_import_pkcs12(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_generate_key(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_import_pkcs12_data(sd_bus_message *message, void *userdata, sd_bus_error *error);

/* manager-messages-bus.c */
int manager_method_sign(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_encrypt(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_decrypt(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_verify(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_sign_data(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_encrypt_data(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_decrypt_data(sd_bus_message *message, void *userdata, sd_bus_error *error);
int manager_method_verify_data(sd_bus_message *message, void *userdata, sd_bus_error *error);
