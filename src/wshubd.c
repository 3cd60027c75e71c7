/* wshubd.c -- the wshub daemon: options, config test, signals by pid
 * file, daemonizing, and the hand-off to the master process.
 */
#include "core/core.h"
#include "core/conf.h"
#include "process/cycle.h"
#include "net/tls.h"
#include "core/log.h"
#include "core/module.h"
#include "process/master.h"
#include "process/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cyaml/cyaml.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <zlib.h>

#ifndef WSH_CONF_PATH
#define WSH_CONF_PATH "/etc/wshub/wshub.yaml"
#endif

static void
usage(FILE *fp)
{
    fprintf(fp,
        "Usage: wshubd [-htV] [-c file] [-s signal]\n"
        "\n"
        "Options:\n"
        "  -c file    use this configuration file (default: %s)\n"
        "  -t         test the configuration file and exit\n"
        "  -s signal  send a signal to the running master: reload, quit\n"
        "             (graceful stop), stop (fast stop), reopen (log files)\n"
        "  -V         show the version, build options and library versions\n"
        "  -h         show this help\n",
        WSH_CONF_PATH);
}

static void
show_version(void)
{
    printf("wshubd version %s\n", WSH_VERSION);
    printf("configure arguments: %s\n", WSH_CONFIGURE_ARGS);
    printf("modules: %s\n", wsh_module_names());
    printf("libevent %s, %s, hiredis %d.%d.%d, jansson %s, libcyaml %s, "
           "zlib %s\n", event_get_version(), OpenSSL_version(OPENSSL_VERSION),
           HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, jansson_version_str(),
           cyaml_version_str, zlibVersion());
#ifdef HAVE_HIREDIS_SSL
    printf("TLS to Redis: yes (hiredis_ssl)\n");
#else
    printf("TLS to Redis: no (needs hiredis >= 1.0 with hiredis_ssl)\n");
#endif
}

/* -s: send SIGNAL to the pid in the configured pid file. */
static int
send_signal(const char *file, const char *name)
{
    static const struct { const char *name; int sig; } sigs[] = {
        { "reload", SIGHUP }, { "quit", SIGQUIT }, { "stop", SIGTERM },
        { "reopen", SIGUSR1 }
    };
    char err[WSH_CONF_ERR_MAX], buf[32];
    wsh_conf_t *cf;
    size_t i;
    long pid;
    ssize_t n;
    int fd, sig = 0;

    for (i = 0; i < wsh_nelems(sigs); i++) {
        if (strcmp(name, sigs[i].name) == 0) {
            sig = sigs[i].sig;
        }
    }
    if (sig == 0) {
        fprintf(stderr, "wshubd: invalid signal \"%s\" (use reload, quit, "
                "stop or reopen)\n", name);
        return 1;
    }
    cf = wsh_conf_load(file, err, sizeof(err));
    if (cf == NULL) {
        fprintf(stderr, "wshubd: %s\n", err);
        return 1;
    }
    if (cf->pid_file == NULL) {
        fprintf(stderr, "wshubd: %s sets no pid_file, so the running master "
                "cannot be found: set pid_file and restart wshubd\n", file);
        wsh_conf_free(cf);
        return 1;
    }
    fd = open(cf->pid_file, O_RDONLY | O_CLOEXEC);
    n = fd == -1 ? -1 : read(fd, buf, sizeof(buf) - 1);
    if (fd != -1) {
        close(fd);
    }
    if (n <= 0) {
        fprintf(stderr, "wshubd: cannot read pid file \"%s\": %s (is wshubd "
                "running?)\n", cf->pid_file, n == 0 ? "empty" : strerror(errno));
        wsh_conf_free(cf);
        return 1;
    }
    buf[n] = '\0';
    pid = strtol(buf, NULL, 10);
    if (pid <= 1 || kill((pid_t) pid, sig) == -1) {
        fprintf(stderr, "wshubd: kill(%ld, %s) failed: %s\n", pid, name,
                pid <= 1 ? "invalid pid" : strerror(errno));
        wsh_conf_free(cf);
        return 1;
    }
    wsh_conf_free(cf);
    return 0;
}

static int
test_config(const char *file)
{
    char err[WSH_CONF_ERR_MAX];
    wsh_conf_t *cf;
    SSL_CTX *tls, *redis_tls;

    cf = wsh_conf_load(file, err, sizeof(err));
    /* Certificates and keys are read as a (re)start would read them. */
    if (cf != NULL
        && wsh_cycle_check(cf, &tls, &redis_tls, err, sizeof(err)) != WSH_OK)
    {
        wsh_conf_free(cf);
        cf = NULL;
    }
    if (cf == NULL) {
        fprintf(stderr, "wshubd: %s\n", err);
        fprintf(stderr, "wshubd: configuration file %s test failed\n", file);
        return 1;
    }
    SSL_CTX_free(tls);
    SSL_CTX_free(redis_tls);
    fprintf(stderr, "wshubd: the configuration file %s syntax is ok\n", file);
    fprintf(stderr, "wshubd: configuration file %s test is successful\n",
            file);
    wsh_conf_free(cf);
    return 0;
}

/* Thousands of sockets need more than the usual 1024 descriptors. */
static void
raise_nofile(const wsh_conf_t *cf)
{
    struct rlimit rl;
    rlim_t want = (rlim_t) cf->max_connections * 9 / 8 + 128;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        wsh_log(WSH_LOG_WARN, "the open files limit (%llu) is below what "
                "max_connections (%u) needs (%llu): raise LimitNOFILE or "
                "ulimit -n", (unsigned long long) rl.rlim_cur,
                cf->max_connections, (unsigned long long) want);
    }
}

/* Workers run as root only when the configuration says so. */
static int
check_user(const wsh_conf_t *cf)
{
    if (geteuid() != 0) {
        if (cf->user != NULL && cf->uid != geteuid()) {
            wsh_log(WSH_LOG_NOTICE, "not started as root: \"user %s\" is "
                    "ignored, the workers run as this user", cf->user);
        }
        return WSH_OK;
    }
    if (cf->user == NULL) {
        wsh_log(WSH_LOG_EMERG, "started as root and %s sets no \"user\": "
                "set \"user: wshub\" (or another unprivileged account) for "
                "the workers, or \"user: root\" to run them as root",
                cf->file);
        return WSH_ERROR;
    }
    if (cf->uid != 0) {
        wsh_log_set_owner(cf->uid, cf->gid);
    }
    return WSH_OK;
}

static int
daemonize(void)
{
    int fd;

    switch (fork()) {
    case -1:
        wsh_log(WSH_LOG_EMERG, "fork() failed: %s", strerror(errno));
        return WSH_ERROR;
    case 0:
        break;
    default:
        _exit(0);
    }
    if (setsid() == -1) {
        wsh_log(WSH_LOG_EMERG, "setsid() failed: %s", strerror(errno));
        return WSH_ERROR;
    }
    umask(022);
    fd = open("/dev/null", O_RDWR);
    if (fd == -1) {
        return WSH_ERROR;
    }
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (fd > STDERR_FILENO) {
        close(fd);
    }
    return WSH_OK;
}

int
main(int argc, char **argv)
{
    const char *file = WSH_CONF_PATH, *signame = NULL;
    wsh_cycle_t *cycle, *inherited;
    wsh_conf_t *cf;
    char *pid_file, binary[4096];
    bool test = false, failed;
    ssize_t n;
    int ch;

    while ((ch = getopt(argc, argv, "c:s:tVh")) != -1) {
        switch (ch) {
        case 'c': file = optarg; break;
        case 's': signame = optarg; break;
        case 't': test = true; break;
        case 'V': show_version(); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 1;
    }
    if (test) {
        return test_config(file);
    }
    if (signame != NULL) {
        return send_signal(file, signame);
    }

    /* The path of this binary, for a later binary upgrade (USR2): the
     * new version is installed at the same path. */
    n = readlink("/proc/self/exe", binary, sizeof(binary) - 1);
    binary[n > 0 ? n : 0] = '\0';

    wsh_log_capture_libevent();
    inherited = wsh_upgrade_inherited(&failed);
    if (failed) {
        return 1;
    }
    cycle = wsh_cycle_create(file, inherited);
    wsh_cycle_free(inherited);      /* closes what was not taken over */
    if (cycle == NULL) {
        return 1;
    }
    cf = cycle->conf;
    if (wsh_log_open(cf->error_log, cf->access_log, cf->log_level)
        != WSH_OK)
    {
        wsh_cycle_free(cycle);
        return 1;
    }
    if (check_user(cf) != WSH_OK) {
        wsh_cycle_free(cycle);
        return 1;
    }
    raise_nofile(cf);
    /* A new binary started by an upgrade is already detached. */
    if (cf->daemon && inherited == NULL) {
        if (daemonize() != WSH_OK) {
            wsh_cycle_free(cycle);
            return 1;
        }
        if (strcmp(cf->error_log, "stderr") != 0) {
            int fd = open("/dev/null", O_WRONLY);

            if (fd != -1) {
                dup2(fd, STDERR_FILENO);
                close(fd);
            }
        }
    }
    pid_file = cf->pid_file ? strdup(cf->pid_file) : NULL;
    if (pid_file != NULL && wsh_pid_file_write(pid_file) != WSH_OK) {
        free(pid_file);
        wsh_cycle_free(cycle);
        return 1;
    }
    wsh_log(WSH_LOG_NOTICE, "wshubd %s starting, %d workers, config %s",
            WSH_VERSION, cf->worker_processes, file);

    return wsh_master_run(cycle, binary, argv, pid_file);
}
