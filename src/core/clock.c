/* clock.c -- the monotonic millisecond clock for timeouts and durations. */
#include "core/core.h"

#include <time.h>

wsh_msec_t
wsh_monotonic_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (wsh_msec_t) ts.tv_sec * 1000 + (wsh_msec_t) ts.tv_nsec / 1000000;
}
