/* notify.h -- tell systemd (Type=notify) what the master is doing.
 *
 * The sd_notify(3) datagram protocol, without linking libsystemd: each
 * call sends one datagram to the unix socket named by $NOTIFY_SOCKET, and
 * does nothing when it is unset (not started by systemd). Failures are
 * logged, never fatal: the service works without them, only systemctl's
 * view of it lags. */
#ifndef WSH_NOTIFY_H
#define WSH_NOTIFY_H

/* The workers are started: "READY=1" with "MAINPID=" this process, which
 * after a binary upgrade (or its rollback) moves systemd's main pid to the
 * master that now serves. */
void wsh_notify_ready(void);

/* A reload starts: "RELOADING=1" with the "MONOTONIC_USEC=" systemd 253+
 * requires; wsh_notify_ready() ends it. */
void wsh_notify_reloading(void);

/* The master was told to stop: "STOPPING=1". */
void wsh_notify_stopping(void);

#endif /* WSH_NOTIFY_H */
