/* conf_shape.c -- pass 1 of the configuration loader: the file's shape.
 *
 * A libyaml walk over the file, guided by the libcyaml schema (the
 * core's keys and the modules' sections), rejects unknown keys (with
 * "did you mean"), duplicate keys and wrong kinds (a list for a value)
 * with FILE:LINE:COL, and records where every value sits, so that the
 * errors of the later passes point at the value too.
 */
#include "core/conf_value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef wsh_conf_ctx_t conf_ctx_t;

void
wsh_conf_error(conf_ctx_t *ctx, int line, int col, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (ctx->failed) {
        return;                 /* the first error is the one to fix */
    }
    ctx->failed = true;
    n = snprintf(ctx->err, ctx->errlen, "%s:%d:%d: ", ctx->file, line, col);
    if (n < 0 || (size_t) n >= ctx->errlen) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(ctx->err + n, ctx->errlen - (size_t) n, fmt, ap);
    va_end(ap);
}

static const conf_loc_t *
conf_loc(conf_ctx_t *ctx, const char *path)
{
    static const conf_loc_t none = { "", 1, 1 };
    size_t i;

    for (i = 0; i < ctx->nlocs; i++) {
        if (strcmp(ctx->locs[i].path, path) == 0) {
            return &ctx->locs[i];
        }
    }
    return &none;
}

void
wsh_conf_value_error(conf_ctx_t *ctx, const char *path, const char *fmt, ...)
{
    const conf_loc_t *loc = conf_loc(ctx, path);
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    wsh_conf_error(ctx, loc->line, loc->col, "%s: %s", path, msg);
}

static void
conf_remember(conf_ctx_t *ctx, const char *path, const yaml_mark_t *mark)
{
    conf_loc_t *loc;

    if (ctx->nlocs == ctx->maxlocs) {
        size_t n = ctx->maxlocs ? ctx->maxlocs * 2 : 64;
        conf_loc_t *p = realloc(ctx->locs, n * sizeof(*p));

        if (p == NULL) {
            return;             /* only costs a less precise message */
        }
        ctx->locs = p;
        ctx->maxlocs = n;
    }
    loc = &ctx->locs[ctx->nlocs++];
    snprintf(loc->path, sizeof(loc->path), "%s", path);
    loc->line = (int) mark->line + 1;
    loc->col = (int) mark->column + 1;
}

void
wsh_conf_loc_alias(wsh_conf_ctx_t *ctx, const char *from, const char *to)
{
    const conf_loc_t *loc = conf_loc(ctx, from);
    yaml_mark_t mark;

    memset(&mark, 0, sizeof(mark));
    mark.line = (size_t) loc->line - 1;
    mark.column = (size_t) loc->col - 1;
    conf_remember(ctx, to, &mark);
}

static bool
conf_next(conf_ctx_t *ctx, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ctx->parser, ev)) {
        wsh_conf_error(ctx, (int) ctx->parser.problem_mark.line + 1,
                   (int) ctx->parser.problem_mark.column + 1,
                   "YAML syntax error: %s%s%s", ctx->parser.problem,
                   ctx->parser.context ? " " : "",
                   ctx->parser.context ? ctx->parser.context : "");
        return false;
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        wsh_conf_error(ctx, (int) ev->start_mark.line + 1,
                   (int) ev->start_mark.column + 1,
                   "YAML aliases are not supported in the configuration");
        yaml_event_delete(ev);
        return false;
    }
    return true;
}

/* Levenshtein distance, for "did you mean" on misspelt keys. */
static size_t
conf_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j, prev, cur, row[64];

    if (lb >= wsh_nelems(row)) {
        return SIZE_MAX;
    }
    for (j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            cur = row[j];
            row[j] = prev + (a[i - 1] != b[j - 1]);
            if (row[j - 1] + 1 < row[j]) {
                row[j] = row[j - 1] + 1;
            }
            if (cur + 1 < row[j]) {
                row[j] = cur + 1;
            }
            prev = cur;
        }
    }
    return row[lb];
}

static const char *
conf_suggest(const cyaml_schema_field_t *fields, const char *key)
{
    const char *best = NULL;
    size_t d, bestd = 3;        /* suggest only close matches */

    for (; fields->key != NULL; fields++) {
        d = conf_distance(key, fields->key);
        if (d < bestd) {
            bestd = d;
            best = fields->key;
        }
    }
    return best;
}

static bool conf_walk_value(conf_ctx_t *ctx, const cyaml_schema_value_t *sv,
    const char *path, const char *what);

static bool
conf_walk_mapping(conf_ctx_t *ctx, const cyaml_schema_field_t *fields,
    const char *path, const yaml_mark_t *start)
{
    const cyaml_schema_field_t *f;
    uint64_t seen = 0;
    yaml_event_t ev;
    char sub[96];
    unsigned idx;
    bool ok;

    for ( ;; ) {
        if (!conf_next(ctx, &ev)) {
            return false;
        }
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            for (f = fields, idx = 0; f->key != NULL; f++, idx++) {
                if (!(f->value.flags & CYAML_FLAG_OPTIONAL)
                    && !(seen & (UINT64_C(1) << idx)))
                {
                    wsh_conf_error(ctx, (int) start->line + 1,
                               (int) start->column + 1,
                               "%s: missing required key \"%s\"", path,
                               f->key);
                    return false;
                }
            }
            return true;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            wsh_conf_error(ctx, (int) ev.start_mark.line + 1,
                       (int) ev.start_mark.column + 1,
                       "a key must be a plain word%s%s", *path ? " in " : "",
                       path);
            yaml_event_delete(&ev);
            return false;
        }
        for (f = fields, idx = 0; f->key != NULL; f++, idx++) {
            if (strcmp(f->key, (char *) ev.data.scalar.value) == 0) {
                break;
            }
        }
        if (f->key == NULL) {
            const char *hint = conf_suggest(fields,
                                            (char *) ev.data.scalar.value);

            wsh_conf_error(ctx, (int) ev.start_mark.line + 1,
                       (int) ev.start_mark.column + 1,
                       "unknown key \"%s\"%s%s%s%s%s",
                       (char *) ev.data.scalar.value,
                       *path ? " in " : "", path,
                       hint ? " (did you mean \"" : "", hint ? hint : "",
                       hint ? "\"?)" : "");
            yaml_event_delete(&ev);
            return false;
        }
        if (seen & (UINT64_C(1) << idx)) {
            wsh_conf_error(ctx, (int) ev.start_mark.line + 1,
                       (int) ev.start_mark.column + 1,
                       "duplicate key \"%s\"", f->key);
            yaml_event_delete(&ev);
            return false;
        }
        seen |= UINT64_C(1) << idx;
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", f->key);
        yaml_event_delete(&ev);
        ok = conf_walk_value(ctx, &f->value, sub, f->key);
        if (!ok) {
            return false;
        }
    }
}

static bool
conf_walk_value(conf_ctx_t *ctx, const cyaml_schema_value_t *sv,
    const char *path, const char *what)
{
    yaml_event_t ev;
    char sub[96];
    unsigned i;
    bool ok = true;
    int line, col;

    if (!conf_next(ctx, &ev)) {
        return false;
    }
    line = (int) ev.start_mark.line + 1;
    col = (int) ev.start_mark.column + 1;
    conf_remember(ctx, path, &ev.start_mark);

    switch (sv->type) {
    case CYAML_MAPPING:
        if (ev.type != YAML_MAPPING_START_EVENT) {
            wsh_conf_error(ctx, line, col, "%s: expected a mapping of keys",
                       *path ? path : what);
            ok = false;
            break;
        }
        ok = conf_walk_mapping(ctx, sv->mapping.fields, path, &ev.start_mark);
        break;

    case CYAML_SEQUENCE:
        if (ev.type != YAML_SEQUENCE_START_EVENT) {
            wsh_conf_error(ctx, line, col, "%s: expected a list (\"- item\" lines "
                       "or [a, b])", path);
            ok = false;
            break;
        }
        yaml_event_delete(&ev);
        for (i = 0; ok; i++) {
            if (!conf_next(ctx, &ev)) {
                return false;
            }
            if (ev.type == YAML_SEQUENCE_END_EVENT) {
                if (i < sv->sequence.min) {
                    wsh_conf_error(ctx, line, col, "%s: needs at least %u "
                               "entries", path, sv->sequence.min);
                    ok = false;
                }
                break;
            }
            if (i >= sv->sequence.max) {
                wsh_conf_error(ctx, (int) ev.start_mark.line + 1,
                           (int) ev.start_mark.column + 1,
                           "%s: at most %u entries", path, sv->sequence.max);
                ok = false;
                break;
            }
            snprintf(sub, sizeof(sub), "%s[%u]", path, i);
            conf_remember(ctx, sub, &ev.start_mark);
            if (sv->sequence.entry->type == CYAML_MAPPING) {
                if (ev.type != YAML_MAPPING_START_EVENT) {
                    wsh_conf_error(ctx, (int) ev.start_mark.line + 1,
                               (int) ev.start_mark.column + 1,
                               "%s: expected a mapping of keys", sub);
                    ok = false;
                } else {
                    yaml_mark_t start = ev.start_mark;

                    yaml_event_delete(&ev);
                    ok = conf_walk_mapping(ctx,
                                           sv->sequence.entry->mapping.fields,
                                           sub, &start);
                    continue;
                }
            } else if (ev.type != YAML_SCALAR_EVENT) {
                wsh_conf_error(ctx, (int) ev.start_mark.line + 1,
                           (int) ev.start_mark.column + 1,
                           "%s: expected a single value", sub);
                ok = false;
            }
            yaml_event_delete(&ev);
        }
        break;

    default:
        if (ev.type != YAML_SCALAR_EVENT) {
            wsh_conf_error(ctx, line, col, "%s: expected a single value, not a "
                       "%s", what, ev.type == YAML_SEQUENCE_START_EVENT
                       ? "list" : "mapping");
            ok = false;
        }
        break;
    }
    yaml_event_delete(&ev);
    return ok;
}

bool
wsh_conf_check_shape(conf_ctx_t *ctx, FILE *fp,
    const cyaml_schema_value_t *schema)
{
    yaml_event_t ev;
    bool ok = false;

    if (!yaml_parser_initialize(&ctx->parser)) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return false;
    }
    yaml_parser_set_input_file(&ctx->parser, fp);

    if (!conf_next(ctx, &ev)) {                 /* STREAM_START */
        goto done;
    }
    yaml_event_delete(&ev);
    if (!conf_next(ctx, &ev)) {
        goto done;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {     /* empty file: defaults */
        yaml_event_delete(&ev);
        ok = true;
        goto done;
    }
    yaml_event_delete(&ev);                     /* DOCUMENT_START */
    if (schema == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return false;
    }
    if (!conf_walk_value(ctx, schema, "", "the configuration")) {
        goto done;
    }
    if (!conf_next(ctx, &ev)) {                 /* DOCUMENT_END */
        goto done;
    }
    yaml_event_delete(&ev);
    if (!conf_next(ctx, &ev)) {
        goto done;
    }
    if (ev.type != YAML_STREAM_END_EVENT) {
        wsh_conf_error(ctx, (int) ev.start_mark.line + 1,
                   (int) ev.start_mark.column + 1,
                   "only one YAML document is allowed");
        yaml_event_delete(&ev);
        goto done;
    }
    yaml_event_delete(&ev);
    ok = true;
done:
    yaml_parser_delete(&ctx->parser);
    return ok;
}

void
wsh_conf_cyaml_log(cyaml_log_t level, void *data, const char *fmt, va_list ap)
{
    conf_ctx_t *ctx = data;
    char msg[256];
    size_t n;

    if (level < CYAML_LOG_ERROR || ctx->failed) {
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') {
        msg[--n] = '\0';
    }
    if (strstr(msg, "Backtrace") == NULL && strncmp(msg, "  in", 4) != 0) {
        wsh_conf_error(ctx, 1, 1, "%s", msg);
    }
}
