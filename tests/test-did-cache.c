/* The DID cache's defaults README states ("100,000 entries, one hour; failures one
 * minute"), on an AtkDidResolver left with its defaults (no set_cache call), against a
 * local PLC directory stand-in (a SoupServer serving DID documents and 404s) and a test
 * clock. The 100,000-entry bound is filled through atk_did_resolver_cache_insert() (what
 * a finished lookup stores), not through 100,001 HTTP lookups, which take minutes on a
 * loaded machine.
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>
#include <malloc.h>
#include <string.h>

#include "atk-did-resolver.h"
#include "atk-test-http.h"
#include "atk-test-util.h"

typedef struct
{
  SoupServer *server;
  char *url;
  guint requests;
} Plc;

/* /did:plc:known… → a document naming it; anything else → 404 */
static void
on_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer user_data)
{
  Plc *plc = user_data;
  const char *did = path + 1;

  plc->requests++;
  if (!g_str_has_prefix (did, "did:plc:known"))
    {
      soup_server_message_set_status (msg, 404, NULL);
      return;
    }
  {
    g_autofree char *body = g_strdup_printf (
        "{\"id\":\"%s\",\"alsoKnownAs\":[\"at://a.example.com\"],\"service\":[{\"id\":"
        "\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\",\"serviceEndpoint\":"
        "\"https://pds.example\"}]}",
        did);
    soup_server_message_set_status (msg, 200, NULL);
    soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body,
                                      strlen (body));
  }
}

static Plc *
plc_new (void)
{
  Plc *plc = g_new0 (Plc, 1);
  guint port;

  plc->server = atk_test_http_server_new (on_request, plc, &port);
  plc->url = g_strdup_printf ("http://127.0.0.1:%u", port);
  return plc;
}

static void
plc_free (Plc *plc)
{
  atk_test_http_server_stop (&plc->server);
  g_free (plc->url);
  g_free (plc);
}

static gint64
fake_clock (gpointer user_data)
{
  return *(gint64 *)user_data;
}

typedef struct
{
  guint done;
  guint failed;
} Results;

static void
on_resolved (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Results *results = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidInfo) info
      = atk_did_resolver_resolve_finish (ATK_DID_RESOLVER (source), res, &error);

  results->done++;
  results->failed += info == NULL;
}

typedef struct
{
  Results *results;
  guint n;
} DoneWait;

static gboolean
done_at_least (gpointer data)
{
  DoneWait *w = data;
  return w->results->done >= w->n;
}

static void
resolve (AtkDidResolver *resolver, const char *did, gboolean want_ok)
{
  Results results = { 0 };
  DoneWait w = { &results, 1 };

  atk_did_resolver_resolve_async (resolver, did, NULL, on_resolved, &results);
  g_assert_true (atk_test_wait_until (NULL, done_at_least, &w, 20000));
  g_assert_cmpuint (results.failed, ==, want_ok ? 0 : 1);
}

/* Is did cached now: 1 positive, -1 negative, 0 not. */
static int
cached (AtkDidResolver *resolver, const char *did)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidInfo) info = atk_did_resolver_lookup_cached (resolver, did, &error);

  return info != NULL ? 1 : error != NULL ? -1 : 0;
}

static void
test_ttls (void)
{
  Plc *plc = plc_new ();
  gint64 now = G_GINT64_CONSTANT (1000000000000);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidResolver) resolver = atk_did_resolver_new (plc->url, NULL, &error);

  g_assert_no_error (error);
  atk_did_resolver_set_clock (resolver, fake_clock, &now);
  resolve (resolver, "did:plc:known1", TRUE);
  resolve (resolver, "did:plc:missing1", FALSE);
  g_assert_cmpuint (plc->requests, ==, 2);

  /* failures: one minute */
  now += (gint64)59 * G_USEC_PER_SEC;
  g_assert_cmpint (cached (resolver, "did:plc:missing1"), ==, -1);
  now += (gint64)2 * G_USEC_PER_SEC;
  g_assert_cmpint (cached (resolver, "did:plc:missing1"), ==, 0);
  /* resolved documents: one hour */
  g_assert_cmpint (cached (resolver, "did:plc:known1"), ==, 1);
  now += (gint64)(3600 - 61 - 1) * G_USEC_PER_SEC; /* 1 s before the hour */
  g_assert_cmpint (cached (resolver, "did:plc:known1"), ==, 1);
  resolve (resolver, "did:plc:known1", TRUE);
  g_assert_cmpuint (plc->requests, ==, 2);
  now += (gint64)2 * G_USEC_PER_SEC;
  g_assert_cmpint (cached (resolver, "did:plc:known1"), ==, 0);
  resolve (resolver, "did:plc:known1", TRUE);
  g_assert_cmpuint (plc->requests, ==, 3);
  g_clear_object (&resolver);
  plc_free (plc);
}

static char *
bound_did (guint i)
{
  return g_strdup_printf ("did:plc:bound%024u", i);
}

/* Inserts DIDs first..last-1, each with its own AtkDidInfo, as lookups would store them
 * (built by hand: parsing 150,000 documents would take most of the test's time under ASan;
 * fields of one length, as DIDs are, so that evicted entries' memory fits new ones). */
static void
insert_range (AtkDidResolver *resolver, guint first, guint last)
{
  for (guint i = first; i < last; i++)
    {
      g_autoptr (AtkDidInfo) info = g_atomic_rc_box_new0 (AtkDidInfo);

      info->did = bound_did (i);
      info->handle = g_strdup_printf ("user%06u.bsky.social", i);
      info->pds_host = g_strdup_printf ("pds%02u.example", i % 97);
      info->pds_endpoint = g_strdup_printf ("https://%s", info->pds_host);
      info->document = g_strdup_printf (
          "{\"id\":\"%s\",\"alsoKnownAs\":[\"at://%s\"],\"service\":[{\"id\":\"#atproto_pds\","
          "\"type\":\"AtprotoPersonalDataServer\",\"serviceEndpoint\":\"%s\"}]}",
          info->did, info->handle, info->pds_endpoint);
      atk_did_resolver_cache_insert (resolver, info->did, info, NULL);
    }
}

static int
cached_index (AtkDidResolver *resolver, guint i)
{
  g_autofree char *did = bound_did (i);
  return cached (resolver, did);
}

/* The default bound: 100,000 entries, least recently used out first; memory stops growing
 * at the bound. */
static void
test_bound (void)
{
  gint64 now = G_GINT64_CONSTANT (1000000000000);
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidResolver) resolver
      = atk_did_resolver_new ("http://127.0.0.1:9", NULL, &error); /* never asked */
  gsize rss_full, rss_after, heap_full, heap_after;
  gboolean sanitized
      = g_strcmp0 (g_getenv ("ATK_SANITIZE"), "none") != 0 && g_getenv ("ATK_SANITIZE") != NULL;

  g_assert_no_error (error);
  atk_did_resolver_set_clock (resolver, fake_clock, &now); /* nothing expires */
  insert_range (resolver, 0, 100000);
  g_assert_cmpuint (atk_did_resolver_get_cache_size (resolver), ==, 100000);
  g_assert_cmpint (cached_index (resolver, 0), ==, 1);
  g_assert_cmpint (cached_index (resolver, 99999), ==, 1);

  /* 0 was just used: the next insert evicts 1, the least recently used */
  insert_range (resolver, 100000, 100001);
  g_assert_cmpuint (atk_did_resolver_get_cache_size (resolver), ==, 100000);
  g_assert_cmpint (cached_index (resolver, 1), ==, 0);
  g_assert_cmpint (cached_index (resolver, 0), ==, 1);
  g_assert_cmpint (cached_index (resolver, 2), ==, 1);

  /* 50,000 more: the 50,000 least recently used go (lookups count as uses: 0 and 2 were
   * looked up last, so 3..50002 go); the size and memory stay at the bound. Misses first:
   * they do not reorder anything. */
  insert_range (resolver, 100001, 150001);
  g_assert_cmpuint (atk_did_resolver_get_cache_size (resolver), ==, 100000);
  g_assert_cmpint (cached_index (resolver, 1), ==, 0);
  for (guint i = 3; i <= 50002; i++)
    g_assert_cmpint (cached_index (resolver, i), ==, 0);
  g_assert_cmpint (cached_index (resolver, 0), ==, 1);
  g_assert_cmpint (cached_index (resolver, 2), ==, 1);
  for (guint i = 50003; i <= 150000; i += 7) /* a sample: each check counts a metric */
    g_assert_cmpint (cached_index (resolver, i), ==, 1);
  g_assert_cmpint (cached_index (resolver, 150000), ==, 1);
  heap_full = mallinfo2 ().uordblks;
  rss_full = atk_test_status_kib ("VmRSS");

  /* Memory: 100,000 more through the full cache: what is evicted is freed, so the heap in
   * use stays where it was (100,000 entries kept would be ~40 MB more). RSS is only shown:
   * the allocator keeps freed pages of mixed sizes. Meaningless under the sanitizers. */
  insert_range (resolver, 150001, 250001);
  g_assert_cmpuint (atk_did_resolver_get_cache_size (resolver), ==, 100000);
  heap_after = mallinfo2 ().uordblks;
  rss_after = atk_test_status_kib ("VmRSS");
  g_test_message ("after 150,001 entries: heap in use %" G_GSIZE_FORMAT " KiB, RSS %" G_GSIZE_FORMAT
                  " KiB; after 250,001: %" G_GSIZE_FORMAT " KiB, %" G_GSIZE_FORMAT " KiB",
                  heap_full / 1024, rss_full, heap_after / 1024, rss_after);
  if (!sanitized)
    g_assert_cmpuint (heap_after, <, heap_full + 1024 * 1024);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/did-cache/default-bound", test_bound);

  g_test_add_func ("/did-cache/default-ttls", test_ttls);
  return g_test_run ();
}
