/* core.h -- definitions every internal wshub source file includes.
 *
 * Return codes, the intrusive queue used for connection lists, and the
 * monotonic millisecond clock. Public module code includes include/wshub.h
 * instead; this header is for the core only.
 */
#ifndef WSH_CORE_H
#define WSH_CORE_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#define WSH_OK        0
#define WSH_ERROR    -1
#define WSH_AGAIN    -2
#define WSH_DECLINED -5

#define WSH_VERSION   PACKAGE_VERSION

#define wsh_nelems(a) (sizeof(a) / sizeof((a)[0]))

/* Internal invariants only; never for input validation. */
#define wsh_assert(expr)                                                     \
    do {                                                                     \
        if (!(expr)) {                                                       \
            wsh_assert_fail(#expr, __FILE__, __LINE__);                      \
        }                                                                    \
    } while (0)

void wsh_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

typedef uint64_t wsh_msec_t;

/* Milliseconds on CLOCK_MONOTONIC: for timeouts and durations. */
wsh_msec_t wsh_monotonic_msec(void);

/* Microseconds on CLOCK_MONOTONIC: for the processing-time histogram. */
uint64_t wsh_monotonic_usec(void);

/* Intrusive doubly linked list (nginx's ngx_queue_t): a sentinel head
 * and links embedded in the elements, so insert and remove are O(1) and
 * allocate nothing. */
typedef struct wsh_queue_s wsh_queue_t;

struct wsh_queue_s {
    wsh_queue_t *prev;
    wsh_queue_t *next;
};

#define wsh_queue_init(q)                                                    \
    (q)->prev = q;                                                           \
    (q)->next = q

#define wsh_queue_empty(h) ((h) == (h)->prev)

#define wsh_queue_insert_tail(h, x)                                          \
    (x)->prev = (h)->prev;                                                   \
    (x)->prev->next = x;                                                     \
    (x)->next = h;                                                           \
    (h)->prev = x

#define wsh_queue_head(h) (h)->next

#define wsh_queue_remove(x)                                                  \
    (x)->next->prev = (x)->prev;                                             \
    (x)->prev->next = (x)->next;                                             \
    (x)->prev = NULL;                                                        \
    (x)->next = NULL

#define wsh_queue_linked(x) ((x)->next != NULL)

#define wsh_queue_data(q, type, link)                                        \
    ((type *) ((u_char *) (q) - offsetof(type, link)))

#endif /* WSH_CORE_H */
