/* Tests for the Jetstream v1 payload (--payload-format=jetstream).
 *
 * relay-capture/jetstream_v1.jsonl is production Jetstream's rendering of the same 150
 * frames as frames.bin: every message the transformer makes must equal one of its lines,
 * value for value, and every line must be made. time_us is Jetstream's receive time, which
 * we cannot reproduce: ours must be the "now" passed to the transform. The event kinds the
 * capture lacks (handle, status, #sync, #info) are checked against pds-capture's oracle.
 * SPDX-License-Identifier: MIT */
#include <json-glib/json-glib.h>
#include <string.h>

#include "atk-event-transformer.h"
#include "atk-jetstream.h"
#include "atk-test-util.h"

/* 2024-01-01T12:00:00.123456Z, the "now" passed to every transform. */
#define TEST_NOW_US G_GINT64_CONSTANT (1704110400123456)

static GPtrArray *
transform_all (AtkEventTransformer *t, const char *vector)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames (vector);
  GPtrArray *messages = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);

  for (guint i = 0; i < frames->len; i++)
    {
      AtkTransformResult result = { 0 };
      g_autoptr (GError) error = NULL;
      gsize len;
      const guint8 *data = g_bytes_get_data (frames->pdata[i], &len);

      g_assert_true (
          atk_event_transformer_transform (t, data, len, TEST_NOW_US, messages, &result, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (result.n_op_errors, ==, 0);
      atk_transform_result_clear (&result);
    }
  return messages;
}

static JsonNode *
parse_value (const AtkMessage *m)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node;

  g_assert_null (memchr (m->value->str, '\n', m->value->len));
  node = json_from_string (m->value->str, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return node;
}

/* What identifies one Jetstream event: kind, did, and the op or the seq. */
static char *
event_key (JsonObject *event)
{
  const char *kind = json_object_get_string_member (event, "kind");
  const char *did = json_object_get_string_member (event, "did");
  JsonObject *inner = json_object_get_object_member (event, kind);

  g_assert_nonnull (inner);
  if (g_str_equal (kind, "commit"))
    return g_strdup_printf ("commit %s %s %s/%s", did,
                            json_object_get_string_member (inner, "operation"),
                            json_object_get_string_member (inner, "collection"),
                            json_object_get_string_member (inner, "rkey"));
  return g_strdup_printf ("%s %s %" G_GINT64_FORMAT, kind, did,
                          json_object_get_int_member (inner, "seq"));
}

/* The oracle's lines by key, time_us removed (it is Jetstream's own clock). */
static GHashTable *
load_oracle (void)
{
  g_autoptr (GPtrArray) lines = atk_test_load_jsonl ("relay-capture/jetstream_v1.jsonl");
  GHashTable *by_key
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)json_node_unref);

  for (guint i = 0; i < lines->len; i++)
    {
      JsonObject *event = json_node_get_object (lines->pdata[i]);

      g_assert_true (json_object_has_member (event, "time_us"));
      json_object_remove_member (event, "time_us");
      g_assert_true (
          g_hash_table_insert (by_key, event_key (event), json_node_ref (lines->pdata[i])));
    }
  g_assert_cmpuint (g_hash_table_size (by_key), ==, 152);
  return by_key;
}

/* Takes the message's Jetstream event, checks time_us and removes it. */
static JsonObject *
take_event (JsonNode *value)
{
  JsonObject *event = json_node_get_object (value);
  JsonNode *time_us = json_object_get_member (event, "time_us");

  g_assert_nonnull (time_us);
  g_assert_cmpuint (json_node_get_value_type (time_us), ==, G_TYPE_INT64);
  g_assert_cmpint (json_node_get_int (time_us), ==, TEST_NOW_US);
  json_object_remove_member (event, "time_us");
  return event;
}

/* Osprey's Jetstream input plugin's names, written out here independently. */
static char *
expected_action_name (JsonObject *event)
{
  const char *kind = json_object_get_string_member (event, "kind");
  JsonObject *commit;
  const char *collection;
  const char *shorts[][2] = {
    { "app.bsky.feed.post", "post" },        { "app.bsky.feed.like", "like" },
    { "app.bsky.feed.repost", "repost" },    { "app.bsky.graph.follow", "follow" },
    { "app.bsky.actor.profile", "profile" },
  };

  if (!g_str_equal (kind, "commit"))
    return g_strdup (kind);
  commit = json_object_get_object_member (event, "commit");
  collection = json_object_get_string_member (commit, "collection");
  for (gsize i = 0; i < G_N_ELEMENTS (shorts); i++)
    if (g_str_equal (collection, shorts[i][0]))
      return g_strdup_printf ("%s_%s", json_object_get_string_member (commit, "operation"),
                              shorts[i][1]);
  return g_strdup_printf ("%s_%s", json_object_get_string_member (commit, "operation"), collection);
}

static void
check_relay_capture (gboolean osprey)
{
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  g_autoptr (GHashTable) oracle = load_oracle ();
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) messages = NULL;
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  atk_event_transformer_set_payload_format (t, ATK_PAYLOAD_JETSTREAM);
  atk_event_transformer_set_osprey_compatible (t, osprey);
  g_assert_cmpint (atk_event_transformer_get_payload_format (t), ==, ATK_PAYLOAD_JETSTREAM);
  messages = transform_all (t, "relay-capture/frames.bin");
  g_assert_cmpuint (messages->len, ==, 152);

  for (guint i = 0; i < messages->len; i++)
    {
      const AtkMessage *m = messages->pdata[i];
      g_autoptr (JsonNode) value = parse_value (m);
      JsonNode *payload = value;
      JsonObject *event;
      g_autofree char *key = NULL;
      g_autofree char *context = g_strdup_printf ("message %u", i);
      JsonNode *want;

      /* No eventMetadata slot in this shape. */
      g_assert_cmpuint (m->metadata_offset, ==, 0);
      if (osprey)
        {
          JsonObject *data = json_object_get_object_member (json_node_get_object (value), "data");
          g_autofree char *name = NULL;

          g_assert_nonnull (data);
          payload = json_object_get_member (data, "data");
          name = expected_action_name (json_node_get_object (payload));
          g_assert_cmpstr (json_object_get_string_member (data, "action_name"), ==, name);
          g_assert_cmpint (json_object_get_int_member (data, "action_id"), ==, m->action_id);
          g_hash_table_add (names, g_steal_pointer (&name));
        }
      event = take_event (payload);
      key = event_key (event);
      want = g_hash_table_lookup (oracle, key);
      if (want == NULL)
        g_error ("%s: %s is not in jetstream_v1.jsonl", context, key);
      atk_test_assert_json_equal (payload, want, ATK_TEST_JSON_NUMBERS_STRICT, context);
      g_assert_true (g_hash_table_add (seen, g_steal_pointer (&key)));
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, g_hash_table_size (oracle));
  if (osprey)
    {
      g_assert_true (g_hash_table_contains (names, "create_post"));
      g_assert_true (g_hash_table_contains (names, "create_like"));
      g_assert_true (g_hash_table_contains (names, "delete_follow"));
      g_assert_true (g_hash_table_contains (names, "identity"));
      g_assert_true (g_hash_table_contains (names, "account"));
    }
  g_hash_table_unref (names);
}

static void
test_relay_capture_plain (void)
{
  check_relay_capture (FALSE);
}

static void
test_relay_capture_osprey (void)
{
  check_relay_capture (TRUE);
}

/* identity with a handle, account with a status, #sync and #info: built from pds-capture's
 * oracle bodies as Jetstream's types define them. */
static JsonNode *
expected_event (JsonObject *header, JsonObject *body)
{
  const char *type = json_object_get_string_member (header, "t");
  const char *kind = type + 1;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *copy[]
      = { "did", "handle", "active", "status", "rev", "seq", "time", "name", "message" };

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "did");
  json_builder_add_string_value (
      b, json_object_has_member (body, "did") ? json_object_get_string_member (body, "did") : "");
  json_builder_set_member_name (b, "kind");
  json_builder_add_string_value (b, kind);
  json_builder_set_member_name (b, kind);
  json_builder_begin_object (b);
  for (gsize i = 0; i < G_N_ELEMENTS (copy); i++)
    {
      if (!json_object_has_member (body, copy[i]))
        continue;
      /* Each kind has its own members. */
      if ((g_str_equal (copy[i], "rev") && !g_str_equal (kind, "sync"))
          || (g_str_equal (copy[i], "handle") && !g_str_equal (kind, "identity"))
          || ((g_str_equal (copy[i], "active") || g_str_equal (copy[i], "status"))
              && !g_str_equal (kind, "account")))
        continue;
      json_builder_set_member_name (b, copy[i]);
      json_builder_add_value (b, json_node_copy (json_object_get_member (body, copy[i])));
    }
  json_builder_end_object (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static void
test_other_kinds (void)
{
  const char *vectors[] = { "pds-capture/frames", "pds-capture/frames-info-outdated" };
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  guint kinds_seen = 0;

  atk_event_transformer_set_payload_format (t, ATK_PAYLOAD_JETSTREAM);
  for (gsize v = 0; v < G_N_ELEMENTS (vectors); v++)
    {
      g_autofree char *bin = g_strdup_printf ("%s.bin", vectors[v]);
      g_autofree char *jsonl = g_strdup_printf ("%s.jsonl", vectors[v]);
      g_autoptr (GPtrArray) frames = atk_test_load_frames (bin);
      g_autoptr (GPtrArray) oracle = atk_test_load_jsonl (jsonl);

      for (guint i = 0; i < frames->len; i++)
        {
          JsonObject *line = json_node_get_object (oracle->pdata[i]);
          JsonObject *header = json_object_get_object_member (line, "header");
          JsonObject *body = json_object_get_object_member (line, "body");
          const char *type = json_object_get_string_member (header, "t");
          g_autoptr (GPtrArray) messages
              = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
          AtkTransformResult result = { 0 };
          gsize len;
          const guint8 *data = g_bytes_get_data (frames->pdata[i], &len);
          g_autoptr (JsonNode) value = NULL;
          g_autoptr (JsonNode) want = NULL;
          g_autofree char *context = g_strdup_printf ("%s frame %u", vectors[v], i);

          g_assert_true (
              atk_event_transformer_transform (t, data, len, TEST_NOW_US, messages, &result, NULL));
          atk_transform_result_clear (&result);
          if (g_str_equal (type, "#commit"))
            continue;
          g_assert_cmpuint (messages->len, ==, 1);
          value = parse_value (messages->pdata[0]);
          take_event (value);
          want = expected_event (header, body);
          atk_test_assert_json_equal (value, want, ATK_TEST_JSON_NUMBERS_STRICT, context);
          if (g_str_equal (type, "#identity") && json_object_has_member (body, "handle"))
            kinds_seen |= 1;
          if (g_str_equal (type, "#account") && json_object_has_member (body, "status"))
            kinds_seen |= 2;
          if (g_str_equal (type, "#sync"))
            kinds_seen |= 4;
          if (g_str_equal (type, "#info"))
            kinds_seen |= 8;
        }
    }
  g_assert_cmpuint (kinds_seen, ==, 15);
}

static void
test_format_names (void)
{
  AtkPayloadFormat format = ATK_PAYLOAD_JETSTREAM;

  g_assert_true (atk_payload_format_from_string ("standard", &format));
  g_assert_cmpint (format, ==, ATK_PAYLOAD_STANDARD);
  g_assert_true (atk_payload_format_from_string ("jetstream", &format));
  g_assert_cmpint (format, ==, ATK_PAYLOAD_JETSTREAM);
  g_assert_false (atk_payload_format_from_string ("Jetstream", &format));
  g_assert_false (atk_payload_format_from_string ("", &format));
  g_assert_false (atk_payload_format_from_string (NULL, &format));
  g_assert_cmpstr (atk_payload_format_to_string (ATK_PAYLOAD_STANDARD), ==, "standard");
  g_assert_cmpstr (atk_payload_format_to_string (ATK_PAYLOAD_JETSTREAM), ==, "jetstream");
}

/* The default stays the standard shape. */
static void
test_default_standard (void)
{
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  g_autoptr (GPtrArray) messages = NULL;
  g_autoptr (JsonNode) value = NULL;

  g_assert_cmpint (atk_event_transformer_get_payload_format (t), ==, ATK_PAYLOAD_STANDARD);
  messages = transform_all (t, "relay-capture/frames.bin");
  value = parse_value (messages->pdata[0]);
  g_assert_true (json_object_has_member (json_node_get_object (value), "operation"));
  g_assert_false (json_object_has_member (json_node_get_object (value), "time_us"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/jetstream/format-names", test_format_names);
  g_test_add_func ("/jetstream/default-standard", test_default_standard);
  g_test_add_func ("/jetstream/relay-capture", test_relay_capture_plain);
  g_test_add_func ("/jetstream/relay-capture-osprey", test_relay_capture_osprey);
  g_test_add_func ("/jetstream/other-kinds", test_other_kinds);
  return g_test_run ();
}
