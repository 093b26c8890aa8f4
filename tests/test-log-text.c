/* Peer strings in log lines are capped (issue 9, item 13).
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "atk-log-text.h"

static void
test_short_kept (void)
{
  g_autofree char *a = atk_log_text ("ConsumerTooSlow", -1);
  g_autofree char *b = atk_log_text ("abc\0def", 7);
  g_autofree char *c = atk_log_text (NULL, 0);

  g_assert_cmpstr (a, ==, "ConsumerTooSlow");
  g_assert_cmpstr (b, ==, "abc");
  g_assert_cmpstr (c, ==, "");
}

static void
test_long_capped (void)
{
  gsize big = 5 << 20;
  g_autofree char *text = g_strnfill (big, 'x');
  g_autofree char *capped = atk_log_text (text, big);
  g_autofree char *tail = g_strdup_printf ("… (%" G_GSIZE_FORMAT " bytes)", big);

  g_assert_cmpuint (strlen (capped), <=, ATK_LOG_TEXT_MAX + 32);
  g_assert_true (g_str_has_suffix (capped, tail));
  g_assert_true (g_str_has_prefix (capped, "xxxx"));
}

static void
test_cut_at_character (void)
{
  g_autoptr (GString) text = g_string_new ("x");

  while (text->len < 2 * ATK_LOG_TEXT_MAX)
    g_string_append (text, "é"); /* two bytes each, after one ASCII byte */
  {
    g_autofree char *capped = atk_log_text (text->str, text->len);
    g_assert_true (g_utf8_validate (capped, -1, NULL));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/log-text/short", test_short_kept);
  g_test_add_func ("/log-text/long", test_long_capped);
  g_test_add_func ("/log-text/utf8", test_cut_at_character);
  return g_test_run ();
}
