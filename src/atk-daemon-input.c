/* at-kafka: the daemon's input side. The source (a relay, or Tap) runs only while
 * nothing holds it back (backpressure, operator pause, no open transaction); a rewind
 * takes it back to the durable cursor. Relay frames or Tap events become messages, pass
 * through the metadata stage when it is on, and go to the sink in order; every message is settled
 * once: in the cursor tracker (relay mode) or in the ack table (Tap mode, which acks an event id
 * once all its messages are in Kafka).
 *
 * With the metadata stage, a frame's seq enters the tracker with its message count before
 * its messages are pushed (they may come back at once, or much later); a message the
 * service filters drop is settled like a delivered one.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-daemon-private.h"

#include "atk-error.h"
#include "atk-tap-event.h"

/* Skipped frames and events: at most one log line per kind in this interval. */
#define SKIP_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)

/* ---- source ------------------------------------------------------------------------ */

static void
on_source_state_changed (GObject *source, AtkSourceState state, AtkDaemon *self)
{
  self->stats.source_state = atk_source_state_name (state);
}

/* ---- the input: a relay or Tap ------------------------------------------------------ */

AtkSourceState
atk_daemon_input_state (AtkDaemon *self)
{
  if (self->tap != NULL)
    return atk_tap_source_get_state (self->tap);
  return atk_firehose_source_get_state (self->source);
}

static void
input_start (AtkDaemon *self)
{
  if (self->tap != NULL)
    atk_tap_source_start (self->tap);
  else
    atk_firehose_source_start (self->source);
}

void
atk_daemon_input_stop (AtkDaemon *self)
{
  if (self->tap != NULL)
    atk_tap_source_stop (self->tap);
  else
    atk_firehose_source_stop (self->source);
}

void
atk_daemon_input_reconnect (AtkDaemon *self)
{
  if (self->tap != NULL)
    atk_tap_source_reconnect (self->tap);
  else
    atk_firehose_source_reconnect (self->source);
}

/* ---- backpressure and pausing ------------------------------------------------------ */

/* Kafka's in-flight bounds, and the metadata stage's backlog (bounded by the same message
 * count): above them the input stops; below a divisor-th of them it may run again. */
static gboolean
over_bound (AtkDaemon *self, guint divisor)
{
  guint max_messages = self->config->max_in_flight_messages / divisor;

  return atk_kafka_sink_get_in_flight (self->sink) >= max_messages
         || atk_kafka_sink_get_in_flight_bytes (self->sink)
                >= self->config->max_in_flight_bytes / divisor
         || (self->stage != NULL && atk_metadata_stage_get_backlog (self->stage) >= max_messages);
}

void
atk_daemon_update_source_running (AtkDaemon *self)
{
  gboolean want = self->started && atk_kafka_sink_is_ready (self->sink) && !self->fatal
                  && (self->txn == NULL || atk_transaction_driver_is_open (self->txn))
                  && !self->paused_by_operator && !self->paused_by_backpressure;
  gboolean running = atk_daemon_input_state (self) != ATK_SOURCE_STOPPED;

  self->stats.paused = self->paused_by_operator || self->paused_by_backpressure;
  if (want && !running)
    input_start (self);
  else if (!want && running)
    atk_daemon_input_stop (self);
}

void
atk_daemon_check_backpressure (AtkDaemon *self)
{
  if (!self->paused_by_backpressure && over_bound (self, 1))
    {
      self->paused_by_backpressure = TRUE;
      self->stats.backpressure_drops++;
      g_message ("Kafka is behind (%u messages, %" G_GUINT64_FORMAT " bytes in flight, %u "
                 "waiting for metadata): closing the input connection until it catches up",
                 atk_kafka_sink_get_in_flight (self->sink),
                 atk_kafka_sink_get_in_flight_bytes (self->sink),
                 self->stage != NULL ? atk_metadata_stage_get_backlog (self->stage) : 0);
      atk_daemon_update_source_running (self);
    }
  else if (self->paused_by_backpressure && !over_bound (self, 2))
    {
      self->paused_by_backpressure = FALSE;
      g_message ("Kafka caught up: reconnecting");
      atk_daemon_update_source_running (self);
    }
}

/* ---- rewinding ------------------------------------------------------------------------ */

/* Produces everything after the durable cursor again: forgets what is pending and asks the
 * relay from there. Messages still in flight may then land twice (at-least-once). */
void
atk_daemon_rewind (AtkDaemon *self, const char *why)
{
  gint64 cursor = 0;
  gboolean has_cursor = atk_daemon_durable_cursor (self, &cursor);

  /* Started at the live tip and nothing durable yet: back to just before the first seq we
   * took, not to the live tip again (which would skip everything in between). */
  if (!has_cursor && self->has_first_seq)
    {
      has_cursor = TRUE;
      cursor = self->first_seq - 1;
    }
  g_warning ("%s: producing again from after seq %" G_GINT64_FORMAT, why, has_cursor ? cursor : -1);
  if (self->stage != NULL)
    atk_metadata_stage_clear (self->stage);
  atk_cursor_tracker_reset (self->tracker, has_cursor, cursor);
  atk_firehose_source_set_cursor (self->source, has_cursor, cursor);
  atk_firehose_source_reconnect (self->source);
}

static gboolean
on_rewind (gpointer user_data)
{
  AtkDaemon *self = user_data;

  self->rewind_id = 0;
  if (!self->fatal)
    atk_daemon_rewind (self, "Messages did not reach Kafka");
  return G_SOURCE_REMOVE;
}

/* Failures come in bursts: one rewind for all of them, once the burst is handled. */
void
atk_daemon_schedule_rewind (AtkDaemon *self)
{
  if (self->rewind_id == 0)
    self->rewind_id = g_idle_add (on_rewind, self);
}

static void
connect_input (AtkDaemon *self, gpointer source)
{
  g_signal_connect (source, "state-changed", G_CALLBACK (on_source_state_changed), self);
  /* "connection-error" needs no handler: the source logs each failure itself, with its
   * structured fields (RELAY, CURSOR). */
}

/* Tap keeps its own place: it delivers again whatever we did not ack. */
static void
build_tap_source (AtkDaemon *self)
{
  self->tap = atk_tap_source_new (self->config->tap_host, self->config->max_frame_bytes,
                                  self->config->disable_acks);
  self->acks = atk_ack_table_new ();
  g_signal_connect (self->tap, "event", G_CALLBACK (atk_daemon_on_tap_event), self);
  connect_input (self, self->tap);
}

gboolean
atk_daemon_build_input (AtkDaemon *self, GError **error)
{
  gboolean has_cursor;
  gint64 cursor = 0;

  if (self->config->tap_host != NULL)
    {
      build_tap_source (self);
      return TRUE;
    }
  if (!atk_cursor_keeper_load_start (self->keeper, self->config->transactional_id != NULL,
                                     &has_cursor, &cursor, error))
    return FALSE;
  atk_cursor_tracker_reset (self->tracker, has_cursor, cursor);
  self->source = atk_firehose_source_new (self->config->relay_host, self->config->max_frame_bytes,
                                          self->config->idle_timeout_s);
  atk_firehose_source_set_cursor (self->source, has_cursor, cursor);
  g_signal_connect (self->source, "frame", G_CALLBACK (atk_daemon_on_frame), self);
  connect_input (self, self->source);
  return TRUE;
}

/* The metadata stage, when event metadata or a service filter asks for DID lookups. */
gboolean
atk_daemon_build_stage (AtkDaemon *self, GError **error)
{
  const AtkConfig *config = self->config;
  g_autoptr (AtkDidResolver) resolver = NULL;
  g_autoptr (AtkMetadataStage) stage = NULL;

  if (config->plc_host == NULL)
    return TRUE;
  resolver = atk_did_resolver_new (config->plc_host, config->api_host, error);
  if (resolver == NULL)
    return FALSE;
  atk_did_resolver_set_fetch_details (resolver, config->event_metadata);
  stage = atk_metadata_stage_new (resolver);
  if (!atk_metadata_stage_set_service_filter (stage, (const char *const *)config->watched_services,
                                              (const char *const *)config->ignored_services, error)
      || !atk_metadata_stage_set_event_metadata (stage, config->event_metadata, error))
    return FALSE;
  if (!atk_metadata_stage_is_active (stage))
    return TRUE;
  atk_metadata_stage_set_max_backlog (stage, config->max_in_flight_messages);
  g_signal_connect (stage, "message-ready", G_CALLBACK (atk_daemon_on_stage_ready), self);
  g_signal_connect (stage, "message-filtered", G_CALLBACK (atk_daemon_on_stage_filtered), self);
  self->stage = g_steal_pointer (&stage);
  return TRUE;
}

/* ---- settling and producing ------------------------------------------------------- */

void
atk_daemon_settle (AtkDaemon *self, gboolean has_seq, gint64 seq, gboolean ok)
{
  if (!has_seq)
    return;
  if (self->acks == NULL)
    {
      atk_cursor_tracker_ack (self->tracker, seq);
      return;
    }
  if (atk_ack_table_settle (self->acks, (guint64)seq, ok))
    atk_tap_source_ack (self->tap, (guint64)seq);
}

/* Refused at once. Too large: settled for good, so it must not hold the cursor back.
 * Anything else (a full queue, a transaction in the wrong state) says nothing about the
 * message: FALSE, and the frame is produced again after a rewind. In Tap mode nothing
 * rewinds: the event is not acked, and Tap delivers it again. */
static gboolean
refused (AtkDaemon *self, gboolean has_seq, gint64 seq, const char *did, const GError *error)
{
  gboolean for_good = g_error_matches (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);

  self->stats.produced_error += for_good;
  g_autofree char *seq_text = g_strdup_printf ("%" G_GINT64_FORMAT, seq);

  /* Journal fields are plain strings: only MESSAGE is a format. */
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "SEQ", seq_text, "DID", did, "MESSAGE",
                    "Message of seq %" G_GINT64_FORMAT " (%s) %s: %s", seq, did,
                    for_good ? "skipped" : "not produced yet", error->message);
  if (for_good || self->tap != NULL)
    atk_daemon_settle (self, has_seq, seq, FALSE);
  return for_good || self->tap != NULL;
}

/* Takes message; FALSE when the caller has to rewind. */
static gboolean
produce_one (AtkDaemon *self, AtkMessage *message)
{
  gboolean has_seq = message->has_seq;
  gint64 seq = message->seq;
  g_autofree char *did = g_strdup (message->key);
  g_autoptr (GError) error = NULL;

  atk_stats_count_handled (&self->stats, message->action_name, message->collection);
  if (!atk_kafka_sink_produce (self->sink, message, &error))
    return refused (self, has_seq, seq, did, error);
  if (self->txn != NULL)
    atk_transaction_driver_count_message (self->txn);
  return TRUE;
}

static void
produce_messages (AtkDaemon *self)
{
  gsize n = 0;
  /* In order: the ops of one commit must reach their partition as the commit lists them. */
  g_autofree gpointer *messages = g_ptr_array_steal (self->messages, &n);
  gsize i;

  for (i = 0; i < n; i++)
    if (!produce_one (self, messages[i]))
      break;
  if (i == n)
    return;
  /* The rest of the frame waits for the rewind: producing it now would put a later op of
   * a DID before an earlier one. */
  for (i++; i < n; i++)
    atk_message_free (messages[i]);
  atk_daemon_schedule_rewind (self);
}

/* The scratch array's messages go to the sink, or through the metadata stage. */
static void
hand_over (AtkDaemon *self)
{
  gsize n = 0;
  g_autofree gpointer *messages = NULL;

  if (self->stage == NULL)
    {
      produce_messages (self);
      return;
    }
  messages = g_ptr_array_steal (self->messages, &n);
  for (gsize i = 0; i < n; i++)
    atk_metadata_stage_push (self->stage, messages[i]);
}

/* The stage lends its messages to its handlers: move the contents into one of our own. */
static AtkMessage *
take_message (AtkMessage *borrowed)
{
  AtkMessage *message = g_new (AtkMessage, 1);

  *message = *borrowed;
  borrowed->key = NULL;
  borrowed->collection = NULL;
  borrowed->value = g_string_new (NULL);
  return message;
}

void
atk_daemon_on_stage_ready (AtkMetadataStage *stage, AtkMessage *message, AtkDaemon *self)
{
  /* A rewind is due: it clears the stage and produces this message again, in order. */
  if (self->rewind_id != 0)
    return;
  if (!produce_one (self, take_message (message)))
    atk_daemon_schedule_rewind (self);
  atk_daemon_check_backpressure (self);
}

void
atk_daemon_on_stage_filtered (AtkMetadataStage *stage, AtkMessage *message, AtkDaemon *self)
{
  self->stats.filtered_ops++;
  atk_daemon_settle (self, message->has_seq, message->seq, TRUE);
  if (self->paused_by_backpressure)
    atk_daemon_check_backpressure (self);
}

static void
note_event_time (AtkDaemon *self)
{
  if (self->messages->len > 0)
    self->stats.last_event_time_ms
        = ((AtkMessage *)g_ptr_array_index (self->messages, 0))->event_time_ms;
}

/* ---- relay frames ------------------------------------------------------------------ */

/* After an OutdatedCursor, the first seq shows how much the relay no longer had. */
static void
log_outdated_gap (AtkDaemon *self, const AtkFrame *frame)
{
  if (!self->outdated_pending || !frame->has_seq)
    return;
  self->outdated_pending = FALSE;
  if (frame->seq > self->outdated_after + 1)
    g_warning ("Relay resumed at seq %" G_GINT64_FORMAT " after our cursor %" G_GINT64_FORMAT
               ": up to %" G_GINT64_FORMAT " events are missing",
               frame->seq, self->outdated_after, frame->seq - self->outdated_after - 1);
}

static void
handle_control_frame (AtkDaemon *self, const AtkFrame *frame)
{
  g_autofree char *name = g_strndup (frame->name.ptr, frame->name.len);
  g_autofree char *message = g_strndup (frame->message.ptr, frame->message.len);

  if (frame->kind == ATK_EVENT_INFO)
    {
      if (g_strcmp0 (name, "OutdatedCursor") == 0)
        {
          self->stats.outdated_cursor_infos++;
          self->outdated_pending
              = atk_cursor_tracker_get_last_added (self->tracker, &self->outdated_after);
          g_warning ("The relay no longer has events after our cursor (OutdatedCursor: %s): "
                     "events between the cursor and the relay's oldest are lost to us",
                     message);
        }
      else
        g_message ("Relay info %s: %s", name, message);
      return;
    }

  self->stats.error_frames++;
  if (g_strcmp0 (name, "FutureCursor") == 0)
    {
      g_warning (
          "The relay says our cursor is in its future (FutureCursor: %s): falling back to the live "
          "tip; check that --relay-host is the relay the cursor came from",
          message);
      atk_firehose_source_set_cursor (self->source, FALSE, 0);
      atk_cursor_tracker_reset (self->tracker, FALSE, 0);
      self->has_first_seq = FALSE;
    }
  else if (g_strcmp0 (name, "ConsumerTooSlow") == 0)
    {
      /* The relay drops us anyway; resuming from the last handed-over seq loses nothing. */
      g_warning ("The relay says we are too slow (ConsumerTooSlow: %s): reconnecting", message);
      atk_firehose_source_reconnect (self->source);
    }
  else
    g_warning ("Relay error frame %s: %s", name, message);
}

static void
count_op_errors (AtkDaemon *self, const AtkTransformResult *result)
{
  g_autofree char *did = NULL;
  g_autofree char *seq_text = NULL;

  if (result->n_op_errors == 0)
    return;
  for (guint i = 0; i < result->n_op_errors; i++)
    atk_stats_count_decode_error (&self->stats, atk_error_kind_name (result->op_error));
  did = g_strndup (result->frame->did.ptr, result->frame->did.len);
  seq_text = g_strdup_printf ("%" G_GINT64_FORMAT, result->frame->seq);
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "SEQ", seq_text, "DID", did, "MESSAGE",
                    "seq %" G_GINT64_FORMAT " (%s): %u operation(s) skipped: %s",
                    result->frame->seq, did, result->n_op_errors, result->op_error->message);
}

/* A seq taken already (a reconnect replayed it; its messages are in flight), or one too far
 * past the last (a hostile or broken relay: taking it would move the cursor past everything
 * in between): dropped, counted and logged at most once per interval. */
static gboolean
frame_seq_wanted (AtkDaemon *self, gint64 seq)
{
  gint64 last = 0;
  gboolean has_last = atk_cursor_tracker_get_last_added (self->tracker, &last);
  guint64 held = 0;

  switch (atk_seq_check (has_last, last, seq, self->config->max_seq_jump, self->outdated_pending))
    {
    case ATK_SEQ_SEEN:
      self->stats.seen_frames++;
      if (atk_log_limit_allow (&self->seen_log, g_get_monotonic_time (), SKIP_LOG_INTERVAL_US,
                               &held))
        g_message ("Frame of seq %" G_GINT64_FORMAT " dropped: seq %" G_GINT64_FORMAT
                   " was taken already (%" G_GUINT64_FORMAT " more such frames since the last "
                   "line)",
                   seq, last, held);
      return FALSE;
    case ATK_SEQ_TOO_FAR:
      atk_stats_count_decode_error (&self->stats, "bad_frame");
      if (atk_log_limit_allow (&self->jump_log, g_get_monotonic_time (), SKIP_LOG_INTERVAL_US,
                               &held))
        g_warning ("Frame of seq %" G_GINT64_FORMAT " skipped as bad: %" G_GINT64_FORMAT
                   " past the last seq %" G_GINT64_FORMAT
                   ", more than --max-seq-jump %" G_GINT64_FORMAT " (%" G_GUINT64_FORMAT
                   " more such frames since the last line)",
                   seq, seq - last, last, self->config->max_seq_jump, held);
      return FALSE;
    case ATK_SEQ_NEW:
    default:
      return TRUE;
    }
}

void
atk_daemon_on_frame (AtkFirehoseSource *source, GBytes *bytes, AtkDaemon *self)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  AtkTransformResult result = { 0 };
  g_autoptr (GError) error = NULL;
  const AtkFrame *frame;
  gint64 last_added;

  /* A rewind is due: whatever arrives before it would be produced out of order. */
  if (self->rewind_id != 0)
    return;
  self->stats.frames_received++;
  self->stats.bytes_received += len;
  if (!atk_event_transformer_transform (self->transformer, data, len, g_get_real_time (),
                                        self->messages, &result, &error))
    {
      atk_stats_count_decode_error (&self->stats, atk_error_kind_name (error));
      g_message ("Frame of %" G_GSIZE_FORMAT " bytes skipped: %s", len, error->message);
      atk_transform_result_clear (&result);
      return;
    }
  frame = result.frame;
  if (frame->has_seq && !frame_seq_wanted (self, frame->seq))
    {
      g_ptr_array_set_size (self->messages, 0);
      atk_transform_result_clear (&result);
      return;
    }
  log_outdated_gap (self, frame);
  if (frame->has_seq)
    {
      self->stats.has_last_seq = TRUE;
      self->stats.last_seq = frame->seq;
    }
  if (frame->kind == ATK_EVENT_UNKNOWN)
    self->stats.unknown_events++;
  else if (frame->kind == ATK_EVENT_ERROR || frame->kind == ATK_EVENT_INFO)
    handle_control_frame (self, frame);
  self->stats.filtered_ops += result.n_filtered;
  count_op_errors (self, &result);
  note_event_time (self);

  /* Before the hand-over: the stage may give messages back (and settle them) at once. */
  if (frame->has_seq)
    {
      if (!self->has_first_seq && !atk_cursor_tracker_get_last_added (self->tracker, &last_added))
        {
          self->has_first_seq = TRUE;
          self->first_seq = frame->seq;
        }
      atk_cursor_tracker_add (self->tracker, frame->seq, self->messages->len);
      atk_firehose_source_set_cursor (self->source, TRUE, frame->seq);
    }
  hand_over (self);
  atk_transform_result_clear (&result);
  atk_daemon_check_backpressure (self);
}

/* ---- Tap events -------------------------------------------------------------------- */

static gboolean
tap_collection_wanted (const char *collection, gpointer user_data)
{
  return atk_event_transformer_collection_wanted (user_data, collection);
}

/* An event we cannot use would come back forever: ack it when its id is readable. */
static void
tap_event_failed (AtkDaemon *self, const char *text, gsize len, const GError *error)
{
  guint64 id = 0;
  gboolean has_id = atk_tap_event_peek_id (text, len, &id);
  guint64 held = 0;

  if (g_error_matches (error, ATK_ERROR, ATK_ERROR_UNSUPPORTED))
    self->stats.unknown_events++;
  else
    atk_stats_count_decode_error (&self->stats, atk_error_kind_name (error));
  if (atk_log_limit_allow (&self->tap_log, g_get_monotonic_time (), SKIP_LOG_INTERVAL_US, &held))
    g_message ("Tap event %s%" G_GUINT64_FORMAT " (%" G_GSIZE_FORMAT
               " bytes) skipped%s: %s (%" G_GUINT64_FORMAT " more skipped since the last line)",
               has_id ? "" : "without a readable id ", has_id ? id : 0, len,
               has_id ? " and acked" : "", error->message, held);
  if (has_id)
    atk_tap_source_ack (self->tap, id);
}

void
atk_daemon_on_tap_event (AtkTapSource *source, GBytes *text, AtkDaemon *self)
{
  gsize len;
  const char *data = g_bytes_get_data (text, &len);
  AtkTapEventOptions options = {
    .osprey = atk_event_transformer_get_osprey_compatible (self->transformer),
    .filter = tap_collection_wanted,
    .filter_data = self->transformer,
  };
  AtkTapEventResult result = { 0 };
  g_autoptr (GError) error = NULL;

  self->stats.frames_received++;
  self->stats.bytes_received += len;
  if (!atk_tap_event_transform (data, len, &options, g_get_real_time (), self->messages, &result,
                                &error))
    {
      tap_event_failed (self, data, len, error);
      return;
    }
  self->stats.filtered_ops += result.filtered;
  self->stats.has_last_seq = TRUE;
  self->stats.last_seq = (gint64)result.id;
  note_event_time (self);
  /* Before the hand-over, as in relay mode; an event without messages is done now. */
  if (atk_ack_table_add (self->acks, result.id, self->messages->len))
    atk_tap_source_ack (self->tap, result.id);
  hand_over (self);
  atk_daemon_check_backpressure (self);
}
