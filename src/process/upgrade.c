/* upgrade.c -- hand the listening sockets to a new binary (SIGUSR2).
 *
 * nginx's dance: the old master forks and execs the binary now installed
 * at its path, passing its listening sockets by number in
 * WSHUB_LISTEN_FDS ("fd:shard:address" entries separated by ";"). The
 * new master takes them over instead of binding, so the kernel never
 * refuses a connection while both run; the old master renames its pid
 * file to .oldbin, and the operator then drains it with WINCH and ends it
 * with QUIT (or rolls back with HUP on the old one and QUIT on the new).
 */
#include "process/upgrade.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool
upgrade_is_listening(int fd)
{
    int on = 0;
    socklen_t len = sizeof(on);

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

wsh_cycle_t *
wsh_upgrade_inherited(bool *failed)
{
    const char *env = getenv(WSH_LISTEN_FDS_ENV);
    wsh_cycle_t *cycle;
    wsh_listening_t *ls;
    char *copy, *entry, *save = NULL, *addr;
    size_t n = 1;
    int fd, shard;

    *failed = false;
    if (env == NULL) {
        return NULL;
    }
    for (const char *p = env; *p; p++) {
        n += *p == ';';
    }
    cycle = calloc(1, sizeof(*cycle));
    copy = strdup(env);
    if (cycle == NULL || copy == NULL
        || (cycle->listening = calloc(n, sizeof(*ls))) == NULL)
    {
        goto failed;
    }
    for (entry = strtok_r(copy, ";", &save); entry != NULL;
         entry = strtok_r(NULL, ";", &save))
    {
        ls = &cycle->listening[cycle->nlistening];
        addr = NULL;
        if (sscanf(entry, "%d:%d:", &fd, &shard) != 2
            || (addr = strchr(strchr(entry, ':') + 1, ':')) == NULL
            || strlen(addr + 1) >= sizeof(ls->addr.text))
        {
            wsh_log(WSH_LOG_EMERG, "%s: malformed entry \"%s\"",
                    WSH_LISTEN_FDS_ENV, entry);
            goto failed;
        }
        if (!upgrade_is_listening(fd)) {
            wsh_log(WSH_LOG_EMERG, "%s: descriptor %d (%s) is not a "
                    "listening socket", WSH_LISTEN_FDS_ENV, fd, addr + 1);
            goto failed;
        }
        /* Ours now: not to be passed on by accident. */
        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
        ls->fd = fd;
        ls->shard = shard;
        snprintf(ls->addr.text, sizeof(ls->addr.text), "%s", addr + 1);
        cycle->nlistening++;
    }
    wsh_log(WSH_LOG_NOTICE, "took over %zu listening sockets from the "
            "previous master", cycle->nlistening);
    free(copy);
    unsetenv(WSH_LISTEN_FDS_ENV);
    return cycle;

failed:
    *failed = true;
    free(copy);
    if (cycle != NULL) {
        free(cycle->listening);
        free(cycle);
    }
    unsetenv(WSH_LISTEN_FDS_ENV);
    return NULL;
}

pid_t
wsh_upgrade_exec(const char *binary, char *const argv[],
    const wsh_cycle_t *cycle)
{
    char *env, *p;
    size_t i, size = 1;
    pid_t pid;

    for (i = 0; i < cycle->nlistening; i++) {
        size += 32 + strlen(cycle->listening[i].addr.text);
    }
    env = malloc(size);
    if (env == NULL) {
        wsh_log(WSH_LOG_ALERT, "out of memory for the binary upgrade");
        return -1;
    }
    p = env;
    *p = '\0';
    for (i = 0; i < cycle->nlistening; i++) {
        p += sprintf(p, "%s%d:%d:%s", i ? ";" : "", cycle->listening[i].fd,
                     cycle->listening[i].shard,
                     cycle->listening[i].addr.text);
    }
    pid = fork();
    if (pid == 0) {
        sigset_t none;

        for (i = 0; i < cycle->nlistening; i++) {
            (void) fcntl(cycle->listening[i].fd, F_SETFD, 0);
        }
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setenv(WSH_LISTEN_FDS_ENV, env, 1);
        execv(binary, argv);
        wsh_log(WSH_LOG_ALERT, "execv(\"%s\") failed: %s", binary,
                strerror(errno));
        _exit(1);
    }
    free(env);
    if (pid == -1) {
        wsh_log(WSH_LOG_ALERT, "fork() for the binary upgrade failed: %s",
                strerror(errno));
    }
    return pid;
}

int
wsh_pid_file_write(const char *path)
{
    char buf[32], tmp[4096];
    int fd, n;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        wsh_log(WSH_LOG_EMERG, "pid file path \"%s\" is too long", path);
        return WSH_ERROR;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        wsh_log(WSH_LOG_EMERG, "open() pid file \"%s\" failed: %s", tmp,
                strerror(errno));
        return WSH_ERROR;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
    if (write(fd, buf, (size_t) n) != n || close(fd) != 0) {
        wsh_log(WSH_LOG_EMERG, "write() pid file \"%s\" failed", tmp);
        unlink(tmp);
        return WSH_ERROR;
    }
    /* Readers (wshubd -s, systemd) never see a half-written file. */
    if (rename(tmp, path) == -1) {
        wsh_log(WSH_LOG_EMERG, "rename() to pid file \"%s\" failed: %s",
                path, strerror(errno));
        unlink(tmp);
        return WSH_ERROR;
    }
    return WSH_OK;
}
