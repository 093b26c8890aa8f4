/* Watched/ignored name lists: collection NSIDs and PDS host names. */
#include <string.h>

#include "atk-error.h"
#include "atk-name-filter.h"
#include "atk-test-util.h"

static gboolean
allows (const AtkNameFilter *filter, const char *name)
{
  return atk_name_filter_allows (filter, name, name != NULL ? strlen (name) : 0);
}

static void
test_nsids (void)
{
  const char *const watched[] = { "app.bsky.feed.*", " chat.bsky.actor.declaration ", NULL };
  const char *const ignored[] = { "app.bsky", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkNameFilter) watch
      = atk_name_filter_new (ATK_NAME_FILTER_NSIDS, watched, NULL, &error);
  g_autoptr (AtkNameFilter) ignore = NULL;

  g_assert_no_error (error);
  g_assert_true (atk_name_filter_is_active (watch));
  g_assert_true (allows (watch, "app.bsky.feed"));
  g_assert_true (allows (watch, "app.bsky.feed.post"));
  g_assert_true (allows (watch, "chat.bsky.actor.declaration"));
  g_assert_false (allows (watch, "app.bsky.feeds")); /* a segment, not a string prefix */
  g_assert_false (allows (watch, "app.bsky.graph.follow"));
  g_assert_false (allows (watch, "chat.bsky.actor"));

  ignore = atk_name_filter_new (ATK_NAME_FILTER_NSIDS, NULL, ignored, &error);
  g_assert_no_error (error);
  g_assert_false (allows (ignore, "app.bsky.feed.post"));
  g_assert_false (allows (ignore, "app.bsky"));
  g_assert_true (allows (ignore, "app.bskyx.post"));
  g_assert_true (allows (ignore, "com.example.thing"));
}

static void
test_hosts (void)
{
  const char *const watched[] = { "*.Bsky.Network", "pds.example.com", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkNameFilter) filter
      = atk_name_filter_new (ATK_NAME_FILTER_HOSTS, watched, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (allows (filter, "bsky.network"));
  g_assert_true (allows (filter, "morel.us-east.host.bsky.network"));
  g_assert_true (allows (filter, "PDS.example.com"));
  g_assert_false (allows (filter, "evilbsky.network"));
  g_assert_false (allows (filter, "sub.pds.example.com")); /* no "*." on this one */
  g_assert_false (allows (filter, NULL));                  /* unknown host: not watched */
}

static void
test_everything_and_nothing (void)
{
  const char *const star[] = { "*", NULL };
  const char *const blank[] = { "", "  ", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkNameFilter) all = atk_name_filter_new (ATK_NAME_FILTER_HOSTS, star, NULL, &error);
  g_autoptr (AtkNameFilter) none
      = atk_name_filter_new (ATK_NAME_FILTER_NSIDS, blank, blank, &error);

  g_assert_no_error (error);
  g_assert_true (allows (all, "anything.example"));
  g_assert_false (atk_name_filter_is_active (none));
  g_assert_true (allows (none, "app.bsky.feed.post"));
  g_assert_true (allows (NULL, "app.bsky.feed.post"));
}

static void
test_rejects (void)
{
  const char *const both_a[] = { "app.bsky.*", NULL };
  const char *const both_b[] = { "chat.bsky.*", NULL };
  const char *const bad_nsids[][2] = { { "app.*.post", NULL }, { ".*", NULL }, { "a/b", NULL } };
  const char *const bad_hosts[][2] = { { "pds.*.com", NULL }, { "*.", NULL }, { "h/x", NULL } };

  for (gsize i = 0; i < G_N_ELEMENTS (bad_nsids); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_null (atk_name_filter_new (ATK_NAME_FILTER_NSIDS, bad_nsids[i], NULL, &error));
      g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad_hosts); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_null (atk_name_filter_new (ATK_NAME_FILTER_HOSTS, NULL, bad_hosts[i], &error));
      g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
    }
  {
    g_autoptr (GError) error = NULL;
    g_assert_null (atk_name_filter_new (ATK_NAME_FILTER_NSIDS, both_a, both_b, &error));
    g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/name-filter/nsids", test_nsids);
  g_test_add_func ("/name-filter/hosts", test_hosts);
  g_test_add_func ("/name-filter/everything-and-nothing", test_everything_and_nothing);
  g_test_add_func ("/name-filter/rejects", test_rejects);
  return g_test_run ();
}
