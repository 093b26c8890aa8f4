/* Tap events to output messages: a Tap session (tests/tap/session.jsonl, in the wire
 * format of Tap's types.go) against outputs written from reference.md's rules
 * (tests/tap/session-expected.jsonl, made by tests/tap/make-expected.py, not by our code),
 * the Osprey envelope, snowflakes, and rejection of broken events.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "atk-error.h"
#include "atk-tap-event.h"
#include "atk-test-util.h"

/* 2026-11-27T21:50:00.500Z, the clock make-expected.py assumes. */
#define NOW_US G_GINT64_CONSTANT (1795816200500000)
#define SNOWFLAKE_EPOCH_MS G_GINT64_CONSTANT (1420070400000)

static JsonNode *
parse_json (const char *text)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (node);
  return node;
}

static GPtrArray *
transform_ok (const char *text, const AtkTapEventOptions *options, gint64 now_us,
              AtkTapEventResult *result)
{
  GPtrArray *messages = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  g_autoptr (GError) error = NULL;

  g_assert_true (
      atk_tap_event_transform (text, strlen (text), options, now_us, messages, result, &error));
  g_assert_no_error (error);
  return messages;
}

/* Runs every session event; returns the messages of all, in order. */
static GPtrArray *
transform_session (const AtkTapEventOptions *options, GArray *ids)
{
  g_autoptr (GPtrArray) events = atk_test_load_tap_fixture ("session.jsonl");
  GPtrArray *all = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);

  for (guint i = 0; i < events->len; i++)
    {
      AtkTapEventResult result;
      g_autoptr (GPtrArray) messages = transform_ok (events->pdata[i], options, NOW_US, &result);

      g_assert_cmpuint (result.n_messages, ==, messages->len);
      while (messages->len > 0)
        {
          g_ptr_array_add (all, g_ptr_array_steal_index (messages, 0));
          if (ids != NULL)
            g_array_append_val (ids, result.id);
        }
    }
  return all;
}

static void
check_against_expected (AtkMessage *message, JsonObject *want, const char *context)
{
  g_autoptr (JsonNode) got = parse_json (message->value->str);
  const char *collection = json_object_get_null_member (want, "collection")
                               ? NULL
                               : json_object_get_string_member (want, "collection");

  atk_test_assert_json_equal (got, json_object_get_member (want, "value"),
                              ATK_TEST_JSON_NUMBERS_STRICT, context);
  g_assert_cmpstr (message->key, ==, json_object_get_string_member (want, "key"));
  g_assert_cmpstr (message->action_name, ==, json_object_get_string_member (want, "action_name"));
  g_assert_cmpstr (message->collection, ==, collection);
  g_assert_true (message->has_seq);
  g_assert_cmpint (message->seq, ==, json_object_get_int_member (want, "id"));
  g_assert_cmpint (message->event_time_ms, ==, json_object_get_int_member (want, "event_time_ms"));
  /* Compact: no newline or indentation outside strings (there are none inside either). */
  g_assert_null (strchr (message->value->str, '\n'));
  g_assert_null (strstr (message->value->str, "\": "));
}

static void
test_session_standard (void)
{
  g_autoptr (GPtrArray) expected = atk_test_load_tap_fixture ("session-expected.jsonl");
  g_autoptr (GPtrArray) messages = transform_session (NULL, NULL);

  g_assert_cmpuint (messages->len, ==, expected->len);
  for (guint i = 0; i < messages->len; i++)
    {
      g_autoptr (JsonNode) want = parse_json (expected->pdata[i]);
      g_autofree char *context = g_strdup_printf ("message %u", i);
      check_against_expected (messages->pdata[i], json_node_get_object (want), context);
    }
}

/* The record is copied, not rebuilt: Tap's (Go's) escapes arrive exactly as sent. */
static void
test_record_copied_verbatim (void)
{
  g_autoptr (GPtrArray) messages = transform_session (NULL, NULL);
  AtkMessage *post = messages->pdata[0];
  AtkMessage *thing = messages->pdata[6];

  g_assert_cmpstr (post->action_name, ==, "operation#create");
  g_assert_nonnull (
      strstr (post->value->str, "\"a \\u003cb\\u003ecat\\u003c/b\\u003e \\u0026 dog\""));
  g_assert_nonnull (strstr (post->value->str, "back\\u2028\""));
  g_assert_cmpstr (thing->collection, ==, "com.example.thing");
  g_assert_nonnull (
      strstr (thing->value->str, "\"max\":9007199254740991,\"min\":-9007199254740991"));
  g_assert_nonnull (strstr (thing->value->str, "\"list\":[[],[1,-2,[{\"a\":null}]],true,false]"));
}

static void
test_session_osprey (void)
{
  AtkTapEventOptions options = { .osprey = TRUE };
  g_autoptr (GPtrArray) expected = atk_test_load_tap_fixture ("session-expected.jsonl");
  g_autoptr (GPtrArray) messages = transform_session (&options, NULL);
  g_autoptr (GHashTable) ids = g_hash_table_new (g_int64_hash, g_int64_equal);

  g_assert_cmpuint (messages->len, ==, expected->len);
  for (guint i = 0; i < messages->len; i++)
    {
      AtkMessage *message = messages->pdata[i];
      g_autoptr (JsonNode) want_node = parse_json (expected->pdata[i]);
      JsonObject *want = json_node_get_object (want_node);
      JsonObject *want_value = json_object_get_object_member (want, "value");
      g_autoptr (JsonNode) got = parse_json (message->value->str);
      JsonObject *envelope = json_node_get_object (got);
      JsonObject *data = json_object_get_object_member (envelope, "data");
      g_autofree char *context = g_strdup_printf ("osprey message %u", i);

      g_assert_cmpuint (json_object_get_size (envelope), ==, 2);
      g_assert_cmpstr (json_object_get_string_member (envelope, "send_time"), ==,
                       "2026-11-27T21:50:00Z");
      g_assert_cmpstr (json_object_get_string_member (data, "action_name"), ==,
                       json_object_get_string_member (want, "action_name"));
      g_assert_cmpint (json_object_get_int_member (data, "action_id"), ==, message->action_id);
      g_assert_cmpstr (json_object_get_string_member (data, "timestamp"), ==,
                       json_object_get_string_member (want_value, "timestamp"));
      g_assert_cmpuint (json_object_get_size (json_object_get_object_member (data, "secret_data")),
                        ==, 0);
      g_assert_cmpstr (json_object_get_string_member (data, "encoding"), ==, "UTF8");
      atk_test_assert_json_equal (json_object_get_member (data, "data"),
                                  json_object_get_member (want, "value"),
                                  ATK_TEST_JSON_NUMBERS_STRICT, context);
      /* A snowflake of the event's time, unique across the session. */
      g_assert_cmpint ((message->action_id >> 22) + SNOWFLAKE_EPOCH_MS, ==,
                       json_object_get_int_member (want, "event_time_ms"));
      g_assert_false (g_hash_table_contains (ids, &message->action_id));
      g_hash_table_add (ids, &message->action_id);
    }
}

/* Tap resends unacked events: a resent event keeps its action_id (when its time comes from
 * the event, not the clock). */
static void
test_snowflake_stable_on_redelivery (void)
{
  g_autoptr (GPtrArray) events = atk_test_load_tap_fixture ("session.jsonl");
  g_autoptr (GPtrArray) first = transform_ok (events->pdata[1], NULL, NOW_US, NULL);
  g_autoptr (GPtrArray) again
      = transform_ok (events->pdata[1], NULL, NOW_US + G_GINT64_CONSTANT (3600000000), NULL);

  g_assert_cmpint (((AtkMessage *)first->pdata[0])->action_id, ==,
                   ((AtkMessage *)again->pdata[0])->action_id);
}

/* Whitespace, member order and the older "user"/"isActive" spelling of Tap's README. */
static void
test_layout_and_old_spelling (void)
{
  static const char pretty[]
      = "\n{ \"record\" : {\n  \"record\" : { \"b\" : [ 1 , { } ] , \"$type\" : \"x.y.z\" } ,\n"
        "  \"action\" : \"update\", \"rkey\":\"k\", \"collection\":\"x.y.z\", \"cid\":\"bafy\",\n"
        "  \"did\" : \"did:web:caf\\u00e9.example\", \"unknownField\": [true, null, 1.5e3] },\n"
        " \"type\" : \"record\", \"id\" : 77 }\n";
  static const char old_identity[]
      = "{\"id\":5,\"type\":\"user\",\"user\":{\"did\":\"did:plc:abc\",\"handle\":\"a.b\","
        "\"isActive\":false,\"status\":\"takendown\"}}";
  AtkTapEventResult result;
  g_autoptr (GPtrArray) messages = transform_ok (pretty, NULL, NOW_US, &result);
  g_autoptr (JsonNode) got = parse_json (((AtkMessage *)messages->pdata[0])->value->str);
  g_autoptr (JsonNode) want = parse_json (
      "{\"did\":\"did:web:café.example\",\"timestamp\":\"2026-11-27T21:50:00.500Z\","
      "\"operation\":{\"action\":\"update\",\"collection\":\"x.y.z\",\"rkey\":\"k\","
      "\"uri\":\"at://did:web:café.example/x.y.z/k\",\"cid\":\"bafy\",\"path\":\"x.y.z/k\","
      "\"record\":{\"$type\":\"x.y.z\",\"b\":[1,{}]}},\"eventMetadata\":null}");
  g_autoptr (GPtrArray) identity = NULL;
  g_autoptr (JsonNode) account = NULL;

  g_assert_cmpuint (result.id, ==, 77);
  g_assert_cmpint (result.kind, ==, ATK_TAP_EVENT_RECORD);
  atk_test_assert_json_equal (got, want, ATK_TEST_JSON_NUMBERS_STRICT, "pretty record");
  g_assert_nonnull (strstr (((AtkMessage *)messages->pdata[0])->value->str,
                            "\"record\":{\"b\":[1,{}],\"$type\":\"x.y.z\"}"));
  g_assert_cmpstr (((AtkMessage *)messages->pdata[0])->key, ==, "did:web:café.example");

  identity = transform_ok (old_identity, NULL, NOW_US, &result);
  g_assert_cmpint (result.kind, ==, ATK_TAP_EVENT_IDENTITY);
  g_assert_cmpuint (identity->len, ==, 2);
  account = parse_json (((AtkMessage *)identity->pdata[1])->value->str);
  g_assert_false (json_object_get_boolean_member (
      json_object_get_object_member (json_node_get_object (account), "account"), "active"));
}

static gboolean
reject_app_bsky (const char *collection, gpointer user_data)
{
  guint *calls = user_data;

  (*calls)++;
  return !g_str_has_prefix (collection, "app.bsky.");
}

static void
test_collection_filter (void)
{
  guint calls = 0;
  AtkTapEventOptions options = { .filter = reject_app_bsky, .filter_data = &calls };
  g_autoptr (GPtrArray) events = atk_test_load_tap_fixture ("session.jsonl");
  guint filtered = 0, produced = 0;

  for (guint i = 0; i < events->len; i++)
    {
      AtkTapEventResult result;
      g_autoptr (GPtrArray) messages = transform_ok (events->pdata[i], &options, NOW_US, &result);

      filtered += result.filtered;
      produced += messages->len;
      /* Filtered events still report their id: the daemon acks them at once. */
      g_assert_cmpuint (result.id, ==, i + 1);
    }
  /* 7 record events, 6 under app.bsky.; both identity events give 2 messages each. */
  g_assert_cmpuint (calls, ==, 7);
  g_assert_cmpuint (filtered, ==, 6);
  g_assert_cmpuint (produced, ==, 1 + 4);
}

typedef struct
{
  const char *text;
  gint code;
  gint64 id; /* what the daemon can still ack, or -1 */
} BadCase;

static void
test_bad_events (void)
{
  static const BadCase cases[] = {
    { "", ATK_ERROR_BAD_FRAME, -1 },
    { "null", ATK_ERROR_BAD_FRAME, -1 },
    { "[1]", ATK_ERROR_BAD_FRAME, -1 },
    { "{", ATK_ERROR_BAD_FRAME, -1 },
    { "{\"id\":1,\"type\":\"record\"", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"type\":\"identity\",\"identity\":{\"did\":\"d\",\"is_active\":true}}",
      ATK_ERROR_BAD_FRAME, -1 },
    { "{\"id\":-1,\"type\":\"identity\",\"identity\":{}}", ATK_ERROR_BAD_FRAME, -1 },
    { "{\"id\":1.5,\"type\":\"identity\",\"identity\":{}}", ATK_ERROR_BAD_FRAME, -1 },
    { "{\"id\":\"7\",\"type\":\"identity\",\"identity\":{}}", ATK_ERROR_BAD_FRAME, -1 },
    { "{\"id\":99999999999999999999,\"type\":\"identity\"}", ATK_ERROR_BAD_FRAME, -1 },
    { "{\"id\":1} x", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":1,}", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":01}", ATK_ERROR_BAD_FRAME, -1 },
    { "{\"id\":1,\"x\":\"a\\qb\"}", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":1,\"x\":\"\\ud800\"}", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":1,\"x\":\"\\udc00\\ud800\"}", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":1,\"x\":\"\xc3\x28\"}", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":1,\"x\":\"a\tb\"}", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":1,\"x\":tru}", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":1,\"x\":-}", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":1,\"x\":1.}", ATK_ERROR_BAD_FRAME, 1 },
    { "{\"id\":1,\"x\":[1 2]}", ATK_ERROR_BAD_FRAME, 1 },
    /* Well-formed, but not an event we can produce: the id is readable. */
    { "{\"id\":18446744073709551615,\"type\":\"identity\"}", ATK_ERROR_BAD_FRAME,
      G_GINT64_CONSTANT (-2) },
    { "{\"id\":9223372036854775808,\"type\":\"identity\"}", ATK_ERROR_BAD_FRAME,
      G_GINT64_CONSTANT (-3) },
    { "{\"id\":3}", ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"label\",\"label\":{}}", ATK_ERROR_UNSUPPORTED, 3 },
    { "{\"id\":3,\"type\":\"record\"}", ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"record\",\"record\":{\"collection\":\"a.b.c\",\"rkey\":\"k\","
      "\"action\":\"delete\"}}",
      ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"record\",\"record\":{\"did\":\"d\",\"rkey\":\"k\","
      "\"action\":\"delete\"}}",
      ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"record\",\"record\":{\"did\":\"d\",\"collection\":\"a.b.c\","
      "\"action\":\"delete\"}}",
      ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"record\",\"record\":{\"did\":\"d\",\"collection\":\"a.b.c\","
      "\"rkey\":\"k\",\"action\":\"upsert\",\"record\":{}}}",
      ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"record\",\"record\":{\"did\":\"d\",\"collection\":\"a.b.c\","
      "\"rkey\":\"k\",\"action\":\"create\",\"cid\":\"bafy\"}}",
      ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"identity\",\"identity\":{\"did\":\"d\",\"handle\":\"h\"}}",
      ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"identity\",\"identity\":{\"handle\":\"h\",\"is_active\":true}}",
      ATK_ERROR_BAD_FRAME, 3 },
    /* Wrong types inside: still an id Tap sent, acked so that it is not sent again. */
    { "{\"id\":3,\"type\":\"identity\",\"identity\":{\"did\":\"did:x\\u0000y\","
      "\"is_active\":true}}",
      ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"record\",\"record\":{\"did\":\"d\",\"collection\":\"a.b.c\","
      "\"rkey\":\"k\",\"action\":\"create\",\"record\":[1]}}",
      ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"record\",\"record\":{\"did\":7}}", ATK_ERROR_BAD_FRAME, 3 },
    { "{\"id\":3,\"type\":\"identity\",\"identity\":{\"is_active\":\"yes\"}}", ATK_ERROR_BAD_FRAME,
      3 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GPtrArray) messages
          = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
      g_autoptr (GError) error = NULL;
      guint64 id = 0;

      g_autofree char *printable = g_strescape (cases[i].text, NULL); /* TAP wants UTF-8 */
      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, printable);
      g_assert_false (atk_tap_event_transform (cases[i].text, strlen (cases[i].text), NULL, NOW_US,
                                               messages, NULL, &error));
      g_assert_error (error, ATK_ERROR, cases[i].code);
      g_assert_cmpuint (messages->len, ==, 0);
      /* -2, -3: ids beyond G_MAXINT64, which the table cannot spell */
      g_assert_cmpint (atk_tap_event_peek_id (cases[i].text, strlen (cases[i].text), &id), ==,
                       cases[i].id != -1);
      if (cases[i].id == -2)
        g_assert_cmpuint (id, ==, G_MAXUINT64);
      else if (cases[i].id == -3)
        g_assert_cmpuint (id, ==, G_GUINT64_CONSTANT (9223372036854775808));
      else if (cases[i].id != -1)
        g_assert_cmpuint (id, ==, (guint64)cases[i].id);
    }
}

static void
test_too_deep (void)
{
  g_autoptr (GString) text
      = g_string_new ("{\"id\":1,\"type\":\"record\",\"record\":{\"did\":\"d\","
                      "\"collection\":\"a.b.c\",\"rkey\":\"k\","
                      "\"action\":\"create\",\"cid\":\"c\",\"record\":{\"x\":");
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) ok = NULL;
  gsize depth_100_at;

  for (int i = 0; i < 100; i++)
    g_string_append_c (text, '[');
  depth_100_at = text->len;
  for (int i = 0; i < 100; i++)
    g_string_append_c (text, ']');
  g_string_append (text, "}}}");
  /* 100 levels are fine... */
  ok = transform_ok (text->str, NULL, NOW_US, NULL);
  g_assert_cmpuint (ok->len, ==, 1);
  /* ...100000 are refused, without a stack overflow. */
  for (int i = 0; i < 100000; i++)
    g_string_insert_c (text, depth_100_at, '[');
  g_assert_false (
      atk_tap_event_transform (text->str, text->len, NULL, NOW_US, messages, NULL, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME);
}

static void
test_ack_message (void)
{
  g_autofree char *ack = atk_tap_ack_message (G_GUINT64_CONSTANT (9007199254740993));
  g_autoptr (JsonNode) got = parse_json (ack);
  g_autoptr (JsonNode) want = parse_json ("{\"type\":\"ack\",\"id\":9007199254740993}");

  atk_test_assert_json_equal (got, want, ATK_TEST_JSON_NUMBERS_STRICT, "ack");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tap-event/session-standard", test_session_standard);
  g_test_add_func ("/tap-event/record-copied-verbatim", test_record_copied_verbatim);
  g_test_add_func ("/tap-event/session-osprey", test_session_osprey);
  g_test_add_func ("/tap-event/snowflake-stable", test_snowflake_stable_on_redelivery);
  g_test_add_func ("/tap-event/layout-and-old-spelling", test_layout_and_old_spelling);
  g_test_add_func ("/tap-event/collection-filter", test_collection_filter);
  g_test_add_func ("/tap-event/bad-events", test_bad_events);
  g_test_add_func ("/tap-event/too-deep", test_too_deep);
  g_test_add_func ("/tap-event/ack-message", test_ack_message);

  return g_test_run ();
}
