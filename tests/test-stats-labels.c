/* The collection label of atkafka_handled_events stays bounded (issue 9, item 10): NSIDs only,
 * the first ATK_STATS_MAX_COLLECTIONS distinct ones, then "other".
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "atk-stats.h"

static guint
count_series (const char *text, const char *name)
{
  guint n = 0;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], name) && lines[i][strlen (name)] == '{')
      n++;
  return n;
}

static void
test_nsid_validation (void)
{
  const char *good[] = { "app.bsky.feed.post", "com.example.fooBar", "a.b.c", "com.example-x.thing",
                         "net.users.bob.ping1" };
  const char *bad[] = { "",
                        "app",
                        "app.bsky",
                        "app..post",
                        ".app.bsky.post",
                        "app.bsky.post.",
                        "1app.bsky.post",
                        "app.bsky.1post",
                        "app.bsky.po-st",
                        "app.-bsky.post",
                        "app.bsky-.post",
                        "app.bsky.p\xc3\xb6st",
                        "app.bsky.post\n",
                        "a b.c.d",
                        "app.bsky.po\"st" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    g_assert_true (atk_stats_nsid_is_valid (good[i]));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (atk_stats_nsid_is_valid (bad[i]));
  {
    g_autofree char *segment = g_strnfill (64, 'a');
    g_autofree char *long_segment = g_strdup_printf ("com.%s.post", segment);
    g_autofree char *many = g_strnfill (400, 'a');

    for (guint i = 1; i < 400; i += 2)
      many[i] = '.';
    g_assert_false (atk_stats_nsid_is_valid (long_segment));
    g_assert_false (atk_stats_nsid_is_valid (many));
  }
}

/* What a hostile account can do through a legitimate relay: 50,000 commits, each to a
 * distinct 300-character collection. */
static void
test_cardinality_capped (void)
{
  AtkStats stats;
  g_autoptr (GString) out = g_string_new (NULL);
  g_autofree char *segment = g_strnfill (60, 'x');
  /* a valid NSID of about 300 characters: segments of 60 */
  g_autofree char *filler = g_strdup_printf ("%s.%s.%s.%s.c", segment, segment, segment, segment);

  atk_stats_init (&stats);
  atk_stats_count_handled (&stats, "create", "app.bsky.feed.post");
  for (guint i = 0; i < 50000; i++)
    {
      g_autofree char *collection = g_strdup_printf ("com.attacker.%s%05u", filler, i);
      g_autofree char *not_nsid = g_strdup_printf ("bad collection %u\n", i);

      atk_stats_count_handled (&stats, "create", collection);
      if (i % 10 == 0)
        atk_stats_count_handled (&stats, "update", not_nsid);
    }
  atk_stats_count_handled (&stats, "create", "app.bsky.feed.post");
  atk_stats_count_handled (&stats, "identity", NULL);

  atk_stats_render_prometheus (&stats, 0, out);
  /* the first 255 attacker collections, post, "other", "invalid", identity's "" */
  g_assert_cmpuint (count_series (out->str, "atkafka_handled_events"), ==,
                    ATK_STATS_MAX_COLLECTIONS + 3);
  g_assert_cmpuint (out->len, <, 128 * 1024);
  g_assert_nonnull (strstr (out->str, "atkafka_handled_events{action_name=\"create\","
                                      "collection=\"app.bsky.feed.post\"} 2\n"));
  g_assert_nonnull (strstr (out->str, "atkafka_handled_events{action_name=\"create\","
                                      "collection=\"other\"} 49745\n"));
  g_assert_nonnull (strstr (out->str, "atkafka_handled_events{action_name=\"update\","
                                      "collection=\"invalid\"} 5000\n"));
  /* nothing is lost from the total */
  g_assert_cmpuint (atk_stats_get_handled_total (&stats), ==, 2 + 50000 + 5000 + 1);
  atk_stats_clear (&stats);
}

/* Repeated (action, collection) pairs are counted through an index of their counters: every
 * change of either, and back, must still land on its own series; "invalid" (not indexed)
 * still counts each time. */
static void
test_repeats (void)
{
  AtkStats stats;
  g_autoptr (GString) out = g_string_new (NULL);
  const char *sequence[][2] = {
    { "create", "app.bsky.feed.post" },
    { "create", "app.bsky.feed.post" },
    { "create", "app.bsky.feed.like" },
    { "create", "app.bsky.feed.post" },
    { "delete", "app.bsky.feed.post" },
    { "create", NULL },
    { "create", "" },
    { "create", "not an nsid" },
    { "create", "app.bsky.feed.post" },
    { "create", "not an nsid" },
  };

  atk_stats_init (&stats);
  for (guint i = 0; i < G_N_ELEMENTS (sequence); i++)
    {
      /* a fresh copy each time: equal strings, not the same pointers */
      g_autofree char *action = g_strdup (sequence[i][0]);
      g_autofree char *collection = g_strdup (sequence[i][1]);

      atk_stats_count_handled (&stats, action, collection);
    }
  atk_stats_render_prometheus (&stats, 0, out);
  g_assert_nonnull (
      strstr (out->str, "{action_name=\"create\",collection=\"app.bsky.feed.post\"} 4\n"));
  g_assert_nonnull (
      strstr (out->str, "{action_name=\"create\",collection=\"app.bsky.feed.like\"} 1\n"));
  g_assert_nonnull (
      strstr (out->str, "{action_name=\"delete\",collection=\"app.bsky.feed.post\"} 1\n"));
  g_assert_nonnull (strstr (out->str, "{action_name=\"create\",collection=\"\"} 2\n"));
  g_assert_nonnull (strstr (out->str, "{action_name=\"create\",collection=\"invalid\"} 2\n"));
  g_assert_cmpuint (atk_stats_get_handled_total (&stats), ==, G_N_ELEMENTS (sequence));
  atk_stats_clear (&stats);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/stats-labels/nsid", test_nsid_validation);
  g_test_add_func ("/stats-labels/cardinality", test_cardinality_capped);
  g_test_add_func ("/stats-labels/repeats", test_repeats);
  return g_test_run ();
}
