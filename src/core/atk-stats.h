/* at-kafka: the daemon's counters, one snapshot read by both /metrics and D-Bus.
 * Pure: plain data and a Prometheus text renderer.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ATK_STATS_LATENCY_BUCKETS 19
/* Distinct collections with a label of their own in atkafka_handled_events; later ones are
 * counted as "other", strings that are not NSIDs as "invalid". */
#define ATK_STATS_MAX_COLLECTIONS 256

typedef struct
{
  /* source */
  const char *source_state; /* static string: "connected", … */
  guint64 reconnects;
  guint64 frames_received;
  guint64 bytes_received;
  gboolean has_last_seq;
  gint64 last_seq; /* last seq received from the relay */
  gboolean has_cursor;
  gint64 cursor;             /* acknowledged watermark */
  gint64 last_event_time_ms; /* time of the last event received, for lag */

  /* transformer */
  GHashTable *handled;       /* "action_name\ncollection label" → guint64* */
  GHashTable *collections;   /* the collections with a label of their own */
  GHashTable *decode_errors; /* error kind → guint64* */
  /* action name → (collection, "" for none → its counter in handled), for collections with
   * a label of their own (bounded like them): counting needs no key string, no allocation
   * and no NSID check then. */
  GHashTable *handled_index;
  guint64 filtered_ops;
  guint64 unknown_events;
  guint64 error_frames;
  guint64 outdated_cursor_infos;
  guint64 seen_frames; /* dropped: their seq was taken already (a replay) */

  /* sink */
  guint64 produced_ok;
  guint64 produced_error;
  guint in_flight;
  guint64 in_flight_bytes;
  guint64 latency_buckets[ATK_STATS_LATENCY_BUCKETS]; /* cumulative counts per bound */
  guint64 latency_count;
  gdouble latency_sum;
  gboolean paused;            /* backpressure or operator pause */
  guint64 backpressure_drops; /* connection drops because of the in-flight bound */

  gboolean osprey_compatible;
} AtkStats;

void atk_stats_init (AtkStats *stats);
void atk_stats_clear (AtkStats *stats);

void atk_stats_count_handled (AtkStats *stats, const char *action_name, const char *collection);
void atk_stats_count_decode_error (AtkStats *stats, const char *kind);
void atk_stats_observe_latency (AtkStats *stats, gdouble seconds);
guint64 atk_stats_get_handled_total (const AtkStats *stats);
gboolean atk_stats_nsid_is_valid (const char *nsid);

/* Upper bound in seconds of latency bucket i (< ATK_STATS_LATENCY_BUCKETS), ascending. */
gdouble atk_stats_latency_bound (guint i);

/* Renders Prometheus text format 0.0.4; now_ms is for the lag gauge. */
void atk_stats_render_prometheus (const AtkStats *stats, gint64 now_ms, GString *out);

G_END_DECLS
