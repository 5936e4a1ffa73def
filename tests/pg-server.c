/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg-server.h"

/* Runs argv as the user "postgres", its output into DIR/log. */
static int run_as_postgres(PgServer *s, char *const *argv) {
        _cleanup_free_ char *log = NULL;
        struct passwd *pw = getpwnam("postgres");
        pid_t pid;
        int status;

        if (!pw)
                return -ESRCH;
        if (asprintf(&log, "%s/log", s->dir) < 0)
                return -ENOMEM;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                FILE *f = fopen(log, "ae");

                if (!f || dup2(fileno(f), STDOUT_FILENO) < 0 || dup2(fileno(f), STDERR_FILENO) < 0)
                        _exit(126);
                if (setgid(pw->pw_gid) < 0 || setgroups(0, NULL) < 0 || setuid(pw->pw_uid) < 0)
                        _exit(126);
                (void) chdir(s->dir);
                execv(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                _cleanup_free_ char *text = NULL;
                FILE *f = fopen(log, "re");
                size_t n = 0;

                if (f) {
                        (void) getdelim(&text, &n, '\0', f);
                        fclose(f);
                }
                fprintf(stderr, "pg-server: %s failed:\n%s\n", argv[0], text ?: "");
                return -EIO;
        }
        return 0;
}

static int find_bin_dir(char **ret) {
        glob_t g = {};
        int r;

        r = glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g);
        if (r != 0 || g.gl_pathc == 0) {
                globfree(&g);
                fprintf(stderr, "pg-server: no /usr/lib/postgresql/*/bin/initdb (package postgresql)\n");
                return -ENOENT;
        }
        *ret = strndup(g.gl_pathv[g.gl_pathc - 1], strlen(g.gl_pathv[g.gl_pathc - 1]) - strlen("/initdb"));
        globfree(&g);
        return *ret ? 0 : -ENOMEM;
}

static int pg_ctl(PgServer *s, const char *what) {
        _cleanup_free_ char *pg_ctl = NULL, *data = NULL, *options = NULL, *log = NULL;

        if (asprintf(&pg_ctl, "%s/pg_ctl", s->bin_dir) < 0 || asprintf(&data, "%s/data", s->dir) < 0 ||
            asprintf(&options, "-k %s -c listen_addresses='' -c fsync=off -c synchronous_commit=off", s->dir) < 0 ||
            asprintf(&log, "%s/server.log", s->dir) < 0)
                return -ENOMEM;
        if (streq(what, "start"))
                return run_as_postgres(s, (char *const[]){pg_ctl, (char *) "-D", data, (char *) "-o", options,
                                                          (char *) "-l", log, (char *) "-w", (char *) "start", NULL});
        return run_as_postgres(s, (char *const[]){pg_ctl, (char *) "-D", data, (char *) "-m", (char *) "fast",
                                                  (char *) "-w", (char *) what, NULL});
}

int pg_server_start(PgServer **ret) {
        _cleanup_(pg_server_freep) PgServer *s = NULL;
        _cleanup_free_ char *initdb = NULL, *data = NULL;
        struct passwd *pw = getpwnam("postgres");
        char template[] = "/tmp/smimed-pg-XXXXXX";
        int r;

        if (!pw) {
                fprintf(stderr, "pg-server: no user postgres (package postgresql)\n");
                return -ESRCH;
        }
        s = calloc(1, sizeof(PgServer));
        if (!s)
                return -ENOMEM;
        r = find_bin_dir(&s->bin_dir);
        if (r < 0)
                return r;
        if (!mkdtemp(template))
                return -errno;
        s->dir = strdup(template);
        if (!s->dir)
                return -ENOMEM;
        if (chown(s->dir, pw->pw_uid, pw->pw_gid) < 0 || chmod(s->dir, 0755) < 0)
                return -errno;
        if (asprintf(&initdb, "%s/initdb", s->bin_dir) < 0 || asprintf(&data, "%s/data", s->dir) < 0 ||
            asprintf(&s->conninfo, "host=%s dbname=postgres user=postgres", s->dir) < 0)
                return -ENOMEM;
        r = run_as_postgres(s, (char *const[]){initdb, (char *) "-D", data, (char *) "-A", (char *) "trust",
                                               (char *) "-U", (char *) "postgres", (char *) "--no-sync", (char *) "-E",
                                               (char *) "UTF8", (char *) "--locale=C", NULL});
        if (r < 0)
                return r;
        r = pg_server_resume(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int pg_server_stop(PgServer *s) {
        int r;

        if (!s->running)
                return 0;
        r = pg_ctl(s, "stop");
        if (r >= 0)
                s->running = false;
        return r;
}

int pg_server_resume(PgServer *s) {
        int r;

        if (s->running)
                return 0;
        r = pg_ctl(s, "start");
        if (r >= 0)
                s->running = true;
        return r;
}

PgServer *pg_server_free(PgServer *s) {
        if (!s)
                return NULL;
        if (s->dir) {
                char *argv[] = {(char *) "rm", (char *) "-rf", s->dir, NULL};
                pid_t pid;

                (void) pg_server_stop(s);
                pid = fork();
                if (pid == 0) {
                        execvp(argv[0], argv);
                        _exit(127);
                }
                if (pid > 0)
                        (void) waitpid(pid, NULL, 0);
        }
        free(s->dir);
        free(s->bin_dir);
        free(s->conninfo);
        return mfree(s);
}
