/* check_names.c -- unit tests of client ids, room names and patterns.
 *
 * src/core/names.c decides with a character table what wshub-protocol(7)
 * says in words: letters, digits and "_.:@-" in client ids (up to 64
 * bytes), the same and '/' in room names (up to 128), a pattern being a
 * room name or its prefix ending in '*'. Every byte value is checked
 * against that sentence, written here independently of the table, since
 * a wrong entry would let a character through that the hub then writes
 * into JSON unescaped.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "core/core.h"
#include "wshub.h"

static bool
allowed(int ch, bool room)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
           || (ch >= '0' && ch <= '9')
           || (ch != 0 && strchr("_.:@-", ch) != NULL)
           || (room && ch == '/');
}

START_TEST(test_every_byte)
{
    char id[3];
    int ch;

    for (ch = 0; ch < 256; ch++) {
        /* alone, and in the middle of valid characters */
        id[0] = 'a';
        id[1] = (char) ch;
        id[2] = 'z';
        ck_assert_msg(!!wsh_valid_client_id(id + 1, 1) == allowed(ch, false),
                      "client id byte 0x%02x", ch);
        ck_assert_msg(!!wsh_valid_client_id(id, 3) == allowed(ch, false),
                      "client id byte 0x%02x inside", ch);
        ck_assert_msg(!!wsh_valid_room(id + 1, 1) == allowed(ch, true),
                      "room byte 0x%02x", ch);
        ck_assert_msg(!!wsh_valid_room(id, 3) == allowed(ch, true),
                      "room byte 0x%02x inside", ch);
    }
}
END_TEST

START_TEST(test_lengths)
{
    char s[WSH_ROOM_MAX + 2];

    memset(s, 'x', sizeof(s));
    ck_assert(!wsh_valid_client_id(s, 0));
    ck_assert(wsh_valid_client_id(s, WSH_CLIENT_ID_MAX));
    ck_assert(!wsh_valid_client_id(s, WSH_CLIENT_ID_MAX + 1));
    ck_assert(!wsh_valid_room(s, 0));
    ck_assert(wsh_valid_room(s, WSH_ROOM_MAX));
    ck_assert(!wsh_valid_room(s, WSH_ROOM_MAX + 1));
}
END_TEST

START_TEST(test_patterns)
{
    ck_assert(wsh_valid_room_pattern("*", 1));
    ck_assert(wsh_valid_room_pattern("chat:*", 6));
    ck_assert(wsh_valid_room_pattern("chat/a", 6));
    ck_assert(!wsh_valid_room_pattern("", 0));
    ck_assert(!wsh_valid_room_pattern("**", 2));
    ck_assert(!wsh_valid_room_pattern("a*b", 3));
    ck_assert(wsh_room_matches("chat:*", 6, "chat:1", 6));
    ck_assert(!wsh_room_matches("chat:*", 6, "chaT:1", 6));
    ck_assert(wsh_room_matches("*", 1, "any/room", 8));
    ck_assert(wsh_room_matches("lobby", 5, "lobby", 5));
    ck_assert(!wsh_room_matches("lobby", 5, "lobby2", 6));
}
END_TEST

static Suite *
names_suite(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("names");

    tcase_add_test(tc, test_every_byte);
    tcase_add_test(tc, test_lengths);
    tcase_add_test(tc, test_patterns);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(names_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
