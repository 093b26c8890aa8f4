/* The cursor record kept in Kafka: its format (checked with json-glib, not with our parser),
 * the parser's strictness, and that reading it from an unreachable broker fails within its
 * time bound instead of hanging the start.
 * SPDX-License-Identifier: MIT */
#include <json-glib/json-glib.h>

#include "atk-error.h"
#include "atk-kafka-cursor.h"
#include "atk-test-util.h"

static void
test_topic_name (void)
{
  g_autofree char *name = atk_kafka_cursor_topic_for ("atproto-events");

  g_assert_cmpstr (name, ==, "atproto-events.cursor");
}

static void
test_format (void)
{
  /* 2024-01-01T12:00:00.123456Z */
  g_autofree char *value = atk_kafka_cursor_format (G_GINT64_CONSTANT (31527015471),
                                                    G_GINT64_CONSTANT (1704110400123456));
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *object;

  g_assert_true (json_parser_load_from_data (parser, value, -1, &error));
  g_assert_no_error (error);
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpint (json_object_get_size (object), ==, 2);
  g_assert_cmpint (json_object_get_int_member (object, "seq"), ==, G_GINT64_CONSTANT (31527015471));
  g_assert_cmpstr (json_object_get_string_member (object, "updated"), ==,
                   "2024-01-01T12:00:00.123Z");
}

static void
test_parse_round_trip (void)
{
  const gint64 seqs[] = { 0, 1, G_GINT64_CONSTANT (31527015471), ATK_KAFKA_CURSOR_MAX_SEQ };

  for (gsize i = 0; i < G_N_ELEMENTS (seqs); i++)
    {
      g_autofree char *value = atk_kafka_cursor_format (seqs[i], g_get_real_time ());
      g_autoptr (GError) error = NULL;
      gint64 seq = -1;

      g_assert_true (atk_kafka_cursor_parse (value, strlen (value), &seq, &error));
      g_assert_no_error (error);
      g_assert_cmpint (seq, ==, seqs[i]);
    }
}

static void
test_parse_by_hand (void)
{
  /* What an operator might write with kcat to reset the cursor. */
  const char *value = "{ \"seq\" : 42 }";
  gint64 seq = -1;

  g_assert_true (atk_kafka_cursor_parse (value, strlen (value), &seq, NULL));
  g_assert_cmpint (seq, ==, 42);
}

static void
test_parse_rejects (void)
{
  const char *const bad[] = {
    "",
    "{}",
    "42",
    "{\"seq\":\"42\"}",
    "{\"seq\":-1}",
    "{\"seq\":12x}",
    "{\"sequence\":1}",
    "{\"seq\":}",
    "{\"seq\":99999999999999999999}",
    "{\"seq\":9007199254740993}",
    "{\"seq\":9223372036854775806}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      gint64 seq = -7;

      g_assert_false (atk_kafka_cursor_parse (bad[i], strlen (bad[i]), &seq, &error));
      g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
      g_assert_cmpint (seq, ==, -7);
    }
}

/* Nothing listens on port 1: the start must go on (with the state file) within the bound. */
static void
test_load_unreachable (void)
{
  g_autoptr (GError) error = NULL;
  gboolean found = TRUE;
  gint64 seq = -7;
  gint64 t0 = g_get_monotonic_time ();
  gint64 elapsed_ms;

  g_assert_false (
      atk_kafka_cursor_load ("127.0.0.1:1", NULL, "t.cursor", "t", 1500, &found, &seq, &error));
  elapsed_ms = (g_get_monotonic_time () - t0) / 1000;
  g_assert_error (error, ATK_ERROR, ATK_ERROR_KAFKA);
  g_assert_false (found);
  g_assert_cmpint (seq, ==, -7);
  g_assert_cmpint (elapsed_ms, <, 1500 + 3000);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/kafka-cursor/topic-name", test_topic_name);
  g_test_add_func ("/kafka-cursor/format", test_format);
  g_test_add_func ("/kafka-cursor/parse-round-trip", test_parse_round_trip);
  g_test_add_func ("/kafka-cursor/parse-by-hand", test_parse_by_hand);
  g_test_add_func ("/kafka-cursor/parse-rejects", test_parse_rejects);
  g_test_add_func ("/kafka-cursor/load-unreachable", test_load_unreachable);
  return g_test_run ();
}
