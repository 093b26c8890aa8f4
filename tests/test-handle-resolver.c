/* Handle verification, both ways, as AtkDidResolver does it for eventMetadata: did:web
 * documents and /.well-known/atproto-did from a local SoupServer (any *.example.org is
 * 127.0.0.1), TXT records from a real DNS server on loopback (tests/integration/loopdns.py
 * runs this program with it as its name server; the zone is the file $ATK_TEST_DNS_ZONE).
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>
#include <string.h>

#include "atk-did-resolver.h"
#include "atk-test-http.h"
#include "atk-test-resolver.h"
#include "atk-test-util.h"

typedef struct
{
  SoupServer *server;
  guint port;
  guint well_known_requests;
} WebServer;

/* ---- the real PLC directory ---- */
/* did:web:127.0.0.1%3APORT:h:NAME serves a document declaring the handle NAME.example.org
 * (or none for NAME "none", NAME.example for "reserved"); http://NAME.example.org:PORT/
 * .well-known/atproto-did answers with that DID, except: "gone" 404, "big" a 4 kB body,
 * "wrong" another DID, "endless" a body that never ends. */
static char *
handle_did (WebServer *web, const char *name)
{
  return g_strdup_printf ("did:web:127.0.0.1%%3A%u:h:%s", web->port, name);
}

static void
on_handle_request (WebServer *web, SoupServerMessage *msg, const char *path)
{
  g_autofree char *body = NULL;
  g_autofree char *name = NULL;
  guint status = SOUP_STATUS_OK;

  if (g_str_has_prefix (path, "/h/") && g_str_has_suffix (path, "/did.json"))
    {
      g_autofree char *did = NULL;

      name = g_strndup (path + 3, strlen (path) - 3 - strlen ("/did.json"));
      did = handle_did (web, name);
      if (g_str_equal (name, "none"))
        body = g_strdup_printf ("{\"id\":\"%s\"}", did);
      else if (g_str_equal (name, "reserved"))
        body = g_strdup_printf ("{\"id\":\"%s\",\"alsoKnownAs\":[\"at://x.example\"]}", did);
      else
        body = g_strdup_printf (
            "{\"@context\":[\"https://www.w3.org/ns/did/v1\"],\"id\":\"%s\",\"alsoKnownAs\":"
            "[\"at://%s.Example.ORG\"],\"service\":[{\"id\":\"#atproto_pds\",\"type\":"
            "\"AtprotoPersonalDataServer\",\"serviceEndpoint\":\"https://pds.example.org\"}]}",
            did, name);
    }
  else
    {
      const char *host = g_uri_get_host (soup_server_message_get_uri (msg));

      web->well_known_requests++;
      name = g_strndup (host, strcspn (host, "."));
      if (g_str_equal (name, "endless"))
        {
          /* a chunked body that never ends */
          g_autofree char *chunk = g_strnfill (4096, ' ');

          soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg),
                                             SOUP_ENCODING_CHUNKED);
          soup_message_body_append (soup_server_message_get_response_body (msg), SOUP_MEMORY_COPY,
                                    chunk, 4096);
          soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
          return;
        }
      if (g_str_equal (name, "gone"))
        status = SOUP_STATUS_NOT_FOUND;
      else if (g_str_equal (name, "big"))
        body = g_strnfill (4096, ' ');
      else if (g_str_equal (name, "wrong"))
        body = handle_did (web, "other");
      else
        {
          g_autofree char *did = handle_did (web, name);

          body = g_strconcat (" ", did, "\n", NULL);
        }
    }
  if (body != NULL)
    soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, body, strlen (body));
  soup_server_message_set_status (msg, status, NULL);
}

static void
on_web_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer user_data)
{
  on_handle_request (user_data, msg, path);
}

static void
web_server_start (WebServer *web)
{
  web->server = atk_test_http_server_new (on_web_request, web, &web->port);
}

static void
web_server_stop (WebServer *web)
{
  atk_test_http_server_stop (&web->server);
}

/* What eventMetadata.handle is, as the reference's identity directory gives it. */
static const char *
verified_handle (AtkDidResolver *resolver, WebServer *web, const char *name)
{
  g_autofree char *did = handle_did (web, name);
  static char handle[256];
  AtkTestResolved result = { 0 };

  atk_test_resolve (resolver, did, &result);
  g_assert_no_error (result.error);
  g_assert_cmpstr (result.info->pds_endpoint, ==, "https://pds.example.org");
  g_strlcpy (handle, result.info->handle, sizeof handle);
  atk_test_resolved_clear (&result);
  return handle;
}

static void
test_handle_verification (void)
{
  WebServer web = { 0 };
  g_autoptr (AtkDidResolver) resolver = NULL;
  g_autofree char *zone = NULL;
  g_autofree char *did = NULL;
  g_autofree char *other = NULL;
  g_autofree char *mixed = NULL;
  AtkTestResolved result = { 0 };

  web_server_start (&web);
  resolver = atk_test_resolver_new ("http://127.0.0.1:1", NULL);
  atk_did_resolver_set_did_web_scheme (resolver, "http");
  atk_did_resolver_set_handle_well_known (resolver, "http", web.port);
  atk_did_resolver_set_fetch_details (resolver, TRUE);
  atk_did_resolver_set_timeout (resolver, 1);
  did = handle_did (&web, "dns");
  other = handle_did (&web, "other");
  mixed = handle_did (&web, "mixed");
  zone = g_strdup_printf ("{\"a\":[\"example.org\"],\"drop\":[\"_atproto.slow.example.org\"],"
                          "\"txt\":{\"_atproto.dns.example.org\":[\"v=spf1\",\"did=%s\"],"
                          "\"_atproto.mixed.example.org\":[\"did=%s\"],"
                          "\"_atproto.wrong.example.org\":[\"did=%s\"],"
                          "\"_atproto.baddns.example.org\":[\"did=not a did\"]}}",
                          did, mixed, other);
  atk_test_set_dns_zone (zone);

  /* the TXT record names this DID (the declared handle is lower-cased) */
  g_assert_cmpstr (verified_handle (resolver, &web, "dns"), ==, "dns.example.org");
  g_assert_cmpstr (verified_handle (resolver, &web, "mixed"), ==, "mixed.example.org");
  g_assert_cmpuint (web.well_known_requests, ==, 0);
  /* no TXT record: the well-known answer names it */
  g_assert_cmpstr (verified_handle (resolver, &web, "http"), ==, "http.example.org");
  g_assert_cmpuint (web.well_known_requests, ==, 1);
  /* the TXT record names another DID: invalid, and HTTPS is not asked */
  g_assert_cmpstr (verified_handle (resolver, &web, "wrong"), ==, "handle.invalid");
  g_assert_cmpuint (web.well_known_requests, ==, 1);
  /* a TXT record that is no DID falls back to HTTPS */
  g_assert_cmpstr (verified_handle (resolver, &web, "baddns"), ==, "baddns.example.org");
  g_assert_cmpuint (web.well_known_requests, ==, 2);
  /* DNS never answers: our 1 s timeout, then HTTPS */
  g_assert_cmpstr (verified_handle (resolver, &web, "slow"), ==, "slow.example.org");
  g_assert_cmpuint (atk_test_handle_requests (resolver, "dns", "timeout"), ==, 1);
  g_assert_cmpuint (web.well_known_requests, ==, 3);
  /* 404, an oversized answer: invalid */
  g_assert_cmpstr (verified_handle (resolver, &web, "gone"), ==, "handle.invalid");
  g_assert_cmpstr (verified_handle (resolver, &web, "big"), ==, "handle.invalid");
  g_assert_cmpuint (web.well_known_requests, ==, 5);
  g_assert_cmpuint (atk_test_handle_requests (resolver, "well_known", "not_found"), ==, 1);
  g_assert_cmpuint (atk_test_handle_requests (resolver, "well_known", "error"), ==, 1);
  /* a body that never ends: its first 2 kB are read (white space: no DID), no more */
  g_assert_cmpstr (verified_handle (resolver, &web, "endless"), ==, "handle.invalid");
  g_assert_cmpuint (atk_test_handle_requests (resolver, "well_known", "error"), ==, 2);
  g_assert_cmpuint (web.well_known_requests, ==, 6);

  /* An #identity event (invalidate) forgets the DID and its handle: both asked again
   * (dns, mixed and wrong were answered by DNS so far). */
  g_assert_cmpuint (atk_test_handle_requests (resolver, "dns", "ok"), ==, 3);
  g_assert_cmpstr (verified_handle (resolver, &web, "dns"), ==, "dns.example.org");
  g_assert_cmpuint (atk_test_handle_requests (resolver, "dns", "ok"), ==, 3);
  atk_did_resolver_invalidate (resolver, did);
  g_assert_cmpstr (verified_handle (resolver, &web, "dns"), ==, "dns.example.org");
  g_assert_cmpuint (atk_test_handle_requests (resolver, "dns", "ok"), ==, 4);

  /* Failures are cached too: with no positive TTL, "gone"'s document is fetched again, its
   * handle is not. */
  {
    g_autoptr (AtkDidResolver) brief = atk_test_resolver_new ("http://127.0.0.1:1", NULL);

    atk_did_resolver_set_did_web_scheme (brief, "http");
    atk_did_resolver_set_handle_well_known (brief, "http", web.port);
    atk_did_resolver_set_fetch_details (brief, TRUE);
    atk_did_resolver_set_cache (brief, 100, 0, 3600);
    g_assert_cmpstr (verified_handle (brief, &web, "gone"), ==, "handle.invalid");
    g_assert_cmpstr (verified_handle (brief, &web, "gone"), ==, "handle.invalid");
    g_assert_cmpuint (web.well_known_requests, ==, 7);
    g_assert_cmpuint (atk_test_handle_requests (brief, "cached", "not_found"), ==, 1);
    g_assert_cmpuint (atk_test_doc_requests (brief, "ok"), ==, 2);
  }

  /* no handle declared: handle.invalid; a reserved TLD: no identity at all (as the
   * reference's directory refuses it) */
  g_free (did);
  did = handle_did (&web, "none");
  atk_test_resolve (resolver, did, &result);
  g_assert_cmpstr (result.info->handle, ==, "handle.invalid");
  g_assert_null (result.info->declared_handle);
  atk_test_resolved_clear (&result);
  g_free (did);
  did = handle_did (&web, "reserved");
  atk_test_resolve (resolver, did, &result);
  g_assert_error (result.error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  atk_test_resolved_clear (&result);
  web_server_stop (&web);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/handle-resolver/verification", test_handle_verification);
  return g_test_run ();
}
