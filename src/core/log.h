/* log.h -- error log and access log.
 *
 * One error log per process, nginx's levels and line shape:
 *   YYYY/MM/DD HH:MM:SS [level] pid#wid: *connid message, client: addr
 * (wid is "m" in the master). The access log gets one line per HTTP
 * answer and per closed WebSocket, as access_log_format says (core/access.c).
 * Both are stderr or files reopened on USR1.
 */
#ifndef WSH_LOG_H
#define WSH_LOG_H

#include "core/core.h"
#include "wshub.h"              /* the levels: WSH_LOG_* */

#include <stdarg.h>

/* Level by name ("error", "warn", ...); -1 if unknown. */
int wsh_log_level_parse(const char *name);

/* Open (or reopen) the error and access logs; "stderr" and "off" are
 * recognised, anything else is a file opened for append. Keeps the old
 * files and returns WSH_ERROR (after logging) if a file cannot be opened.
 * May be called by master and workers. */
int wsh_log_open(const char *error_log, const char *access_log, int level);

/* Reopen the current files (USR1, after logrotate moved them). */
void wsh_log_reopen(void);

/* Make the log files (now and when reopened) belong to UID:GID, so
 * workers running as that account can reopen them. Master only. */
void wsh_log_set_owner(uid_t uid, gid_t gid);

/* Identity shown in every line: worker id (-1 = master). */
void wsh_log_set_worker(int worker_id);

/* Route libevent's own diagnostics into the error log. */
void wsh_log_capture_libevent(void);

bool wsh_log_enabled(int level);

void wsh_log_error(int level, uint64_t conn_id, const char *client,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void wsh_log_verror(int level, uint64_t conn_id, const char *client,
    const char *fmt, va_list ap);


bool wsh_log_access_enabled(void);

/* One formatted access-log line; LINE has room for one more byte (the
 * newline). */
void wsh_log_access_line(char *line, size_t len);

/* Shorthands for code that has no connection context. */
#define wsh_log(level, ...) wsh_log_error(level, 0, NULL, __VA_ARGS__)

#endif /* WSH_LOG_H */
