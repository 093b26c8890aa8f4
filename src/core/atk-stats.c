/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-stats.h"

#include <math.h>
#include <string.h>

/* Upper bounds (seconds) of the delivery latency histogram, ascending; +Inf is implied. */
static const gdouble latency_bounds[ATK_STATS_LATENCY_BUCKETS] = {
  /* fine up to 150 ms, to tell the effect of --read-batch-ms and linger.ms apart */
  0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.075,
  0.1,   0.15, 0.25,  0.5,  1,     2.5,  5,    10,   30,
};

/* The firehose source's states (atk_source_state_name): every one is exported, so a
 * dashboard sees an explicit 0 rather than a missing series. */
static const char *const known_source_states[] = {
  "stopped",
  "connecting",
  "connected",
  "backoff",
};

gdouble
atk_stats_latency_bound (guint i)
{
  g_return_val_if_fail (i < ATK_STATS_LATENCY_BUCKETS, INFINITY);
  return latency_bounds[i];
}

void
atk_stats_init (AtkStats *stats)
{
  memset (stats, 0, sizeof *stats);
  stats->source_state = "stopped";
  stats->handled = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  stats->decode_errors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  stats->collections = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  stats->handled_index
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
}

void
atk_stats_clear (AtkStats *stats)
{
  g_clear_pointer (&stats->handled, g_hash_table_unref);
  g_clear_pointer (&stats->decode_errors, g_hash_table_unref);
  g_clear_pointer (&stats->collections, g_hash_table_unref);
  g_clear_pointer (&stats->handled_index, g_hash_table_unref);
}

static guint64 *
count_key (GHashTable *table, const char *key)
{
  guint64 *value = g_hash_table_lookup (table, key);

  if (value == NULL)
    {
      value = g_new0 (guint64, 1);
      g_hash_table_insert (table, g_strdup (key), value);
    }
  (*value)++;
  return value;
}

/* An NSID as the AT Protocol Lexicon spec has it: a reversed domain of at least two segments
 * (letters, digits, inner hyphens; the first not starting with a digit) and a name (letters and
 * digits, not starting with a digit); ASCII; segments 1 to 63 characters; 317 in all. */
gboolean
atk_stats_nsid_is_valid (const char *nsid)
{
  guint segments = 0;
  const char *p = nsid;

  if (nsid == NULL || strlen (nsid) > 317)
    return FALSE;
  while (TRUE)
    {
      const char *start = p;
      const char *end = strchr (p, '.');
      gsize len = end != NULL ? (gsize)(end - p) : strlen (p);
      gboolean last = end == NULL;

      if (len == 0 || len > 63)
        return FALSE;
      for (gsize i = 0; i < len; i++)
        {
          char c = start[i];
          if (g_ascii_isalnum (c))
            continue;
          if (c != '-' || last || i == 0 || i == len - 1)
            return FALSE;
        }
      if ((segments == 0 || last) && g_ascii_isdigit (start[0]))
        return FALSE;
      segments++;
      if (last)
        break;
      p = end + 1;
    }
  return segments >= 3;
}

/* The collection label: the empty string for events without one; a valid NSID among the first
 * ATK_STATS_MAX_COLLECTIONS seen; then "other"; "invalid" for anything that is not an NSID. */
static const char *
collection_label (AtkStats *stats, const char *collection)
{
  if (collection == NULL || collection[0] == '\0')
    return "";
  if (!atk_stats_nsid_is_valid (collection))
    return "invalid";
  if (g_hash_table_contains (stats->collections, collection))
    return collection;
  if (g_hash_table_size (stats->collections) >= ATK_STATS_MAX_COLLECTIONS)
    return "other";
  g_hash_table_add (stats->collections, g_strdup (collection));
  return collection;
}

void
atk_stats_count_handled (AtkStats *stats, const char *action_name, const char *collection)
{
  const char *ckey = collection != NULL ? collection : "";
  GHashTable *by_collection;
  guint64 *counter = NULL;
  const char *label;
  g_autofree char *key = NULL;

  g_return_if_fail (action_name != NULL);
  by_collection = g_hash_table_lookup (stats->handled_index, action_name);
  if (by_collection != NULL)
    counter = g_hash_table_lookup (by_collection, ckey);
  if (counter != NULL)
    {
      (*counter)++;
      return;
    }
  /* action names are a fixed set without newlines, so the first '\n' splits the key */
  label = collection_label (stats, collection);
  key = g_strconcat (action_name, "\n", label, NULL);
  counter = count_key (stats->handled, key);
  /* A collection's label never changes once given (see collection_label()); "invalid" and
   * "other" are not indexed (unbounded: every message takes the long way then). */
  if (label != collection && label[0] != '\0')
    return;
  if (by_collection == NULL)
    {
      by_collection = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (stats->handled_index, g_strdup (action_name), by_collection);
    }
  g_hash_table_insert (by_collection, g_strdup (ckey), counter);
}

void
atk_stats_count_decode_error (AtkStats *stats, const char *kind)
{
  count_key (stats->decode_errors, kind != NULL ? kind : "other");
}

void
atk_stats_observe_latency (AtkStats *stats, gdouble seconds)
{
  /* a NaN would poison the sum forever; a negative latency can only be clock trouble */
  if (isnan (seconds))
    return;
  if (seconds < 0)
    seconds = 0;

  for (guint i = 0; i < ATK_STATS_LATENCY_BUCKETS; i++)
    if (seconds <= latency_bounds[i])
      stats->latency_buckets[i]++;
  stats->latency_count++;
  stats->latency_sum += seconds;
}

guint64
atk_stats_get_handled_total (const AtkStats *stats)
{
  GHashTableIter iter;
  gpointer value;
  guint64 total = 0;

  g_hash_table_iter_init (&iter, stats->handled);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    total += *(guint64 *)value;
  return total;
}

/* ---- Prometheus text exposition format 0.0.4 ---- */

/* Shortest of %.15g / %.17g that reads back to the same double, so bounds print as
 * "0.005" rather than "0.0050000000000000001". */
static void
append_double (GString *out, gdouble value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (value))
    {
      g_string_append (out, "NaN");
      return;
    }
  if (isinf (value))
    {
      g_string_append (out, value > 0 ? "+Inf" : "-Inf");
      return;
    }
  g_ascii_formatd (buf, sizeof buf, "%.15g", value);
  if (g_ascii_strtod (buf, NULL) != value)
    g_ascii_formatd (buf, sizeof buf, "%.17g", value);
  g_string_append (out, buf);
}

static void
append_label_value (GString *out, const char *value)
{
  for (const char *p = value; *p != '\0'; p++)
    {
      switch (*p)
        {
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        default:
          g_string_append_c (out, *p);
        }
    }
}

static void
append_family (GString *out, const char *name, const char *type, const char *help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample; labels are name/value pairs ended by NULL. */
static void
append_sample_start (GString *out, const char *name, const char *const *labels)
{
  g_string_append (out, name);
  if (labels == NULL || labels[0] == NULL)
    {
      g_string_append_c (out, ' ');
      return;
    }
  g_string_append_c (out, '{');
  for (guint i = 0; labels[i] != NULL && labels[i + 1] != NULL; i += 2)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      g_string_append_printf (out, "%s=\"", labels[i]);
      append_label_value (out, labels[i + 1]);
      g_string_append_c (out, '"');
    }
  g_string_append (out, "} ");
}

static void
append_u64 (GString *out, const char *name, const char *const *labels, guint64 value)
{
  append_sample_start (out, name, labels);
  g_string_append_printf (out, "%" G_GUINT64_FORMAT "\n", value);
}

static void
append_i64 (GString *out, const char *name, const char *const *labels, gint64 value)
{
  append_sample_start (out, name, labels);
  g_string_append_printf (out, "%" G_GINT64_FORMAT "\n", value);
}

static void
append_f64 (GString *out, const char *name, const char *const *labels, gdouble value)
{
  append_sample_start (out, name, labels);
  append_double (out, value);
  g_string_append_c (out, '\n');
}

/* A family with one unlabelled sample. */
static void
append_single (GString *out, const char *name, const char *type, const char *help, guint64 value)
{
  append_family (out, name, type, help);
  append_u64 (out, name, NULL, value);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

static GPtrArray *
sorted_keys (GHashTable *table)
{
  GPtrArray *keys = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_strings);
  return keys;
}

static void
render_handled (const AtkStats *stats, GString *out)
{
  g_autoptr (GPtrArray) keys = sorted_keys (stats->handled);

  if (keys->len == 0)
    return;
  append_family (out, "atkafka_handled_events", "counter",
                 "Events received and handled (one per operation for commits).");
  for (guint i = 0; i < keys->len; i++)
    {
      const char *key = keys->pdata[i];
      const char *newline = strchr (key, '\n');
      g_autofree char *action
          = g_strndup (key, newline != NULL ? (gsize)(newline - key) : strlen (key));
      const char *labels[]
          = { "action_name", action, "collection", newline != NULL ? newline + 1 : "", NULL };

      append_u64 (out, "atkafka_handled_events", labels,
                  *(guint64 *)g_hash_table_lookup (stats->handled, key));
    }
}

static void
render_decode_errors (const AtkStats *stats, GString *out)
{
  g_autoptr (GPtrArray) keys = sorted_keys (stats->decode_errors);

  if (keys->len == 0)
    return;
  append_family (out, "atkafka_decode_errors_total", "counter",
                 "Frames or records that could not be decoded, by error kind.");
  for (guint i = 0; i < keys->len; i++)
    {
      const char *labels[] = { "kind", keys->pdata[i], NULL };
      append_u64 (out, "atkafka_decode_errors_total", labels,
                  *(guint64 *)g_hash_table_lookup (stats->decode_errors, keys->pdata[i]));
    }
}

static void
render_source (const AtkStats *stats, GString *out, gint64 now_ms)
{
  const char *state = stats->source_state != NULL ? stats->source_state : "stopped";
  gboolean known = FALSE;

  append_single (out, "atkafka_relay_connected", "gauge",
                 "1 while the relay WebSocket is connected, else 0.",
                 g_strcmp0 (state, "connected") == 0);

  append_family (out, "atkafka_relay_state", "gauge",
                 "1 for the relay connection's current state.");
  for (guint i = 0; i < G_N_ELEMENTS (known_source_states); i++)
    {
      const char *labels[] = { "state", known_source_states[i], NULL };
      gboolean current = g_strcmp0 (state, known_source_states[i]) == 0;

      known |= current;
      append_u64 (out, "atkafka_relay_state", labels, current);
    }
  if (!known)
    {
      const char *labels[] = { "state", state, NULL };
      append_u64 (out, "atkafka_relay_state", labels, 1);
    }

  append_single (out, "atkafka_relay_reconnects_total", "counter",
                 "Connections to the relay made after the first.", stats->reconnects);
  append_single (out, "atkafka_frames_received_total", "counter",
                 "WebSocket frames received from the relay.", stats->frames_received);
  append_single (out, "atkafka_bytes_received_total", "counter",
                 "Bytes of WebSocket frames received from the relay.", stats->bytes_received);
  if (stats->has_last_seq)
    {
      append_family (out, "atkafka_last_seq", "gauge", "Last seq received from the relay.");
      append_i64 (out, "atkafka_last_seq", NULL, stats->last_seq);
    }
  if (stats->has_cursor)
    {
      append_family (out, "atkafka_cursor_seq", "gauge",
                     "Highest seq whose events, and all before it, Kafka acknowledged.");
      append_i64 (out, "atkafka_cursor_seq", NULL, stats->cursor);
    }
  if (stats->last_event_time_ms > 0)
    {
      /* not clamped: a negative lag is worth seeing, it means the clocks disagree */
      append_family (out, "atkafka_event_lag_seconds", "gauge",
                     "Now minus the time of the last event received.");
      append_f64 (out, "atkafka_event_lag_seconds", NULL,
                  (gdouble)(now_ms - stats->last_event_time_ms) / 1000.0);
    }
}

static void
render_transformer (const AtkStats *stats, GString *out)
{
  render_handled (stats, out);
  render_decode_errors (stats, out);
  append_single (out, "atkafka_filtered_ops_total", "counter",
                 "Operations or events dropped by the collection or service filters.",
                 stats->filtered_ops);
  append_single (out, "atkafka_unknown_events_total", "counter",
                 "Frames of an event type this version does not know.", stats->unknown_events);
  append_single (out, "atkafka_error_frames_total", "counter", "Error frames sent by the relay.",
                 stats->error_frames);
  append_single (out, "atkafka_outdated_cursor_total", "counter",
                 "OutdatedCursor info frames: the resume cursor was older than the relay keeps.",
                 stats->outdated_cursor_infos);
  append_single (out, "atkafka_seen_frames_total", "counter",
                 "Frames dropped because their seq was taken already (replayed by the relay).",
                 stats->seen_frames);
}

static void
render_latency (const AtkStats *stats, GString *out)
{
  const char *name = "atkafka_delivery_latency_seconds_bucket";

  append_family (
      out, "atkafka_delivery_latency_seconds", "histogram",
      "Time from receiving a message's frame (the relay and Tap inputs; else from producing "
      "it) to its delivery report.");
  for (guint i = 0; i < ATK_STATS_LATENCY_BUCKETS; i++)
    {
      g_autoptr (GString) le = g_string_new (NULL);
      const char *labels[] = { "le", NULL, NULL };

      append_double (le, latency_bounds[i]);
      labels[1] = le->str;
      append_u64 (out, name, labels, stats->latency_buckets[i]);
    }
  append_u64 (out, name, (const char *const[]){ "le", "+Inf", NULL }, stats->latency_count);
  append_f64 (out, "atkafka_delivery_latency_seconds_sum", NULL, stats->latency_sum);
  append_u64 (out, "atkafka_delivery_latency_seconds_count", NULL, stats->latency_count);
}

static void
render_sink (const AtkStats *stats, GString *out)
{
  append_family (out, "atkafka_produced_events", "counter",
                 "Messages whose delivery Kafka reported, by status.");
  append_u64 (out, "atkafka_produced_events", (const char *const[]){ "status", "ok", NULL },
              stats->produced_ok);
  append_u64 (out, "atkafka_produced_events", (const char *const[]){ "status", "error", NULL },
              stats->produced_error);
  append_single (out, "atkafka_kafka_in_flight_messages", "gauge",
                 "Messages handed to Kafka and not yet reported.", stats->in_flight);
  append_single (out, "atkafka_kafka_in_flight_bytes", "gauge",
                 "Bytes of messages handed to Kafka and not yet reported.", stats->in_flight_bytes);
  render_latency (stats, out);
  append_single (out, "atkafka_paused", "gauge",
                 "1 while reading from the relay is paused (backpressure or operator).",
                 stats->paused != FALSE);
  append_single (out, "atkafka_backpressure_disconnects_total", "counter",
                 "Relay connections dropped because too many messages were in flight.",
                 stats->backpressure_drops);
}

void
atk_stats_render_prometheus (const AtkStats *stats, gint64 now_ms, GString *out)
{
  g_return_if_fail (stats != NULL && out != NULL);

  render_transformer (stats, out);
  render_sink (stats, out);
  render_source (stats, out, now_ms);
  append_single (out, "atkafka_osprey_compatible", "gauge",
                 "1 when events are wrapped in the Osprey envelope.",
                 stats->osprey_compatible != FALSE);
}
