/* at-kafka: the daemon. Wires relay → transformer → Kafka → cursor on one main loop.
 *
 * Loss rules, in one place:
 *  - A frame's seq enters the cursor tracker with the number of messages it produced; the
 *    persisted cursor only moves past a seq once Kafka acknowledged all of its messages.
 *  - Within one process, a reconnect resumes after the last seq handed to the sink: those
 *    messages sit in librdkafka (which never gives up on them: message.timeout.ms=0), so
 *    asking the relay for them again would only duplicate them. After a crash, the start
 *    resumes from the persisted cursor instead; the gap between the two is the (bounded)
 *    at-least-once window.
 *  - Backpressure: above the in-flight bound the relay connection is dropped (not paused:
 *    a paused socket makes the relay cut us off as a slow consumer anyway); it is opened
 *    again from the last handed-over seq once the sink has drained to half the bound.
 *  - A message is settled when Kafka acknowledged it or rejected it for good (e.g. too
 *    large for the topic: counted, logged with seq and DID, skipped). A message that did not
 *    make it for any other reason (purged, timed out, refused by a full queue) is not
 *    settled: the pipeline rewinds to the durable cursor and produces it again.
 *  - The durable cursor is kept in two places, written with the same value on the same
 *    timer: <state-dir>/cursor and the compacted topic "<topic>.cursor" (key: the topic).
 *    At start an explicit --cursor wins, else the higher of the two (both only ever hold
 *    acknowledged watermarks).
 *  - With --transactional-id, messages and the cursor record are committed together in one
 *    Kafka transaction every TXN_INTERVAL_MS; the durable cursor is the last committed one,
 *    and an aborted transaction rewinds to it. A fenced or fatally broken producer stops
 *    the daemon ("fatal"): the next instance resumes from the committed cursor.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-daemon.h"

#include <glib/gi18n.h>

#include "atk-cursor-keeper.h"
#include "atk-cursor-tracker.h"
#include "atk-error.h"
#include "atk-event-transformer.h"
#include "atk-firehose-source.h"
#include "atk-kafka-sink.h"
#include "atk-metrics-server.h"
#include "atk-transaction-driver.h"

#define STATS_INTERVAL_MS 1000
/* A flush at shutdown for the last cursor record. */
#define CURSOR_FLUSH_MS 2000

struct _AtkDaemon
{
  GObject parent_instance;

  AtkConfig *config;
  AtkEventTransformer *transformer;
  AtkKafkaSink *sink;
  AtkCursorTracker *tracker;
  AtkFirehoseSource *source;
  AtkMetricsServer *metrics;
  GPtrArray *messages; /* scratch, reused for every frame */

  AtkStats stats;
  gboolean started;
  gboolean ready_emitted;
  gboolean paused_by_operator;
  gboolean paused_by_backpressure;
  guint save_timer_id;
  guint stats_timer_id;
  guint rewind_id;
  gboolean fatal;
  gboolean outdated_pending; /* an OutdatedCursor came: measure the gap at the next seq */
  gint64 outdated_after;

  AtkCursorKeeper *keeper;
  AtkTransactionDriver *txn; /* NULL: at-least-once */
};

G_DEFINE_TYPE (AtkDaemon, atk_daemon, G_TYPE_OBJECT)

enum
{
  SIGNAL_READY,
  SIGNAL_STATS_CHANGED,
  SIGNAL_FATAL,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* ---- cursor ---------------------------------------------------------------------- */

/* The cursor that may be persisted: the acknowledged watermark, or with transactions the
 * last committed one (acknowledged messages of an open transaction may still be aborted). */
static gboolean
durable_cursor (AtkDaemon *self, gint64 *cursor)
{
  if (self->txn == NULL)
    return atk_cursor_tracker_get_cursor (self->tracker, cursor);
  return atk_transaction_driver_get_committed (self->txn, cursor);
}

static void
save_cursor (AtkDaemon *self)
{
  gint64 cursor;
  /* At-least-once only: in transactions the record is part of each commit. */
  gboolean to_kafka = self->txn == NULL && !self->fatal;

  if (!durable_cursor (self, &cursor))
    return;
  self->stats.has_cursor = TRUE;
  self->stats.cursor = cursor;
  atk_cursor_keeper_save (self->keeper, to_kafka ? self->sink : NULL, cursor);
}

static gboolean
on_save_timer (gpointer user_data)
{
  save_cursor (ATK_DAEMON (user_data));
  return G_SOURCE_CONTINUE;
}

/* ---- backpressure and pausing ------------------------------------------------------ */

static gboolean
over_bound (AtkDaemon *self, guint divisor)
{
  return atk_kafka_sink_get_in_flight (self->sink) >= self->config->max_in_flight_messages / divisor
         || atk_kafka_sink_get_in_flight_bytes (self->sink)
                >= self->config->max_in_flight_bytes / divisor;
}

static void
update_source_running (AtkDaemon *self)
{
  gboolean want = self->started && atk_kafka_sink_is_ready (self->sink) && !self->fatal
                  && (self->txn == NULL || atk_transaction_driver_is_open (self->txn))
                  && !self->paused_by_operator && !self->paused_by_backpressure;
  gboolean running = atk_firehose_source_get_state (self->source) != ATK_SOURCE_STOPPED;

  self->stats.paused = self->paused_by_operator || self->paused_by_backpressure;
  if (want && !running)
    atk_firehose_source_start (self->source);
  else if (!want && running)
    atk_firehose_source_stop (self->source);
}

static void
check_backpressure (AtkDaemon *self)
{
  if (!self->paused_by_backpressure && over_bound (self, 1))
    {
      self->paused_by_backpressure = TRUE;
      self->stats.backpressure_drops++;
      g_message ("Kafka is behind (%u messages, %" G_GUINT64_FORMAT
                 " bytes in flight): closing the relay connection until it catches up",
                 atk_kafka_sink_get_in_flight (self->sink),
                 atk_kafka_sink_get_in_flight_bytes (self->sink));
      update_source_running (self);
    }
  else if (self->paused_by_backpressure && !over_bound (self, 2))
    {
      self->paused_by_backpressure = FALSE;
      g_message ("Kafka caught up: reconnecting to the relay");
      update_source_running (self);
    }
}

/* ---- rewinding ------------------------------------------------------------------------ */

/* Produces everything after the durable cursor again: forgets what is pending and asks the
 * relay from there. Messages still in flight may then land twice (at-least-once). */
static void
rewind_to_durable (AtkDaemon *self, const char *why)
{
  gint64 cursor = 0;
  gboolean has_cursor = durable_cursor (self, &cursor);

  g_warning ("%s: producing again from after seq %" G_GINT64_FORMAT, why, has_cursor ? cursor : -1);
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
    rewind_to_durable (self, "Messages did not reach Kafka");
  return G_SOURCE_REMOVE;
}

/* Failures come in bursts: one rewind for all of them, once the burst is handled. */
static void
schedule_rewind (AtkDaemon *self)
{
  if (self->rewind_id == 0)
    self->rewind_id = g_idle_add (on_rewind, self);
}

/* ---- frames ------------------------------------------------------------------------ */

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

  if (result->n_op_errors == 0)
    return;
  for (guint i = 0; i < result->n_op_errors; i++)
    atk_stats_count_decode_error (&self->stats, atk_error_kind_name (result->op_error));
  did = g_strndup (result->frame->did.ptr, result->frame->did.len);
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "SEQ", "%" G_GINT64_FORMAT,
                    result->frame->seq, "DID", "%s", did, "MESSAGE",
                    "seq %" G_GINT64_FORMAT " (%s): %u operation(s) skipped: %s",
                    result->frame->seq, did, result->n_op_errors, result->op_error->message);
}

/* Refused at once. Too large: settled for good, so it must not hold the cursor back.
 * Anything else (a full queue, a transaction in the wrong state) says nothing about the
 * message: FALSE, and the frame is produced again after a rewind. */
static gboolean
refused (AtkDaemon *self, gboolean has_seq, gint64 seq, const char *did, const GError *error)
{
  gboolean for_good = g_error_matches (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);

  self->stats.produced_error += for_good;
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "SEQ", "%" G_GINT64_FORMAT, seq, "DID", "%s",
                    did, "MESSAGE", "Message of seq %" G_GINT64_FORMAT " (%s) %s: %s", seq, did,
                    for_good ? "skipped" : "not produced yet", error->message);
  if (for_good && has_seq)
    atk_cursor_tracker_ack (self->tracker, seq);
  return for_good;
}

static void
produce_messages (AtkDaemon *self)
{
  gsize n = 0;
  /* In order: the ops of one commit must reach their partition as the commit lists them. */
  g_autofree gpointer *messages = g_ptr_array_steal (self->messages, &n);
  gsize i;

  for (i = 0; i < n; i++)
    {
      AtkMessage *message = messages[i];
      gboolean has_seq = message->has_seq;
      gint64 seq = message->seq;
      g_autofree char *did = g_strdup (message->key);
      g_autoptr (GError) error = NULL;

      atk_stats_count_handled (&self->stats, message->action_name, message->collection);
      if (atk_kafka_sink_produce (self->sink, message, &error))
        {
          if (self->txn != NULL)
            atk_transaction_driver_count_message (self->txn);
        }
      else if (!refused (self, has_seq, seq, did, error))
        break;
    }
  if (i == n)
    return;
  /* The rest of the frame waits for the rewind: producing it now would put a later op of
   * a DID before an earlier one. */
  for (i++; i < n; i++)
    atk_message_free (messages[i]);
  schedule_rewind (self);
}

static void
on_frame (AtkFirehoseSource *source, GBytes *bytes, AtkDaemon *self)
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
  log_outdated_gap (self, frame);
  if (frame->has_seq)
    {
      self->stats.has_last_seq = TRUE;
      self->stats.last_seq = frame->seq;
    }
  /* A seq we already handed over: a reconnect replayed it. Its messages are in flight. */
  if (frame->has_seq && atk_cursor_tracker_get_last_added (self->tracker, &last_added)
      && frame->seq <= last_added)
    {
      g_ptr_array_set_size (self->messages, 0);
      atk_transform_result_clear (&result);
      return;
    }
  if (frame->kind == ATK_EVENT_UNKNOWN)
    self->stats.unknown_events++;
  else if (frame->kind == ATK_EVENT_ERROR || frame->kind == ATK_EVENT_INFO)
    handle_control_frame (self, frame);
  self->stats.filtered_ops += result.n_filtered;
  count_op_errors (self, &result);
  if (self->messages->len > 0)
    self->stats.last_event_time_ms
        = ((AtkMessage *)g_ptr_array_index (self->messages, 0))->event_time_ms;

  if (frame->has_seq)
    {
      atk_cursor_tracker_add (self->tracker, frame->seq, self->messages->len);
      atk_firehose_source_set_cursor (self->source, TRUE, frame->seq);
    }
  produce_messages (self);
  atk_transform_result_clear (&result);
  check_backpressure (self);
}

/* ---- Kafka ------------------------------------------------------------------------- */

static void
on_delivered (AtkKafkaSink *sink, gint64 seq, gboolean has_seq, gboolean ok,
              const char *error_message, gdouble latency, AtkDaemon *self)
{
  if (ok)
    self->stats.produced_ok++;
  else
    {
      self->stats.produced_error++;
      g_log_structured (
          G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "SEQ", "%" G_GINT64_FORMAT, seq, "MESSAGE",
          "Kafka refused a message of seq %" G_GINT64_FORMAT " for good: %s", seq, error_message);
    }
  atk_stats_observe_latency (&self->stats, latency);
  if (has_seq)
    atk_cursor_tracker_ack (self->tracker, seq);
  if (ok && !self->ready_emitted)
    {
      self->ready_emitted = TRUE;
      g_message ("First message delivered to Kafka");
      g_signal_emit (self, signals[SIGNAL_READY], 0);
    }
  if (self->paused_by_backpressure)
    check_backpressure (self);
}

static void
on_undelivered (AtkKafkaSink *sink, gint64 seq, gboolean has_seq, const char *error_message,
                AtkDaemon *self)
{
  g_debug ("message of seq %" G_GINT64_FORMAT " not delivered: %s", seq, error_message);
  /* With transactions the commit reports it and aborts; a fatal error ends it all. */
  if (self->txn == NULL && !self->fatal)
    schedule_rewind (self);
}

static void
on_sink_fatal (AtkKafkaSink *sink, const char *reason, AtkDaemon *self)
{
  if (self->fatal)
    return;
  self->fatal = TRUE;
  if (self->txn != NULL)
    atk_transaction_driver_stop (self->txn);
  g_warning ("Kafka producer failed for good (%s): stopping. Nothing is lost: the stored "
             "cursor covers only what Kafka acknowledged%s",
             reason, self->txn != NULL ? " and committed" : "");
  update_source_running (self);
  g_signal_emit (self, signals[SIGNAL_FATAL], 0, reason);
}

static void
on_sink_ready (AtkKafkaSink *sink, AtkDaemon *self)
{
  g_message ("Topic %s is ready", self->config->output_topic);
  if (self->txn != NULL)
    atk_transaction_driver_setup (self->txn);
  else
    update_source_running (self);
}

/* ---- transactions ------------------------------------------------------------------ */

/* The committed cursor becomes the start: the higher of the state file's and Kafka's. */
static gboolean
txn_resume (gpointer user_data, gboolean *has_cursor, gint64 *cursor)
{
  AtkDaemon *self = user_data;
  gboolean found = FALSE;
  gint64 kafka_cursor = 0;

  *has_cursor = atk_cursor_tracker_get_cursor (self->tracker, cursor);
  if (self->config->cursor_mode == ATK_CURSOR_STORED)
    {
      if (!atk_cursor_keeper_load_kafka (self->keeper, ATK_CURSOR_KEEPER_LOAD_MS, &found,
                                         &kafka_cursor))
        return FALSE;
      if (found && (!*has_cursor || kafka_cursor > *cursor))
        {
          *has_cursor = TRUE;
          *cursor = kafka_cursor;
        }
      g_message (*has_cursor ? "Resuming after committed seq %" G_GINT64_FORMAT
                             : "No committed cursor: starting at the live tip",
                 *cursor);
    }
  atk_cursor_tracker_reset (self->tracker, *has_cursor, *cursor);
  atk_firehose_source_set_cursor (self->source, *has_cursor, *cursor);
  return TRUE;
}

static gboolean
txn_last_handed (gpointer user_data, gint64 *seq)
{
  AtkDaemon *self = user_data;
  return atk_cursor_tracker_get_last_added (self->tracker, seq);
}

static void
txn_changed (gpointer user_data)
{
  update_source_running (user_data);
}

static void
txn_committed (gpointer user_data)
{
  save_cursor (user_data);
}

static void
txn_aborted (gpointer user_data)
{
  rewind_to_durable (user_data, "Kafka transaction aborted");
}

static void
txn_fatal (gpointer user_data, const char *reason)
{
  AtkDaemon *self = user_data;
  on_sink_fatal (self->sink, reason, self);
}

static const AtkTransactionHooks txn_hooks = {
  .resume = txn_resume,
  .last_handed = txn_last_handed,
  .changed = txn_changed,
  .committed = txn_committed,
  .aborted = txn_aborted,
  .fatal = txn_fatal,
};

/* ---- source ------------------------------------------------------------------------ */

static void
on_source_state_changed (AtkFirehoseSource *source, AtkSourceState state, AtkDaemon *self)
{
  self->stats.source_state = atk_source_state_name (state);
}

static void
on_connection_error (AtkFirehoseSource *source, const char *message, AtkDaemon *self)
{
  g_message ("Relay connection: %s", message);
}

/* ---- statistics -------------------------------------------------------------------- */

static void
refresh_stats (AtkDaemon *self)
{
  self->stats.source_state = atk_source_state_name (atk_firehose_source_get_state (self->source));
  self->stats.reconnects = atk_firehose_source_get_reconnects (self->source);
  self->stats.in_flight = atk_kafka_sink_get_in_flight (self->sink);
  self->stats.in_flight_bytes = atk_kafka_sink_get_in_flight_bytes (self->sink);
  self->stats.osprey_compatible = atk_event_transformer_get_osprey_compatible (self->transformer);
  {
    gint64 cursor;
    if (atk_cursor_tracker_get_cursor (self->tracker, &cursor))
      {
        self->stats.has_cursor = TRUE;
        self->stats.cursor = cursor;
      }
  }
}

static gboolean
on_stats_timer (gpointer user_data)
{
  AtkDaemon *self = user_data;

  refresh_stats (self);
  g_signal_emit (self, signals[SIGNAL_STATS_CHANGED], 0);
  return G_SOURCE_CONTINUE;
}

static void
render_metrics (GString *out, gpointer user_data)
{
  AtkDaemon *self = user_data;

  refresh_stats (self);
  atk_stats_render_prometheus (&self->stats, g_get_real_time () / 1000, out);
}

static gboolean
is_healthy (gpointer user_data)
{
  AtkDaemon *self = user_data;
  return atk_kafka_sink_is_ready (self->sink);
}

/* ---- life cycle -------------------------------------------------------------------- */

static void
atk_daemon_finalize (GObject *object)
{
  AtkDaemon *self = ATK_DAEMON (object);

  g_clear_handle_id (&self->save_timer_id, g_source_remove);
  g_clear_handle_id (&self->stats_timer_id, g_source_remove);
  g_clear_handle_id (&self->rewind_id, g_source_remove);
  g_clear_pointer (&self->txn, atk_transaction_driver_free);
  if (self->source != NULL)
    g_signal_handlers_disconnect_by_data (self->source, self);
  if (self->sink != NULL)
    g_signal_handlers_disconnect_by_data (self->sink, self);
  g_clear_object (&self->source);
  g_clear_object (&self->metrics);
  g_clear_object (&self->sink);
  g_clear_object (&self->tracker);
  g_clear_object (&self->transformer);
  g_clear_pointer (&self->messages, g_ptr_array_unref);
  atk_stats_clear (&self->stats);
  g_clear_pointer (&self->keeper, atk_cursor_keeper_free);
  g_clear_pointer (&self->config, atk_config_free);
  G_OBJECT_CLASS (atk_daemon_parent_class)->finalize (object);
}

static void
atk_daemon_class_init (AtkDaemonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = atk_daemon_finalize;
  signals[SIGNAL_READY] = g_signal_new ("ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_STATS_CHANGED]
      = g_signal_new ("stats-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_FATAL] = g_signal_new ("fatal", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
atk_daemon_init (AtkDaemon *self)
{
  atk_stats_init (&self->stats);
  self->messages = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  self->tracker = atk_cursor_tracker_new ();
  self->transformer = atk_event_transformer_new ();
}

static gboolean
build_sink (AtkDaemon *self, GError **error)
{
  AtkKafkaSinkOptions options = {
    .bootstrap_servers = self->config->bootstrap_servers,
    .topic = self->config->output_topic,
    .compression = self->config->compression,
    .partitions = self->config->topic_partitions,
    .replication = self->config->topic_replication,
    .cursor_topic = atk_cursor_keeper_get_topic (self->keeper),
    .transactional_id = self->config->transactional_id,
  };
  g_ptr_array_add (self->config->kafka_properties, NULL);
  options.properties = (const char *const *)self->config->kafka_properties->pdata;
  self->sink = atk_kafka_sink_new (&options, error);
  g_ptr_array_remove_index (self->config->kafka_properties,
                            self->config->kafka_properties->len - 1);
  if (self->sink == NULL)
    return FALSE;
  g_signal_connect (self->sink, "delivered", G_CALLBACK (on_delivered), self);
  g_signal_connect (self->sink, "undelivered", G_CALLBACK (on_undelivered), self);
  g_signal_connect (self->sink, "fatal", G_CALLBACK (on_sink_fatal), self);
  g_signal_connect (self->sink, "ready", G_CALLBACK (on_sink_ready), self);
  if (self->config->transactional_id != NULL)
    self->txn = atk_transaction_driver_new (self->sink, self->config->transactional_id,
                                            self->config->output_topic, &txn_hooks, self);
  return TRUE;
}

static gboolean
build_source (AtkDaemon *self, GError **error)
{
  gboolean has_cursor;
  gint64 cursor = 0;

  if (!atk_cursor_keeper_load_start (self->keeper, self->config->transactional_id != NULL,
                                     &has_cursor, &cursor, error))
    return FALSE;
  atk_cursor_tracker_reset (self->tracker, has_cursor, cursor);
  self->source = atk_firehose_source_new (self->config->relay_host, self->config->max_frame_bytes,
                                          self->config->idle_timeout_s);
  atk_firehose_source_set_cursor (self->source, has_cursor, cursor);
  g_signal_connect (self->source, "frame", G_CALLBACK (on_frame), self);
  g_signal_connect (self->source, "state-changed", G_CALLBACK (on_source_state_changed), self);
  g_signal_connect (self->source, "connection-error", G_CALLBACK (on_connection_error), self);
  return TRUE;
}

AtkDaemon *
atk_daemon_new (AtkConfig *config, GError **error)
{
  g_autoptr (AtkDaemon) self = g_object_new (ATK_TYPE_DAEMON, NULL);

  self->config = config;
  self->keeper = atk_cursor_keeper_new (config);
  atk_event_transformer_set_osprey_compatible (self->transformer, config->osprey_compatible);
  if (!atk_event_transformer_set_collection_filter (
          self->transformer, (const char *const *)config->watched_collections,
          (const char *const *)config->ignored_collections, error))
    return NULL;
  if (!build_sink (self, error) || !build_source (self, error))
    return NULL;
  if (config->metrics_listen_address != NULL && *config->metrics_listen_address != '\0')
    {
      self->metrics = atk_metrics_server_new (config->metrics_listen_address, render_metrics,
                                              is_healthy, self, error);
      if (self->metrics == NULL)
        return NULL;
    }
  refresh_stats (self);
  return g_steal_pointer (&self);
}

void
atk_daemon_start (AtkDaemon *self)
{
  g_return_if_fail (ATK_IS_DAEMON (self));

  self->started = TRUE;
  g_message ("Relay %s, Kafka %s, topic %s, %s format", self->config->relay_host,
             self->config->bootstrap_servers, self->config->output_topic,
             self->config->osprey_compatible ? "Osprey" : "standard");
  self->save_timer_id = g_timeout_add (self->config->cursor_save_interval_ms, on_save_timer, self);
  self->stats_timer_id = g_timeout_add (STATS_INTERVAL_MS, on_stats_timer, self);
  if (self->txn != NULL)
    atk_transaction_driver_start (self->txn);
  atk_kafka_sink_ensure_topic (self->sink);
  update_source_running (self);
}

gboolean
atk_daemon_shutdown (AtkDaemon *self, guint timeout_ms)
{
  gboolean flushed;

  g_return_val_if_fail (ATK_IS_DAEMON (self), FALSE);

  self->started = FALSE;
  atk_firehose_source_stop (self->source);
  if (self->txn != NULL && !self->fatal)
    atk_transaction_driver_finish (self->txn);
  flushed = !self->fatal && atk_kafka_sink_flush (self->sink, timeout_ms);
  if (!flushed)
    g_warning ("%u message(s) not delivered; they will be produced again after the restart "
               "(the cursor does not cover them)",
               atk_kafka_sink_get_in_flight (self->sink));
  save_cursor (self);
  /* the last cursor record (a few bytes; in transactions it went with the commit) */
  if (!self->fatal && self->txn == NULL)
    atk_kafka_sink_flush (self->sink, CURSOR_FLUSH_MS);
  g_message ("Stopped at cursor %" G_GINT64_FORMAT,
             self->stats.has_cursor ? self->stats.cursor : -1);
  return flushed;
}

const AtkStats *
atk_daemon_get_stats (AtkDaemon *self)
{
  g_return_val_if_fail (ATK_IS_DAEMON (self), NULL);
  refresh_stats (self);
  return &self->stats;
}

const char *
atk_daemon_get_relay_host (AtkDaemon *self)
{
  g_return_val_if_fail (ATK_IS_DAEMON (self), NULL);
  return self->config->relay_host;
}

void
atk_daemon_set_osprey_compatible (AtkDaemon *self, gboolean osprey)
{
  g_return_if_fail (ATK_IS_DAEMON (self));
  g_message ("Output format: %s", osprey ? "Osprey" : "standard");
  atk_event_transformer_set_osprey_compatible (self->transformer, osprey);
  self->stats.osprey_compatible = osprey;
}

gboolean
atk_daemon_get_osprey_compatible (AtkDaemon *self)
{
  g_return_val_if_fail (ATK_IS_DAEMON (self), FALSE);
  return atk_event_transformer_get_osprey_compatible (self->transformer);
}

void
atk_daemon_pause (AtkDaemon *self)
{
  g_return_if_fail (ATK_IS_DAEMON (self));
  g_message ("Paused by the operator");
  self->paused_by_operator = TRUE;
  update_source_running (self);
}

void
atk_daemon_resume (AtkDaemon *self)
{
  g_return_if_fail (ATK_IS_DAEMON (self));
  g_message ("Resumed by the operator");
  self->paused_by_operator = FALSE;
  update_source_running (self);
}

void
atk_daemon_reconnect (AtkDaemon *self)
{
  g_return_if_fail (ATK_IS_DAEMON (self));
  if (atk_firehose_source_get_state (self->source) != ATK_SOURCE_STOPPED)
    atk_firehose_source_reconnect (self->source);
}
