/* log.c -- error log and access log for master and workers.
 *
 * Writes go straight to the file descriptor with one write(2) per line, so
 * lines from several processes appending to the same file never interleave
 * (O_APPEND makes each write atomic for lines this short). The file names
 * are remembered so USR1 can reopen them after logrotate.
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define WSH_LOG_LINE_MAX 2048

typedef struct {
    int   fd;           /* -1 when off */
    char *path;         /* NULL for stderr/off */
} wsh_log_file_t;

static wsh_log_file_t error_log = { STDERR_FILENO, NULL };
static wsh_log_file_t access_log = { -1, NULL };
static int log_level = WSH_LOG_NOTICE;
static bool log_owned;
static uid_t log_uid;
static gid_t log_gid;

static void
log_chown(const wsh_log_file_t *lf)
{
    if (log_owned && lf->path != NULL && lf->fd != -1
        && fchown(lf->fd, log_uid, log_gid) == -1)
    {
        wsh_log(WSH_LOG_ALERT, "fchown() \"%s\" failed: %s", lf->path,
                strerror(errno));
    }
}

void
wsh_log_set_owner(uid_t uid, gid_t gid)
{
    log_owned = true;
    log_uid = uid;
    log_gid = gid;
    log_chown(&error_log);
    log_chown(&access_log);
}
static int log_worker = -1;

static const char *level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"
};

int
wsh_log_level_parse(const char *name)
{
    size_t i;

    for (i = 0; i < wsh_nelems(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return (int) i;
        }
    }
    return -1;
}

static int
log_open_one(const char *name, wsh_log_file_t *out)
{
    int fd;

    if (name == NULL || strcmp(name, "off") == 0) {
        out->fd = -1;
        out->path = NULL;
        return WSH_OK;
    }
    if (strcmp(name, "stderr") == 0) {
        out->fd = STDERR_FILENO;
        out->path = NULL;
        return WSH_OK;
    }
    fd = open(name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1) {
        wsh_log(WSH_LOG_EMERG, "open() \"%s\" failed: %s", name,
                strerror(errno));
        return WSH_ERROR;
    }
    out->fd = fd;
    out->path = strdup(name);
    log_chown(out);
    return WSH_OK;
}

static void
log_replace(wsh_log_file_t *lf, wsh_log_file_t *nf)
{
    if (lf->path != NULL && lf->fd != -1 && lf->fd != nf->fd) {
        close(lf->fd);
    }
    free(lf->path);
    *lf = *nf;
}

int
wsh_log_open(const char *error_name, const char *access_name, int level)
{
    wsh_log_file_t ne, na;

    if (log_open_one(error_name, &ne) != WSH_OK) {
        return WSH_ERROR;
    }
    if (ne.fd == -1) {
        ne.fd = STDERR_FILENO;      /* the error log cannot be off */
    }
    if (log_open_one(access_name, &na) != WSH_OK) {
        if (ne.path != NULL) {
            close(ne.fd);
            free(ne.path);
        }
        return WSH_ERROR;
    }
    log_replace(&error_log, &ne);
    log_replace(&access_log, &na);
    log_level = level;
    return WSH_OK;
}

static void
log_reopen_one(wsh_log_file_t *lf)
{
    int fd;

    if (lf->path == NULL) {
        return;
    }
    fd = open(lf->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1) {
        wsh_log(WSH_LOG_ALERT, "reopen \"%s\" failed: %s, keeping the old "
                "file", lf->path, strerror(errno));
        return;
    }
    close(lf->fd);
    lf->fd = fd;
    log_chown(lf);
}

void
wsh_log_reopen(void)
{
    log_reopen_one(&error_log);
    log_reopen_one(&access_log);
}

void
wsh_log_set_worker(int worker_id)
{
    log_worker = worker_id;
}

bool
wsh_log_enabled(int level)
{
    return level <= log_level;
}

bool
wsh_log_access_enabled(void)
{
    return access_log.fd != -1;
}

static size_t
log_timestamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    return strftime(buf, size, "%Y/%m/%d %H:%M:%S", &tm);
}

static void
log_write(int fd, char *buf, size_t len)
{
    ssize_t n;

    buf[len++] = '\n';
    do {
        n = write(fd, buf, len);
    } while (n == -1 && errno == EINTR);
}

void
wsh_log_verror(int level, uint64_t conn_id, const char *client,
    const char *fmt, va_list ap)
{
    char buf[WSH_LOG_LINE_MAX];
    size_t len, max = sizeof(buf) - 1;    /* room for the newline */
    int n;

    if (level > log_level) {
        return;
    }
    len = log_timestamp(buf, max);
    if (log_worker < 0) {
        n = snprintf(buf + len, max - len, " [%s] %d#m: ", level_names[level],
                     (int) getpid());
    } else {
        n = snprintf(buf + len, max - len, " [%s] %d#%d: ", level_names[level],
                     (int) getpid(), log_worker);
    }
    len += (size_t) n;
    if (conn_id != 0 && len < max) {
        n = snprintf(buf + len, max - len, "*%llu ",
                     (unsigned long long) conn_id);
        len += (size_t) n;
    }
    if (len < max) {
        n = vsnprintf(buf + len, max - len, fmt, ap);
        len += (size_t) n;
    }
    if (client != NULL && len < max) {
        n = snprintf(buf + len, max - len, ", client: %s", client);
        len += (size_t) n;
    }
    if (len > max) {
        len = max;
    }
    log_write(error_log.fd, buf, len);
}

void
wsh_log_error(int level, uint64_t conn_id, const char *client,
    const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    wsh_log_verror(level, conn_id, client, fmt, ap);
    va_end(ap);
}

void
wsh_log_access_line(char *line, size_t len)
{
    if (access_log.fd != -1) {
        log_write(access_log.fd, line, len);
    }
}

static void
log_libevent(int severity, const char *msg)
{
    int level;

    switch (severity) {
    case EVENT_LOG_DEBUG: level = WSH_LOG_DEBUG; break;
    case EVENT_LOG_MSG:   level = WSH_LOG_INFO; break;
    case EVENT_LOG_WARN:  level = WSH_LOG_WARN; break;
    default:              level = WSH_LOG_ERR; break;
    }
    wsh_log(level, "libevent: %s", msg);
}

void
wsh_log_capture_libevent(void)
{
    event_set_log_callback(log_libevent);
}

void
wsh_assert_fail(const char *expr, const char *file, int line)
{
    wsh_log(WSH_LOG_ALERT, "assertion \"%s\" failed at %s:%d", expr, file,
            line);
    abort();
}
