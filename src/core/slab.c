/* slab.c -- objects of one size carved from pages (see slab.h).
 *
 * A page is SLAB_PAGE bytes aligned on its size, so an object finds its
 * page by masking its address: no per-object header. The page starts
 * with its header, then the objects: those never used yet are carved in
 * order from "fresh" (the rest of the page is not even touched, so it
 * costs no resident memory), freed ones are chained through their first
 * word. Pages with room are on the slab's partial list, and objects are
 * taken from its head.
 *
 * Pages are mapped from the kernel, not taken from malloc: glibc's
 * posix_memalign() leaves a page-sized free chunk beside each aligned
 * one, which the next small allocations spread over, and the worker
 * grew more than it saved. Under AddressSanitizer a free object is
 * poisoned, so a use after wsh_slab_free() is reported as it would be
 * after free(), and each page is a root region for LeakSanitizer, which
 * would otherwise not see the pointers that objects hold.
 */
#include "core/slab.h"

#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define SLAB_POISON(p, n)    ASAN_POISON_MEMORY_REGION(p, n)
#define SLAB_UNPOISON(p, n)  ASAN_UNPOISON_MEMORY_REGION(p, n)
#define SLAB_ROOT(p, n)      __lsan_register_root_region(p, n)
#define SLAB_UNROOT(p, n)    __lsan_unregister_root_region(p, n)
#else
#define SLAB_POISON(p, n)
#define SLAB_UNPOISON(p, n)
#define SLAB_ROOT(p, n)
#define SLAB_UNROOT(p, n)
#endif

/* 70 connections or 340 memberships a page: what is lost at its end is
 * a few bytes an object. */
#define SLAB_PAGE 16384

typedef struct {
    wsh_queue_t  link;          /* on the partial list while it has room */
    u_char      *free;          /* the last freed object */
    u_char      *fresh;         /* the first never used */
    size_t       used;
} slab_page_t;

/* The first object of a page: after the header, 8-byte aligned. */
#define SLAB_START ((sizeof(slab_page_t) + 7) & ~(size_t) 7)

/* A new page of S on its partial list; NULL on ENOMEM. */
static slab_page_t *
slab_page_new(wsh_slab_t *s)
{
    u_char *m, *start;
    slab_page_t *p;
    size_t head;

    /* Twice the size, to cut an aligned page out of it. */
    m = mmap(NULL, 2 * SLAB_PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return NULL;
    }
    start = (u_char *) (((uintptr_t) m + SLAB_PAGE - 1)
                        & ~(uintptr_t) (SLAB_PAGE - 1));
    head = (size_t) (start - m);
    if (head > 0) {
        (void) munmap(m, head);
    }
    (void) munmap(start + SLAB_PAGE, SLAB_PAGE - head);
    SLAB_ROOT(start, SLAB_PAGE);
    p = (slab_page_t *) start;
    p->free = NULL;
    p->fresh = (u_char *) p + SLAB_START;
    p->used = 0;
    SLAB_POISON(p->fresh, SLAB_PAGE - SLAB_START);
    wsh_queue_insert_tail(&s->partial, &p->link);
    s->pages++;
    return p;
}

/* Take an object from the first page with room, the last freed first
 * (warm in the cache), else the next never used. Returns it zeroed, or
 * NULL on ENOMEM without logging. Any process. */
void *
wsh_slab_calloc(wsh_slab_t *s)
{
    slab_page_t *p;
    u_char *obj;

    if (s->partial.next == NULL) {
        wsh_queue_init(&s->partial);
    }
    if (wsh_queue_empty(&s->partial)) {
        p = slab_page_new(s);
        if (p == NULL) {
            return NULL;
        }
    } else {
        p = wsh_queue_data(wsh_queue_head(&s->partial), slab_page_t, link);
    }
    if (p->free != NULL) {
        obj = p->free;
        SLAB_UNPOISON(obj, s->size);
        memcpy(&p->free, obj, sizeof(p->free));
    } else {
        obj = p->fresh;
        SLAB_UNPOISON(obj, s->size);
        p->fresh += s->size;
    }
    p->used++;
    if (p->free == NULL
        && (size_t) ((u_char *) p + SLAB_PAGE - p->fresh) < s->size)
    {
        wsh_queue_remove(&p->link);             /* full */
    }
    memset(obj, 0, s->size);
    return obj;
}

/* Chain OBJ on its page; a page left empty is unmapped unless
 * it is the only one with room, so that a connection opening and
 * closing alone does not allocate a page each time. */
void
wsh_slab_free(wsh_slab_t *s, void *obj)
{
    slab_page_t *p;

    if (obj == NULL) {
        return;
    }
    p = (slab_page_t *) ((uintptr_t) obj & ~(uintptr_t) (SLAB_PAGE - 1));
    memcpy(obj, &p->free, sizeof(p->free));
    p->free = obj;
    SLAB_POISON(obj, s->size);
    if (!wsh_queue_linked(&p->link)) {
        wsh_queue_insert_tail(&s->partial, &p->link);
    }
    if (--p->used == 0
        && (s->partial.next != &p->link || s->partial.prev != &p->link))
    {
        wsh_queue_remove(&p->link);
        SLAB_UNROOT(p, SLAB_PAGE);
        SLAB_UNPOISON(p, SLAB_PAGE);
        (void) munmap(p, SLAB_PAGE);
        s->pages--;
    }
}
