/* module.c -- built-in module registry and lifecycle calls.
 *
 * Built-in modules are one static NULL-terminated array, as in nginx;
 * endpoints name them in the config. Loading modules with dlopen can be
 * added later without changing a module: they only see src/wshub.h.
 */
#include "core/module.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

extern const wsh_module_t wsh_echo_module;
extern const wsh_module_t wsh_hub_module;
extern const wsh_module_t wsh_hub_api_module;
extern const wsh_module_t wsh_health_module;
extern const wsh_module_t wsh_metrics_module;
extern const wsh_module_t wsh_status_module;
extern const wsh_module_t wsh_auth_jwt_module;

const wsh_module_t *const wsh_modules[] = {
    &wsh_echo_module,
    &wsh_hub_module,
    &wsh_hub_api_module,
    &wsh_health_module,
    &wsh_metrics_module,
    &wsh_status_module,
    &wsh_auth_jwt_module,
    NULL
};

/* Modules added at run time (wsh_module_add); a few at most. */
#define WSH_MODULES_ADDED 8

static const wsh_module_t *module_added[WSH_MODULES_ADDED];
static size_t module_nadded;

static size_t
module_nbuiltin(void)
{
    size_t n = 0;

    while (wsh_modules[n] != NULL) {
        n++;
    }
    return n;
}

size_t
wsh_module_count(void)
{
    return module_nbuiltin() + module_nadded;
}

const wsh_module_t *
wsh_module_at(size_t i)
{
    size_t n = module_nbuiltin();

    return i < n ? wsh_modules[i] : module_added[i - n];
}

int
wsh_module_add(const wsh_module_t *m)
{
    if (module_nadded == WSH_MODULES_ADDED
        || wsh_module_count() >= WSH_MODULES_MAX
        || m->api_version != WSHUB_API_VERSION
        || wsh_module_find(m->name) != NULL)
    {
        return WSH_ERROR;
    }
    module_added[module_nadded++] = m;
    return WSH_OK;
}

const wsh_module_t *
wsh_module_find(const char *name)
{
    size_t i;

    for (i = 0; i < wsh_module_count(); i++) {
        if (strcmp(wsh_module_at(i)->name, name) == 0) {
            return wsh_module_at(i);
        }
    }
    return NULL;
}

const char *
wsh_module_names(void)
{
    static char names[256];
    size_t i, len = 0;
    int n;

    names[0] = '\0';
    for (i = 0; i < wsh_module_count() && len < sizeof(names); i++) {
        n = snprintf(names + len, sizeof(names) - len, "%s%s",
                     i ? ", " : "", wsh_module_at(i)->name);
        if (n < 0) {
            break;
        }
        len += (size_t) n;
    }
    return names;
}

int
wsh_modules_init_master(void)
{
    size_t i;

    for (i = 0; i < wsh_module_count(); i++) {
        if (wsh_module_at(i)->init_master != NULL
            && wsh_module_at(i)->init_master() != 0)
        {
            wsh_log(WSH_LOG_EMERG, "module \"%s\" failed to initialise",
                    wsh_module_at(i)->name);
            return WSH_ERROR;
        }
    }
    return WSH_OK;
}

int
wsh_modules_init_worker(void)
{
    size_t i;

    for (i = 0; i < wsh_module_count(); i++) {
        if (wsh_module_at(i)->init_worker != NULL
            && wsh_module_at(i)->init_worker() != 0)
        {
            wsh_log(WSH_LOG_EMERG, "module \"%s\" failed to initialise in "
                    "the worker", wsh_module_at(i)->name);
            return WSH_ERROR;
        }
    }
    return WSH_OK;
}

void
wsh_modules_exit_worker(void)
{
    size_t i;

    for (i = 0; i < wsh_module_count(); i++) {
        if (wsh_module_at(i)->exit_worker != NULL) {
            wsh_module_at(i)->exit_worker();
        }
    }
}
