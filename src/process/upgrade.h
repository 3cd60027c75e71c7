/* upgrade.h -- binary upgrade: the listening sockets across exec(2). */
#ifndef WSH_UPGRADE_H
#define WSH_UPGRADE_H

#include "core/cycle.h"

#define WSH_LISTEN_FDS_ENV "WSHUB_LISTEN_FDS"

/* The sockets a previous master passed in WSHUB_LISTEN_FDS, as a cycle
 * to take over from (wsh_cycle_create's OLD), or NULL when the variable
 * is not set. Every descriptor is checked to be a listening socket;
 * *failed is set (after logging) when the variable is malformed. The
 * variable is removed from the environment. */
wsh_cycle_t *wsh_upgrade_inherited(bool *failed);

/* Start BINARY (with ARGV) as a new master that inherits CYCLE's
 * listening sockets. Returns its pid, or -1 after logging. Master only. */
pid_t wsh_upgrade_exec(const char *binary, char *const argv[],
    const wsh_cycle_t *cycle);

/* Write the pid file atomically (a temporary file renamed over it). */
int wsh_pid_file_write(const char *path);

#endif /* WSH_UPGRADE_H */
