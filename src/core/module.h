/* module.h -- the registry of built-in modules. */
#ifndef WSH_MODULE_H
#define WSH_MODULE_H

#include "core/core.h"
#include "wshub.h"

/* The built-in modules, NULL-terminated. */
extern const wsh_module_t *const wsh_modules[];

/* Module called NAME, or NULL. */
const wsh_module_t *wsh_module_find(const char *name);

/* "echo, hub, ..." for error messages. */
const char *wsh_module_names(void);

/* Run every module's init_master / init_worker / exit_worker. */
int  wsh_modules_init_master(void);
int  wsh_modules_init_worker(void);
void wsh_modules_exit_worker(void);

#endif /* WSH_MODULE_H */
