/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus-error-map.h"
#include "io-util.h"
#include "libsmimed-internal.h"
#include "macro.h"
#include "strv.h"

const char bus_bad_reply[] = "smimed sent a reply this library cannot read.";

int error_set(smimed_error *error, int r, const char *name, const char *message) {
        if (!error)
                return r;
        smimed_error_done(error);
        error->name = name ? strdup(name) : NULL;
        error->message = message ? strdup(message) : NULL;
        return r;
}

int error_from_bus(smimed_error *error, int r, const sd_bus_error *e) {
        if (e && sd_bus_error_is_set(e))
                return error_set(error, r, e->name, e->message);
        return error_set(error, r, NULL, strerror(-r));
}

_public_ void smimed_error_done(smimed_error *error) {
        if (!error)
                return;
        free(error->name);
        free(error->message);
        error->name = error->message = NULL;
}

_public_ bool smimed_error_is_unreachable(const smimed_error *error) {
        return error && error->name &&
               (streq(error->name, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                streq(error->name, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
                streq(error->name, SD_BUS_ERROR_NO_SERVER));
}

static int smimed_new(sd_bus *bus, smimed **ret) {
        smimed *s = calloc(1, sizeof(smimed));

        if (!s)
                return -ENOMEM;
        s->bus = bus;
        *ret = s;
        return 0;
}

static int connect_failed(smimed_error *error, int r, const char *where) {
        char *message = NULL;

        if (asprintf(&message, "Cannot connect to %s: %s", where, strerror(-r)) < 0)
                return error_set(error, -ENOMEM, NULL, NULL);
        error_set(error, r, SD_BUS_ERROR_NO_SERVER, message);
        free(message);
        return r;
}

_public_ int smimed_connect(smimed **ret, smimed_error *error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        (void) smimed_bus_error_map_register();

        r = sd_bus_open_system_with_description(&bus, "libsmimed");
        if (r < 0)
                return connect_failed(error, r, "the system bus");

        r = smimed_new(bus, ret);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        TAKE_PTR(bus);
        return 0;
}

_public_ int smimed_connect_address(const char *address, smimed **ret, smimed_error *error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!address || !ret)
                return error_set(error, -EINVAL, NULL, "No address given.");

        (void) smimed_bus_error_map_register();

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return connect_failed(error, r, address);

        r = smimed_new(bus, ret);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        TAKE_PTR(bus);
        return 0;
}

_public_ smimed *smimed_close(smimed *s) {
        if (!s)
                return NULL;
        /* Calls and subscriptions hold the bus: let go of them first. */
        calls_disconnect_all(s);
        slots_disconnect_all(s);
        sd_bus_flush_close_unref(s->bus);
        free(s);
        return NULL;
}

_public_ int smimed_set_allow_interactive_authorization(smimed *s, bool allow) {
        if (!s)
                return -EINVAL;
        return sd_bus_set_allow_interactive_authorization(s->bus, allow);
}

_public_ void smimed_status_info_done(smimed_status_info *info) {
        if (!info)
                return;
        free(info->version);
        free(info->token_state);
        free(info->token_state_reason);
        free(info->token_label);
        *info = (smimed_status_info) {};
}

int bus_read_variant_string(sd_bus_message *m, char **ret) {
        const char *s;
        int r;

        r = sd_bus_message_read(m, "v", "s", &s);
        if (r < 0)
                return r;
        return free_and_strdup(ret, s);
}

int bus_read_variant_bool(sd_bus_message *m, bool *ret) {
        int b, r;

        r = sd_bus_message_read(m, "v", "b", &b);
        if (r < 0)
                return r;
        *ret = b;
        return 0;
}

int bus_read_variant_uint32(sd_bus_message *m, uint32_t *ret) {
        return sd_bus_message_read(m, "v", "u", ret);
}

int bus_read_variant_uint64(sd_bus_message *m, uint64_t *ret) {
        return sd_bus_message_read(m, "v", "t", ret);
}

int bus_read_variant_strv(sd_bus_message *m, char ***ret) {
        char **l = NULL;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "as");
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &l);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                strv_free(l);
                return r;
        }
        strv_free(*ret);
        *ret = l;
        return 0;
}

_public_ void smimed_strv_free(char **l) {
        strv_free(l);
}

static int status_read_property(sd_bus_message *reply, const char *name, smimed_status_info *info) {
        if (streq(name, "Version"))
                return bus_read_variant_string(reply, &info->version);
        if (streq(name, "TokenState"))
                return bus_read_variant_string(reply, &info->token_state);
        if (streq(name, "TokenStateReason"))
                return bus_read_variant_string(reply, &info->token_state_reason);
        if (streq(name, "TokenLabel"))
                return bus_read_variant_string(reply, &info->token_label);
        if (streq(name, "CertificateCount"))
                return bus_read_variant_uint64(reply, &info->certificate_count);
        if (streq(name, "KeyCount"))
                return bus_read_variant_uint64(reply, &info->key_count);
        if (streq(name, "Enabled"))
                return bus_read_variant_bool(reply, &info->enabled);
        return sd_bus_message_skip(reply, "v"); /* newer daemon, newer property */
}

static int status_read(sd_bus_message *reply, smimed_status_info *info) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *name;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        return r;
                r = status_read_property(reply, name, info);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        return info->version && info->token_state ? 0 : -EBADMSG;
}

_public_ int smimed_status(smimed *s, smimed_status_info *ret, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(smimed_status_info_done) smimed_status_info info = {};
        int r;

        if (!s || !ret)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");

        r = sd_bus_call_method(s->bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, DBUS_PROPERTIES_INTERFACE, "GetAll",
                               &e, &reply, "s", SMIMED_MANAGER_INTERFACE);
        if (r < 0)
                return error_from_bus(error, r, &e);

        r = status_read(reply, &info);
        if (r < 0)
                return error_set(error, r, NULL, "smimed sent a status this library cannot read.");

        *ret = info;
        info = (smimed_status_info) {};
        return 0;
}

_public_ int smimed_get_expiring_certificates(smimed *s, uint64_t *ret, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t n;
        int r;

        if (!s || !ret)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        r = sd_bus_get_property_trivial(s->bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                        "ExpiringCertificates", &e, 't', &n);
        if (r < 0)
                return error_from_bus(error, r, &e);
        *ret = n;
        return 0;
}

_public_ int smimed_reload(smimed *s, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");

        r = sd_bus_call_method(s->bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Reload",
                               &e, NULL, NULL);
        if (r < 0)
                return error_from_bus(error, r, &e);
        return 0;
}

int memfd_from_data(const char *name, const void *data, size_t size) {
        _cleanup_(closep) int fd = -1;
        int r;

        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        r = fd_write_all(fd, data, size);
        if (r < 0)
                return r;
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                return -errno;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return TAKE_FD(fd);
}
