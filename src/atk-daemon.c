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
 *    the daemon ("fatal"): the next instance resumes from the committed cursor
 *    (atk-transaction-driver.c; the two stores: atk-cursor-keeper.c).
 *  - Metadata stage (--plc-host with --event-metadata or service filters): a message
 *    waiting for its DID lookup is not yet handed over; its seq is in the tracker already,
 *    so the cursor cannot pass it. A message a service filter drops is settled. A rewind
 *    clears the stage. Above its backlog bound the input stops, as for the in-flight bound.
 *    Not combined with --transactional-id (refused at start): a commit would have to wait
 *    for the stage to drain to record a cursor that covers exactly what it holds.
 *  - Tap mode (--tap-host): no relay cursor; Tap redelivers every event it has not seen
 *    acked, so an event id is acked only once all its messages are in Kafka (never after
 *    a delivery error), and at once when it produced none. Nothing rewinds.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-daemon-private.h"

#include <glib/gi18n.h>

#include "atk-error.h"

#define STATS_INTERVAL_MS 1000
/* A flush at shutdown for the last cursor record. */
#define CURSOR_FLUSH_MS 2000

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
gboolean
atk_daemon_durable_cursor (AtkDaemon *self, gint64 *cursor)
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

  if (!atk_daemon_durable_cursor (self, &cursor))
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
      g_autofree char *seq_text = g_strdup_printf ("%" G_GINT64_FORMAT, seq);

      /* Journal fields are plain strings: only MESSAGE is a format. */
      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "SEQ", seq_text, "MESSAGE",
                        "Kafka refused a message of seq %" G_GINT64_FORMAT " for good: %s", seq,
                        error_message);
    }
  atk_stats_observe_latency (&self->stats, latency);
  atk_daemon_settle (self, has_seq, seq, ok);
  if (ok && !self->ready_emitted)
    {
      self->ready_emitted = TRUE;
      g_message ("First message delivered to Kafka");
      g_signal_emit (self, signals[SIGNAL_READY], 0);
    }
  if (self->paused_by_backpressure)
    atk_daemon_check_backpressure (self);
}

static void
on_undelivered (AtkKafkaSink *sink, gint64 seq, gboolean has_seq, const char *error_message,
                AtkDaemon *self)
{
  g_debug ("message of seq %" G_GINT64_FORMAT " not delivered: %s", seq, error_message);
  /* Tap delivers the event again since it is not acked. */
  if (self->tap != NULL)
    {
      atk_daemon_settle (self, has_seq, seq, FALSE);
      return;
    }
  /* With transactions the commit reports it and aborts; a fatal error ends it all. */
  if (self->txn == NULL && !self->fatal)
    atk_daemon_schedule_rewind (self);
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
  atk_daemon_update_source_running (self);
  g_signal_emit (self, signals[SIGNAL_FATAL], 0, reason);
}

static void
on_sink_ready (AtkKafkaSink *sink, AtkDaemon *self)
{
  g_message ("Topic %s is ready", self->config->output_topic);
  if (self->txn != NULL)
    atk_transaction_driver_setup (self->txn);
  else
    atk_daemon_update_source_running (self);
}

/* ---- transactions ------------------------------------------------------------------ */

/* The committed cursor becomes the start: the higher of the state file's and Kafka's. */
static gboolean
txn_resume (gpointer user_data, gboolean *has_cursor, gint64 *cursor)
{
  AtkDaemon *self = user_data;

  *has_cursor = atk_cursor_tracker_get_cursor (self->tracker, cursor);
  if (self->config->cursor_mode == ATK_CURSOR_STORED)
    {
      g_autoptr (GError) error = NULL;

      switch (atk_cursor_keeper_merge_kafka (self->keeper, has_cursor, cursor, &error))
        {
        case ATK_CURSOR_MERGE_UNREACHABLE:
          return FALSE;
        case ATK_CURSOR_MERGE_REFUSED:
          g_warning ("%s", error->message);
          on_sink_fatal (self->sink, error->message, self);
          return FALSE;
        case ATK_CURSOR_MERGE_OK:
        default:
          break;
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
  atk_daemon_update_source_running (user_data);
}

static void
txn_committed (gpointer user_data)
{
  save_cursor (user_data);
}

static void
txn_aborted (gpointer user_data)
{
  atk_daemon_rewind (user_data, "Kafka transaction aborted");
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

/* ---- statistics -------------------------------------------------------------------- */

static void
refresh_stats (AtkDaemon *self)
{
  self->stats.source_state = atk_source_state_name (atk_daemon_input_state (self));
  self->stats.reconnects = self->tap != NULL ? atk_tap_source_get_reconnects (self->tap)
                                             : atk_firehose_source_get_reconnects (self->source);
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

/* Tap mode: acks handed to the connection ("ok") and given up ("dropped": Tap redelivers
 * those events); events waiting for their messages' delivery. */
static void
render_ack_metrics (AtkDaemon *self, GString *out)
{
  guint64 sent = 0, dropped = 0;
  guint queued = 0;

  atk_tap_source_get_ack_counts (self->tap, &sent, &dropped, &queued);
  g_string_append_printf (
      out,
      "# HELP atkafka_acks_sent Tap acks by status.\n"
      "# TYPE atkafka_acks_sent counter\n"
      "atkafka_acks_sent{status=\"ok\"} %" G_GUINT64_FORMAT "\n"
      "atkafka_acks_sent{status=\"dropped\"} %" G_GUINT64_FORMAT "\n"
      "# HELP atkafka_acks_queued Tap acks waiting for a connection.\n"
      "# TYPE atkafka_acks_queued gauge\n"
      "atkafka_acks_queued %u\n"
      "# HELP atkafka_tap_events_pending Tap events whose messages are not all delivered yet.\n"
      "# TYPE atkafka_tap_events_pending gauge\n"
      "atkafka_tap_events_pending %u\n",
      sent, dropped, queued, atk_ack_table_get_pending (self->acks));
}

static void
render_metrics (GString *out, gpointer user_data)
{
  AtkDaemon *self = user_data;

  refresh_stats (self);
  atk_stats_render_prometheus (&self->stats, g_get_real_time () / 1000, out);
  if (self->stage != NULL)
    atk_metadata_stage_render_prometheus (self->stage, out);
  if (self->tap != NULL)
    render_ack_metrics (self, out);
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
  if (self->tap != NULL)
    g_signal_handlers_disconnect_by_data (self->tap, self);
  if (self->stage != NULL)
    g_signal_handlers_disconnect_by_data (self->stage, self);
  if (self->sink != NULL)
    g_signal_handlers_disconnect_by_data (self->sink, self);
  g_clear_object (&self->source);
  g_clear_object (&self->tap);
  g_clear_pointer (&self->acks, atk_ack_table_free);
  g_clear_object (&self->stage);
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

/* Combinations the daemon does not do, refused rather than half done. */
static gboolean
check_modes (const AtkConfig *config, GError **error)
{
  if (config->transactional_id == NULL)
    return TRUE;
  if (config->tap_host != NULL)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           _ ("--transactional-id cannot be used with --tap-host (Tap mode "
                              "acknowledges each event to Tap instead)"));
      return FALSE;
    }
  if (config->plc_host != NULL)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           _ ("--transactional-id cannot be used with --plc-host (events waiting "
                              "for DID lookups would not fit a transaction's cursor)"));
      return FALSE;
    }
  return TRUE;
}

AtkDaemon *
atk_daemon_new (AtkConfig *config, GError **error)
{
  g_autoptr (AtkDaemon) self = g_object_new (ATK_TYPE_DAEMON, NULL);

  self->config = config;
  if (!check_modes (config, error))
    return NULL;
  self->keeper = atk_cursor_keeper_new (config);
  atk_event_transformer_set_osprey_compatible (self->transformer, config->osprey_compatible);
  if (!atk_event_transformer_set_collection_filter (
          self->transformer, (const char *const *)config->watched_collections,
          (const char *const *)config->ignored_collections, error))
    return NULL;
  if (!atk_daemon_build_stage (self, error) || !build_sink (self, error)
      || !atk_daemon_build_input (self, error))
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
  g_message ("%s %s, Kafka %s, topic %s, %s format", self->tap != NULL ? "Tap" : "Relay",
             atk_daemon_get_relay_host (self), self->config->bootstrap_servers,
             self->config->output_topic, self->config->osprey_compatible ? "Osprey" : "standard");
  self->save_timer_id = g_timeout_add (self->config->cursor_save_interval_ms, on_save_timer, self);
  self->stats_timer_id = g_timeout_add (STATS_INTERVAL_MS, on_stats_timer, self);
  if (self->txn != NULL)
    atk_transaction_driver_start (self->txn);
  atk_kafka_sink_ensure_topic (self->sink);
  atk_daemon_update_source_running (self);
}

gboolean
atk_daemon_shutdown (AtkDaemon *self, guint timeout_ms)
{
  gboolean flushed;

  g_return_val_if_fail (ATK_IS_DAEMON (self), FALSE);

  self->started = FALSE;
  atk_daemon_input_stop (self);
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
  if (self->stats.has_cursor)
    g_message ("Stopped at cursor %" G_GINT64_FORMAT, self->stats.cursor);
  else
    g_message ("Stopped (no cursor yet)");
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
  return self->tap != NULL ? self->config->tap_host : self->config->relay_host;
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
  atk_daemon_update_source_running (self);
}

void
atk_daemon_resume (AtkDaemon *self)
{
  g_return_if_fail (ATK_IS_DAEMON (self));
  g_message ("Resumed by the operator");
  self->paused_by_operator = FALSE;
  atk_daemon_update_source_running (self);
}

void
atk_daemon_reconnect (AtkDaemon *self)
{
  g_return_if_fail (ATK_IS_DAEMON (self));
  if (atk_daemon_input_state (self) != ATK_SOURCE_STOPPED)
    atk_daemon_input_reconnect (self);
}
