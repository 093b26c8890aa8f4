/* AtkMetadataStage against a real PLC directory with accounts made by real PDSes
 * (tests/plc/run-plc.mjs); a local SoupServer serves a did:web whose answer the test holds
 * back, for the per-DID order while another DID's lookup is slow. Handles are verified
 * against a real DNS server on loopback (tests/integration/loopdns.py runs this program; its
 * zone makes every *.test name 127.0.0.1) and the PDSes' own /.well-known/atproto-did.
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>
#include <string.h>

#include "atk-error.h"
#include "atk-event-transformer.h"
#include "atk-metadata-stage.h"
#include "atk-test-http.h"
#include "atk-test-util.h"
#include "plc/atk-test-plc.h"

#define ALICE 0 /* PDS host "localhost" */
#define CAROL 1 /* PDS host "localhost" */
#define BOB 2   /* PDS host "pds.b.test" */

static AtkTestPlc *plc;

/* The port of PDS i of `p` (0: localhost, with alice and carol). */
static guint
pds_port (AtkTestPlc *p, guint i)
{
  JsonArray *pdses = json_object_get_array_member (json_node_get_object (p->ready), "pds");
  g_autoptr (GUri) uri = g_uri_parse (
      json_object_get_string_member (json_array_get_object_element (pdses, i), "url"),
      G_URI_FLAGS_NONE, NULL);

  g_assert_nonnull (uri);
  return (guint)g_uri_get_port (uri);
}

/* ---- messages in, messages out ---- */

static AtkMessage *
make_message (const char *did, gint64 seq, AtkEventKind kind, gboolean osprey)
{
  AtkMessage *message = atk_message_new ();
  const char *tail = ",\"eventMetadata\":null}";

  message->key = g_strdup (did);
  message->seq = seq;
  message->has_seq = TRUE;
  message->kind = kind;
  message->action_name = kind == ATK_EVENT_IDENTITY ? "identity" : "account";
  if (osprey)
    g_string_append (message->value, "{\"data\":{\"action_name\":\"account\",\"action_id\":1,"
                                     "\"data\":");
  g_string_append_printf (message->value,
                          "{\"did\":\"%s\",\"timestamp\":\"\",\"account\":{\"active\":true,"
                          "\"seq\":%" G_GINT64_FORMAT "}%s",
                          did, seq, tail);
  message->metadata_offset = message->value->len - strlen ("null}");
  if (osprey)
    g_string_append (message->value, ",\"timestamp\":\"\",\"secret_data\":{},\"encoding\":"
                                     "\"UTF8\"},\"send_time\":\"\"}");
  return message;
}

typedef struct
{
  GPtrArray *ready;    /* JsonNode*: each message's value, parsed */
  GPtrArray *filtered; /* char*: keys */
} Sink;

static void
on_ready (AtkMetadataStage *stage, AtkMessage *message, Sink *sink)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (message->value->str, &error);

  g_assert_no_error (error); /* whatever was spliced in, the value stays valid JSON */
  g_ptr_array_add (sink->ready, node);
}

static void
on_filtered (AtkMetadataStage *stage, AtkMessage *message, Sink *sink)
{
  g_ptr_array_add (sink->filtered, g_strdup (message->key));
}

static void
sink_init (Sink *sink, AtkMetadataStage *stage)
{
  sink->ready = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);
  sink->filtered = g_ptr_array_new_with_free_func (g_free);
  g_signal_connect (stage, "message-ready", G_CALLBACK (on_ready), sink);
  g_signal_connect (stage, "message-filtered", G_CALLBACK (on_filtered), sink);
}

static void
sink_clear (Sink *sink)
{
  g_clear_pointer (&sink->ready, g_ptr_array_unref);
  g_clear_pointer (&sink->filtered, g_ptr_array_unref);
}

typedef struct
{
  Sink *sink;
  guint n;
} SinkCount;

static gboolean
sink_has (gpointer user_data)
{
  SinkCount *c = user_data;
  return c->sink->ready->len + c->sink->filtered->len >= c->n;
}

static void
wait_out (Sink *sink, guint n)
{
  SinkCount c = { sink, n };

  g_assert_true (plc_wait_until (sink_has, &c, 20000));
  g_assert_cmpuint (sink->ready->len + sink->filtered->len, ==, n);
}

/* The standard event inside a value (Osprey: data.data). */
static JsonObject *
event_of (JsonNode *node)
{
  JsonObject *object = json_node_get_object (node);

  if (json_object_has_member (object, "data"))
    return json_object_get_object_member (json_object_get_object_member (object, "data"), "data");
  return object;
}

static const char *
did_of (JsonNode *node)
{
  return json_object_get_string_member (event_of (node), "did");
}

static gint64
seq_of (JsonNode *node)
{
  return json_object_get_int_member (json_object_get_object_member (event_of (node), "account"),
                                     "seq");
}

static JsonObject *
metadata_of (JsonNode *node)
{
  JsonNode *metadata = json_object_get_member (event_of (node), "eventMetadata");

  g_assert_nonnull (metadata);
  return JSON_NODE_HOLDS_NULL (metadata) ? NULL : json_node_get_object (metadata);
}

static AtkMetadataStage *
new_stage (AtkTestPlc *p, gboolean metadata, AtkDidResolver **resolver_out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidResolver) resolver = atk_did_resolver_new (atk_test_plc_url (p), NULL, &error);
  AtkMetadataStage *stage;

  g_assert_no_error (error);
  atk_did_resolver_set_fetch_details (resolver, TRUE);
  atk_did_resolver_set_did_web_scheme (resolver, "http");
  /* handles' /.well-known/atproto-did from PDS 0 (Bob's PDS is the other: his is invalid) */
  atk_did_resolver_set_handle_well_known (resolver, "http", pds_port (p, 0));
  stage = atk_metadata_stage_new (resolver);
  atk_metadata_stage_set_event_metadata (stage, metadata, &error);
  g_assert_no_error (error);
  if (resolver_out != NULL)
    *resolver_out = g_object_ref (resolver);
  return stage;
}

/* ---- tests ---- */

static void
test_passthrough (void)
{
  g_autoptr (AtkMetadataStage) stage = atk_metadata_stage_new (NULL);
  g_autoptr (GError) error = NULL;
  const char *watched[] = { "*.bsky.network", NULL };
  Sink sink;

  sink_init (&sink, stage);
  g_assert_false (atk_metadata_stage_is_active (stage));
  g_assert_false (atk_metadata_stage_set_event_metadata (stage, TRUE, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_clear_error (&error);
  g_assert_false (atk_metadata_stage_set_service_filter (stage, watched, NULL, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);

  atk_metadata_stage_push (stage, make_message ("did:plc:whatever", 1, ATK_EVENT_ACCOUNT, FALSE));
  /* At once, untouched. */
  g_assert_cmpuint (sink.ready->len, ==, 1);
  g_assert_null (metadata_of (sink.ready->pdata[0]));
  sink_clear (&sink);
}

static void
test_bad_patterns (void)
{
  g_autoptr (AtkMetadataStage) stage = new_stage (plc, FALSE, NULL);
  g_autoptr (GError) error = NULL;
  const char *both[] = { "a.example.com", NULL };
  const char *bad[] = { "pds.*.com", NULL };

  g_assert_false (atk_metadata_stage_set_service_filter (stage, both, both, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_clear_error (&error);
  g_assert_false (atk_metadata_stage_set_service_filter (stage, bad, NULL, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_assert_false (atk_metadata_stage_is_active (stage));
}

static void
assert_members (JsonObject *object, const char *const *names)
{
  g_autoptr (GList) members = json_object_get_members (object);
  guint i = 0;

  for (GList *l = members; l != NULL; l = l->next, i++)
    g_assert_cmpstr (l->data, ==, names[i]);
  g_assert_null (names[i]);
}

/* eventMetadata as the reference gives it, field by field. */
static void
check_metadata (JsonNode *node, guint account, const char *handle)
{
  JsonObject *metadata = metadata_of (node);
  const char *did = atk_test_plc_account (plc, account, "did");
  const char *pds = atk_test_plc_account (plc, account, "pds");
  const char *fields[]
      = { "didDocument", "pdsHost", "handle", "didCreatedAt", "accountAge", "profile", NULL };
  const char *doc_fields[] = { "id", "alsoKnownAs", "verificationMethod", "service", NULL };
  g_autofree char *aka
      = g_strdup_printf ("[\"at://%s\"]", atk_test_plc_account (plc, account, "handle"));
  g_autofree char *service
      = g_strdup_printf ("[{\"id\":\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\","
                         "\"serviceEndpoint\":\"%s\"}]",
                         pds);
  g_autofree char *key_id = g_strconcat (did, "#atproto", NULL);
  JsonObject *doc, *key;
  JsonArray *keys;

  g_assert_nonnull (metadata);
  g_assert_cmpstr (did_of (node), ==, did);
  assert_members (metadata, fields);
  g_assert_cmpstr (json_object_get_string_member (metadata, "handle"), ==, handle);
  /* the PDS endpoint URL, not its host */
  g_assert_cmpstr (json_object_get_string_member (metadata, "pdsHost"), ==, pds);
  doc = json_object_get_object_member (metadata, "didDocument");
  assert_members (doc, doc_fields);
  g_assert_cmpstr (json_object_get_string_member (doc, "id"), ==, did);
  {
    g_autofree char *text = json_to_string (json_object_get_member (doc, "alsoKnownAs"), FALSE);
    g_assert_cmpstr (text, ==, aka);
  }
  {
    g_autofree char *text = json_to_string (json_object_get_member (doc, "service"), FALSE);
    g_assert_cmpstr (text, ==, service);
  }
  keys = json_object_get_array_member (doc, "verificationMethod");
  g_assert_cmpuint (json_array_get_length (keys), ==, 1);
  key = json_array_get_object_element (keys, 0);
  g_assert_cmpstr (json_object_get_string_member (key, "id"), ==, key_id);
  g_assert_cmpstr (json_object_get_string_member (key, "type"), ==,
                   "EcdsaSecp256k1VerificationKey2019");
  g_assert_cmpstr (json_object_get_string_member (key, "controller"), ==, did);
  g_assert_true (g_str_has_prefix (json_object_get_string_member (key, "publicKeyMultibase"), "z"));
  g_assert_true (g_str_has_suffix (json_object_get_string_member (metadata, "didCreatedAt"), "Z"));
  /* Created by run-plc.mjs moments ago. */
  g_assert_cmpint (json_object_get_int_member (metadata, "accountAge"), >=, 0);
  g_assert_cmpint (json_object_get_int_member (metadata, "accountAge"), <, 600);
  g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (metadata, "profile")));
}

static void
test_enrich (void)
{
  g_autoptr (AtkMetadataStage) stage = new_stage (plc, TRUE, NULL);
  guint accounts[] = { ALICE, BOB, CAROL };
  /* Alice and Carol: verified by PDS 0's /.well-known/atproto-did (no TXT records); Bob's
   * PDS is another, PDS 0 does not know him: his handle does not verify. */
  const char *handles[] = { "alice.test", "handle.invalid", "carol.test" };
  AtkMetadataStats stats;
  Sink sink;

  sink_init (&sink, stage);
  g_assert_true (atk_metadata_stage_is_active (stage));
  for (gint64 seq = 1; seq <= 9; seq++)
    {
      guint i = (guint)(seq % 3);
      atk_metadata_stage_push (stage, make_message (atk_test_plc_account (plc, accounts[i], "did"),
                                                    seq, ATK_EVENT_ACCOUNT, seq > 6));
    }
  wait_out (&sink, 9);
  for (guint n = 0; n < sink.ready->len; n++)
    {
      JsonNode *node = sink.ready->pdata[n];
      guint i = (guint)(seq_of (node) % 3);

      check_metadata (node, accounts[i], handles[i]);
    }
  /* Per DID, in push order. */
  for (guint i = 0; i < 3; i++)
    {
      gint64 last = 0;
      for (guint n = 0; n < sink.ready->len; n++)
        if (g_str_equal (did_of (sink.ready->pdata[n]),
                         atk_test_plc_account (plc, accounts[i], "did")))
          {
            g_assert_cmpint (seq_of (sink.ready->pdata[n]), >, last);
            last = seq_of (sink.ready->pdata[n]);
          }
      g_assert_cmpint (last, >, 6);
    }
  atk_metadata_stage_get_stats (stage, &stats);
  g_assert_cmpuint (stats.enriched, ==, 9);
  g_assert_cmpuint (stats.degraded, ==, 0);
  g_assert_cmpuint (atk_metadata_stage_get_backlog (stage), ==, 0);
  sink_clear (&sink);
}

static void
run_filter (const char *const *watched, const char *const *ignored, guint n_kept,
            guint kept_account)
{
  g_autoptr (AtkMetadataStage) stage = new_stage (plc, FALSE, NULL);
  g_autoptr (GError) error = NULL;
  AtkMetadataStats stats;
  Sink sink;

  sink_init (&sink, stage);
  g_assert_true (atk_metadata_stage_set_service_filter (stage, watched, ignored, &error));
  g_assert_no_error (error);
  for (gint64 seq = 1; seq <= 6; seq++)
    atk_metadata_stage_push (stage,
                             make_message (atk_test_plc_account (plc, (guint)(seq % 3), "did"), seq,
                                           ATK_EVENT_ACCOUNT, FALSE));
  wait_out (&sink, 6);
  g_assert_cmpuint (sink.ready->len, ==, n_kept);
  for (guint n = 0; n < sink.ready->len; n++)
    {
      if (n_kept == 2)
        g_assert_cmpstr (did_of (sink.ready->pdata[n]), ==,
                         atk_test_plc_account (plc, kept_account, "did"));
      /* Filtering alone attaches nothing. */
      g_assert_null (metadata_of (sink.ready->pdata[n]));
    }
  atk_metadata_stage_get_stats (stage, &stats);
  g_assert_cmpuint (stats.filtered, ==, 6 - n_kept);
  g_assert_cmpuint (sink.filtered->len, ==, 6 - n_kept);
  sink_clear (&sink);
}

static void
test_watched_services (void)
{
  const char *b_domain[] = { "*.b.test", NULL };
  const char *b_host[] = { " PDS.B.test ", NULL };
  const char *local[] = { "localhost", NULL };
  const char *other[] = { "*.bsky.network", NULL };

  run_filter (b_domain, NULL, 2, BOB);
  run_filter (b_host, NULL, 2, BOB);
  run_filter (NULL, local, 2, BOB);
  run_filter (local, NULL, 4, ALICE);
  run_filter (other, NULL, 0, 0);
}

/* ---- a slow DID: a did:web whose answer the test holds back ---- */

typedef struct
{
  SoupServer *server;
  guint port;
  char *did;
  GPtrArray *held;
} SlowWeb;

static void
answer (SlowWeb *web, SoupServerMessage *msg)
{
  g_autofree char *body = g_strdup_printf (
      "{\"id\":\"%s\",\"alsoKnownAs\":[\"at://slow.example.org\"],\"service\":[{\"id\":"
      "\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\",\"serviceEndpoint\":"
      "\"https://pds.slow.example.org\"}]}",
      web->did);

  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
on_slow_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                 gpointer user_data)
{
  SlowWeb *web = user_data;

  soup_server_message_pause (msg);
  g_ptr_array_add (web->held, g_object_ref (msg));
}

static void
slow_web_release (SlowWeb *web)
{
  for (guint i = 0; i < web->held->len; i++)
    {
      answer (web, web->held->pdata[i]);
      soup_server_message_unpause (web->held->pdata[i]);
    }
  g_ptr_array_set_size (web->held, 0);
}

static void
slow_web_start (SlowWeb *web)
{
  web->held = g_ptr_array_new_with_free_func (g_object_unref);
  web->server = atk_test_http_server_new (on_slow_request, web, &web->port);
  web->did = g_strdup_printf ("did:web:127.0.0.1%%3A%u", web->port);
}

static void
slow_web_stop (SlowWeb *web)
{
  atk_test_http_server_stop (&web->server);
  g_clear_pointer (&web->held, g_ptr_array_unref);
  g_clear_pointer (&web->did, g_free);
}

static gboolean
request_held (gpointer user_data)
{
  return ((SlowWeb *)user_data)->held->len > 0;
}

static void
test_order_with_slow_did (void)
{
  g_autoptr (AtkMetadataStage) stage = new_stage (plc, TRUE, NULL);
  const char *alice = atk_test_plc_account (plc, ALICE, "did");
  SlowWeb web = { 0 };
  Sink sink;

  slow_web_start (&web);
  sink_init (&sink, stage);
  atk_metadata_stage_set_max_backlog (stage, 3);
  atk_metadata_stage_push (stage, make_message (web.did, 1, ATK_EVENT_ACCOUNT, FALSE));
  atk_metadata_stage_push (stage, make_message (alice, 2, ATK_EVENT_ACCOUNT, FALSE));
  atk_metadata_stage_push (stage, make_message (web.did, 3, ATK_EVENT_ACCOUNT, FALSE));
  atk_metadata_stage_push (stage, make_message (alice, 4, ATK_EVENT_ACCOUNT, TRUE));
  atk_metadata_stage_push (stage, make_message (web.did, 5, ATK_EVENT_ACCOUNT, TRUE));

  /* Alice flows on while the slow DID waits, its three messages held back. */
  wait_out (&sink, 2);
  g_assert_true (plc_wait_until (request_held, &web, 20000));
  g_assert_cmpint (seq_of (sink.ready->pdata[0]), ==, 2);
  g_assert_cmpint (seq_of (sink.ready->pdata[1]), ==, 4);
  g_assert_cmpuint (atk_metadata_stage_get_backlog (stage), ==, 3);
  g_assert_true (atk_metadata_stage_is_saturated (stage));

  slow_web_release (&web);
  wait_out (&sink, 5);
  for (guint n = 2; n < 5; n++)
    {
      JsonObject *metadata = metadata_of (sink.ready->pdata[n]);

      g_assert_cmpstr (did_of (sink.ready->pdata[n]), ==, web.did);
      g_assert_cmpint (seq_of (sink.ready->pdata[n]), ==, 2 * (gint64)n - 3);
      g_assert_nonnull (metadata);
      /* slow.example.org is nowhere (NXDOMAIN): not verified */
      g_assert_cmpstr (json_object_get_string_member (metadata, "handle"), ==, "handle.invalid");
      g_assert_cmpstr (json_object_get_string_member (metadata, "pdsHost"), ==,
                       "https://pds.slow.example.org");
      g_assert_false (json_object_has_member (metadata, "didCreatedAt"));
      /* no audit log for a did:web: unknown */
      g_assert_cmpint (json_object_get_int_member (metadata, "accountAge"), ==, -1);
    }
  g_assert_cmpuint (atk_metadata_stage_get_backlog (stage), ==, 0);
  g_assert_false (atk_metadata_stage_is_saturated (stage));
  sink_clear (&sink);
  slow_web_stop (&web);
}

static const char *
handle_of (JsonNode *node)
{
  return json_object_get_string_member (metadata_of (node), "handle");
}

static void
test_identity_invalidates (void)
{
  g_autoptr (AtkDidResolver) resolver = NULL;
  g_autoptr (AtkMetadataStage) stage = new_stage (plc, TRUE, &resolver);
  const char *did = atk_test_plc_account (plc, CAROL, "did");
  Sink sink;

  sink_init (&sink, stage);
  atk_metadata_stage_push (stage, make_message (did, 1, ATK_EVENT_ACCOUNT, FALSE));
  wait_out (&sink, 1);
  g_assert_cmpstr (handle_of (sink.ready->pdata[0]), ==, "carol.test");

  atk_test_plc_command (plc, "handle 1 carol-renamed.test");
  atk_metadata_stage_push (stage, make_message (did, 2, ATK_EVENT_ACCOUNT, FALSE));
  wait_out (&sink, 2);
  g_assert_cmpstr (handle_of (sink.ready->pdata[1]), ==, "carol.test"); /* cached */

  atk_metadata_stage_push (stage, make_message (did, 3, ATK_EVENT_IDENTITY, FALSE));
  atk_metadata_stage_push (stage, make_message (did, 4, ATK_EVENT_ACCOUNT, FALSE));
  wait_out (&sink, 4);
  g_assert_cmpint (seq_of (sink.ready->pdata[2]), ==, 3);
  g_assert_cmpstr (handle_of (sink.ready->pdata[2]), ==, "carol-renamed.test");
  g_assert_cmpstr (handle_of (sink.ready->pdata[3]), ==, "carol-renamed.test");
  g_assert_cmpuint (atk_did_resolver_get_request_count (resolver, "plc", "did_doc", "ok", "false"),
                    ==, 2);
  sink_clear (&sink);
}

/* A PLC directory of its own, stopped mid-run: no message is lost. */
static void
test_plc_stopped (void)
{
  AtkTestPlc *own = atk_test_plc_start ();
  g_autoptr (AtkMetadataStage) stage = new_stage (own, TRUE, NULL);
  g_autoptr (GError) error = NULL;
  const char *watched[] = { "localhost", NULL };
  const char *alice = atk_test_plc_account (own, ALICE, "did");
  g_autoptr (GString) metrics = g_string_new (NULL);
  AtkMetadataStats stats;
  Sink sink;
  guint n_pushed = 0;

  sink_init (&sink, stage);
  g_assert_true (atk_metadata_stage_set_service_filter (stage, watched, NULL, &error));
  atk_metadata_stage_push (stage, make_message (alice, ++n_pushed, ATK_EVENT_ACCOUNT, FALSE));
  wait_out (&sink, 1);

  atk_test_plc_command (own, "stop-plc");
  for (guint round = 0; round < 4; round++)
    for (guint account = 0; account < 3; account++)
      atk_metadata_stage_push (stage, make_message (atk_test_plc_account (own, account, "did"),
                                                    ++n_pushed, ATK_EVENT_ACCOUNT, round % 2 == 1));
  wait_out (&sink, n_pushed);

  /* Alice (cached) is enriched; Bob and Carol pass without metadata and unfiltered, even Bob
   * whose PDS the filter would have dropped. */
  g_assert_cmpuint (sink.filtered->len, ==, 0);
  g_assert_cmpuint (sink.ready->len, ==, n_pushed);
  for (guint n = 0; n < sink.ready->len; n++)
    {
      gboolean is_alice = g_str_equal (did_of (sink.ready->pdata[n]), alice);
      /* not commits: null when unresolved, as the reference */
      g_assert_true ((metadata_of (sink.ready->pdata[n]) != NULL) == is_alice);
    }
  atk_metadata_stage_get_stats (stage, &stats);
  g_assert_cmpuint (stats.enriched, ==, 5);
  g_assert_cmpuint (stats.degraded, ==, 8);
  atk_metadata_stage_render_prometheus (stage, metrics);
  g_assert_nonnull (strstr (metrics->str, "atkafka_metadata_events{result=\"degraded\"} 8\n"));
  g_assert_nonnull (
      strstr (metrics->str, "atkafka_plc_requests{kind=\"did_doc\",status=\"error\""));
  sink_clear (&sink);
  g_clear_object (&stage);
  atk_test_plc_free (own);
}

/* The transformer marks where "eventMetadata":null is, in both shapes. */
static void
test_transformer_offsets (void)
{
  g_autoptr (GBytes) bytes = atk_test_load_vector ("pds-capture/frames.bin");
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  guint checked = 0;

  for (guint osprey = 0; osprey < 2; osprey++)
    {
      g_autoptr (AtkEventTransformer) transformer = atk_event_transformer_new ();
      gsize pos = 0;

      atk_event_transformer_set_osprey_compatible (transformer, osprey);
      while (pos + 4 <= len)
        {
          guint32 n = (guint32)data[pos] | (guint32)data[pos + 1] << 8
                      | (guint32)data[pos + 2] << 16 | (guint32)data[pos + 3] << 24;
          g_autoptr (GPtrArray) messages
              = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
          AtkTransformResult result = { 0 };

          pos += 4;
          g_assert_cmpuint (pos + n, <=, len);
          atk_event_transformer_transform (transformer, data + pos, n, 1700000000000000, messages,
                                           &result, NULL);
          atk_transform_result_clear (&result);
          pos += n;
          for (guint i = 0; i < messages->len; i++)
            {
              AtkMessage *m = messages->pdata[i];
              const char *member = "\"eventMetadata\":null";
              gsize mlen = strlen (member);

              g_assert_cmpuint (m->metadata_offset, >=, mlen - 4);
              g_assert_cmpint (
                  memcmp (m->value->str + m->metadata_offset - (mlen - 4), member, mlen), ==, 0);
              checked++;
            }
        }
    }
  g_assert_cmpuint (checked, >, 10);
}
/* A DID that cannot be resolved: a commit still gets the reference's empty object, other
 * events null. */
static void
test_unresolved (void)
{
  g_autoptr (AtkMetadataStage) stage = new_stage (plc, TRUE, NULL);
  const char *unknown = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
  AtkMetadataStats stats;
  Sink sink;

  sink_init (&sink, stage);
  atk_metadata_stage_push (stage, make_message (unknown, 1, ATK_EVENT_COMMIT, FALSE));
  atk_metadata_stage_push (stage, make_message (unknown, 2, ATK_EVENT_ACCOUNT, FALSE));
  atk_metadata_stage_push (stage, make_message ("did:key:z6Mkabc", 3, ATK_EVENT_COMMIT, TRUE));
  wait_out (&sink, 3);
  for (guint n = 0; n < 3; n++)
    {
      JsonNode *node = sink.ready->pdata[n];
      JsonNode *metadata = json_object_get_member (event_of (node), "eventMetadata");
      g_autofree char *text = json_to_string (metadata, FALSE);

      g_assert_cmpstr (text, ==,
                       seq_of (node) == 2
                           ? "null"
                           : "{\"didDocument\":{\"id\":\"\"},\"accountAge\":-1,\"profile\":null}");
    }
  atk_metadata_stage_get_stats (stage, &stats);
  g_assert_cmpuint (stats.degraded, ==, 3);
  g_assert_cmpuint (stats.enriched, ==, 0);
  sink_clear (&sink);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  plc = atk_test_plc_start ();
  {
    g_autoptr (GError) error = NULL;
    g_assert_nonnull (g_getenv ("ATK_TEST_DNS_ZONE"));
    g_file_set_contents (g_getenv ("ATK_TEST_DNS_ZONE"), "{\"a\":[\"test\"]}", -1, &error);
    g_assert_no_error (error);
  }

  g_test_add_func ("/metadata-stage/passthrough", test_passthrough);
  g_test_add_func ("/metadata-stage/bad-patterns", test_bad_patterns);
  g_test_add_func ("/metadata-stage/transformer-offsets", test_transformer_offsets);
  g_test_add_func ("/metadata-stage/enrich", test_enrich);
  g_test_add_func ("/metadata-stage/watched-services", test_watched_services);
  g_test_add_func ("/metadata-stage/order-with-slow-did", test_order_with_slow_did);
  g_test_add_func ("/metadata-stage/identity-invalidates", test_identity_invalidates);
  g_test_add_func ("/metadata-stage/unresolved", test_unresolved);
  g_test_add_func ("/metadata-stage/plc-stopped", test_plc_stopped);
  status = g_test_run ();
  atk_test_plc_free (plc);
  return status;
}
