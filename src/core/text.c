/* text.c -- a growing text buffer for response bodies (wshub.h).
 *
 * For modules that print a body piece by piece (metrics, status): it
 * doubles from 16 KB, so a scrape of a few hundred KB costs a handful of
 * reallocations.
 */
#include "core/core.h"
#include "wshub.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int
wsh_text_printf(wsh_text_t *t, const char *fmt, ...)
{
    va_list ap;
    size_t cap;
    char *p;
    int n;

    for ( ;; ) {
        va_start(ap, fmt);
        n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            return WSH_ERROR;
        }
        if ((size_t) n < t->cap - t->len) {
            t->len += (size_t) n;
            return WSH_OK;
        }
        cap = t->cap ? t->cap * 2 : 16384;
        while (cap - t->len <= (size_t) n) {
            cap *= 2;
        }
        p = realloc(t->data, cap);
        if (p == NULL) {
            return WSH_ERROR;
        }
        t->data = p;
        t->cap = cap;
    }
}
