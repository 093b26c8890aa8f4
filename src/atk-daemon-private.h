/* at-kafka: the daemon's insides, shared by its two files: atk-daemon.c (life cycle, Kafka,
 * cursor, transactions, statistics) and atk-daemon-input.c (the relay or Tap source,
 * backpressure and rewinds, frames and events through the metadata stage to the sink).
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-ack-table.h"
#include "atk-cursor-keeper.h"
#include "atk-cursor-tracker.h"
#include "atk-daemon.h"
#include "atk-event-transformer.h"
#include "atk-firehose-source.h"
#include "atk-kafka-sink.h"
#include "atk-metadata-stage.h"
#include "atk-metrics-server.h"
#include "atk-seq-check.h"
#include "atk-tap-source.h"
#include "atk-transaction-driver.h"

G_BEGIN_DECLS

struct _AtkDaemon
{
  GObject parent_instance;

  AtkConfig *config;
  AtkEventTransformer *transformer;
  AtkKafkaSink *sink;
  AtkCursorTracker *tracker;
  AtkFirehoseSource *source; /* relay mode; NULL in Tap mode */
  AtkTapSource *tap;         /* Tap mode; NULL in relay mode */
  AtkAckTable *acks;         /* Tap mode: messages on their way per event id */
  AtkMetadataStage *stage;   /* NULL unless event metadata or a service filter is on */
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
  gboolean has_first_seq; /* the first seq taken when there was no cursor (a live start) */
  gint64 first_seq;
  AtkLogLimit seen_log; /* frames dropped as already seen */
  AtkLogLimit jump_log; /* frames dropped for a seq jump */
  AtkLogLimit tap_log;  /* Tap events skipped */

  AtkCursorKeeper *keeper;
  AtkTransactionDriver *txn; /* NULL: at-least-once */
};

/* atk-daemon.c */
/* The cursor that may be persisted (acknowledged, or with transactions committed). */
gboolean atk_daemon_durable_cursor (AtkDaemon *self, gint64 *cursor);

/* atk-daemon-input.c */
/* The relay source (with the start cursor) or the Tap source; the metadata stage (left
 * NULL when neither event metadata nor a service filter is on). */
gboolean atk_daemon_build_input (AtkDaemon *self, GError **error);
gboolean atk_daemon_build_stage (AtkDaemon *self, GError **error);
AtkSourceState atk_daemon_input_state (AtkDaemon *self);
void atk_daemon_input_stop (AtkDaemon *self);
void atk_daemon_input_reconnect (AtkDaemon *self);
/* Runs the input when everything allows it: started, topic ready, not fatal, a transaction
 * open (if any), not paused by the operator or by backpressure. */
void atk_daemon_update_source_running (AtkDaemon *self);
void atk_daemon_check_backpressure (AtkDaemon *self);
/* Back to the durable cursor: forgets what is pending (tracker, metadata stage) and asks
 * the relay from there. schedule_rewind() does it once, from an idle callback. */
void atk_daemon_rewind (AtkDaemon *self, const char *why);
void atk_daemon_schedule_rewind (AtkDaemon *self);
void atk_daemon_on_frame (AtkFirehoseSource *source, GBytes *bytes, AtkDaemon *self);
void atk_daemon_on_tap_event (AtkTapSource *source, GBytes *text, AtkDaemon *self);
/* The metadata stage's "message-ready" and "message-filtered". */
void atk_daemon_on_stage_ready (AtkMetadataStage *stage, AtkMessage *message, AtkDaemon *self);
void atk_daemon_on_stage_filtered (AtkMetadataStage *stage, AtkMessage *message, AtkDaemon *self);
/* One message of seq/Tap id settled: delivered (ok) or failed for good (!ok). */
void atk_daemon_settle (AtkDaemon *self, gboolean has_seq, gint64 seq, gboolean ok);

G_END_DECLS
