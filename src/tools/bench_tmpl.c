/* bench_tmpl.c -- wshub-bench's message templates.
 *
 * The subscribe and publish messages are templates with placeholders
 * ({room}, {seq}, {ts}, {payload}), compiled once into segments and
 * expanded into a buffer made once per thread: nothing is allocated per
 * message.
 */
#include "tools/bench.h"

#include <stdio.h>
#include <string.h>

/* Compile TEXT into literal and placeholder segments. Returns WSH_OK or
 * WSH_ERROR for an unknown placeholder (named in err). */
int
bench_tmpl_compile(bench_tmpl_t *t, const char *text, char *err,
    size_t errlen)
{
    static const struct { const char *name; int type; } names[] = {
        { "{room}", TP_ROOM }, { "{seq}", TP_SEQ }, { "{ts}", TP_TS },
        { "{payload}", TP_PAYLOAD }
    };
    const char *p = text, *lit = text;
    size_t i, n;

    memset(t, 0, sizeof(*t));
    t->seg = calloc(strlen(text) + 1, sizeof(bench_seg_t));
    if (t->seg == NULL) {
        snprintf(err, errlen, "out of memory");
        return WSH_ERROR;
    }
    while (*p != '\0') {
        if (*p != '{') {
            p++;
            continue;
        }
        for (i = 0; i < wsh_nelems(names); i++) {
            n = strlen(names[i].name);
            if (strncmp(p, names[i].name, n) == 0) {
                break;
            }
        }
        if (i == wsh_nelems(names)) {
            p++;            /* a brace of the JSON itself */
            continue;
        }
        if (p > lit) {
            t->seg[t->nseg++] = (bench_seg_t) { TP_LIT, lit,
                                                (size_t) (p - lit) };
            t->max_len += (size_t) (p - lit);
        }
        t->seg[t->nseg++] = (bench_seg_t) { names[i].type, NULL, 0 };
        switch (names[i].type) {
        case TP_ROOM:
            t->max_len += strlen(bench_opt.room);
            break;
        case TP_PAYLOAD:
            t->max_len += bench_opt.size;
            t->payload = true;
            break;
        default:
            t->max_len += 24;
        }
        p += n;
        lit = p;
    }
    if (p > lit) {
        t->seg[t->nseg++] = (bench_seg_t) { TP_LIT, lit, (size_t) (p - lit) };
        t->max_len += (size_t) (p - lit);
    }
    return WSH_OK;
}

/* The payload of one message: OPT.SIZE bytes. Fanout payloads start with
 * "wsb:PUB:SEQ:TS:" so a subscriber finds them in whatever envelope the
 * server wraps around them; the rest is 'x'. Returns its length. */
size_t
bench_payload_write(u_char *p, bool marked, uint32_t pub, uint64_t seq,
    uint64_t ts)
{
    int n = 0;

    if (marked) {
        n = snprintf((char *) p, BENCH_MARK_MIN + 1, BENCH_MARK "%u:%llu:%llu:",
                     pub, (unsigned long long) seq, (unsigned long long) ts);
    }
    if ((size_t) n < bench_opt.size) {
        memset(p + n, 'x', bench_opt.size - (size_t) n);
        n = (int) bench_opt.size;
    }
    return (size_t) n;
}

/* Expand T into OUT (at least t->max_len bytes). Returns the length. */
size_t
bench_tmpl_expand(const bench_tmpl_t *t, u_char *out, bool marked,
    uint32_t pub, uint64_t seq, uint64_t ts)
{
    u_char *p = out;
    size_t i, n;

    for (i = 0; i < t->nseg; i++) {
        switch (t->seg[i].type) {
        case TP_LIT:
            memcpy(p, t->seg[i].lit, t->seg[i].len);
            p += t->seg[i].len;
            break;
        case TP_ROOM:
            n = strlen(bench_opt.room);
            memcpy(p, bench_opt.room, n);
            p += n;
            break;
        case TP_SEQ:
            p += sprintf((char *) p, "%llu", (unsigned long long) seq);
            break;
        case TP_TS:
            p += sprintf((char *) p, "%llu", (unsigned long long) ts);
            break;
        default:
            p += bench_payload_write(p, marked, pub, seq, ts);
        }
    }
    return (size_t) (p - out);
}
