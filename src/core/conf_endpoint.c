/* conf_endpoint.c -- the endpoints of the configuration: who may use
 * which path.
 *
 * Each endpoint's module, allow list (CIDR), listen addresses, auth
 * module and identity realm, checked at load time; the origins browsers
 * may connect from; and the lookups the workers make per request.
 */
#include "core/conf_value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef wsh_conf_ctx_t conf_ctx_t;

int
wsh_conf_parse_cidr(const char *text, wsh_cidr_t *cidr)
{
    char addr[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t) (slash - text) : strlen(text);
    unsigned long bits;
    char *end;
    unsigned max;

    if (len == 0 || len >= sizeof(addr)) {
        return WSH_ERROR;
    }
    memcpy(addr, text, len);
    addr[len] = '\0';
    memset(cidr, 0, sizeof(*cidr));
    if (inet_pton(AF_INET, addr, cidr->addr) == 1) {
        cidr->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, cidr->addr) == 1) {
        cidr->family = AF_INET6;
        max = 128;
    } else {
        return WSH_ERROR;
    }
    bits = max;
    if (slash != NULL) {
        if (slash[1] < '0' || slash[1] > '9') {
            return WSH_ERROR;
        }
        errno = 0;
        bits = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || errno != 0 || bits > max) {
            return WSH_ERROR;
        }
    }
    cidr->bits = (uint8_t) bits;
    return WSH_OK;
}

static bool
conf_cidr_match(const wsh_cidr_t *cidr, const u_char *addr)
{
    unsigned full = cidr->bits / 8, rest = cidr->bits % 8;

    if (memcmp(cidr->addr, addr, full) != 0) {
        return false;
    }
    return rest == 0
           || ((cidr->addr[full] ^ addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

bool
wsh_conf_allowed(const wsh_endpoint_t *ep, const struct sockaddr *sa)
{
    static const u_char v4mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
    const u_char *a4 = NULL, *a6 = NULL;
    size_t i;

    if (ep->nallow == 0) {
        return true;
    }
    if (sa->sa_family == AF_INET) {
        a4 = (const u_char *) &((const struct sockaddr_in *) sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        a6 = (const u_char *) &((const struct sockaddr_in6 *) sa)->sin6_addr;
        if (memcmp(a6, v4mapped, sizeof(v4mapped)) == 0) {
            a4 = a6 + 12;       /* an IPv4 client on a dual-stack socket */
        }
    }
    for (i = 0; i < ep->nallow; i++) {
        if ((ep->allow[i].family == AF_INET && a4 != NULL
             && conf_cidr_match(&ep->allow[i], a4))
            || (ep->allow[i].family == AF_INET6 && a6 != NULL
                && conf_cidr_match(&ep->allow[i], a6)))
        {
            return true;
        }
    }
    return false;
}

static void
conf_allow(conf_ctx_t *ctx, size_t i, const conf_raw_endpoint_t *raw,
    wsh_endpoint_t *ep)
{
    char path[64];
    size_t j;

    if (raw->allow == NULL || raw->allow_count == 0) {
        return;
    }
    ep->allow = calloc(raw->allow_count, sizeof(*ep->allow));
    if (ep->allow == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    for (j = 0; j < raw->allow_count; j++) {
        snprintf(path, sizeof(path), "endpoints[%zu].allow[%zu]", i, j);
        if (wsh_conf_parse_cidr(raw->allow[j], &ep->allow[j]) != WSH_OK) {
            wsh_conf_value_error(ctx, path, "\"%s\" is not an address or "
                             "network (use 10.0.0.0/8, 127.0.0.1 or ::1/128)",
                             raw->allow[j]);
            return;
        }
        ep->nallow++;
    }
}

/* An endpoint's "listen": the listen entries it is served on. */
static void
conf_endpoint_listen(conf_ctx_t *ctx, size_t i,
    const conf_raw_endpoint_t *raw, const wsh_conf_t *cf, wsh_endpoint_t *ep)
{
    wsh_listen_addr_t addr;
    char path[64];
    size_t j, k;

    for (j = 0; raw->listen != NULL && j < raw->listen_count; j++) {
        snprintf(path, sizeof(path), "endpoints[%zu].listen[%zu]", i, j);
        k = cf->nlisten;
        if (wsh_conf_listen_text(raw->listen[j], &addr) == WSH_OK) {
            for (k = 0; k < cf->nlisten; k++) {
                if (strcmp(cf->listen[k].text, addr.text) == 0) {
                    break;
                }
            }
        }
        if (k == cf->nlisten) {
            wsh_conf_value_error(ctx, path, "\"%s\" is not one of the listen "
                             "addresses", raw->listen[j]);
            return;
        }
        ep->listeners |= (uint64_t) 1 << k;
    }
}

/* "jwt, ..." : the auth modules' names as endpoints give them (without
 * "auth_"), for error messages. */
static const char *
conf_auth_names(void)
{
    static char names[128];
    const wsh_module_t *m;
    size_t i, len = 0;

    names[0] = '\0';
    for (i = 0; i < wsh_module_count() && len < sizeof(names); i++) {
        m = wsh_module_at(i);
        if (m->auth && strncmp(m->name, "auth_", 5) == 0) {
            len += (size_t) snprintf(names + len, sizeof(names) - len,
                                     "%s%s", len ? ", " : "", m->name + 5);
        }
    }
    return names;
}

/* An endpoint's "auth: NAME": the auth module auth_NAME runs before its
 * module, and needs its section in the file (its key or secret). */
static void
conf_endpoint_auth(conf_ctx_t *ctx, const conf_raw_endpoint_t *raw,
    size_t i, const wsh_conf_t *cf, wsh_endpoint_t *ep)
{
    const wsh_module_t *m;
    char path[64], name[64];

    if (ep->module->auth) {
        snprintf(path, sizeof(path), "endpoints[%zu].module", i);
        wsh_conf_value_error(ctx, path, "\"%s\" authenticates, it serves no "
                             "endpoint: use \"auth: %s\" beside a module",
                             raw->module, raw->module
                             + (strncmp(raw->module, "auth_", 5) ? 0 : 5));
        return;
    }
    if (!wsh_conf_is_set(raw->auth)) {
        return;
    }
    snprintf(path, sizeof(path), "endpoints[%zu].auth", i);
    snprintf(name, sizeof(name), "auth_%s", raw->auth);
    m = wsh_module_find(name);
    if (m == NULL || !m->auth) {
        wsh_conf_value_error(ctx, path, "unknown authentication \"%s\" (this "
                             "build has: %s)", raw->auth, conf_auth_names());
    } else if (m->conf != NULL && !wsh_conf_section_present(cf, m)) {
        wsh_conf_value_error(ctx, path, "\"%s\" needs an %s: section with "
                             "its settings (the algorithm and key)",
                             raw->auth, m->conf->key);
    } else {
        ep->auth = m;
    }
}

/* An endpoint's "realm:", by default its path: the namespace of its
 * clients' ids and topics (wsh_conn_realm). Realms go into topic names
 * as "REALM#NAME", hence no '#'. */
static void
conf_endpoint_realm(conf_ctx_t *ctx, const conf_raw_endpoint_t *raw,
    size_t i, wsh_endpoint_t *ep)
{
    char path[64];
    size_t j, len;

    if (!wsh_conf_is_set(raw->realm)) {
        snprintf(path, sizeof(path), "endpoints[%zu].path", i);
        if (strlen(ep->path) > WSH_REALM_MAX) {
            wsh_conf_value_error(ctx, path, "over %d bytes, too long to be "
                                 "the endpoint's realm: give it a realm",
                                 WSH_REALM_MAX);
            return;
        }
        ep->realm = wsh_conf_strdup(ctx, ep->path);
        return;
    }
    snprintf(path, sizeof(path), "endpoints[%zu].realm", i);
    len = strlen(raw->realm);
    for (j = 0; j < len; j++) {
        if (!isalnum((u_char) raw->realm[j])
            && strchr("_.:@/-", raw->realm[j]) == NULL)
        {
            break;
        }
    }
    if (len == 0 || len > WSH_REALM_MAX || j < len) {
        wsh_conf_value_error(ctx, path, "\"%s\" is not a realm: 1 to %d of "
                         "A-Z a-z 0-9 _ . : @ / -", raw->realm,
                         WSH_REALM_MAX);
        return;
    }
    ep->realm = wsh_conf_strdup(ctx, raw->realm);
    ep->realm_set = true;
}

/* A realm is verified when one of its endpoints authenticates: its ids
 * are then only those an auth module vouched for. An endpoint that
 * serves no WebSocket (the publish API) without a realm of its own
 * publishes into the only realm of the topic endpoints, if there is
 * just one. */
static void
conf_realms(wsh_conf_t *cf)
{
    wsh_endpoint_t *ep, *other, *only = NULL;
    size_t i, j, nrealms = 0;

    for (i = 0; i < cf->nendpoints; i++) {
        ep = &cf->endpoints[i];
        for (j = 0; j < cf->nendpoints; j++) {
            other = &cf->endpoints[j];
            if (other->auth != NULL && ep->realm != NULL
                && other->realm != NULL
                && strcmp(other->realm, ep->realm) == 0)
            {
                ep->realm_verified = true;
            }
        }
        if (ep->module == NULL || ep->module->members == NULL) {
            continue;
        }
        for (j = 0; j < i; j++) {
            other = &cf->endpoints[j];
            if (other->module != NULL && other->module->members != NULL
                && strcmp(other->realm, ep->realm) == 0)
            {
                break;
            }
        }
        if (j == i) {
            nrealms++;
            only = ep;
        }
    }
    for (i = 0; i < cf->nendpoints; i++) {
        ep = &cf->endpoints[i];
        if (ep->module != NULL && ep->module->open == NULL && !ep->realm_set) {
            free(ep->realm);
            ep->realm = nrealms == 1 ? strdup(only->realm) : NULL;
        }
    }
}

/* Whether an endpoint serving topics has the realm NAME. */
bool
wsh_conf_realm_known(const wsh_conf_t *cf, const char *name, size_t len)
{
    const wsh_endpoint_t *ep;
    size_t i;

    for (i = 0; i < cf->nendpoints; i++) {
        ep = &cf->endpoints[i];
        if (ep->module->members != NULL && ep->realm != NULL
            && strlen(ep->realm) == len && memcmp(ep->realm, name, len) == 0)
        {
            return true;
        }
    }
    return false;
}

void
wsh_conf_endpoints(conf_ctx_t *ctx, conf_raw_endpoint_t *endpoints,
    size_t count, wsh_conf_t *cf)
{
    static char *loopback[] = { "127.0.0.0/8", "::1" };
    static conf_raw_endpoint_t deflt[WSH_MODULES_MAX];
    const wsh_default_endpoint_t *d;
    conf_raw_endpoint_t *list = endpoints;
    size_t n = count;
    size_t i, j;
    wsh_endpoint_t *ep;
    char path[64];

    if (list == NULL) {
        /* No "endpoints": each module's own, in module order. */
        list = deflt;
        for (i = 0, n = 0; i < wsh_module_count(); i++) {
            d = wsh_module_at(i)->default_endpoint;
            if (d == NULL) {
                continue;
            }
            memset(&deflt[n], 0, sizeof(deflt[n]));
            deflt[n].path = (char *) d->path;
            deflt[n].module = (char *) wsh_module_at(i)->name;
            deflt[n].max_message_size = (char *) d->max_message_size;
            if (d->loopback) {
                deflt[n].allow = loopback;
                deflt[n].allow_count = wsh_nelems(loopback);
            }
            n++;
        }
    }
    cf->endpoints = calloc(n, sizeof(*cf->endpoints));
    if (cf->endpoints == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    cf->nendpoints = n;
    for (i = 0; i < n && !ctx->failed; i++) {
        ep = &cf->endpoints[i];
        snprintf(path, sizeof(path), "endpoints[%zu].path", i);
        if (list[i].path[0] != '/' || strpbrk(list[i].path, "?# \t") != NULL) {
            wsh_conf_value_error(ctx, path, "\"%s\" must start with / and hold "
                             "no query, fragment or space", list[i].path);
            return;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(cf->endpoints[j].path, list[i].path) == 0) {
                wsh_conf_value_error(ctx, path, "duplicate endpoint \"%s\"",
                                 list[i].path);
                return;
            }
        }
        ep->path = wsh_conf_strdup(ctx, list[i].path);
        snprintf(path, sizeof(path), "endpoints[%zu].module", i);
        ep->module = wsh_module_find(list[i].module);
        if (ep->module == NULL) {
            wsh_conf_value_error(ctx, path, "unknown module \"%s\" (this build "
                             "has: %s)", list[i].module, wsh_module_names());
            return;
        }
        snprintf(path, sizeof(path), "endpoints[%zu].max_message_size", i);
        wsh_conf_size(ctx, path, list[i].max_message_size, cf->max_message_size,
                  1, (size_t) 1 << 31, &ep->max_message_size);
        conf_allow(ctx, i, &list[i], ep);
        conf_endpoint_listen(ctx, i, &list[i], cf, ep);
        conf_endpoint_auth(ctx, &list[i], i, cf, ep);
        conf_endpoint_realm(ctx, &list[i], i, ep);
    }
    if (!ctx->failed) {
        conf_realms(cf);        /* every endpoint has its realm */
    }
}

int
wsh_conf_parse_origin(const char *text, size_t len, wsh_origin_t *o)
{
    const char *p = text, *last = text + len, *host, *colon;
    unsigned long port;
    size_t hlen, i;
    char *end, digits[8];

    memset(o, 0, sizeof(*o));
    if (len > 8 && strncasecmp(p, "https://", 8) == 0) {
        strcpy(o->scheme, "https");
        o->port = 443;
        p += 8;
    } else if (len > 7 && strncasecmp(p, "http://", 7) == 0) {
        strcpy(o->scheme, "http");
        o->port = 80;
        p += 7;
    } else {
        return WSH_ERROR;
    }
    if (last - p > 2 && p[0] == '*' && p[1] == '.') {
        o->wildcard = true;
        p += 2;
    }
    host = p;
    colon = memchr(p, ':', (size_t) (last - p));
    hlen = (size_t) ((colon ? colon : last) - host);
    if (hlen == 0 || hlen >= sizeof(o->host)) {
        return WSH_ERROR;
    }
    for (i = 0; i < hlen; i++) {
        char ch = (char) tolower((unsigned char) host[i]);

        if (!isalnum((unsigned char) ch) && ch != '-' && ch != '.') {
            return WSH_ERROR;       /* no path, user info or IPv6 here */
        }
        o->host[i] = ch;
    }
    if (colon != NULL) {
        if (last - colon - 1 < 1 || last - colon - 1 > 5) {
            return WSH_ERROR;
        }
        memcpy(digits, colon + 1, (size_t) (last - colon - 1));
        digits[last - colon - 1] = '\0';
        port = strtoul(digits, &end, 10);
        if (*end != '\0' || !isdigit((unsigned char) digits[0]) || port == 0
            || port > 65535)
        {
            return WSH_ERROR;
        }
        o->port = (unsigned) port;
    }
    return WSH_OK;
}

bool
wsh_conf_origin_allowed(const wsh_conf_t *cf, const char *text, size_t len)
{
    wsh_origin_t o;
    size_t i, hl, ol;

    if (cf->norigins == 0) {
        return true;
    }
    if (wsh_conf_parse_origin(text, len, &o) != WSH_OK || o.wildcard) {
        return false;           /* "null", garbage, or a pattern */
    }
    for (i = 0; i < cf->norigins; i++) {
        const wsh_origin_t *a = &cf->origins[i];

        if (strcmp(a->scheme, o.scheme) != 0 || a->port != o.port) {
            continue;
        }
        if (!a->wildcard) {
            if (strcmp(a->host, o.host) == 0) {
                return true;
            }
            continue;
        }
        /* "*.example.com": any subdomain, not example.com itself. */
        hl = strlen(a->host);
        ol = strlen(o.host);
        if (ol > hl + 1 && o.host[ol - hl - 1] == '.'
            && strcmp(o.host + ol - hl, a->host) == 0)
        {
            return true;
        }
    }
    return false;
}

const wsh_endpoint_t *
wsh_conf_endpoint(const wsh_conf_t *cf, const char *path, size_t len)
{
    size_t i;

    for (i = 0; i < cf->nendpoints; i++) {
        if (strlen(cf->endpoints[i].path) == len
            && memcmp(cf->endpoints[i].path, path, len) == 0)
        {
            return &cf->endpoints[i];
        }
    }
    return NULL;
}
