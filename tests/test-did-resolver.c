/* AtkDidResolver against a real PLC directory with accounts created by real PDSes
 * (tests/plc/run-plc.mjs), against local SoupServers for did:web, the AppView and handles'
 * /.well-known/atproto-did, and against a real DNS server on loopback for handles' TXT
 * records (tests/integration/loopdns.py runs this program with it as its name server; the
 * zone is the file $ATK_TEST_DNS_ZONE).
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>

#include "atk-did-resolver.h"
#include "atk-error.h"
#include "atk-test-http.h"
#include "atk-test-resolver.h"
#include "atk-test-util.h"
#include "plc/atk-test-plc.h"

#define ALICE 0 /* on the PDS at http://localhost:PORT */
#define CAROL 1 /* the same PDS */
#define BOB 2   /* on the PDS "pds.b.test" */

static AtkTestPlc *plc; /* shared; the last test stops its PLC directory */
static gint64 test_start_ms;

/* The port of run-plc.mjs's PDS i (0: localhost, 1: pds.b.test). */
static guint
pds_port (guint i)
{
  JsonArray *pdses = json_object_get_array_member (json_node_get_object (plc->ready), "pds");
  g_autoptr (GUri) uri = g_uri_parse (
      json_object_get_string_member (json_array_get_object_element (pdses, i), "url"),
      G_URI_FLAGS_NONE, NULL);

  g_assert_nonnull (uri);
  return (guint)g_uri_get_port (uri);
}

/* ---- the real PLC directory ---- */

static void
check_account (const AtkDidInfo *info, guint account, const char *pds_host)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) doc = NULL;
  gint64 now_ms = g_get_real_time () / 1000;

  g_assert_cmpstr (info->did, ==, atk_test_plc_account (plc, account, "did"));
  g_assert_cmpstr (info->declared_handle, ==, atk_test_plc_account (plc, account, "handle"));
  g_assert_cmpstr (info->pds_endpoint, ==, atk_test_plc_account (plc, account, "pds"));
  g_assert_cmpstr (info->pds_host, ==, pds_host);
  doc = json_from_string (info->document, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (doc), "id"), ==, info->did);
  /* The account was made by run-plc.mjs, after this program started. */
  g_assert_nonnull (info->created_at);
  g_assert_cmpint (info->created_at_ms, >=, test_start_ms - 5000);
  g_assert_cmpint (info->created_at_ms, <=, now_ms + 5000);
}

static void
test_resolve_accounts (void)
{
  g_autoptr (AtkDidResolver) resolver = atk_test_resolver_new (atk_test_plc_url (plc), NULL);
  AtkTestResolved result = { 0 };

  atk_did_resolver_set_fetch_details (resolver, TRUE);
  /* Bob's handle is answered by his own PDS (http, its port), from the request's Host. */
  atk_did_resolver_set_handle_well_known (resolver, "http", pds_port (1));
  atk_test_resolve (resolver, atk_test_plc_account (plc, ALICE, "did"), &result);
  g_assert_no_error (result.error);
  check_account (result.info, ALICE, "localhost");
  /* verified by its TXT record */
  g_assert_cmpstr (result.info->handle, ==, "alice.test");
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_test_handle_requests (resolver, "dns", "ok"), ==, 1);
  g_assert_cmpuint (atk_test_handle_requests (resolver, "well_known", "ok"), ==, 0);

  atk_test_resolve (resolver, atk_test_plc_account (plc, BOB, "did"), &result);
  g_assert_no_error (result.error);
  check_account (result.info, BOB, "pds.b.test");
  /* no TXT record: verified by the PDS's /.well-known/atproto-did */
  g_assert_cmpstr (result.info->handle, ==, "bob.pds.b.test");
  g_assert_cmpuint (atk_test_handle_requests (resolver, "dns", "not_found"), ==, 1);
  g_assert_cmpuint (atk_test_handle_requests (resolver, "well_known", "ok"), ==, 1);
  g_assert_cmpstr (result.info->pds_endpoint, ==, "https://pds.b.test");
  g_assert_null (result.info->profile);
  atk_test_resolved_clear (&result);

  g_assert_cmpuint (atk_test_doc_requests (resolver, "ok"), ==, 2);
  g_assert_cmpuint (
      atk_did_resolver_get_request_count (resolver, "plc", "audit_log", "ok", "false"), ==, 2);
  g_assert_cmpuint (atk_did_resolver_get_network_requests (resolver), ==, 4);
  g_assert_cmpuint (atk_did_resolver_get_cache_size (resolver), ==, 2);
}

static void
test_cache_hit (void)
{
  g_autoptr (AtkDidResolver) resolver = atk_test_resolver_new (atk_test_plc_url (plc), NULL);
  const char *did = atk_test_plc_account (plc, CAROL, "did");
  g_autoptr (AtkDidInfo) cached = NULL;
  g_autoptr (GError) error = NULL;
  AtkTestResolved result = { 0 };

  g_assert_null (atk_did_resolver_lookup_cached (resolver, did, &error));
  g_assert_no_error (error);
  atk_test_resolve (resolver, did, &result);
  g_assert_no_error (result.error);
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_did_resolver_get_network_requests (resolver), ==, 1);

  atk_test_resolve (resolver, did, &result);
  g_assert_no_error (result.error);
  g_assert_cmpstr (result.info->declared_handle, ==, atk_test_plc_account (plc, CAROL, "handle"));
  g_assert_null (result.info->handle); /* verified only with the details */
  atk_test_resolved_clear (&result);
  cached = atk_did_resolver_lookup_cached (resolver, did, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cached);
  g_assert_cmpuint (atk_did_resolver_get_network_requests (resolver), ==, 1);
  g_assert_cmpuint (atk_did_resolver_get_request_count (resolver, "plc", "did_doc", "ok", "true"),
                    ==, 2);
}

static void
test_coalesce (void)
{
  g_autoptr (AtkDidResolver) resolver = atk_test_resolver_new (atk_test_plc_url (plc), NULL);
  const char *did = atk_test_plc_account (plc, BOB, "did");
  AtkTestResolved results[3] = { 0 };

  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    atk_test_resolve_start (resolver, did, &results[i]);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      atk_test_resolve_wait (&results[i]);
      g_assert_no_error (results[i].error);
      g_assert_true (results[i].info == results[0].info);
    }
  g_assert_cmpuint (atk_test_doc_requests (resolver, "ok"), ==, 1);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    atk_test_resolved_clear (&results[i]);
}

static void
test_not_found (void)
{
  g_autoptr (AtkDidResolver) resolver = atk_test_resolver_new (atk_test_plc_url (plc), NULL);
  const char *did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
  AtkTestResolved result = { 0 };

  atk_test_resolve (resolver, did, &result);
  g_assert_error (result.error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_null (result.info);
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_test_doc_requests (resolver, "not_found"), ==, 1);

  /* Cached briefly: the directory is not asked again. */
  atk_test_resolve (resolver, did, &result);
  g_assert_error (result.error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_did_resolver_get_network_requests (resolver), ==, 1);
  g_assert_cmpuint (
      atk_did_resolver_get_request_count (resolver, "plc", "did_doc", "not_found", "true"), ==, 1);
}

static gint64
fake_clock (gpointer user_data)
{
  return *(gint64 *)user_data;
}

static void
test_ttl (void)
{
  g_autoptr (AtkDidResolver) resolver = atk_test_resolver_new (atk_test_plc_url (plc), NULL);
  const char *did = atk_test_plc_account (plc, ALICE, "did");
  g_autoptr (AtkDidInfo) hit = NULL;
  g_autoptr (AtkDidInfo) miss = NULL;
  gint64 now = 1000 * G_USEC_PER_SEC;
  AtkTestResolved result = { 0 };

  atk_did_resolver_set_clock (resolver, fake_clock, &now);
  atk_did_resolver_set_cache (resolver, 10, 60, 5);
  atk_test_resolve (resolver, did, &result);
  g_assert_no_error (result.error);
  atk_test_resolved_clear (&result);

  now += 59 * G_USEC_PER_SEC;
  hit = atk_did_resolver_lookup_cached (resolver, did, NULL);
  g_assert_nonnull (hit);
  now += 2 * G_USEC_PER_SEC;
  miss = atk_did_resolver_lookup_cached (resolver, did, NULL);
  g_assert_null (miss);
  g_assert_cmpuint (atk_did_resolver_get_cache_size (resolver), ==, 0);

  atk_test_resolve (resolver, did, &result);
  g_assert_no_error (result.error);
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_test_doc_requests (resolver, "ok"), ==, 2);
}

static void
test_lru_bound (void)
{
  g_autoptr (AtkDidResolver) resolver = atk_test_resolver_new (atk_test_plc_url (plc), NULL);
  g_autoptr (AtkDidInfo) alice = NULL;
  g_autoptr (AtkDidInfo) carol = NULL;
  g_autoptr (AtkDidInfo) bob = NULL;
  AtkTestResolved result = { 0 };

  atk_did_resolver_set_cache (resolver, 2, 3600, 60);
  atk_test_resolve (resolver, atk_test_plc_account (plc, ALICE, "did"), &result);
  atk_test_resolved_clear (&result);
  atk_test_resolve (resolver, atk_test_plc_account (plc, CAROL, "did"), &result);
  atk_test_resolved_clear (&result);
  /* Alice is used again: Carol is now the least recent and goes when Bob comes. */
  g_clear_pointer (&alice, atk_did_info_unref);
  alice = atk_did_resolver_lookup_cached (resolver, atk_test_plc_account (plc, ALICE, "did"), NULL);
  g_assert_nonnull (alice);
  atk_test_resolve (resolver, atk_test_plc_account (plc, BOB, "did"), &result);
  g_assert_no_error (result.error);
  atk_test_resolved_clear (&result);

  g_assert_cmpuint (atk_did_resolver_get_cache_size (resolver), ==, 2);
  carol = atk_did_resolver_lookup_cached (resolver, atk_test_plc_account (plc, CAROL, "did"), NULL);
  g_assert_null (carol);
  bob = atk_did_resolver_lookup_cached (resolver, atk_test_plc_account (plc, BOB, "did"), NULL);
  g_assert_nonnull (bob);
  g_clear_pointer (&alice, atk_did_info_unref);
  alice = atk_did_resolver_lookup_cached (resolver, atk_test_plc_account (plc, ALICE, "did"), NULL);
  g_assert_nonnull (alice);
}

static void
test_invalidate (void)
{
  g_autoptr (AtkDidResolver) resolver = atk_test_resolver_new (atk_test_plc_url (plc), NULL);
  const char *did = atk_test_plc_account (plc, CAROL, "did");
  AtkTestResolved result = { 0 };
  AtkTestResolved first = { 0 }, second = { 0 };

  atk_test_resolve (resolver, did, &result);
  g_assert_cmpstr (result.info->declared_handle, ==, "carol.test");
  atk_test_resolved_clear (&result);

  /* A real handle change: the PDS signs a PLC update. The cache still has the old one. */
  atk_test_plc_command (plc, "handle 1 carol-new.test");
  atk_test_resolve (resolver, did, &result);
  g_assert_cmpstr (result.info->declared_handle, ==, "carol.test");
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_test_doc_requests (resolver, "ok"), ==, 1);

  atk_did_resolver_invalidate (resolver, did);
  g_assert_cmpuint (atk_did_resolver_get_cache_size (resolver), ==, 0);
  atk_test_resolve (resolver, did, &result);
  g_assert_no_error (result.error);
  g_assert_cmpstr (result.info->declared_handle, ==, "carol-new.test");
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_test_doc_requests (resolver, "ok"), ==, 2);

  /* Invalidated while in flight: the next caller does not join the old lookup. */
  atk_did_resolver_invalidate (resolver, did);
  atk_test_resolve_start (resolver, did, &first);
  atk_did_resolver_invalidate (resolver, did);
  atk_test_resolve_start (resolver, did, &second);
  atk_test_resolve_wait (&first);
  atk_test_resolve_wait (&second);
  g_assert_no_error (first.error);
  g_assert_no_error (second.error);
  g_assert_cmpuint (atk_test_doc_requests (resolver, "ok"), ==, 4);
  g_assert_cmpuint (atk_did_resolver_get_cache_size (resolver), ==, 1);
  atk_test_resolved_clear (&first);
  atk_test_resolved_clear (&second);
}

static void
test_render (void)
{
  g_autoptr (AtkDidResolver) resolver = atk_test_resolver_new (atk_test_plc_url (plc), NULL);
  g_autoptr (GString) out = g_string_new (NULL);
  AtkTestResolved result = { 0 };

  atk_test_resolve (resolver, atk_test_plc_account (plc, ALICE, "did"), &result);
  atk_test_resolved_clear (&result);
  atk_test_resolve (resolver, atk_test_plc_account (plc, ALICE, "did"), &result);
  atk_test_resolved_clear (&result);
  atk_test_resolve (resolver, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", &result);
  atk_test_resolved_clear (&result);

  atk_did_resolver_render_prometheus (resolver, out);
  g_assert_nonnull (strstr (
      out->str, "atkafka_plc_requests{kind=\"did_doc\",status=\"ok\",cached=\"false\"} 1\n"));
  g_assert_nonnull (strstr (
      out->str, "atkafka_plc_requests{kind=\"did_doc\",status=\"ok\",cached=\"true\"} 1\n"));
  g_assert_nonnull (
      strstr (out->str,
              "atkafka_plc_requests{kind=\"did_doc\",status=\"not_found\",cached=\"false\"} 1\n"));
  g_assert_nonnull (strstr (out->str, "# TYPE atkafka_api_requests counter\n"));
  g_assert_nonnull (strstr (out->str, "atkafka_cache_size{kind=\"did_doc\"} 2\n"));
}

/* ---- did:web and the AppView: a local SoupServer ---- */

typedef struct
{
  SoupServer *server;
  guint port;
  GPtrArray *held; /* SoupServerMessage*: requests to /slow/did.json, paused */
  guint requests;
} WebServer;

static void
on_web_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer user_data)
{
  WebServer *web = user_data;
  g_autofree char *did = NULL;
  g_autofree char *body = NULL;

  web->requests++;
  if (g_str_equal (path, "/slow/did.json"))
    {
      /* Never answered: the resolver's timeout must end it. */
      soup_server_message_pause (msg);
      g_ptr_array_add (web->held, g_object_ref (msg));
      return;
    }
  if (g_str_equal (path, "/xrpc/app.bsky.actor.getProfile"))
    {
      const char *actor = query != NULL ? g_hash_table_lookup (query, "actor") : NULL;

      body = g_strdup_printf ("{\"did\":\"%s\",\"handle\":\"profile.test\",\"followersCount\":7}",
                              actor != NULL ? actor : "");
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body,
                                        strlen (body));
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      return;
    }
  if (!g_str_equal (path, "/.well-known/did.json"))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  did = g_strdup_printf ("did:web:127.0.0.1%%3A%u", web->port);
  body = g_strdup_printf ("{\"id\":\"%s\",\"alsoKnownAs\":[\"https://x\",\"at://web.example.org\"],"
                          "\"service\":[{\"id\":\"#atproto_pds\",\"type\":"
                          "\"AtprotoPersonalDataServer\",\"serviceEndpoint\":"
                          "\"https://PDS.Example.ORG:8443\"}]}",
                          did);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
web_server_start (WebServer *web)
{
  web->held = g_ptr_array_new_with_free_func (g_object_unref);
  web->server = atk_test_http_server_new (on_web_request, web, &web->port);
}

static void
web_server_stop (WebServer *web)
{
  atk_test_http_server_stop (&web->server);
  g_clear_pointer (&web->held, g_ptr_array_unref);
}

static void
test_did_web_and_profile (void)
{
  WebServer web = { 0 };
  g_autoptr (AtkDidResolver) resolver = NULL;
  g_autofree char *api = NULL;
  g_autofree char *did = NULL;
  AtkTestResolved result = { 0 };

  web_server_start (&web);
  api = g_strdup_printf ("http://127.0.0.1:%u/", web.port);
  resolver = atk_test_resolver_new (atk_test_plc_url (plc), api);
  atk_did_resolver_set_did_web_scheme (resolver, "http");
  atk_did_resolver_set_fetch_details (resolver, TRUE);

  did = g_strdup_printf ("did:web:127.0.0.1%%3A%u", web.port);
  atk_test_resolve (resolver, did, &result);
  g_assert_no_error (result.error);
  g_assert_cmpstr (result.info->declared_handle, ==, "web.example.org");
  /* No TXT record, no /.well-known/atproto-did: not verified. */
  g_assert_cmpstr (result.info->handle, ==, "handle.invalid");
  g_assert_cmpstr (result.info->pds_endpoint, ==, "https://PDS.Example.ORG:8443");
  g_assert_cmpstr (result.info->pds_host, ==, "pds.example.org");
  g_assert_null (result.info->created_at); /* no audit log for did:web */
  g_assert_nonnull (result.info->profile);
  g_assert_nonnull (strstr (result.info->profile, "\"followersCount\":7"));
  g_assert_nonnull (strstr (result.info->profile, did));
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_did_resolver_get_request_count (resolver, "api", "profile", "ok", "false"),
                    ==, 1);
  g_assert_cmpuint (web.requests, ==, 2);

  /* A server that never answers: a timeout, counted, not a stall. */
  atk_did_resolver_set_timeout (resolver, 1);
  g_free (did);
  did = g_strdup_printf ("did:web:127.0.0.1%%3A%u:slow", web.port);
  atk_test_resolve (resolver, did, &result);
  g_assert_error (result.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_test_doc_requests (resolver, "timeout"), ==, 1);

  atk_test_resolve (resolver, "did:key:z6Mkabc", &result);
  g_assert_error (result.error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  atk_test_resolved_clear (&result);
  web_server_stop (&web);
}

static void
test_bad_config (void)
{
  g_autoptr (GError) error = NULL;
  AtkDidResolver *resolver;

  resolver = atk_did_resolver_new ("plc.directory", NULL, &error);
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_assert_null (resolver);
  g_clear_error (&error);
  resolver = atk_did_resolver_new ("https://plc.directory", "ftp://api.bsky.app", &error);
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_assert_null (resolver);
  g_clear_error (&error);
  g_assert_null (
      atk_did_info_new_from_document ("did:plc:x", "{\"id\":\"did:plc:y\"}", -1, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

/* Last: stops the shared PLC directory. */
static void
test_plc_stopped (void)
{
  g_autoptr (AtkDidResolver) resolver = atk_test_resolver_new (atk_test_plc_url (plc), NULL);
  AtkTestResolved result = { 0 };

  atk_test_resolve (resolver, atk_test_plc_account (plc, ALICE, "did"), &result);
  g_assert_no_error (result.error);
  atk_test_resolved_clear (&result);

  atk_test_plc_command (plc, "stop-plc");
  atk_test_resolve (resolver, atk_test_plc_account (plc, BOB, "did"), &result);
  g_assert_nonnull (result.error);
  g_assert_null (result.info);
  atk_test_resolved_clear (&result);
  g_assert_cmpuint (atk_test_doc_requests (resolver, "error"), ==, 1);
  /* What was cached still serves. */
  atk_test_resolve (resolver, atk_test_plc_account (plc, ALICE, "did"), &result);
  g_assert_no_error (result.error);
  g_assert_cmpstr (result.info->declared_handle, ==, "alice.test");
  atk_test_resolved_clear (&result);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  test_start_ms = g_get_real_time () / 1000;
  plc = atk_test_plc_start ();
  {
    g_autofree char *zone = g_strdup_printf (
        "{\"a\":[\"test\",\"example.org\"],\"txt\":{\"_atproto.alice.test\":[\"did=%s\"]}}",
        atk_test_plc_account (plc, ALICE, "did"));
    atk_test_set_dns_zone (zone);
  }

  g_test_add_func ("/did-resolver/plc/resolve", test_resolve_accounts);
  g_test_add_func ("/did-resolver/plc/cache-hit", test_cache_hit);
  g_test_add_func ("/did-resolver/plc/coalesce", test_coalesce);
  g_test_add_func ("/did-resolver/plc/not-found", test_not_found);
  g_test_add_func ("/did-resolver/plc/ttl", test_ttl);
  g_test_add_func ("/did-resolver/plc/lru-bound", test_lru_bound);
  g_test_add_func ("/did-resolver/plc/invalidate", test_invalidate);
  g_test_add_func ("/did-resolver/plc/render", test_render);
  g_test_add_func ("/did-resolver/web/did-web-and-profile", test_did_web_and_profile);
  g_test_add_func ("/did-resolver/bad-config", test_bad_config);
  g_test_add_func ("/did-resolver/plc/stopped", test_plc_stopped);
  status = g_test_run ();
  atk_test_plc_free (plc);
  return status;
}
