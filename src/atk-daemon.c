/* at-kafka: the daemon. Wires input → transformer → Kafka → cursor on one main loop: the
 * input side is the pipeline (atk-pipeline.c: the AtkInput, the metadata stage, settling,
 * backpressure, rewinds); here are Kafka, the cursor's stores, transactions
 * (atk-daemon-txn.c), statistics (atk-daemon-stats.c) and a group's leadership
 * (atk-daemon-leader.c).
 * The daemon calls the pipeline; the pipeline answers through signals ("need-rewind").
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
 *  - Tap mode (--tap-host; an input that keeps its place, ATK_INPUT_KEEPS_PLACE): no relay
 *    cursor; Tap redelivers every event it has not seen
 *    acked, so an event id is acked only once all its messages are in Kafka (never after
 *    a delivery error), and at once when it produced none. Nothing rewinds.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-daemon.h"
#include "atk-daemon-private.h"

#include <glib/gi18n.h>

#include "atk-cursor-keeper.h"
#include "atk-error.h"
#include "atk-event-transformer.h"
#include "atk-kafka-sink.h"
#include "atk-metrics-server.h"
#include "atk-ozone-place.h"
#include "atk-pipeline.h"
#include "atk-transaction-driver.h"

/* A flush at shutdown for the last cursor record. */
#define CURSOR_FLUSH_MS 2000

G_DEFINE_TYPE (AtkDaemon, atk_daemon, G_TYPE_OBJECT)

enum
{
  SIGNAL_READY,
  SIGNAL_STATS_CHANGED,
  SIGNAL_FATAL,
  SIGNAL_QUIT,
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
    return atk_pipeline_get_acked_cursor (self->pipeline, cursor);
  return atk_transaction_driver_get_committed (self->txn, cursor);
}

void
atk_daemon_save_cursor (AtkDaemon *self)
{
  gint64 cursor;
  /* At-least-once only: in transactions the record is part of each commit. */
  gboolean to_kafka = self->txn == NULL && !self->fatal;
  AtkInput *input = atk_pipeline_get_input (self->pipeline);

  /* Ozone mode keeps its place itself; its Kafka record goes under its own key. */
  if (ATK_IS_OZONE_SOURCE (input))
    {
      if (to_kafka)
        atk_ozone_place_save (ATK_OZONE_SOURCE (input), self->config, self->sink,
                              &self->ozone_saved_id);
      return;
    }

  /* A standby's cursor is the group's, not its own to write. */
  if (!atk_daemon_leader_may_lead (self) || !durable_cursor (self, &cursor))
    return;
  self->stats.has_cursor = TRUE;
  self->stats.cursor = cursor;
  atk_cursor_keeper_save (self->keeper, to_kafka ? self->sink : NULL, cursor);
}

static gboolean
on_save_timer (gpointer user_data)
{
  atk_daemon_save_cursor (ATK_DAEMON (user_data));
  return G_SOURCE_CONTINUE;
}

/* ---- Kafka ------------------------------------------------------------------------- */

/* Only until the first message is delivered: the pipeline counts and settles every message
 * (the sink's delivery function); without handlers the sink skips the signal. */
static void
on_delivered (AtkKafkaSink *sink, gint64 seq, gboolean has_seq, gboolean ok,
              const char *error_message, gdouble latency, AtkDaemon *self)
{
  if (!ok || self->ready_emitted)
    return;
  self->ready_emitted = TRUE;
  g_signal_handlers_disconnect_by_func (sink, on_delivered, self);
  g_message ("First message delivered to Kafka");
  g_signal_emit (self, signals[SIGNAL_READY], 0);
}

/* Runs the input when everything here allows it: started, topic ready, not fatal, a
 * transaction open (if any); the pipeline adds the operator's pause and backpressure. */
void
atk_daemon_update_input_allowed (AtkDaemon *self)
{
  atk_pipeline_set_allowed (
      self->pipeline, self->started && atk_kafka_sink_is_ready (self->sink) && !self->fatal
                          && atk_daemon_leader_may_lead (self)
                          && (self->txn == NULL || atk_transaction_driver_is_open (self->txn)));
}

void
atk_daemon_rewind_to_durable (AtkDaemon *self, const char *why)
{
  gint64 cursor = 0;
  gboolean has_cursor = durable_cursor (self, &cursor);

  atk_pipeline_rewind (self->pipeline, has_cursor, cursor, why);
}

static void
on_need_rewind (AtkPipeline *pipeline, const char *why, AtkDaemon *self)
{
  if (!self->fatal)
    atk_daemon_rewind_to_durable (self, why);
}

void
atk_daemon_on_sink_fatal (AtkKafkaSink *sink, const char *reason, AtkDaemon *self)
{
  if (self->fatal)
    return;
  self->fatal = TRUE;
  if (self->txn != NULL)
    atk_transaction_driver_stop (self->txn);
  g_warning ("Kafka producer failed for good (%s): stopping. Nothing is lost: the stored "
             "cursor covers only what Kafka acknowledged%s",
             reason, self->txn != NULL ? " and committed" : "");
  atk_pipeline_halt (self->pipeline);
  atk_daemon_update_input_allowed (self);
  g_signal_emit (self, signals[SIGNAL_FATAL], 0, reason);
}

static void
on_sink_ready (AtkKafkaSink *sink, AtkDaemon *self)
{
  g_message ("Topic %s is ready", self->config->output_topic);
  atk_daemon_leader_start (self); /* the group lives on the cursor topic, which exists now */
  /* In a group, only the leader sets up transactions (that fences the others). */
  if (self->txn != NULL && atk_daemon_leader_may_lead (self))
    atk_transaction_driver_setup (self->txn);
  else
    atk_daemon_update_input_allowed (self);
}

/* ---- life cycle -------------------------------------------------------------------- */

static void
atk_daemon_finalize (GObject *object)
{
  AtkDaemon *self = ATK_DAEMON (object);

  g_clear_handle_id (&self->save_timer_id, g_source_remove);
  g_clear_handle_id (&self->stats_timer_id, g_source_remove);
  g_clear_handle_id (&self->stats_log_id, g_source_remove);
  atk_daemon_leader_clear (self);
  g_clear_pointer (&self->txn, atk_transaction_driver_free);
  if (self->pipeline != NULL)
    g_signal_handlers_disconnect_by_data (self->pipeline, self);
  if (self->sink != NULL)
    g_signal_handlers_disconnect_by_data (self->sink, self);
  g_clear_object (&self->pipeline);
  g_clear_object (&self->metrics);
  g_clear_object (&self->sink);
  g_clear_object (&self->transformer);
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
  signals[SIGNAL_QUIT] = g_signal_new ("quit", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
atk_daemon_init (AtkDaemon *self)
{
  atk_stats_init (&self->stats);
  self->transformer = atk_event_transformer_new ();
  self->ozone_saved_id = -1;
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
  g_signal_connect (self->sink, "fatal", G_CALLBACK (atk_daemon_on_sink_fatal), self);
  g_signal_connect (self->sink, "ready", G_CALLBACK (on_sink_ready), self);
  atk_daemon_txn_build (self);
  return TRUE;
}

/* The input side; an input that resumes from a cursor starts from the stored one (or
 * --cursor). */
static gboolean
build_pipeline (AtkDaemon *self, GError **error)
{
  gboolean has_cursor;
  gint64 cursor = 0;

  self->pipeline
      = atk_pipeline_new (self->config, self->sink, self->transformer, &self->stats, error);
  if (self->pipeline == NULL)
    return FALSE;
  atk_pipeline_set_transaction_driver (self->pipeline, self->txn);
  g_signal_connect (self->pipeline, "need-rewind", G_CALLBACK (on_need_rewind), self);
  if (ATK_IS_OZONE_SOURCE (atk_pipeline_get_input (self->pipeline)))
    return atk_ozone_place_load (ATK_OZONE_SOURCE (atk_pipeline_get_input (self->pipeline)),
                                 self->config, atk_cursor_keeper_get_topic (self->keeper),
                                 ATK_CURSOR_KEEPER_LOAD_MS, error);
  if (!atk_pipeline_uses_cursor (self->pipeline))
    return TRUE;
  if (!atk_cursor_keeper_load_start (self->keeper, self->config->transactional_id != NULL,
                                     &has_cursor, &cursor, error))
    return FALSE;
  atk_pipeline_reset_cursor (self->pipeline, has_cursor, cursor);
  return TRUE;
}

/* Combinations the daemon does not do, refused rather than half done. */
static gboolean
check_modes (const AtkConfig *config, GError **error)
{
  if (config->transactional_id == NULL)
    return TRUE;
  if (config->ozone_pds_host != NULL)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           _ ("--transactional-id cannot be used with --ozone-pds-host (Ozone "
                              "mode keeps its own place)"));
      return FALSE;
    }
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

/* --tls-ca-file: the CAs trusted for every TLS connection of the process (the relay's and
 * Tap's WebSocket, libsoup's PLC and API requests all take the backend's default
 * database), for a relay behind a private CA, and for the tests' own wss:// relay. */
static gboolean
use_tls_ca_file (const AtkConfig *config, GError **error)
{
  g_autoptr (GTlsDatabase) database = NULL;
  g_autoptr (GError) local_error = NULL;

  if (config->tls_ca_file == NULL)
    return TRUE;
  database = g_tls_file_database_new (config->tls_ca_file, &local_error);
  if (database == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, _ ("--tls-ca-file %s: %s"),
                   config->tls_ca_file, local_error->message);
      return FALSE;
    }
  g_tls_backend_set_default_database (g_tls_backend_get_default (), database);
  return TRUE;
}

AtkDaemon *
atk_daemon_new (AtkConfig *config, GError **error)
{
  g_autoptr (AtkDaemon) self = g_object_new (ATK_TYPE_DAEMON, NULL);

  self->config = config;
  if (!check_modes (config, error) || !use_tls_ca_file (config, error))
    return NULL;
  self->keeper = atk_cursor_keeper_new (config);
  atk_event_transformer_set_osprey_compatible (self->transformer, config->osprey_compatible);
  atk_event_transformer_set_skip_unrenderable_records (self->transformer,
                                                       config->skip_unrenderable_records);
  atk_event_transformer_set_payload_format (self->transformer, config->payload_format);
  if (!atk_event_transformer_set_collection_filter (
          self->transformer, (const char *const *)config->watched_collections,
          (const char *const *)config->ignored_collections, error))
    return NULL;
  if (!build_sink (self, error) || !build_pipeline (self, error)
      || !atk_daemon_leader_build (self, error))
    return NULL;
  if (!atk_daemon_stats_serve_metrics (self, error))
    return NULL;
  atk_daemon_stats_refresh (self);
  return g_steal_pointer (&self);
}

/* Osprey's stock worker (kafka-python 1.4.7 without codec libraries) reads only gzip and
 * uncompressed batches, and moves past (and commits) what it cannot read. */
static void
warn_if_osprey_cannot_read (AtkDaemon *self, gboolean osprey)
{
  const char *codec = atk_kafka_sink_get_compression (self->sink);

  if (!osprey || g_strcmp0 (codec, "gzip") == 0 || g_strcmp0 (codec, "none") == 0)
    return;
  g_warning ("Compression %s with the Osprey format: Osprey's stock worker (kafka-python 1.4.7, "
             "no codec libraries) cannot read %s batches and commits their offsets without "
             "processing them, so it silently loses those events. Use --compression gzip "
             "(the default with --osprey-compatible) or none, unless every consumer reads %s.",
             codec, codec, codec);
}

void
atk_daemon_start (AtkDaemon *self)
{
  g_return_if_fail (ATK_IS_DAEMON (self));

  self->started = TRUE;
  g_message ("%s %s, Kafka %s, topic %s, %s format",
             atk_input_get_name (atk_pipeline_get_input (self->pipeline)),
             atk_daemon_get_relay_host (self), self->config->bootstrap_servers,
             self->config->output_topic, self->config->osprey_compatible ? "Osprey" : "standard");
  warn_if_osprey_cannot_read (self, self->config->osprey_compatible);
  self->save_timer_id = g_timeout_add (self->config->cursor_save_interval_ms, on_save_timer, self);
  atk_daemon_stats_start (self);
  if (self->txn != NULL)
    atk_transaction_driver_start (self->txn);
  atk_kafka_sink_ensure_topic (self->sink);
  atk_daemon_update_input_allowed (self);
}

gboolean
atk_daemon_shutdown (AtkDaemon *self, guint timeout_ms)
{
  gboolean flushed;

  g_return_val_if_fail (ATK_IS_DAEMON (self), FALSE);

  self->started = FALSE;
  atk_daemon_update_input_allowed (self);
  if (self->txn != NULL && !self->fatal)
    atk_transaction_driver_finish (self->txn);
  flushed = !self->fatal && atk_kafka_sink_flush (self->sink, timeout_ms);
  if (!flushed)
    g_warning ("%u message(s) not delivered; they will be produced again after the restart "
               "(the cursor does not cover them)",
               atk_kafka_sink_get_in_flight (self->sink));
  atk_daemon_save_cursor (self);
  /* the last cursor record (a few bytes; in transactions it went with the commit) */
  if (!self->fatal && self->txn == NULL)
    atk_kafka_sink_flush (self->sink, CURSOR_FLUSH_MS);
  atk_daemon_leader_leave (self);
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
  atk_daemon_stats_refresh (self);
  return &self->stats;
}

const char *
atk_daemon_get_relay_host (AtkDaemon *self)
{
  g_return_val_if_fail (ATK_IS_DAEMON (self), NULL);
  return atk_input_get_url (atk_pipeline_get_input (self->pipeline));
}

void
atk_daemon_set_osprey_compatible (AtkDaemon *self, gboolean osprey)
{
  g_return_if_fail (ATK_IS_DAEMON (self));
  g_message ("Output format: %s", osprey ? "Osprey" : "standard");
  if (osprey && !atk_event_transformer_get_osprey_compatible (self->transformer))
    warn_if_osprey_cannot_read (self, osprey);
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
  atk_pipeline_set_paused (self->pipeline, TRUE);
}

void
atk_daemon_resume (AtkDaemon *self)
{
  g_return_if_fail (ATK_IS_DAEMON (self));
  g_message ("Resumed by the operator");
  atk_pipeline_set_paused (self->pipeline, FALSE);
}

void
atk_daemon_reconnect (AtkDaemon *self)
{
  g_return_if_fail (ATK_IS_DAEMON (self));
  atk_pipeline_reconnect (self->pipeline);
}
