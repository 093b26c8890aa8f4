/* The DID cache's defaults README states ("100,000 entries, one hour; failures one
 * minute"), on an AtkDidResolver left with its defaults (no set_cache call), against a
 * local PLC directory stand-in (a SoupServer serving DID documents and 404s) and a test
 * clock. (The 100,000-entry bound is not filled here: 100,001 HTTP lookups take minutes
 * on a loaded machine.)
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>
#include <string.h>

#include "atk-did-resolver.h"
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
  g_autoptr (GError) error = NULL;
  GSList *uris;

  plc->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (plc->server, NULL, on_request, plc, NULL);
  soup_server_listen_local (plc->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (plc->server);
  plc->url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  return plc;
}

static void
plc_free (Plc *plc)
{
  soup_server_disconnect (plc->server);
  g_object_unref (plc->server);
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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/did-cache/default-ttls", test_ttls);
  return g_test_run ();
}
