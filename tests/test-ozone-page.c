/* Ozone mode's pure part: a queryEvents page captured from a real Ozone (tests/vectors/ozone/,
 * written by @atproto/ozone 0.1.161 through @atproto/pds 0.4.217), positions in Ozone's
 * (createdAt, id) order, the cursor file's text, and the messages.
 * SPDX-License-Identifier: MIT */
#include <json-glib/json-glib.h>
#include <string.h>

#include "atk-error.h"
#include "atk-ozone-page.h"
#include "atk-ozone-window.h"
#include "atk-test-util.h"
#include "atk-time.h"

#define PAGE "ozone/query-events-page.json"

static JsonNode *
parse_json (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

static void
test_real_page (void)
{
  g_autoptr (GBytes) body = atk_test_load_vector (PAGE);
  g_autoptr (GPtrArray) events = NULL;
  g_autofree char *cursor = NULL;
  g_autoptr (GError) error = NULL;
  gsize len = 0;
  const char *data = g_bytes_get_data (body, &len);
  g_autoptr (JsonNode) root = NULL;
  JsonArray *want;
  gint64 last_id = 0;

  g_assert_true (atk_ozone_page_parse (data, len, &events, &cursor, &error));
  g_assert_no_error (error);
  g_assert_nonnull (cursor);
  g_assert_true (g_str_has_suffix (cursor, "::5"));
  root = json_from_string (data, NULL);
  want = json_object_get_array_member (json_node_get_object (root), "events");
  g_assert_cmpuint (events->len, ==, json_array_get_length (want));
  g_assert_cmpuint (events->len, ==, 5);
  for (guint i = 0; i < events->len; i++)
    {
      const AtkOzoneEvent *event = events->pdata[i];
      JsonObject *view = json_array_get_object_element (want, i);
      g_autoptr (JsonNode) got = parse_json (event->json);

      g_assert_cmpint (event->pos.id, ==, json_object_get_int_member (view, "id"));
      g_assert_cmpstr (event->pos.created_at, ==,
                       json_object_get_string_member (view, "createdAt"));
      g_assert_cmpstr (
          event->type, ==,
          json_object_get_string_member (json_object_get_object_member (view, "event"), "$type"));
      /* as it came: the same bytes (Ozone writes compact JSON) and the same value */
      g_assert_nonnull (strstr (data, event->json));
      g_assert_true (json_node_equal (got, json_array_get_element (want, i)));
      g_assert_cmpint (event->pos.id, >, last_id);
      last_id = event->pos.id;
      if (i > 0)
        g_assert_cmpint (
            atk_ozone_position_compare (&((AtkOzoneEvent *)events->pdata[i - 1])->pos, &event->pos),
            <, 0);
    }
}

/* Ozone's order is (createdAt, id): the same millisecond is ordered by id. */
static void
test_order (void)
{
  AtkOzonePosition a = { 1000, 7, NULL }, b = { 1000, 9, NULL }, c = { 999, 50, NULL };

  g_assert_cmpint (atk_ozone_position_compare (&a, &b), <, 0);
  g_assert_cmpint (atk_ozone_position_compare (&b, &a), >, 0);
  g_assert_cmpint (atk_ozone_position_compare (&a, &a), ==, 0);
  g_assert_cmpint (atk_ozone_position_compare (&c, &a), <, 0); /* earlier, higher id */
}

static void
test_cursor_text (void)
{
  AtkOzonePosition pos = { 0, 42, g_strdup ("2026-11-30T10:07:55.097Z") };
  AtkOzonePosition back = { 0 };
  g_autofree char *text = NULL;
  g_autofree char *labeler = NULL;
  g_autoptr (GError) error = NULL;
  const char *const bad[] = { "",
                              "did:plc:x 2026-11-30T10:07:55.097Z",
                              "plc:x 2026-11-30T10:07:55.097Z 1",
                              "did:plc:x yesterday 1",
                              "did:plc:x 2026-11-30T10:07:55.097Z -1",
                              "did:plc:x 2026-11-30T10:07:55.097Z 1x",
                              "did:plc:x 2026-11-30T10:07:55.097Z 1 extra" };

  text = atk_ozone_position_to_text ("did:plc:labeler", &pos);
  g_assert_cmpstr (text, ==, "did:plc:labeler 2026-11-30T10:07:55.097Z 42\n");
  g_assert_true (atk_ozone_position_from_text (text, &labeler, &back, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (labeler, ==, "did:plc:labeler");
  g_assert_cmpint (back.id, ==, 42);
  g_assert_cmpstr (back.created_at, ==, pos.created_at);
  g_assert_cmpint (back.created_ms, ==, G_GINT64_CONSTANT (1796033275097));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) e = NULL;
      g_autofree char *l = NULL;

      g_assert_false (atk_ozone_position_from_text (bad[i], &l, &back, &e));
      g_assert_error (e, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
    }
  atk_ozone_position_clear (&pos);
  atk_ozone_position_clear (&back);
}

static void
test_messages (void)
{
  const char *view = "{\"id\":12,\"event\":{\"$type\":\"tools.ozone.moderation.defs#"
                     "modEventLabel\",\"createLabelVals\":[\"spam\"]},\"createdAt\":"
                     "\"2026-11-30T10:07:55.097Z\",\"note\":\"caf\\u00e9 \xf0\x9f\x98\x80\"}";
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkOzoneEvent) event = atk_ozone_event_parse (view, strlen (view), &error);
  g_autoptr (AtkMessage) plain = NULL;
  g_autoptr (AtkMessage) osprey = NULL;
  g_autoptr (AtkMessage) again = NULL;
  g_autoptr (JsonNode) envelope = NULL;
  g_autoptr (JsonNode) original = parse_json (view);
  JsonObject *data;

  g_assert_no_error (error);
  plain = atk_ozone_event_to_message (event, FALSE, "2026-11-30T10:08:00Z");
  g_assert_cmpstr (plain->key, ==, "12");
  g_assert_cmpstr (plain->value->str, ==, view); /* as is, escapes and all */
  g_assert_cmpstr (plain->action_name, ==, "ozone");
  osprey = atk_ozone_event_to_message (event, TRUE, "2026-11-30T10:08:00Z");
  envelope = parse_json (osprey->value->str);
  data = json_object_get_object_member (json_node_get_object (envelope), "data");
  g_assert_cmpstr (json_object_get_string_member (data, "action_name"), ==, "ozone#modEventLabel");
  g_assert_cmpint (json_object_get_int_member (data, "action_id"), ==, osprey->action_id);
  g_assert_true (json_node_equal (json_object_get_member (data, "data"), original));
  g_assert_cmpstr (json_object_get_string_member (data, "timestamp"), ==,
                   "2026-11-30T10:07:55.097Z");
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (envelope), "send_time"), ==,
                   "2026-11-30T10:08:00Z");
  /* the same event, the same snowflake */
  again = atk_ozone_event_to_message (event, TRUE, "2026-11-30T11:00:00Z");
  g_assert_cmpint (again->action_id, ==, osprey->action_id);
}

static void
test_action_names (void)
{
  g_autofree char *a = atk_ozone_action_name ("tools.ozone.moderation.defs#modEventReport");
  g_autofree char *b = atk_ozone_action_name (NULL);
  g_autofree char *c = atk_ozone_action_name ("com.example.thing");

  g_assert_cmpstr (a, ==, "ozone#modEventReport");
  g_assert_cmpstr (b, ==, "ozone");
  g_assert_cmpstr (c, ==, "ozone#com.example.thing");
}

/* A page whose place cannot be known is refused whole, with a message; never a crash. */
static void
test_bad_pages (void)
{
  g_autofree char *deep = NULL;
  GString *nest = g_string_new ("{\"events\":[{\"id\":1,\"createdAt\":\"2026-01-01T00:00:00Z\","
                                "\"x\":");
  const char *const bad[] = {
    "",
    "[]",
    "{}",
    "{\"events\":{}}",
    "{\"events\":[1]}",
    "{\"events\":[{\"createdAt\":\"2026-01-01T00:00:00Z\"}]}",
    "{\"events\":[{\"id\":1}]}",
    "{\"events\":[{\"id\":-1,\"createdAt\":\"2026-01-01T00:00:00Z\"}]}",
    "{\"events\":[{\"id\":1.5,\"createdAt\":\"2026-01-01T00:00:00Z\"}]}",
    "{\"events\":[{\"id\":99999999999999999999,\"createdAt\":\"2026-01-01T00:00:00Z\"}]}",
    "{\"events\":[{\"id\":1,\"createdAt\":\"not a time\"}]}",
    "{\"events\":[{\"id\":1,\"createdAt\":\"2026-01-01T00:00:00Z\"}",
    "{\"events\":[{\"id\":1,\"createdAt\":\"2026-01-01T00:00:00Z\"}]} trailing",
  };

  for (guint i = 0; i < 10000; i++)
    g_string_append_c (nest, '[');
  deep = g_string_free (nest, FALSE);
  for (guint i = 0; i <= G_N_ELEMENTS (bad); i++)
    {
      const char *text = i < G_N_ELEMENTS (bad) ? bad[i] : deep;
      g_autoptr (GPtrArray) events = NULL;
      g_autofree char *cursor = NULL;
      g_autoptr (GError) error = NULL;

      if (atk_ozone_page_parse (text, strlen (text), &events, &cursor, &error))
        g_error ("accepted: %s", text);
      g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME);
      g_assert_true (g_str_has_prefix (error->message, "Ozone "));
    }
}

static AtkOzoneEvent *
event_at (gint64 ms, gint64 id)
{
  AtkOzoneEvent *event = g_new0 (AtkOzoneEvent, 1);

  event->pos.created_ms = ms;
  event->pos.id = id;
  event->pos.created_at = atk_ozone_format_ms (ms);
  return event;
}

static gboolean
take (AtkOzoneWindow *window, gint64 ms, gint64 id)
{
  g_autoptr (AtkOzoneEvent) event = event_at (ms, id);

  return atk_ozone_window_take (window, event);
}

/* The window: nothing taken twice, the same millisecond by id, a late event taken, the
 * floor never crossed, ids forgotten once out of the lookback. */
static void
test_window (void)
{
  g_autoptr (AtkOzoneWindow) window = atk_ozone_window_new (5000);
  g_autoptr (AtkOzoneEvent) floor = event_at (G_GINT64_CONSTANT (1796033275097), 10);
  g_autofree char *first = NULL;
  g_autofree char *after = NULL;
  g_autofree char *later = NULL;
  const gint64 t = floor->pos.created_ms;

  first = atk_ozone_window_created_after (window);
  g_assert_null (first); /* nothing yet: from Ozone's first event */
  atk_ozone_window_reset (window, &floor->pos);
  after = atk_ozone_window_created_after (window);
  g_assert_cmpstr (after, ==, "2026-11-30T10:07:55.097Z"); /* not below the floor */
  g_assert_false (take (window, t, 10));                   /* the floor itself */
  g_assert_false (take (window, t, 9));                    /* before it */
  g_assert_false (take (window, t - 1, 50));               /* before it, higher id */
  g_assert_true (take (window, t, 11));                    /* same millisecond, after it */
  g_assert_false (take (window, t, 11));                   /* again */
  g_assert_true (take (window, t + 3000, 13));
  g_assert_true (take (window, t + 1000, 12)); /* visible late: still taken */
  g_assert_false (take (window, t + 1000, 12));
  g_assert_cmpuint (atk_ozone_window_get_size (window), ==, 3);
  g_assert_true (take (window, t + 20000, 14));
  later = atk_ozone_window_created_after (window);
  g_assert_cmpstr (later, ==, "2026-11-30T10:08:10.097Z");      /* newest − 5 s */
  g_assert_cmpuint (atk_ozone_window_get_size (window), ==, 1); /* 11, 12, 13 fell out */
  g_assert_false (take (window, t + 20000, 14));
  atk_ozone_window_reset (window, NULL);
  g_assert_true (take (window, t, 10)); /* no floor: from the first event */
}

static void
test_format_ms (void)
{
  g_autofree char *a = atk_ozone_format_ms (G_GINT64_CONSTANT (1796033275097));
  g_autofree char *b = atk_ozone_format_ms (0);
  g_autofree char *c = atk_ozone_format_ms (G_GINT64_CONSTANT (1796033275000));
  gint64 back = 0;

  g_assert_cmpstr (a, ==, "2026-11-30T10:07:55.097Z");
  g_assert_cmpstr (b, ==, "1970-01-01T00:00:00.000Z");
  g_assert_cmpstr (c, ==, "2026-11-30T10:07:55.000Z");
  g_assert_true (atk_parse_datetime_ms (a, strlen (a), &back));
  g_assert_cmpint (back, ==, G_GINT64_CONSTANT (1796033275097));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ozone-page/real-page", test_real_page);
  g_test_add_func ("/ozone-page/order", test_order);
  g_test_add_func ("/ozone-page/cursor-text", test_cursor_text);
  g_test_add_func ("/ozone-page/messages", test_messages);
  g_test_add_func ("/ozone-page/action-names", test_action_names);
  g_test_add_func ("/ozone-page/bad-pages", test_bad_pages);
  g_test_add_func ("/ozone-page/window", test_window);
  g_test_add_func ("/ozone-page/format-ms", test_format_ms);
  return g_test_run ();
}
