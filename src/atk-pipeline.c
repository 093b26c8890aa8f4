/* at-kafka: the pipeline, the daemon's input side (see atk-pipeline.h).
 *
 * Settling (atk-ledger.c): each event enters the ledger with its message count before the
 * messages are handed over (the metadata stage may give them back at once, or much later);
 * each message is settled once, when the sink reports it. A message a service filter drops
 * is settled like a delivered one.
 *
 * Rewinds (atk-pipeline-rewind.c): a message that did not reach Kafka for a reason that says
 * nothing about it is produced again, from the durable cursor the daemon answers with.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-pipeline.h"
#include "atk-pipeline-private.h"

#include "atk-error.h"
#include "atk-ledger.h"
#include "atk-log.h"
#include "atk-metadata-stage.h"
#include "atk-payload-report.h"
#include "atk-pipeline-parts.h"

G_DEFINE_FINAL_TYPE (AtkPipeline, atk_pipeline, G_TYPE_OBJECT)

enum
{
  SIGNAL_NEED_REWIND,
  SIGNAL_ANCHOR,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void check_backpressure (AtkPipeline *self);

/* ---- running the input ----------------------------------------------------------- */

static void
update_running (AtkPipeline *self)
{
  gboolean want = self->allowed && !self->halted && !self->paused_by_operator
                  && !self->paused_by_backpressure;
  gboolean running = atk_input_get_state (self->input) != ATK_SOURCE_STOPPED;

  self->stats->paused = self->paused_by_operator || self->paused_by_backpressure;
  if (want && !running)
    atk_input_start (self->input);
  else if (!want && running)
    atk_input_stop (self->input);
}

void
atk_pipeline_set_allowed (AtkPipeline *self, gboolean allowed)
{
  g_return_if_fail (ATK_IS_PIPELINE (self));
  self->allowed = allowed;
  update_running (self);
}

void
atk_pipeline_set_paused (AtkPipeline *self, gboolean paused)
{
  g_return_if_fail (ATK_IS_PIPELINE (self));
  self->paused_by_operator = paused;
  update_running (self);
}

void
atk_pipeline_halt (AtkPipeline *self)
{
  g_return_if_fail (ATK_IS_PIPELINE (self));
  self->halted = TRUE;
  update_running (self);
}

void
atk_pipeline_reconnect (AtkPipeline *self)
{
  g_return_if_fail (ATK_IS_PIPELINE (self));
  if (atk_input_get_state (self->input) != ATK_SOURCE_STOPPED)
    atk_input_reconnect (self->input);
}

/* Kafka's in-flight bounds, and the metadata stage's backlog (bounded by the same message
 * count): above them the input stops; below a divisor-th of them it may run again. */
static gboolean
over_bound (AtkPipeline *self, guint divisor)
{
  guint max_messages = self->config->max_in_flight_messages / divisor;

  return atk_kafka_sink_get_in_flight (self->sink) >= max_messages
         || atk_kafka_sink_get_in_flight_bytes (self->sink)
                >= self->config->max_in_flight_bytes / divisor
         || (self->stage != NULL && atk_metadata_stage_get_backlog (self->stage) >= max_messages);
}

static void
check_backpressure (AtkPipeline *self)
{
  if (!self->paused_by_backpressure && over_bound (self, 1))
    {
      self->paused_by_backpressure = TRUE;
      self->stats->backpressure_drops++;
      g_message ("Kafka is behind (%u messages, %" G_GUINT64_FORMAT " bytes in flight, %u "
                 "waiting for metadata): closing the input connection until it catches up",
                 atk_kafka_sink_get_in_flight (self->sink),
                 atk_kafka_sink_get_in_flight_bytes (self->sink),
                 self->stage != NULL ? atk_metadata_stage_get_backlog (self->stage) : 0);
      update_running (self);
    }
  else if (self->paused_by_backpressure && !over_bound (self, 2))
    {
      self->paused_by_backpressure = FALSE;
      g_message ("Kafka caught up: reconnecting");
      update_running (self);
    }
}

/* ---- settling and producing ------------------------------------------------------- */

/* A message left librdkafka (also one "released" from before a rewind). */
void
atk_pipeline_recheck_backpressure (AtkPipeline *self)
{
  if (self->paused_by_backpressure)
    check_backpressure (self);
}

/* The sink's delivery function: once per message. */
static void
on_delivered (gpointer user_data, gint64 seq, gboolean has_seq, gboolean ok,
              const char *error_message, gdouble latency)
{
  AtkPipeline *self = user_data;

  if (ok)
    self->stats->produced_ok++;
  else
    {
      self->stats->produced_error++;
      atk_log_event (G_LOG_LEVEL_WARNING, &self->refused_lines, has_seq, seq, NULL,
                     "Kafka refused a message of seq %" G_GINT64_FORMAT " for good: %s", seq,
                     error_message);
    }
  atk_stats_observe_latency (self->stats, latency);
  atk_ledger_settle (self->ledger, has_seq, seq, ok);
  atk_pipeline_count_report (self);
  atk_pipeline_recheck_backpressure (self);
}

static void
on_released (AtkKafkaSink *sink, AtkPipeline *self)
{
  atk_pipeline_count_report (self);
  atk_pipeline_recheck_backpressure (self);
}

static void
on_undelivered (AtkKafkaSink *sink, gint64 seq, gboolean has_seq, const char *error_message,
                AtkPipeline *self)
{
  atk_log_event (G_LOG_LEVEL_DEBUG, &self->refused_lines, has_seq, seq, NULL,
                 "Message of seq %" G_GINT64_FORMAT " not delivered: %s", seq, error_message);
  /* The peer delivers the event again since it is not acked. */
  if (self->keeps_place)
    {
      atk_ledger_settle (self->ledger, has_seq, seq, FALSE);
      return;
    }
  /* With transactions the commit reports it and aborts; a fatal error ends it all. */
  if (self->txn == NULL && !self->halted)
    atk_pipeline_schedule_rewind (self);
  atk_pipeline_count_report (self);
  atk_pipeline_recheck_backpressure (self);
}

/* Refused at once. Too large: settled for good, so it must not hold the cursor back.
 * Anything else (a full queue, a transaction in the wrong state) says nothing about the
 * message: FALSE, and the payload is produced again after a rewind — or, from an input that
 * keeps its place, not acked, so that the peer delivers it again. */
static gboolean
refused (AtkPipeline *self, gboolean has_seq, gint64 seq, const char *did, const GError *error)
{
  gboolean for_good = g_error_matches (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);

  self->stats->produced_error += for_good;
  atk_log_event (G_LOG_LEVEL_WARNING, &self->refused_lines, has_seq, seq, did,
                 "Message of seq %" G_GINT64_FORMAT " (%s) %s: %s", seq, did,
                 for_good ? "skipped" : "not produced yet", error->message);
  if (for_good || self->keeps_place)
    atk_ledger_settle (self->ledger, has_seq, seq, FALSE);
  return for_good || self->keeps_place;
}

/* Takes message; FALSE when the caller has to rewind. */
static gboolean
produce_one (AtkPipeline *self, AtkMessage *message)
{
  gboolean has_seq = message->has_seq;
  gint64 seq = message->seq;
  g_autofree char *did = g_strdup (message->key);
  g_autoptr (GError) error = NULL;

  atk_stats_count_handled (self->stats, message->action_name, message->collection);
  if (!atk_kafka_sink_produce (self->sink, message, &error))
    return refused (self, has_seq, seq, did, error);
  if (self->txn != NULL)
    atk_transaction_driver_count_message (self->txn);
  return TRUE;
}

static void
produce_messages (AtkPipeline *self)
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
  /* The rest of the payload waits for the rewind: producing it now would put a later op of
   * a DID before an earlier one. */
  for (i++; i < n; i++)
    atk_message_free (messages[i]);
  atk_pipeline_schedule_rewind (self);
}

/* The scratch array's messages go to the sink, or through the metadata stage. */
static void
hand_over (AtkPipeline *self)
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

static void
on_stage_ready (AtkMetadataStage *stage, AtkMessage *message, AtkPipeline *self)
{
  /* A rewind is due: it clears the stage and produces this message again, in order. */
  if (self->rewind_id != 0)
    return;
  if (!produce_one (self, take_message (message)))
    atk_pipeline_schedule_rewind (self);
  check_backpressure (self);
}

static void
on_stage_filtered (AtkMetadataStage *stage, AtkMessage *message, AtkPipeline *self)
{
  self->stats->filtered_ops++;
  atk_ledger_settle (self->ledger, message->has_seq, message->seq, TRUE);
  atk_pipeline_recheck_backpressure (self);
}

/* ---- payloads ---------------------------------------------------------------------- */

/* The first seq of a start at the live tip, when an "anchor" handler (a group's leader) must
 * first make "just before it" durable: FALSE when it could not, and nothing of the payload
 * may be produced. */
static gboolean
anchored (AtkPipeline *self, const AtkInputEvent *event)
{
  gboolean ok = TRUE;
  gint64 seq;

  if (!event->has_position || atk_ledger_get_cursor (self->ledger, &seq)
      || atk_ledger_get_last_added (self->ledger, &seq)
      || !g_signal_has_handler_pending (self, signals[SIGNAL_ANCHOR], 0, TRUE))
    return TRUE;
  g_signal_emit (self, signals[SIGNAL_ANCHOR], 0, event->position - 1, &ok);
  return ok;
}

/* The input's payload function: once per frame. */
static void
on_payload (gpointer user_data, GBytes *payload)
{
  AtkPipeline *self = user_data;
  AtkInput *input = self->input;
  AtkInputEvent event = { 0 };
  g_autoptr (GError) error = NULL;
  gsize len = g_bytes_get_size (payload);
  gint64 received_us;

  /* A rewind is due: whatever arrives before it would be produced out of order. */
  if (self->rewind_id != 0)
    return;
  self->stats->frames_received++;
  self->stats->bytes_received += len;
  if (!atk_input_decode (input, payload, self->transformer, self->messages, &event, &error))
    {
      atk_payload_report_skipped (self->stats, &self->skipped_lines,
                                  atk_input_get_name (self->input), self->keeps_place, len, &event,
                                  error);
      g_ptr_array_set_size (self->messages, 0);
      atk_input_event_clear (&event);
      return;
    }
  if (!atk_ledger_accept (self->ledger, &event))
    {
      g_ptr_array_set_size (self->messages, 0);
      atk_input_event_clear (&event);
      return;
    }
  if (!anchored (self, &event))
    {
      g_ptr_array_set_size (self->messages, 0);
      atk_input_event_clear (&event);
      atk_pipeline_schedule_rewind (self); /* to the live tip again, and another anchor */
      return;
    }
  if (event.has_position)
    {
      self->stats->has_last_seq = TRUE;
      self->stats->last_seq = event.position;
    }
  self->stats->unknown_events += event.unknown;
  atk_ledger_notice (self->ledger, event.notice);
  self->stats->filtered_ops += event.n_filtered;
  atk_payload_report_op_errors (self->stats, &self->op_lines, &event);
  if (self->messages->len > 0)
    self->stats->last_event_time_ms
        = ((AtkMessage *)g_ptr_array_index (self->messages, 0))->event_time_ms;
  received_us = atk_input_get_received_us (input);
  for (guint i = 0; i < self->messages->len; i++)
    ((AtkMessage *)g_ptr_array_index (self->messages, i))->received_us = received_us;
  /* Before the hand-over: the stage may give messages back (and settle them) at once. */
  atk_ledger_track (self->ledger, &event, self->messages->len);
  hand_over (self);
  atk_input_event_clear (&event);
  check_backpressure (self);
}

static void
on_state_changed (AtkInput *input, AtkSourceState state, AtkPipeline *self)
{
  self->stats->source_state = atk_source_state_name (state);
}

/* ---- statistics -------------------------------------------------------------------- */

void
atk_pipeline_refresh_stats (AtkPipeline *self)
{
  gint64 cursor;

  g_return_if_fail (ATK_IS_PIPELINE (self));
  self->stats->source_state = atk_source_state_name (atk_input_get_state (self->input));
  self->stats->reconnects = atk_input_get_reconnects (self->input);
  if (atk_ledger_get_cursor (self->ledger, &cursor))
    {
      self->stats->has_cursor = TRUE;
      self->stats->cursor = cursor;
    }
}

void
atk_pipeline_render_prometheus (AtkPipeline *self, GString *out)
{
  g_return_if_fail (ATK_IS_PIPELINE (self));
  if (self->stage != NULL)
    atk_metadata_stage_render_prometheus (self->stage, out);
  atk_input_render_prometheus (self->input, out);
  atk_ledger_render_prometheus (self->ledger, out);
}

guint64
atk_pipeline_get_held_lines (AtkPipeline *self)
{
  g_return_val_if_fail (ATK_IS_PIPELINE (self), 0);
  return self->skipped_lines.held + self->op_lines.held + self->refused_lines.held
         + atk_ledger_get_held_lines (self->ledger);
}

AtkInput *
atk_pipeline_get_input (AtkPipeline *self)
{
  g_return_val_if_fail (ATK_IS_PIPELINE (self), NULL);
  return self->input;
}

void
atk_pipeline_set_transaction_driver (AtkPipeline *self, AtkTransactionDriver *txn)
{
  g_return_if_fail (ATK_IS_PIPELINE (self));
  self->txn = txn;
}

/* ---- life cycle -------------------------------------------------------------------- */

AtkPipeline *
atk_pipeline_new (const AtkConfig *config, AtkKafkaSink *sink, AtkEventTransformer *transformer,
                  AtkStats *stats, GError **error)
{
  g_autoptr (AtkPipeline) self = g_object_new (ATK_TYPE_PIPELINE, NULL);

  self->config = config;
  self->stats = stats;
  self->sink = g_object_ref (sink);
  self->transformer = g_object_ref (transformer);
  self->stage = atk_pipeline_build_stage (config, error);
  if (self->stage == NULL && error != NULL && *error != NULL)
    return NULL;
  if (self->stage != NULL)
    {
      g_signal_connect (self->stage, "message-ready", G_CALLBACK (on_stage_ready), self);
      g_signal_connect (self->stage, "message-filtered", G_CALLBACK (on_stage_filtered), self);
    }
  self->input = atk_pipeline_build_input (config, error);
  if (self->input == NULL)
    return NULL;
  self->keeps_place = (atk_input_get_flags (self->input) & ATK_INPUT_KEEPS_PLACE) != 0;
  self->ledger = atk_ledger_new (self->input, stats, config->max_seq_jump);
  atk_input_set_payload_func (self->input, on_payload, self);
  g_signal_connect (self->input, "state-changed", G_CALLBACK (on_state_changed), self);
  /* "connection-error" needs no handler here: the source logs each failure itself, with its
   * structured fields (RELAY, CURSOR). */
  atk_kafka_sink_set_delivery_func (self->sink, on_delivered, self);
  g_signal_connect (self->sink, "undelivered", G_CALLBACK (on_undelivered), self);
  g_signal_connect (self->sink, "released", G_CALLBACK (on_released), self);
  return g_steal_pointer (&self);
}

static void
atk_pipeline_dispose (GObject *object)
{
  AtkPipeline *self = ATK_PIPELINE (object);

  g_clear_handle_id (&self->rewind_id, g_source_remove);
  if (self->input != NULL)
    {
      atk_input_set_payload_func (self->input, NULL, NULL);
      g_signal_handlers_disconnect_by_data (self->input, self);
      atk_input_stop (self->input);
    }
  if (self->stage != NULL)
    g_signal_handlers_disconnect_by_data (self->stage, self);
  if (self->sink != NULL)
    {
      atk_kafka_sink_set_delivery_func (self->sink, NULL, NULL);
      g_signal_handlers_disconnect_by_data (self->sink, self);
    }
  g_clear_pointer (&self->ledger, atk_ledger_free);
  g_clear_object (&self->input);
  g_clear_object (&self->stage);
  g_clear_object (&self->sink);
  g_clear_object (&self->transformer);
  G_OBJECT_CLASS (atk_pipeline_parent_class)->dispose (object);
}

static void
atk_pipeline_finalize (GObject *object)
{
  AtkPipeline *self = ATK_PIPELINE (object);

  g_clear_pointer (&self->messages, g_ptr_array_unref);
  G_OBJECT_CLASS (atk_pipeline_parent_class)->finalize (object);
}

static void
atk_pipeline_class_init (AtkPipelineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atk_pipeline_dispose;
  object_class->finalize = atk_pipeline_finalize;
  signals[SIGNAL_NEED_REWIND]
      = g_signal_new ("need-rewind", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_ANCHOR]
      = g_signal_new ("anchor", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                      g_signal_accumulator_first_wins, NULL, NULL, G_TYPE_BOOLEAN, 1, G_TYPE_INT64);
}

static void
atk_pipeline_init (AtkPipeline *self)
{
  self->messages = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
}
