/* conf_section.c -- the configuration sections modules declare.
 *
 * A module's wsh_conf_section_t (wshub.h) is a table of typed fields.
 * From it this file builds the libcyaml schema of the section (every
 * value read as text, one raw slot per field), so the loader's passes 1
 * and 2 check and load it like the core's keys; pass 3 parses each slot
 * with the setter of its type (conf_value.h) into the module's struct,
 * and runs the module's check. conf.c knows no module: it only asks for
 * the schema and hands over the raw sections.
 */
#include "core/conf_value.h"
#include "core/log.h"
#include "core/module.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One field's text as loaded: a scalar, or a sequence of strings (LIST)
 * or of raw entries (TABLE, each as many slots as its fields). */
typedef struct {
    char      *text;
    char     **list;
    unsigned   list_count;
} conf_raw_slot_t;

static const cyaml_schema_value_t conf_string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

const wsh_conf_t *wsh_conf_in_force;

static size_t
conf_nfields(const wsh_conf_field_t *f)
{
    size_t n = 0;

    while (f[n].name != NULL) {
        n++;
    }
    return n;
}

static unsigned
conf_seq_max(uint64_t max)
{
    return max == 0 || max > UINT_MAX - 1 ? CYAML_UNLIMITED : (unsigned) max;
}

/* The libcyaml fields of a field table, raw slots in table order; NULL
 * on ENOMEM (what was built is left: it lives as long as the process). */
static cyaml_schema_field_t *
conf_schema_fields(const wsh_conf_field_t *fields)
{
    size_t i, n = conf_nfields(fields);
    cyaml_schema_field_t *out = calloc(n + 1, sizeof(*out));
    cyaml_schema_value_t *entry;
    const cyaml_schema_field_t *sub;

    if (out == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        const wsh_conf_field_t *f = &fields[i];
        cyaml_schema_field_t scalar = CYAML_FIELD_STRING_PTR(
            "", CYAML_FLAG_OPTIONAL, conf_raw_slot_t, text, 0,
            CYAML_UNLIMITED);
        cyaml_schema_field_t seq = CYAML_FIELD_SEQUENCE(
            "", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, conf_raw_slot_t,
            list, &conf_string_entry, 0, CYAML_UNLIMITED);

        if (f->type == WSH_CONF_LIST || f->type == WSH_CONF_TABLE) {
            seq.value.sequence.min = (unsigned) f->min;
            seq.value.sequence.max = conf_seq_max(f->max);
            if (f->type == WSH_CONF_TABLE) {
                sub = conf_schema_fields(f->sub);
                entry = calloc(1, sizeof(*entry));
                if (sub == NULL || entry == NULL) {
                    free(entry);
                    return NULL;
                }
                entry->type = CYAML_MAPPING;
                entry->flags = CYAML_FLAG_DEFAULT;
                entry->data_size = (uint32_t) (conf_nfields(f->sub)
                                               * sizeof(conf_raw_slot_t));
                entry->mapping.fields = sub;
                seq.value.data_size = entry->data_size;
                seq.value.sequence.entry = entry;
            }
            out[i] = seq;
            out[i].count_offset += (uint32_t) (i * sizeof(conf_raw_slot_t));
        } else if (f->type == WSH_CONF_MAP) {
            /* The mapping's raw slots hang off this slot's list. */
            memset(&out[i], 0, sizeof(out[i]));
            out[i].data_offset = (uint32_t) offsetof(conf_raw_slot_t, list);
            out[i].value.type = CYAML_MAPPING;
            out[i].value.flags = CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL;
            out[i].value.data_size = (uint32_t) (conf_nfields(f->sub)
                                                 * sizeof(conf_raw_slot_t));
            out[i].value.mapping.fields = conf_schema_fields(f->sub);
            if (out[i].value.mapping.fields == NULL) {
                return NULL;
            }
        } else {
            out[i] = scalar;
        }
        out[i].key = f->name;
        out[i].data_offset += (uint32_t) (i * sizeof(conf_raw_slot_t));
        if (f->required) {
            out[i].value.flags &= ~CYAML_FLAG_OPTIONAL;
        }
    }
    return out;
}

const cyaml_schema_value_t *
wsh_conf_schema(const cyaml_schema_field_t *core, size_t raw_size,
    size_t sections_offset)
{
    static cyaml_schema_value_t top;
    static cyaml_schema_field_t *fields;
    const wsh_conf_section_t *sec;
    cyaml_schema_field_t *f;
    size_t ncore = 0, i, n;

    if (fields != NULL) {
        return &top;
    }
    while (core[ncore].key != NULL) {
        ncore++;
    }
    n = wsh_module_count();
    f = calloc(ncore + n + 1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    memcpy(f, core, ncore * sizeof(*f));
    for (i = 0; i < n; i++) {
        sec = wsh_module_at(i)->conf;
        if (sec == NULL) {
            continue;
        }
        f[ncore].key = sec->key;
        f[ncore].data_offset = (uint32_t) (sections_offset
                                           + i * sizeof(void *));
        f[ncore].value.type = CYAML_MAPPING;
        f[ncore].value.flags = CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL;
        f[ncore].value.data_size = (uint32_t) (conf_nfields(sec->fields)
                                               * sizeof(conf_raw_slot_t));
        f[ncore].value.mapping.fields = conf_schema_fields(sec->fields);
        if (f[ncore].value.mapping.fields == NULL) {
            free(f);
            return NULL;
        }
        ncore++;
    }
    top.type = CYAML_MAPPING;
    top.flags = CYAML_FLAG_POINTER;
    top.data_size = (uint32_t) raw_size;
    top.mapping.fields = f;
    fields = f;
    return &top;
}

/* ---- aliases ---------------------------------------------------------- */

/* The raw text slot of the core key PATH ("engine.idempotency_window")
 * in RAW, whose fields are FIELDS; mappings on the way are made. NULL
 * when PATH names no scalar key. */
static char **
conf_alias_slot(const cyaml_schema_field_t *fields, void *raw,
    const char *path)
{
    const char *dot = strchr(path, '.');
    size_t len = dot ? (size_t) (dot - path) : strlen(path);
    void **sub;

    for (; fields->key != NULL; fields++) {
        if (strlen(fields->key) != len || memcmp(fields->key, path, len) != 0)
        {
            continue;
        }
        if (dot == NULL) {
            return fields->value.type == CYAML_STRING
                   ? (char **) ((char *) raw + fields->data_offset) : NULL;
        }
        if (fields->value.type != CYAML_MAPPING
            || !(fields->value.flags & CYAML_FLAG_POINTER))
        {
            return NULL;
        }
        sub = (void **) ((char *) raw + fields->data_offset);
        if (*sub == NULL) {
            *sub = calloc(1, fields->value.data_size);
            if (*sub == NULL) {
                return NULL;
            }
        }
        return conf_alias_slot(fields->value.mapping.fields, *sub, dot + 1);
    }
    return NULL;
}

void
wsh_conf_sections_alias(wsh_conf_ctx_t *ctx, void *raw,
    void *const *sections)
{
    const cyaml_schema_value_t *top = wsh_conf_schema(NULL, 0, 0);
    const wsh_conf_section_t *sec;
    const conf_raw_slot_t *slots;
    char path[96], **slot;
    size_t i, j;

    for (i = 0; i < wsh_module_count() && !ctx->failed; i++) {
        sec = wsh_module_at(i)->conf;
        slots = sections[i];
        for (j = 0; sec != NULL && slots != NULL && sec->fields[j].name;
             j++)
        {
            if (sec->fields[j].type != WSH_CONF_ALIAS
                || !wsh_conf_is_set(slots[j].text))
            {
                continue;
            }
            snprintf(path, sizeof(path), "%s.%s", sec->key,
                     sec->fields[j].name);
            slot = conf_alias_slot(top->mapping.fields, raw,
                                   sec->fields[j].deflt);
            if (slot == NULL) {
                wsh_conf_value_error(ctx, path, "is an alias of an unknown "
                                     "key \"%s\"", sec->fields[j].deflt);
            } else if (*slot != NULL) {
                wsh_conf_value_error(ctx, path, "is the old name of %s, "
                                     "which is set too: remove this one",
                                     sec->fields[j].deflt);
            } else if ((*slot = strdup(slots[j].text)) == NULL) {
                wsh_conf_error(ctx, 1, 1, "out of memory");
            } else {
                wsh_conf_loc_alias(ctx, path, sec->fields[j].deflt);
                wsh_log(WSH_LOG_NOTICE, "%s: %s is now called %s; the old "
                        "name still works in 0.2", ctx->file, path,
                        sec->fields[j].deflt);
            }
        }
    }
}

/* ---- values ----------------------------------------------------------- */

static void conf_fields_set(wsh_conf_ctx_t *ctx, const char *prefix,
    const wsh_conf_field_t *fields, const conf_raw_slot_t *slots, void *base);

static void
conf_enum(wsh_conf_ctx_t *ctx, const char *path, const wsh_conf_field_t *f,
    const char *text, int *out)
{
    char words[256];
    size_t i, len = 0;

    *out = 0;
    if (text == NULL) {
        return;
    }
    for (i = 0; f->words[i] != NULL; i++) {
        if (strcmp(f->words[i], text) == 0) {
            *out = (int) i;
            return;
        }
        len += (size_t) snprintf(words + len, sizeof(words) - len, "%s%s",
                                 i ? ", " : "", f->words[i]);
        if (len >= sizeof(words)) {
            len = sizeof(words) - 1;
        }
    }
    words[len] = '\0';
    wsh_conf_value_error(ctx, path, "\"%s\" is not one of: %s", text, words);
}

static void
conf_list(wsh_conf_ctx_t *ctx, const conf_raw_slot_t *raw,
    wsh_conf_list_t *out)
{
    size_t i;

    out->n = 0;
    out->items = NULL;
    if (raw == NULL || raw->list_count == 0) {
        return;
    }
    out->items = calloc(raw->list_count, sizeof(char *));
    if (out->items == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    for (i = 0; i < raw->list_count; i++) {
        out->items[out->n++] = wsh_conf_strdup(ctx, raw->list[i]);
    }
}

static void
conf_table(wsh_conf_ctx_t *ctx, const char *path, const wsh_conf_field_t *f,
    const conf_raw_slot_t *raw, wsh_conf_table_t *out)
{
    const conf_raw_slot_t *entries;
    size_t i, nsub = conf_nfields(f->sub);
    char sub[128];

    out->n = 0;
    out->items = NULL;
    if (raw == NULL || raw->list_count == 0) {
        return;
    }
    out->items = calloc(raw->list_count, f->item_size);
    if (out->items == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    entries = (const conf_raw_slot_t *) (const void *) raw->list;
    for (i = 0; i < raw->list_count && !ctx->failed; i++) {
        (void) snprintf(sub, sizeof(sub), "%.96s[%zu]", path, i);
        conf_fields_set(ctx, sub, f->sub, entries + i * nsub,
                        (char *) out->items + i * f->item_size);
        out->n++;
    }
}

/* FIELD's default, parsed by the parser of its type: a default that does
 * not parse is the module's bug, said at the section. */
static void
conf_field_set(wsh_conf_ctx_t *ctx, const char *path,
    const wsh_conf_field_t *f, const conf_raw_slot_t *raw, void *out)
{
    const char *text = raw != NULL && wsh_conf_is_set(raw->text)
                       ? raw->text : NULL;
    wsh_msec_t msec = 0;
    size_t size = 0;
    bool b;

    switch (f->type) {
    case WSH_CONF_BOOL:
        wsh_conf_bool(ctx, path, text, f->deflt != NULL
                      && wsh_conf_bool_word(f->deflt) == 1, &b);
        *(int *) out = b;
        break;
    case WSH_CONF_UINT:
        wsh_conf_uint(ctx, path, text, f->deflt ? (unsigned) strtoul(
                          f->deflt, NULL, 10) : 0, (unsigned) f->min,
                      f->max ? (unsigned) f->max : UINT_MAX, out);
        break;
    case WSH_CONF_SIZE:
        if (f->deflt != NULL) {
            (void) wsh_conf_parse_size(f->deflt, &size);
        }
        wsh_conf_size(ctx, path, text, size, (size_t) f->min,
                      f->max ? (size_t) f->max : SIZE_MAX, out);
        break;
    case WSH_CONF_MSEC:
        if (f->deflt != NULL) {
            (void) wsh_conf_parse_msec(f->deflt, &msec);
        }
        wsh_conf_msec(ctx, path, text, msec, f->min, out);
        if (!ctx->failed && f->max && *(wsh_msec_t *) out > f->max) {
            wsh_conf_value_error(ctx, path, "duration \"%s\" is too long "
                                 "(at most %llums)", text,
                                 (unsigned long long) f->max);
        }
        break;
    case WSH_CONF_STRING:
        text = text ? text : f->deflt;
        *(char **) out = text ? wsh_conf_strdup(ctx, text) : NULL;
        break;
    case WSH_CONF_ENUM:
        conf_enum(ctx, path, f, text ? text : f->deflt, out);
        break;
    case WSH_CONF_LIST:
        conf_list(ctx, raw, out);
        break;
    case WSH_CONF_TABLE:
        conf_table(ctx, path, f, raw, out);
        break;
    case WSH_CONF_MAP:
        if (raw != NULL && raw->list != NULL) {
            conf_fields_set(ctx, path, f->sub,
                            (const conf_raw_slot_t *) (const void *) raw->list,
                            out);
        }
        break;
    default:                    /* ALIAS: moved to its key already */
        break;
    }
}

static void
conf_fields_set(wsh_conf_ctx_t *ctx, const char *prefix,
    const wsh_conf_field_t *fields, const conf_raw_slot_t *slots, void *base)
{
    char path[256];
    size_t i;

    for (i = 0; fields[i].name != NULL && !ctx->failed; i++) {
        snprintf(path, sizeof(path), "%s.%s", prefix, fields[i].name);
        conf_field_set(ctx, path, &fields[i], slots ? &slots[i] : NULL,
                       (char *) base + fields[i].offset);
    }
}

static void
conf_fields_free(const wsh_conf_field_t *fields, void *base)
{
    const wsh_conf_field_t *f;
    wsh_conf_list_t *l;
    wsh_conf_table_t *t;
    size_t i;

    for (f = fields; f->name != NULL; f++) {
        switch (f->type) {
        case WSH_CONF_STRING:
            free(*(char **) ((char *) base + f->offset));
            break;
        case WSH_CONF_LIST:
            l = (wsh_conf_list_t *) ((char *) base + f->offset);
            for (i = 0; i < l->n; i++) {
                free(l->items[i]);
            }
            free(l->items);
            break;
        case WSH_CONF_MAP:
            conf_fields_free(f->sub, (char *) base + f->offset);
            break;
        case WSH_CONF_TABLE:
            t = (wsh_conf_table_t *) ((char *) base + f->offset);
            for (i = 0; i < t->n; i++) {
                conf_fields_free(f->sub, (char *) t->items
                                         + i * f->item_size);
            }
            free(t->items);
            break;
        }
    }
}

void
wsh_conf_sections_load(wsh_conf_ctx_t *ctx, void *const *sections,
    wsh_conf_t *cf)
{
    const wsh_conf_section_t *sec;
    const char *field;
    char err[256], path[96];
    size_t i;

    for (i = 0; i < wsh_module_count() && !ctx->failed; i++) {
        sec = wsh_module_at(i)->conf;
        if (sec == NULL) {
            continue;
        }
        cf->sections[i] = calloc(1, sec->size);
        if (cf->sections[i] == NULL) {
            wsh_conf_error(ctx, 1, 1, "out of memory");
            return;
        }
        cf->section_present[i] = sections[i] != NULL;
        conf_fields_set(ctx, sec->key, sec->fields, sections[i],
                        cf->sections[i]);
        err[0] = '\0';
        field = NULL;
        if (!ctx->failed && sec->check != NULL
            && sec->check(cf->sections[i], sections[i] != NULL, &field, err,
                          sizeof(err)) != 0)
        {
            snprintf(path, sizeof(path), "%s%s%s", sec->key,
                     field ? "." : "", field ? field : "");
            wsh_conf_value_error(ctx, path, "%s", err);
        }
    }
}

void
wsh_conf_sections_free(wsh_conf_t *cf)
{
    const wsh_conf_section_t *sec;
    size_t i;

    for (i = 0; i < wsh_module_count(); i++) {
        sec = wsh_module_at(i)->conf;
        if (sec == NULL || cf->sections[i] == NULL) {
            continue;
        }
        if (sec->free != NULL) {
            sec->free(cf->sections[i]);
        }
        conf_fields_free(sec->fields, cf->sections[i]);
        free(cf->sections[i]);
        cf->sections[i] = NULL;
    }
}

const void *
wsh_conf_section(const wsh_conf_t *cf, const wsh_module_t *m)
{
    size_t i;

    for (i = 0; cf != NULL && i < wsh_module_count(); i++) {
        if (wsh_module_at(i) == m) {
            return cf->sections[i];
        }
    }
    return NULL;
}

int
wsh_conf_section_present(const wsh_conf_t *cf, const wsh_module_t *m)
{
    size_t i;

    for (i = 0; cf != NULL && i < wsh_module_count(); i++) {
        if (wsh_module_at(i) == m) {
            return cf->section_present[i];
        }
    }
    return 0;
}

void
wsh_conf_use(const wsh_conf_t *cf)
{
    wsh_conf_in_force = cf;
}

const void *
wsh_module_conf(const wsh_module_t *m)
{
    return wsh_conf_section(wsh_conf_in_force, m);
}
