/* slab.h -- objects of one size carved from pages, without malloc's
 * header and rounding.
 *
 * For what a worker holds one of per connection or per membership, by
 * the ten thousand: glibc puts a 48-byte object in a 64-byte chunk and a
 * 232-byte one in 240, and that difference is a large part of what an
 * idle connection costs. Each object size has its slab, a static of the
 * file that allocates them; a page is unmapped once all its objects
 * are free, unless it is the slab's last page with room. Per process and
 * not thread-safe, like everything else in a worker.
 */
#ifndef WSH_SLAB_H
#define WSH_SLAB_H

#include "core/core.h"

typedef struct {
    size_t       size;          /* of an object, rounded up to 8 */
    wsh_queue_t  partial;       /* pages with a free object */
    size_t       pages;         /* pages allocated */
} wsh_slab_t;

/* A slab of objects of SIZE bytes, as a static initializer. */
#define WSH_SLAB(size) { ((size) + 7) & ~(size_t) 7, { NULL, NULL }, 0 }

/* An object of S's size, zeroed, or NULL on ENOMEM. */
void *wsh_slab_calloc(wsh_slab_t *s);

/* Give back P, an object of S (NULL is fine). */
void wsh_slab_free(wsh_slab_t *s, void *p);

#endif /* WSH_SLAB_H */
