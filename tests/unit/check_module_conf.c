/* check_module_conf.c -- a module that is not built in declares its
 * configuration section, with wshub.h only, and reads it back.
 *
 * The "greeter" module below is what an out-of-tree module looks like:
 * two keys (a string and a bounded number) and a list; the core checks
 * the file's shape, parses the values, reports errors at their line and
 * column, and hands the module its struct.
 */
#include "config.h"

#include "wshub.h"

#include "core/conf.h"
#include "core/module.h"

#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the module: include/wshub.h only ------------------------------------ */

typedef struct {
    char            *greeting;
    unsigned         repeat;
    wsh_conf_list_t  names;
} greeter_conf_t;

static const wsh_conf_field_t greeter_fields[] = {
    { WSH_CONF_FIELD(greeter_conf_t, greeting, STRING, "hello", 0, 0) },
    { WSH_CONF_FIELD(greeter_conf_t, repeat, UINT, "1", 1, 10) },
    { WSH_CONF_FIELD(greeter_conf_t, names, LIST, NULL, 0, 3) },
    WSH_CONF_END
};

/* Checks across keys: a greeting repeated must be short. */
static int
greeter_check(void *conf, int present, const char **field, char *err,
    size_t len)
{
    const greeter_conf_t *g = conf;

    (void) present;
    if (g->repeat > 1 && strlen(g->greeting) > 8) {
        *field = "greeting";
        snprintf(err, len, "at most 8 characters when repeated");
        return -1;
    }
    return 0;
}

static const wsh_conf_section_t greeter_section = {
    "greeter", sizeof(greeter_conf_t), greeter_fields, greeter_check, NULL
};

static const wsh_module_t greeter_module = {
    .name = "greeter",
    .api_version = WSHUB_API_VERSION,
    .conf = &greeter_section,
};

/* ---- the tests -------------------------------------------------------- */

static wsh_conf_t *
load(const char *text, char *err, size_t len)
{
    char path[] = "/tmp/check_module_conf.XXXXXX";
    wsh_conf_t *cf;
    int fd = mkstemp(path);

    ck_assert_int_ne(fd, -1);
    ck_assert_int_eq(write(fd, text, strlen(text)), (int) strlen(text));
    close(fd);
    cf = wsh_conf_load(path, err, len);
    unlink(path);
    return cf;
}

START_TEST(test_keys_read_back)
{
    const greeter_conf_t *g;
    char err[WSH_CONF_ERR_MAX];
    wsh_conf_t *cf;

    cf = load("greeter:\n  greeting: hi\n  repeat: 3\n"
              "  names: [ann, bob]\n", err, sizeof(err));
    ck_assert_msg(cf != NULL, "%s", err);
    wsh_conf_use(cf);
    g = wsh_module_conf(&greeter_module);
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->greeting, "hi");
    ck_assert_uint_eq(g->repeat, 3);
    ck_assert_uint_eq(g->names.n, 2);
    ck_assert_str_eq(g->names.items[1], "bob");
    ck_assert(wsh_conf_section_present(cf, &greeter_module));
    wsh_conf_use(NULL);
    wsh_conf_free(cf);

    /* Absent: the defaults, written as in the file. */
    cf = load("log_level: info\n", err, sizeof(err));
    ck_assert_msg(cf != NULL, "%s", err);
    g = wsh_conf_section(cf, &greeter_module);
    ck_assert_str_eq(g->greeting, "hello");
    ck_assert_uint_eq(g->repeat, 1);
    ck_assert_uint_eq(g->names.n, 0);
    ck_assert(!wsh_conf_section_present(cf, &greeter_module));
    wsh_conf_free(cf);
}
END_TEST

/* Each error names the file, line and column of the value, the key, and
 * what to write instead. */
START_TEST(test_errors_point_at_the_value)
{
    static const struct {
        const char *text;
        const char *where, *what;
    } bad[] = {
        { "greeter:\n  repeat: 11\n", ":2:11: greeter.repeat:",
          "whole number from 1 to 10" },
        { "greeter:\n  repaet: 2\n", ":2:3: unknown key \"repaet\"",
          "did you mean \"repeat\"" },
        { "greeter:\n  names: [a, b, c, d]\n", ":2:20: greeter.names",
          "at most 3 entries" },
        { "greeter:\n  greeting: [a]\n", ":2:13: greeting",
          "expected a single value" },
        { "greeter:\n  repeat: 2\n  greeting: good morning\n",
          ":3:13: greeter.greeting:", "at most 8 characters" },
    };
    char err[WSH_CONF_ERR_MAX];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_ptr_null(load(bad[i].text, err, sizeof(err)));
        ck_assert_msg(strstr(err, bad[i].where) != NULL, "%zu: %s", i, err);
        ck_assert_msg(strstr(err, bad[i].what) != NULL, "%zu: %s", i, err);
    }
}
END_TEST

START_TEST(test_registration)
{
    static const wsh_module_t old = {
        .name = "old", .api_version = WSHUB_API_VERSION - 1,
    };
    static const wsh_module_t twin = {
        .name = "greeter", .api_version = WSHUB_API_VERSION,
    };

    ck_assert_int_eq(wsh_module_add(&old), WSH_ERROR);
    ck_assert_int_eq(wsh_module_add(&twin), WSH_ERROR);
    ck_assert_ptr_eq(wsh_module_find("greeter"), &greeter_module);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("module_conf");
    TCase *tc = tcase_create("module_conf");
    SRunner *sr;
    int failed;

    /* Before the first load: the schema is built once, from the modules
     * known then. */
    if (wsh_module_add(&greeter_module) != WSH_OK) {
        fprintf(stderr, "wsh_module_add(greeter) failed\n");
        return 1;
    }
    tcase_add_test(tc, test_keys_read_back);
    tcase_add_test(tc, test_errors_point_at_the_value);
    tcase_add_test(tc, test_registration);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
