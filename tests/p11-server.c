/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11-server.h"

int p11_server_start(const char *module, const char *token_uri, const char *socket_path, uid_t uid, gid_t gid,
                     char *const *env, P11Server **ret) {
        _cleanup_(p11_server_freep) P11Server *s = NULL;
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        int pipefd[2];
        FILE *out;

        s = calloc(1, sizeof(P11Server));
        if (!s)
                return -ENOMEM;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        s->pid = fork();
        if (s->pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -errno;
        }
        if (s->pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (dup2(pipefd[1], STDOUT_FILENO) < 0)
                        _exit(126);
                if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
                        _exit(126);
                execve("/usr/bin/p11-kit",
                       (char *const[]){(char *) "p11-kit", (char *) "server", (char *) "-f", (char *) "-s",
                                       (char *) "-p", (char *) module, (char *) "-n", (char *) socket_path,
                                       (char *) token_uri, NULL},
                       env);
                _exit(127);
        }
        close(pipefd[1]);
        out = fdopen(pipefd[0], "re");
        if (!out) {
                close(pipefd[0]);
                return -errno;
        }
        /* Its first line, once the socket listens: P11_KIT_SERVER_ADDRESS=…; export … */
        if (getline(&line, &n, out) < 0 || strncmp(line, "P11_KIT_SERVER_ADDRESS=", 23) != 0) {
                fclose(out);
                fprintf(stderr, "p11-server: p11-kit server did not start (its stderr says why)\n");
                return -EIO;
        }
        fclose(out);
        s->address = strndup(line + 23, strcspn(line + 23, ";\n"));
        if (!s->address)
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

P11Server *p11_server_free(P11Server *s) {
        if (!s)
                return NULL;
        if (s->pid > 0) {
                (void) kill(s->pid, SIGTERM);
                (void) waitpid(s->pid, NULL, 0);
        }
        free(s->address);
        return mfree(s);
}
