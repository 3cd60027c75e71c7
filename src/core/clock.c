/* clock.c -- the monotonic clock for timeouts and durations. */
#include "core/core.h"

#include <time.h>

wsh_msec_t
wsh_monotonic_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (wsh_msec_t) ts.tv_sec * 1000 + (wsh_msec_t) ts.tv_nsec / 1000000;
}

uint64_t
wsh_monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}
