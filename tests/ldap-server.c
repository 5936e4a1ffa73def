/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ldap.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "ldap-server.h"

#define SLAPD "/usr/sbin/slapd"
#define SLAPADD "/usr/sbin/slapadd"
#define READY_TIMEOUT_USEC (10ULL * 1000000ULL)

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fputs(text, f);
        return fclose(f) == 0 ? 0 : -errno;
}

/* A port the kernel has free now, on 127.0.0.1. */
static int free_port(uint16_t *ret) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        _cleanup_(closep) int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 || getsockname(fd, (struct sockaddr *) &a, &len) < 0)
                return -errno;
        *ret = ntohs(a.sin_port);
        return 0;
}

static int run(char *const *argv, const char *log) {
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(126);
                execv(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "ldap-server: %s failed, see %s\n", argv[0], log);
                return -EIO;
        }
        return 0;
}

static int socket_path(LdapServer *s, char **ret) {
        return asprintf(ret, "%s/ldapi", s->dir) < 0 ? -ENOMEM : 0;
}

/* Ready once its unix socket takes a connection: polled, each try a
 * connect() that fails at once while nobody listens. */
static int wait_ready(LdapServer *s) {
        _cleanup_free_ char *path = NULL;
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        uint64_t deadline = now_usec() + READY_TIMEOUT_USEC;
        int r, status;

        r = socket_path(s, &path);
        if (r < 0)
                return r;
        if (strlen(path) >= sizeof(a.sun_path))
                return -ENAMETOOLONG;
        strcpy(a.sun_path, path);
        for (;;) {
                _cleanup_(closep) int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

                if (fd < 0)
                        return -errno;
                if (connect(fd, (struct sockaddr *) &a, sizeof(a)) == 0)
                        return 0;
                if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
                        s->pid = 0;
                        fprintf(stderr, "ldap-server: slapd exited at start, see %s\n", s->log_path);
                        return -EIO;
                }
                if (now_usec() > deadline) {
                        fprintf(stderr, "ldap-server: slapd not ready after 10 s, see %s\n", s->log_path);
                        return -ETIMEDOUT;
                }
                (void) poll(NULL, 0, 5);
        }
}

int ldap_server_resume(LdapServer *s) {
        _cleanup_free_ char *conf = NULL, *urls = NULL;
        pid_t pid;

        if (s->pid > 0)
                return 0;
        if (asprintf(&conf, "%s/slapd.conf", s->dir) < 0 || asprintf(&urls, "%s %s", s->ldapi_uri, s->ldap_uri) < 0)
                return -ENOMEM;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(126);
                /* -d: in the foreground, its log (stats: every operation) on stderr. */
                execl(SLAPD, SLAPD, "-f", conf, "-h", urls, "-d", "stats", (char *) NULL);
                _exit(127);
        }
        s->pid = pid;
        return wait_ready(s);
}

int ldap_server_start(LdapServer **ret) {
        _cleanup_(ldap_server_freep) LdapServer *s = NULL;
        _cleanup_free_ char *conf = NULL, *conf_path = NULL, *ldif = NULL, *ldif_path = NULL, *db = NULL, *sock = NULL,
                            *encoded = NULL, *setup_log = NULL;
        char template[] = "/tmp/smimed-ldap-XXXXXX";
        size_t n = 0;
        int r;

        if (access(SLAPD, X_OK) < 0) {
                fprintf(stderr, "ldap-server: no %s (package slapd)\n", SLAPD);
                return -ENOENT;
        }
        s = calloc(1, sizeof(LdapServer));
        if (!s)
                return -ENOMEM;
        if (!mkdtemp(template))
                return -errno;
        s->dir = strdup(template);
        if (!s->dir)
                return -ENOMEM;
        r = free_port(&s->port);
        if (r < 0)
                return r;
        r = socket_path(s, &sock);
        if (r < 0)
                return r;
        encoded = calloc(strlen(sock) * 3 + 1, 1);
        if (!encoded)
                return -ENOMEM;
        for (const char *p = sock; *p; p++)
                n += (size_t) (*p == '/' ? sprintf(encoded + n, "%%2F") : sprintf(encoded + n, "%c", *p));

        if (asprintf(&s->ldapi_uri, "ldapi://%s", encoded) < 0 ||
            asprintf(&s->ldap_uri, "ldap://127.0.0.1:%u/", s->port) < 0 ||
            asprintf(&s->log_path, "%s/slapd.log", s->dir) < 0 || asprintf(&setup_log, "%s/setup.log", s->dir) < 0 ||
            asprintf(&db, "%s/db", s->dir) < 0 || asprintf(&conf_path, "%s/slapd.conf", s->dir) < 0 ||
            asprintf(&ldif_path, "%s/init.ldif", s->dir) < 0)
                return -ENOMEM;
        if (mkdir(db, 0700) < 0)
                return -errno;
        if (asprintf(&conf,
                     "include /etc/ldap/schema/core.schema\n"
                     "include /etc/ldap/schema/cosine.schema\n"
                     "include /etc/ldap/schema/inetorgperson.schema\n"
                     "pidfile %s/slapd.pid\n"
                     "modulepath /usr/lib/ldap\n"
                     "moduleload back_mdb\n"
                     "database mdb\n"
                     "maxsize 268435456\n"
                     "suffix \"" LDAP_SERVER_SUFFIX "\"\n"
                     "rootdn \"" LDAP_SERVER_ROOT_DN "\"\n"
                     "rootpw " LDAP_SERVER_ROOT_PW "\n"
                     "directory %s\n"
                     "index objectClass eq\n"
                     "index mail eq\n",
                     s->dir, db) < 0)
                return -ENOMEM;
        ldif = strdup("dn: " LDAP_SERVER_SUFFIX "\n"
                      "objectClass: dcObject\n"
                      "objectClass: organization\n"
                      "dc: example\n"
                      "o: Example\n"
                      "\n"
                      "dn: " LDAP_SERVER_PEOPLE "\n"
                      "objectClass: organizationalUnit\n"
                      "ou: people\n");
        if (!ldif)
                return -ENOMEM;
        r = write_file(conf_path, conf);
        if (r >= 0)
                r = write_file(ldif_path, ldif);
        if (r < 0)
                return r;
        r = run((char *const[]){(char *) SLAPADD, (char *) "-q", (char *) "-f", conf_path, (char *) "-l", ldif_path,
                                NULL},
                setup_log);
        if (r < 0)
                return r;
        r = ldap_server_resume(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int ldap_server_stop(LdapServer *s) {
        if (s->pid <= 0)
                return 0;
        if (s->paused)
                (void) kill(s->pid, SIGCONT);
        s->paused = false;
        if (kill(s->pid, SIGTERM) < 0)
                return -errno;
        if (waitpid(s->pid, NULL, 0) < 0)
                return -errno;
        s->pid = 0;
        return 0;
}

int ldap_server_pause(LdapServer *s) {
        int status;

        if (s->pid <= 0 || kill(s->pid, SIGSTOP) < 0)
                return -ESRCH;
        /* kill() returns before every thread of slapd has stopped, and one
         * still running can answer the next search (seen in CI). The kernel
         * tells the parent once the whole process has stopped. */
        if (waitpid(s->pid, &status, WUNTRACED) != s->pid || !WIFSTOPPED(status))
                return -ECHILD;
        s->paused = true;
        return 0;
}

int ldap_server_unpause(LdapServer *s) {
        if (s->pid <= 0 || kill(s->pid, SIGCONT) < 0)
                return -ESRCH;
        s->paused = false;
        return 0;
}

LdapServer *ldap_server_free(LdapServer *s) {
        if (!s)
                return NULL;
        (void) ldap_server_stop(s);
        if (s->dir && !getenv("SMIMED_TEST_KEEP")) {
                char *argv[] = {(char *) "/bin/rm", (char *) "-rf", s->dir, NULL};
                pid_t pid = fork();

                if (pid == 0) {
                        execv(argv[0], argv);
                        _exit(127);
                }
                if (pid > 0)
                        (void) waitpid(pid, NULL, 0);
        }
        free(s->dir);
        free(s->ldapi_uri);
        free(s->ldap_uri);
        free(s->log_path);
        return mfree(s);
}

/* A PKCS#7 SignedData without signers that carries one certificate: what
 * userSMIMECertificate holds (RFC 2798). */
static int pkcs7_of(const unsigned char *der, size_t size, unsigned char **ret, int *ret_size) {
        const unsigned char *p = der;
        X509 *x509 = d2i_X509(NULL, &p, (long) size);
        PKCS7 *p7 = PKCS7_new();
        int r = -ENOMEM;

        if (x509 && p7 && PKCS7_set_type(p7, NID_pkcs7_signed) && PKCS7_content_new(p7, NID_pkcs7_data) &&
            PKCS7_add_certificate(p7, x509)) {
                *ret = NULL;
                *ret_size = i2d_PKCS7(p7, ret);
                r = *ret_size > 0 ? 0 : -EIO;
        }
        X509_free(x509);
        PKCS7_free(p7);
        return r;
}

/* Adds dn over ldapi, bound as the root DN. */
static int add_entry(LdapServer *s, const char *dn, LDAPMod **mods) {
        struct berval cred = {.bv_len = strlen(LDAP_SERVER_ROOT_PW), .bv_val = (char *) LDAP_SERVER_ROOT_PW};
        int rc, version = LDAP_VERSION3;
        LDAP *ld = NULL;

        rc = ldap_initialize(&ld, s->ldapi_uri);
        if (rc == LDAP_SUCCESS) {
                (void) ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
                rc = ldap_sasl_bind_s(ld, LDAP_SERVER_ROOT_DN, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
        }
        if (rc == LDAP_SUCCESS)
                rc = ldap_add_ext_s(ld, dn, mods, NULL, NULL);
        if (rc != LDAP_SUCCESS)
                fprintf(stderr, "ldap-server: adding %s: %s\n", dn, ldap_err2string(rc));
        if (ld)
                ldap_unbind_ext_s(ld, NULL, NULL);
        return rc == LDAP_SUCCESS ? 0 : -EIO;
}

int ldap_server_add_person(LdapServer *s, const char *uid, const char *mail, const unsigned char *der, size_t size,
                           bool smime) {
        _cleanup_free_ char *dn = NULL;
        unsigned char *p7 = NULL;
        int p7_size = 0, r;
        struct berval cert = {}, *cert_values[] = {&cert, NULL};
        char *object_classes[] = {(char *) "inetOrgPerson", NULL}, *uids[] = {(char *) uid, NULL},
             *mails[] = {(char *) mail, NULL}, *names[] = {(char *) uid, NULL};
        LDAPMod oc = {.mod_op = LDAP_MOD_ADD, .mod_type = (char *) "objectClass", .mod_values = object_classes},
                uid_mod = {.mod_op = LDAP_MOD_ADD, .mod_type = (char *) "uid", .mod_values = uids},
                cn = {.mod_op = LDAP_MOD_ADD, .mod_type = (char *) "cn", .mod_values = names},
                sn = {.mod_op = LDAP_MOD_ADD, .mod_type = (char *) "sn", .mod_values = names},
                mail_mod = {.mod_op = LDAP_MOD_ADD, .mod_type = (char *) "mail", .mod_values = mails},
                cert_mod = {.mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES,
                            .mod_type = (char *) (smime ? "userSMIMECertificate" : "userCertificate;binary"),
                            .mod_bvalues = cert_values};
        LDAPMod *mods[] = {&oc, &uid_mod, &cn, &sn, &mail_mod, der ? &cert_mod : NULL, NULL};

        if (asprintf(&dn, "uid=%s," LDAP_SERVER_PEOPLE, uid) < 0)
                return -ENOMEM;
        if (der && smime) {
                r = pkcs7_of(der, size, &p7, &p7_size);
                if (r < 0)
                        return r;
                cert = (struct berval){.bv_len = (ber_len_t) p7_size, .bv_val = (char *) p7};
        } else if (der)
                cert = (struct berval){.bv_len = size, .bv_val = (char *) der};

        r = add_entry(s, dn, mods);
        OPENSSL_free(p7);
        return r;
}

int ldap_server_add_crl(LdapServer *s, const char *cn, const unsigned char *der, size_t size) {
        _cleanup_free_ char *dn = NULL;
        struct berval crl = {.bv_len = size, .bv_val = (char *) der}, *crl_values[] = {&crl, NULL};
        char *object_classes[] = {(char *) "cRLDistributionPoint", NULL}, *names[] = {(char *) cn, NULL};
        LDAPMod oc = {.mod_op = LDAP_MOD_ADD, .mod_type = (char *) "objectClass", .mod_values = object_classes},
                cn_mod = {.mod_op = LDAP_MOD_ADD, .mod_type = (char *) "cn", .mod_values = names},
                crl_mod = {.mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES,
                           .mod_type = (char *) "certificateRevocationList;binary",
                           .mod_bvalues = crl_values};
        LDAPMod *mods[] = {&oc, &cn_mod, &crl_mod, NULL};

        if (asprintf(&dn, "cn=%s," LDAP_SERVER_SUFFIX, cn) < 0)
                return -ENOMEM;
        return add_entry(s, dn, mods);
}

int ldap_server_count_searches(LdapServer *s, const char *text, unsigned *ret) {
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        unsigned count = 0;
        FILE *f = fopen(s->log_path, "re");

        if (!f)
                return -errno;
        while (getline(&line, &n, f) > 0)
                if (strstr(line, " SRCH ") && strstr(line, text))
                        count++;
        fclose(f);
        *ret = count;
        return 0;
}
