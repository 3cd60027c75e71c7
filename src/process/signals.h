/* signals.h -- signals delivered into an event loop (master and worker). */
#ifndef WSH_SIGNALS_H
#define WSH_SIGNALS_H

#include "core/core.h"

#include <event2/event.h>

typedef void (*wsh_signal_handler_pt)(int signo);

/* Route each of SIGS[0..n-1] to HANDLER, called from BASE's loop (never
 * in signal context). Replaces any earlier setup in this process, so a
 * freshly forked worker calls it again for its own loop. */
int wsh_signals_init(struct event_base *base, const int *sigs, size_t n,
    wsh_signal_handler_pt handler);

/* Drop the setup (handlers back to default, descriptors closed). */
void wsh_signals_done(void);

#endif /* WSH_SIGNALS_H */
