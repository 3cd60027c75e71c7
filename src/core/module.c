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

const wsh_module_t *
wsh_module_find(const char *name)
{
    size_t i;

    for (i = 0; wsh_modules[i] != NULL; i++) {
        if (strcmp(wsh_modules[i]->name, name) == 0) {
            return wsh_modules[i];
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
    for (i = 0; wsh_modules[i] != NULL && len < sizeof(names); i++) {
        n = snprintf(names + len, sizeof(names) - len, "%s%s",
                     i ? ", " : "", wsh_modules[i]->name);
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

    for (i = 0; wsh_modules[i] != NULL; i++) {
        if (wsh_modules[i]->init_master != NULL
            && wsh_modules[i]->init_master() != 0)
        {
            wsh_log(WSH_LOG_EMERG, "module \"%s\" failed to initialise",
                    wsh_modules[i]->name);
            return WSH_ERROR;
        }
    }
    return WSH_OK;
}

int
wsh_modules_init_worker(void)
{
    size_t i;

    for (i = 0; wsh_modules[i] != NULL; i++) {
        if (wsh_modules[i]->init_worker != NULL
            && wsh_modules[i]->init_worker() != 0)
        {
            wsh_log(WSH_LOG_EMERG, "module \"%s\" failed to initialise in "
                    "the worker", wsh_modules[i]->name);
            return WSH_ERROR;
        }
    }
    return WSH_OK;
}

void
wsh_modules_exit_worker(void)
{
    size_t i;

    for (i = 0; wsh_modules[i] != NULL; i++) {
        if (wsh_modules[i]->exit_worker != NULL) {
            wsh_modules[i]->exit_worker();
        }
    }
}
