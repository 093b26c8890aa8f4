/* at-kafka: the daemon's insides, shared by atk-daemon.c (wiring), atk-daemon-leader.c
 * (a group of instances, --group-id), atk-daemon-txn.c (--transactional-id) and
 * atk-daemon-stats.c (statistics, the stats line, /metrics). Not for anything else.
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-cursor-keeper.h"
#include "atk-daemon.h"
#include "atk-event-transformer.h"
#include "atk-kafka-sink.h"
#include "atk-leader-election.h"
#include "atk-log.h"
#include "atk-metrics-server.h"
#include "atk-pipeline.h"
#include "atk-transaction-driver.h"

G_BEGIN_DECLS

struct _AtkDaemon
{
  GObject parent_instance;

  AtkConfig *config;
  AtkEventTransformer *transformer;
  AtkKafkaSink *sink;
  AtkPipeline *pipeline; /* the input, the metadata stage, what is on its way */
  AtkMetricsServer *metrics;
  AtkCursorKeeper *keeper;
  gint64 ozone_saved_id;       /* Ozone mode: the place last written to Kafka (-1: none) */
  AtkTransactionDriver *txn;   /* NULL: at-least-once */
  AtkLeaderElection *election; /* NULL: alone (no --group-id) */
  gboolean leading;            /* elected, and the input placed at the group's cursor */
  guint elect_retry_id;

  AtkStats stats;
  gboolean started;
  gboolean ready_emitted;
  gboolean fatal;
  guint save_timer_id;
  guint stats_timer_id;
  guint stats_log_id;
  guint64 logged_frames; /* payloads at the last stats line */
};

/* atk-daemon.c */
void atk_daemon_update_input_allowed (AtkDaemon *self);
void atk_daemon_save_cursor (AtkDaemon *self);
void atk_daemon_on_sink_fatal (AtkKafkaSink *sink, const char *reason, AtkDaemon *self);
/* The pipeline produces again from after the durable cursor. */
void atk_daemon_rewind_to_durable (AtkDaemon *self, const char *why);

/* atk-daemon-leader.c */
/* Builds the election when the configuration names a group (no group: nothing, TRUE). */
gboolean atk_daemon_leader_build (AtkDaemon *self, GError **error);
/* Whether this instance may read the relay and produce: always without a group. */
gboolean atk_daemon_leader_may_lead (AtkDaemon *self);
void atk_daemon_leader_start (AtkDaemon *self);
/* Shutdown, after the last cursor went out: leave the group, so a standby leads at once. */
void atk_daemon_leader_leave (AtkDaemon *self);
void atk_daemon_leader_clear (AtkDaemon *self);
/* atkafka_leader, atkafka_leader_changes_total (only with a group). */
void atk_daemon_leader_render_prometheus (AtkDaemon *self, GString *out);

/* atk-daemon-txn.c */
/* The transaction driver, when the configuration names a transactional id. */
void atk_daemon_txn_build (AtkDaemon *self);

/* atk-daemon-stats.c */
/* Brings the snapshot up to date (what is counted elsewhere is read here). */
void atk_daemon_stats_refresh (AtkDaemon *self);
/* The metrics endpoint, when the configuration names an address (none: nothing, TRUE). */
gboolean atk_daemon_stats_serve_metrics (AtkDaemon *self, GError **error);
/* The once-a-second refresh ("stats-changed") and the periodic stats line. */
void atk_daemon_stats_start (AtkDaemon *self);

G_END_DECLS
