/* module.h -- the registry of built-in modules. */
#ifndef WSH_MODULE_H
#define WSH_MODULE_H

#include "core/core.h"
#include "wshub.h"

/* Modules one process knows, built-in and added. */
#define WSH_MODULES_MAX 32

/* The built-in modules, NULL-terminated (src/core/module_list.c, which
 * make writes from Makefile.am's MODULE_SOURCES). */
extern const wsh_module_t *const wsh_modules[];

/* The registered modules, built-in then added: COUNT of them, the Ith.
 * A module whose api_version is not WSHUB_API_VERSION is refused at
 * registration (logged) and is not among them. */
size_t wsh_module_count(void);
const wsh_module_t *wsh_module_at(size_t i);

/* Add a module that is not built in (tests, an out-of-tree build linking
 * the library), before the configuration is loaded: its name must be
 * new and its api_version WSHUB_API_VERSION. WSH_OK, or WSH_ERROR after
 * logging why. */
int wsh_module_add(const wsh_module_t *m);

/* Module called NAME, or NULL. */
const wsh_module_t *wsh_module_find(const char *name);

/* "echo, hub, ..." for error messages. */
const char *wsh_module_names(void);

/* Run every module's init_master / init_worker / exit_worker. */
int  wsh_modules_init_master(void);
int  wsh_modules_init_worker(void);
void wsh_modules_exit_worker(void);

#endif /* WSH_MODULE_H */
