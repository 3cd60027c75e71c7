/* conf_value.c -- the one parser of each type of configuration value.
 *
 * Sizes (64k), durations (54s), whole numbers, booleans (on/true/yes,
 * off/false/no), strings and listen addresses, each read the same way
 * for the core's keys (conf.c) and the modules' (conf_section.c), with
 * the error at the value's place in the file.
 */
#include "core/conf_value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef wsh_conf_ctx_t conf_ctx_t;

/* The whole number TEXT starts with into *V, and *END after it: the
 * unit, if any, follows. WSH_ERROR when there is no number or it does
 * not fit. */
static int
conf_leading_number(const char *text, unsigned long long *v, char **end)
{
    if (text == NULL || !isdigit((unsigned char) *text)) {
        return WSH_ERROR;
    }
    errno = 0;
    *v = strtoull(text, end, 10);
    return errno == 0 ? WSH_OK : WSH_ERROR;
}

int
wsh_conf_parse_size(const char *text, size_t *out)
{
    unsigned long long v, mult = 1;
    char *end;

    if (conf_leading_number(text, &v, &end) != WSH_OK) {
        return WSH_ERROR;
    }
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1024ULL; end++; break;
    case 'm': case 'M': mult = 1024ULL * 1024; end++; break;
    case 'g': case 'G': mult = 1024ULL * 1024 * 1024; end++; break;
    default: return WSH_ERROR;
    }
    if (*end != '\0' || v > SIZE_MAX / mult) {
        return WSH_ERROR;
    }
    *out = (size_t) (v * mult);
    return WSH_OK;
}

int
wsh_conf_parse_msec(const char *text, wsh_msec_t *out)
{
    unsigned long long v, mult;
    char *end;

    if (conf_leading_number(text, &v, &end) != WSH_OK) {
        return WSH_ERROR;
    }
    if (strcmp(end, "ms") == 0) {
        mult = 1;
    } else if (*end == '\0' || strcmp(end, "s") == 0) {
        mult = 1000;            /* a bare number is seconds, as in nginx */
    } else if (strcmp(end, "m") == 0) {
        mult = 60 * 1000;
    } else if (strcmp(end, "h") == 0) {
        mult = 3600 * 1000;
    } else {
        return WSH_ERROR;
    }
    if (v > UINT64_MAX / mult / 1000) {     /* absurd: keep clocks sane */
        return WSH_ERROR;
    }
    *out = v * mult;
    return WSH_OK;
}

int
wsh_conf_parse_listen(const char *text, wsh_listen_addr_t *a)
{
    char host[64];
    const char *colon, *h;
    size_t hlen;
    unsigned long port;
    char *end;
    struct sockaddr_in *sin = (struct sockaddr_in *) &a->sockaddr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &a->sockaddr;

    memset(a, 0, sizeof(*a));
    if (text[0] == '[') {
        colon = strchr(text, ']');
        if (colon == NULL || colon[1] != ':') {
            return WSH_ERROR;
        }
        h = text + 1;
        hlen = (size_t) (colon - h);
        colon++;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL) {
            return WSH_ERROR;
        }
        h = text;
        hlen = (size_t) (colon - text);
    }
    if (hlen >= sizeof(host)) {
        return WSH_ERROR;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (!isdigit((unsigned char) colon[1])) {
        return WSH_ERROR;
    }
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port == 0 || port > 65535) {
        return WSH_ERROR;
    }
    if (hlen == 0 || strcmp(host, "*") == 0) {
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_port = htons((uint16_t) port);
        a->socklen = sizeof(*sin);
        snprintf(a->text, sizeof(a->text), "0.0.0.0:%lu", port);
    } else if (text[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) port);
        a->socklen = sizeof(*sin);
        snprintf(a->text, sizeof(a->text), "%s:%lu", host, port);
    } else if (text[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) port);
        a->socklen = sizeof(*sin6);
        snprintf(a->text, sizeof(a->text), "[%s]:%lu", host, port);
    } else {
        return WSH_ERROR;       /* names are not resolved: be explicit */
    }
    return WSH_OK;
}

bool
wsh_conf_is_set(const char *s)
{
    return s != NULL && *s != '\0';
}

void
wsh_conf_size(conf_ctx_t *ctx, const char *path, const char *text, size_t def,
    size_t min, size_t max, size_t *out)
{
    *out = def;
    if (!wsh_conf_is_set(text)) {
        return;
    }
    if (wsh_conf_parse_size(text, out) != WSH_OK) {
        wsh_conf_value_error(ctx, path, "invalid size \"%s\" (use a number of "
                         "bytes with an optional k, m or g suffix, e.g. 64k)",
                         text);
    } else if (*out < min || *out > max) {
        wsh_conf_value_error(ctx, path, "size \"%s\" is out of range "
                         "(%zu to %zu bytes)", text, min, max);
    }
}

void
wsh_conf_msec(conf_ctx_t *ctx, const char *path, const char *text,
    wsh_msec_t def, wsh_msec_t min, wsh_msec_t *out)
{
    *out = def;
    if (!wsh_conf_is_set(text)) {
        return;
    }
    if (wsh_conf_parse_msec(text, out) != WSH_OK) {
        wsh_conf_value_error(ctx, path, "invalid duration \"%s\" (use a number "
                         "with ms, s, m or h, e.g. 54s or 250ms)", text);
    } else if (*out < min) {
        wsh_conf_value_error(ctx, path, "duration \"%s\" is too short (at "
                         "least %llums)", text, (unsigned long long) min);
    }
}

void
wsh_conf_uint(conf_ctx_t *ctx, const char *path, const char *text, unsigned def,
    unsigned min, unsigned max, unsigned *out)
{
    unsigned long v;
    char *end;

    *out = def;
    if (!wsh_conf_is_set(text)) {
        return;
    }
    errno = 0;
    v = strtoul(text, &end, 10);
    if (!isdigit((unsigned char) *text) || *end != '\0' || errno != 0
        || v < min || v > max)
    {
        wsh_conf_value_error(ctx, path, "\"%s\" is not a whole number from %u "
                         "to %u", text, min, max);
        return;
    }
    *out = (unsigned) v;
}

/* The one reading of boolean words, for booleans and for the keys that
 * take a name or off (access_log; modules read theirs alike): 1 for on, true
 * and yes, 0 for off, false and no, -1 for anything else. */
int
wsh_conf_bool_word(const char *text)
{
    static const char *yes[] = { "on", "true", "yes" };
    static const char *no[] = { "off", "false", "no" };
    size_t i;

    for (i = 0; i < wsh_nelems(yes); i++) {
        if (strcmp(text, yes[i]) == 0) {
            return 1;
        }
        if (strcmp(text, no[i]) == 0) {
            return 0;
        }
    }
    return -1;
}

void
wsh_conf_bool(conf_ctx_t *ctx, const char *path, const char *text, bool def,
    bool *out)
{
    *out = def;
    if (!wsh_conf_is_set(text)) {
        return;
    }
    switch (wsh_conf_bool_word(text)) {
    case 1: *out = true; break;
    case 0: *out = false; break;
    default:
        wsh_conf_value_error(ctx, path, "\"%s\" is not on or off", text);
    }
}

char *
wsh_conf_strdup(conf_ctx_t *ctx, const char *s)
{
    char *p = strdup(s);

    if (p == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
    }
    return p;
}

int
wsh_conf_listen_text(const char *text, wsh_listen_addr_t *addr)
{
    char buf[96];
    size_t len;
    bool tls = false;

    snprintf(buf, sizeof(buf), "%s", text);
    len = strlen(buf);
    if (len > 4 && strcmp(buf + len - 4, " tls") == 0) {
        buf[len - 4] = '\0';
        tls = true;
    }
    if (wsh_conf_parse_listen(buf, addr) != WSH_OK) {
        return WSH_ERROR;
    }
    addr->tls = tls;
    return WSH_OK;
}
