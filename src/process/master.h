/* master.h -- the master process: workers, signals, reload. */
#ifndef WSH_MASTER_H
#define WSH_MASTER_H

#include "core/cycle.h"

/* Run the master loop with CYCLE (already built: config loaded,
 * listeners bound) until stopped; returns the process exit status. The
 * master owns CYCLE and PID_FILE (its path, or NULL; removed at exit)
 * from here and frees them. BINARY and ARGV start a new binary on
 * SIGUSR2. */
int wsh_master_run(wsh_cycle_t *cycle, const char *binary, char **argv,
    char *pid_file);

#endif /* WSH_MASTER_H */
