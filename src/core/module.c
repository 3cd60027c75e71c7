/* module.c -- the module registry and lifecycle calls.
 *
 * Built-in modules are one static NULL-terminated array, as in nginx,
 * which make writes from the modules' sources (src/core/module_list.c,
 * from MODULE_SOURCES in Makefile.am); endpoints name them in the
 * configuration. Every module, built in or added (wsh_module_add), is
 * registered once and checked against the module API this server
 * implements: one built against another WSHUB_API_VERSION of
 * include/wshub.h is refused, with a log line saying so, rather than called
 * with structures it does not know. Modules include include/wshub.h and
 * their own headers only (tests/check_layers.py), so loading them with
 * dlopen could come later without changing one.
 */
#include "core/module.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

static const wsh_module_t *module_list[WSH_MODULES_MAX];
static size_t module_n;
static bool module_builtins_done;

static const wsh_module_t *
module_lookup(const char *name)
{
    size_t i;

    for (i = 0; i < module_n; i++) {
        if (strcmp(module_list[i]->name, name) == 0) {
            return module_list[i];
        }
    }
    return NULL;
}

/* Register M (WHAT: "built-in" or "added" for the log), or refuse it
 * after logging why. */
static int
module_register(const wsh_module_t *m, const char *what)
{
    if (m->api_version != WSHUB_API_VERSION) {
        wsh_log(WSH_LOG_ALERT, "%s module \"%s\" refused: it is built for "
                "version %d of the module API (wshub.h), this wshubd has "
                "version %d; rebuild it against this wshub.h", what,
                m->name, m->api_version, WSHUB_API_VERSION);
        return WSH_ERROR;
    }
    if (module_lookup(m->name) != NULL) {
        wsh_log(WSH_LOG_ALERT, "%s module \"%s\" refused: a module of that "
                "name is registered already", what, m->name);
        return WSH_ERROR;
    }
    if (module_n == WSH_MODULES_MAX) {
        wsh_log(WSH_LOG_ALERT, "%s module \"%s\" refused: more than %d "
                "modules", what, m->name, WSH_MODULES_MAX);
        return WSH_ERROR;
    }
    module_list[module_n++] = m;
    return WSH_OK;
}

/* The built-in modules are registered on the registry's first use:
 * before the first configuration is read, in every process. */
static void
module_builtins(void)
{
    size_t i;

    if (module_builtins_done) {
        return;
    }
    module_builtins_done = true;
    for (i = 0; wsh_modules[i] != NULL; i++) {
        (void) module_register(wsh_modules[i], "built-in");
    }
}

size_t
wsh_module_count(void)
{
    module_builtins();
    return module_n;
}

const wsh_module_t *
wsh_module_at(size_t i)
{
    module_builtins();
    return module_list[i];
}

int
wsh_module_add(const wsh_module_t *m)
{
    module_builtins();
    return module_register(m, "added");
}

const wsh_module_t *
wsh_module_find(const char *name)
{
    module_builtins();
    return module_lookup(name);
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
