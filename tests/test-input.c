/* Tests for the AtkInput interface as the relay (AtkFirehoseSource) and Tap (AtkTapSource)
 * implement it: what the pipeline learns through the interface alone — names, flags,
 * positions and notices of decoded payloads, the ack of an unusable Tap event.
 * SPDX-License-Identifier: MIT */
#include <json-glib/json-glib.h>

#include "atk-error.h"
#include "atk-firehose-source.h"
#include "atk-message.h"
#include "atk-tap-source.h"
#include "atk-test-util.h"

static AtkInput *
new_relay (void)
{
  return ATK_INPUT (atk_firehose_source_new ("ws://127.0.0.1:9", 1 << 20, 60));
}

static void
test_relay_identity (void)
{
  g_autoptr (AtkInput) input = new_relay ();

  g_assert_cmpstr (atk_input_get_name (input), ==, "Relay");
  g_assert_cmpstr (atk_input_get_url (input), ==, "ws://127.0.0.1:9");
  g_assert_cmpint (atk_input_get_flags (input), ==, ATK_INPUT_NONE);
  g_assert_cmpint (atk_input_get_state (input), ==, ATK_SOURCE_STOPPED);
  g_assert_cmpuint (atk_input_get_reconnects (input), ==, 0);
  atk_input_ack (input, 5); /* optional for the relay: a no-op */
}

/* Every frame of the PDS capture: the position is the seq its oracle rendering shows. */
static void
test_relay_decode_positions (void)
{
  g_autoptr (AtkInput) input = new_relay ();
  g_autoptr (AtkEventTransformer) transformer = atk_event_transformer_new ();
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("pds-capture/frames.bin");
  g_autoptr (GPtrArray) oracle = atk_test_load_jsonl ("pds-capture/frames.jsonl");
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  guint with_messages = 0;

  g_assert_cmpuint (frames->len, ==, oracle->len);
  for (guint i = 0; i < frames->len; i++)
    {
      JsonObject *body = json_object_get_object_member (
          json_node_get_object (g_ptr_array_index (oracle, i)), "body");
      AtkInputEvent event = { 0 };
      g_autoptr (GError) error = NULL;

      g_ptr_array_set_size (messages, 0);
      g_assert_true (atk_input_decode (input, g_ptr_array_index (frames, i), transformer, messages,
                                       &event, &error));
      g_assert_no_error (error);
      g_assert_cmpint (event.has_position, ==, json_object_has_member (body, "seq"));
      if (event.has_position)
        g_assert_cmpint (event.position, ==, json_object_get_int_member (body, "seq"));
      g_assert_cmpint (event.notice, ==, ATK_INPUT_NOTICE_NONE);
      g_assert_false (event.unknown);
      with_messages += messages->len > 0;
      atk_input_event_clear (&event);
    }
  g_assert_cmpuint (with_messages, >, 0);
}

static void
expect_notice (const char *vector, AtkInputNotice want)
{
  g_autoptr (AtkInput) input = new_relay ();
  g_autoptr (AtkEventTransformer) transformer = atk_event_transformer_new ();
  g_autoptr (GPtrArray) frames = atk_test_load_frames (vector);
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  gboolean seen = FALSE;

  for (guint i = 0; i < frames->len; i++)
    {
      AtkInputEvent event = { 0 };

      g_assert_true (atk_input_decode (input, g_ptr_array_index (frames, i), transformer, messages,
                                       &event, NULL));
      seen |= event.notice == want;
      atk_input_event_clear (&event);
    }
  g_assert_true (seen);
}

static void
test_relay_notices (void)
{
  g_test_expect_message ("at-kafka-input", G_LOG_LEVEL_WARNING, "*OutdatedCursor*");
  expect_notice ("pds-capture/frames-info-outdated.bin", ATK_INPUT_NOTICE_OUTDATED_CURSOR);
  g_test_assert_expected_messages ();
  g_test_expect_message ("at-kafka-input", G_LOG_LEVEL_WARNING, "*FutureCursor*");
  expect_notice ("pds-capture/frames-error-futurecursor.bin", ATK_INPUT_NOTICE_FUTURE_CURSOR);
  g_test_assert_expected_messages ();
}

static void
test_relay_garbage (void)
{
  g_autoptr (AtkInput) input = new_relay ();
  g_autoptr (AtkEventTransformer) transformer = atk_event_transformer_new ();
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  g_autoptr (GBytes) garbage = g_bytes_new_static ("\xff\x00garbage", 9);
  AtkInputEvent event = { 0 };
  g_autoptr (GError) error = NULL;

  g_assert_false (atk_input_decode (input, garbage, transformer, messages, &event, &error));
  g_assert_nonnull (error);
  g_assert_false (event.has_position);
  g_assert_cmpuint (messages->len, ==, 0);
  atk_input_event_clear (&event);
}

static void
test_tap_identity_and_positions (void)
{
  g_autoptr (AtkInput) input = ATK_INPUT (atk_tap_source_new ("ws://127.0.0.1:9", 1 << 20, FALSE));
  g_autoptr (AtkEventTransformer) transformer = atk_event_transformer_new ();
  g_autoptr (GPtrArray) events = atk_test_load_tap_fixture ("session.jsonl");
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);

  g_assert_cmpstr (atk_input_get_name (input), ==, "Tap");
  g_assert_cmpint (atk_input_get_flags (input), ==, ATK_INPUT_KEEPS_PLACE);
  for (guint i = 0; i < events->len; i++)
    {
      const char *text = g_ptr_array_index (events, i);
      g_autoptr (GBytes) payload = g_bytes_new (text, strlen (text));
      g_autoptr (JsonNode) node = json_from_string (text, NULL);
      AtkInputEvent event = { 0 };
      g_autoptr (GError) error = NULL;

      g_assert_true (atk_input_decode (input, payload, transformer, messages, &event, &error));
      g_assert_no_error (error);
      g_assert_true (event.has_position);
      g_assert_cmpint (event.position, ==,
                       json_object_get_int_member (json_node_get_object (node), "id"));
      atk_input_event_clear (&event);
    }
  g_assert_cmpuint (messages->len, >, 0);
}

/* An unusable event with a readable id is acked by the input itself (else Tap sends it
 * forever); while disconnected the ack waits in the queue. */
static void
test_tap_unusable_event_acked (void)
{
  g_autoptr (AtkTapSource) tap = atk_tap_source_new ("ws://127.0.0.1:9", 1 << 20, FALSE);
  AtkInput *input = ATK_INPUT (tap);
  g_autoptr (AtkEventTransformer) transformer = atk_event_transformer_new ();
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  g_autoptr (GBytes) unknown = g_bytes_new_static ("{\"id\":7,\"type\":\"bogus\"}", 23);
  g_autoptr (GBytes) broken = g_bytes_new_static ("{\"type\":", 8);
  AtkInputEvent event = { 0 };
  g_autoptr (GError) error = NULL;
  guint queued = 0;

  g_assert_false (atk_input_decode (input, unknown, transformer, messages, &event, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_UNSUPPORTED);
  g_assert_true (event.unknown);
  g_assert_true (event.has_position);
  g_assert_cmpint (event.position, ==, 7);
  atk_tap_source_get_ack_counts (tap, NULL, NULL, &queued);
  g_assert_cmpuint (queued, ==, 1);
  atk_input_event_clear (&event);
  g_clear_error (&error);

  g_assert_false (atk_input_decode (input, broken, transformer, messages, &event, &error));
  g_assert_nonnull (error);
  g_assert_false (event.unknown);
  g_assert_false (event.has_position);
  atk_tap_source_get_ack_counts (tap, NULL, NULL, &queued);
  g_assert_cmpuint (queued, ==, 1);
  atk_input_event_clear (&event);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/input/relay/identity", test_relay_identity);
  g_test_add_func ("/input/relay/decode-positions", test_relay_decode_positions);
  g_test_add_func ("/input/relay/notices", test_relay_notices);
  g_test_add_func ("/input/relay/garbage", test_relay_garbage);
  g_test_add_func ("/input/tap/identity-and-positions", test_tap_identity_and_positions);
  g_test_add_func ("/input/tap/unusable-event-acked", test_tap_unusable_event_acked);
  return g_test_run ();
}
