/* at-kafka: the daemon's statistics: the one snapshot that D-Bus and /metrics read, refreshed
 * once a second ("stats-changed"), the periodic stats line in the log, and the metrics
 * endpoint (/metrics, /healthz).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-daemon-private.h"

#define STATS_INTERVAL_MS 1000
/* The periodic stats line in the log. */
#define STATS_LOG_INTERVAL_S 60

void
atk_daemon_stats_refresh (AtkDaemon *self)
{
  atk_pipeline_refresh_stats (self->pipeline);
  if (!atk_daemon_leader_may_lead (self))
    self->stats.source_state = "standby";
  self->stats.in_flight = atk_kafka_sink_get_in_flight (self->sink);
  self->stats.in_flight_bytes = atk_kafka_sink_get_in_flight_bytes (self->sink);
  self->stats.osprey_compatible = atk_event_transformer_get_osprey_compatible (self->transformer);
}

static gboolean
on_stats_timer (gpointer user_data)
{
  AtkDaemon *self = user_data;

  atk_daemon_stats_refresh (self);
  g_signal_emit_by_name (self, "stats-changed");
  return G_SOURCE_CONTINUE;
}

/* The periodic stats line: totals, and the per-event log lines the rate limits hold back
 * (each kind's next line says how many). */
static gboolean
on_stats_log (gpointer user_data)
{
  AtkDaemon *self = user_data;
  const AtkStats *now = &self->stats;
  guint64 decode_errors = 0, held;
  GHashTableIter iter;
  gpointer value;

  if (now->decode_errors != NULL)
    {
      g_hash_table_iter_init (&iter, now->decode_errors);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        decode_errors += *(guint64 *)value;
    }
  held = atk_pipeline_get_held_lines (self->pipeline);
  if (now->frames_received == self->logged_frames && held == 0)
    return G_SOURCE_CONTINUE;
  g_message ("Stats: %" G_GUINT64_FORMAT " payloads, %" G_GUINT64_FORMAT
             " produced, %" G_GUINT64_FORMAT " refused, %" G_GUINT64_FORMAT
             " undecodable, %" G_GUINT64_FORMAT " unknown, %" G_GUINT64_FORMAT
             " replayed, %" G_GUINT64_FORMAT " filtered; %" G_GUINT64_FORMAT
             " event log line(s) held back",
             now->frames_received, now->produced_ok, now->produced_error, decode_errors,
             now->unknown_events, now->seen_frames, now->filtered_ops, held);
  self->logged_frames = now->frames_received;
  return G_SOURCE_CONTINUE;
}

static void
render_metrics (GString *out, gpointer user_data)
{
  AtkDaemon *self = user_data;

  atk_daemon_stats_refresh (self);
  atk_stats_render_prometheus (&self->stats, g_get_real_time () / 1000, out);
  atk_pipeline_render_prometheus (self->pipeline, out);
  atk_kafka_sink_render_prometheus (self->sink, out);
  atk_daemon_leader_render_prometheus (self, out);
}

static gboolean
is_healthy (gpointer user_data)
{
  AtkDaemon *self = user_data;
  return atk_kafka_sink_is_ready (self->sink);
}

gboolean
atk_daemon_stats_serve_metrics (AtkDaemon *self, GError **error)
{
  const AtkConfig *config = self->config;

  if (config->metrics_listen_address == NULL || *config->metrics_listen_address == '\0')
    return TRUE;
  self->metrics = atk_metrics_server_new (config->metrics_listen_address, render_metrics,
                                          is_healthy, self, error);
  return self->metrics != NULL;
}

void
atk_daemon_stats_start (AtkDaemon *self)
{
  self->stats_timer_id = g_timeout_add (STATS_INTERVAL_MS, on_stats_timer, self);
  self->stats_log_id = g_timeout_add_seconds (STATS_LOG_INTERVAL_S, on_stats_log, self);
}
