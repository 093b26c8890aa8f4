/* Tests for AtkStats: the counters and the Prometheus text it renders. The rendered text
 * is read back by a small parser written here from the exposition format 0.0.4 rules,
 * independently of the renderer.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <string.h>

#include "atk-stats.h"
#include "atk-test-util.h"

/* ---- a minimal, strict reader of the text exposition format ---- */

typedef struct
{
  char *name;
  GPtrArray *labels; /* name, value, name, value, … (unescaped) */
  gdouble value;
} Sample;

typedef struct
{
  GHashTable *types;            /* family name → type */
  GHashTable *helps;            /* family name → help */
  GPtrArray *samples;           /* Sample* in text order */
  GPtrArray *families_in_order; /* family of each sample */
} Exposition;

static void
sample_free (Sample *sample)
{
  g_free (sample->name);
  g_ptr_array_unref (sample->labels);
  g_free (sample);
}

static void
exposition_free (Exposition *e)
{
  g_hash_table_unref (e->types);
  g_hash_table_unref (e->helps);
  g_ptr_array_unref (e->samples);
  g_ptr_array_unref (e->families_in_order);
  g_free (e);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Exposition, exposition_free)

static gboolean
is_name_char (char c, gboolean first)
{
  return g_ascii_isalpha (c) || c == '_' || c == ':' || (!first && g_ascii_isdigit (c));
}

/* Reads a metric or label name at *p; returns it or NULL. */
static char *
read_name (const char **p)
{
  const char *start = *p;

  if (!is_name_char (**p, TRUE))
    return NULL;
  while (is_name_char (**p, FALSE))
    (*p)++;
  return g_strndup (start, *p - start);
}

/* A quoted label value with \\, \" and \n escapes; NULL on any other escape. */
static char *
read_label_value (const char **p)
{
  g_autoptr (GString) value = g_string_new (NULL);

  if (**p != '"')
    return NULL;
  for ((*p)++; **p != '"'; (*p)++)
    {
      if (**p == '\0' || **p == '\n')
        return NULL;
      if (**p == '\\')
        {
          (*p)++;
          if (**p == '\\')
            g_string_append_c (value, '\\');
          else if (**p == '"')
            g_string_append_c (value, '"');
          else if (**p == 'n')
            g_string_append_c (value, '\n');
          else
            return NULL;
        }
      else
        g_string_append_c (value, **p);
    }
  (*p)++;
  return g_string_free (g_steal_pointer (&value), FALSE);
}

static gboolean
parse_value (const char *text, gdouble *value)
{
  char *end = NULL;

  if (strcmp (text, "+Inf") == 0)
    *value = INFINITY;
  else if (strcmp (text, "-Inf") == 0)
    *value = -INFINITY;
  else if (strcmp (text, "NaN") == 0)
    *value = NAN;
  else
    {
      if (*text == '\0')
        return FALSE;
      *value = g_ascii_strtod (text, &end);
      return *end == '\0';
    }
  return TRUE;
}

static Sample *
parse_sample (const char *line)
{
  const char *p = line;
  g_autoptr (GPtrArray) labels = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *name = read_name (&p);
  Sample *sample;
  gdouble value;

  g_assert_nonnull (name);
  if (*p == '{')
    {
      p++;
      while (*p != '}')
        {
          char *label = read_name (&p);
          char *label_value;

          g_assert_nonnull (label);
          g_ptr_array_add (labels, label);
          g_assert_cmpint (*p, ==, '=');
          p++;
          label_value = read_label_value (&p);
          g_assert_nonnull (label_value);
          g_ptr_array_add (labels, label_value);
          if (*p == ',')
            p++;
          else
            g_assert_cmpint (*p, ==, '}');
        }
      p++;
    }
  g_assert_cmpint (*p, ==, ' ');
  p++;
  g_assert_true (parse_value (p, &value));

  sample = g_new0 (Sample, 1);
  sample->name = g_steal_pointer (&name);
  sample->labels = g_steal_pointer (&labels);
  sample->value = value;
  return sample;
}

/* The family a sample belongs to: its own name, or a histogram's base name. */
static const char *
family_of (Exposition *e, const char *sample_name)
{
  static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
  gpointer family;

  if (g_hash_table_lookup_extended (e->types, sample_name, &family, NULL))
    return family;
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      if (g_str_has_suffix (sample_name, suffixes[i]))
        {
          g_autofree char *base
              = g_strndup (sample_name, strlen (sample_name) - strlen (suffixes[i]));
          const char *type;

          if (g_hash_table_lookup_extended (e->types, base, &family, (gpointer *)&type)
              && strcmp (type, "histogram") == 0)
            return family;
        }
    }
  return NULL;
}

static void
parse_comment (Exposition *e, const char *line, GHashTable *families_with_samples)
{
  g_auto (GStrv) parts = g_strsplit (line, " ", 4);
  GHashTable *table;

  g_assert_cmpuint (g_strv_length (parts), ==, 4);
  g_assert_cmpstr (parts[0], ==, "#");
  if (strcmp (parts[1], "TYPE") == 0)
    {
      g_assert_true (g_strv_contains (
          (const char *const[]){ "counter", "gauge", "histogram", "summary", "untyped", NULL },
          parts[3]));
      table = e->types;
    }
  else
    {
      g_assert_cmpstr (parts[1], ==, "HELP");
      table = e->helps;
    }
  /* at most one of each, and the TYPE before the family's first sample */
  g_assert_false (g_hash_table_contains (table, parts[2]));
  g_assert_false (g_hash_table_contains (families_with_samples, parts[2]));
  g_hash_table_insert (table, g_strdup (parts[2]), g_strdup (parts[3]));
}

static Exposition *
parse_exposition (const char *text)
{
  Exposition *e = g_new0 (Exposition, 1);
  g_autoptr (GHashTable) families_with_samples = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto (GStrv) lines = NULL;
  const char *current_family = NULL;
  guint n;

  e->types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  e->helps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  e->samples = g_ptr_array_new_with_free_func ((GDestroyNotify)sample_free);
  e->families_in_order = g_ptr_array_new ();

  g_assert_true (g_str_has_suffix (text, "\n"));
  lines = g_strsplit (text, "\n", -1);
  n = g_strv_length (lines);
  g_assert_cmpstr (lines[n - 1], ==, "");
  for (guint i = 0; i + 1 < n; i++)
    {
      const char *line = lines[i];
      Sample *sample;
      const char *family;
      g_autoptr (GString) identity = NULL;

      g_assert_cmpstr (line, !=, "");
      if (line[0] == '#')
        {
          parse_comment (e, line, families_with_samples);
          continue;
        }
      sample = parse_sample (line);
      g_ptr_array_add (e->samples, sample);
      family = family_of (e, sample->name);
      if (family == NULL)
        g_error ("sample without a TYPE line: %s", line);
      g_assert_true (g_str_has_prefix (sample->name, "atkafka_"));
      /* a family's samples are contiguous */
      if (current_family != family)
        {
          g_assert_false (g_hash_table_contains (families_with_samples, family));
          g_hash_table_add (families_with_samples, (gpointer)family);
          current_family = family;
        }
      g_ptr_array_add (e->families_in_order, (gpointer)family);
      /* no sample twice */
      identity = g_string_new (sample->name);
      for (guint j = 0; j < sample->labels->len; j++)
        g_string_append_printf (identity, "\1%s", (char *)sample->labels->pdata[j]);
      g_assert_false (g_hash_table_contains (seen, identity->str));
      g_hash_table_add (seen, g_string_free (g_steal_pointer (&identity), FALSE));
      if (strcmp (g_hash_table_lookup (e->types, family), "counter") == 0)
        g_assert_cmpfloat (sample->value, >=, 0);
    }
  return e;
}

static const char *
sample_label (const Sample *sample, const char *label)
{
  for (guint i = 0; i + 1 < sample->labels->len; i += 2)
    if (strcmp (sample->labels->pdata[i], label) == 0)
      return sample->labels->pdata[i + 1];
  return NULL;
}

/* The sample with this name whose labels include all the given pairs; NULL if none. */
static const Sample *
find_sample (Exposition *e, const char *name, ...)
{
  for (guint i = 0; i < e->samples->len; i++)
    {
      const Sample *sample = e->samples->pdata[i];
      gboolean match = strcmp (sample->name, name) == 0;
      va_list args;
      const char *label;

      va_start (args, name);
      while (match && (label = va_arg (args, const char *)) != NULL)
        match = g_strcmp0 (sample_label (sample, label), va_arg (args, const char *)) == 0;
      va_end (args);
      if (match)
        return sample;
    }
  return NULL;
}

#define assert_sample(e, expected, ...)                                                            \
  G_STMT_START                                                                                     \
  {                                                                                                \
    const Sample *s_ = find_sample ((e), __VA_ARGS__, NULL);                                       \
    g_assert_nonnull (s_);                                                                         \
    g_assert_cmpfloat_with_epsilon (s_->value, (expected), 1e-9);                                  \
  }                                                                                                \
  G_STMT_END

/* Every histogram: buckets ascending in le, counts non-decreasing, +Inf last and equal to
 * _count, and a _sum. */
static void
check_histograms (Exposition *e)
{
  GHashTableIter iter;
  gpointer name, type;

  g_hash_table_iter_init (&iter, e->types);
  while (g_hash_table_iter_next (&iter, &name, &type))
    {
      g_autofree char *bucket_name = g_strconcat (name, "_bucket", NULL);
      g_autofree char *count_name = g_strconcat (name, "_count", NULL);
      g_autofree char *sum_name = g_strconcat (name, "_sum", NULL);
      gdouble last_le = -INFINITY, last_count = 0;
      guint n_buckets = 0;
      const Sample *count;

      if (strcmp (type, "histogram") != 0)
        continue;
      for (guint i = 0; i < e->samples->len; i++)
        {
          const Sample *sample = e->samples->pdata[i];
          gdouble le;

          if (strcmp (sample->name, bucket_name) != 0)
            continue;
          g_assert_true (parse_value (sample_label (sample, "le"), &le));
          g_assert_cmpfloat (le, >, last_le);
          g_assert_cmpfloat (sample->value, >=, last_count);
          last_le = le;
          last_count = sample->value;
          n_buckets++;
        }
      g_assert_cmpuint (n_buckets, >=, 2);
      g_assert_true (isinf (last_le) && last_le > 0);
      count = find_sample (e, count_name, NULL);
      g_assert_nonnull (count);
      g_assert_cmpfloat (count->value, ==, last_count);
      g_assert_nonnull (find_sample (e, sum_name, NULL));
    }
}

static Exposition *
render_and_parse (const AtkStats *stats, gint64 now_ms)
{
  g_autoptr (GString) out = g_string_new (NULL);
  Exposition *e;

  atk_stats_render_prometheus (stats, now_ms, out);
  if (g_test_verbose ())
    g_printerr ("%s", out->str);
  e = parse_exposition (out->str);
  check_histograms (e);
  return e;
}

/* ---- tests ---- */

static const char weird_collection[] = "we\"ird\\coll\nection";

static void
populate (AtkStats *stats)
{
  atk_stats_count_handled (stats, "operation#create", "app.bsky.feed.post");
  atk_stats_count_handled (stats, "account", NULL);
  atk_stats_count_handled (stats, "operation#create", "app.bsky.feed.post");
  atk_stats_count_handled (stats, "operation#delete", weird_collection);
  atk_stats_count_decode_error (stats, "bad_cbor");
  atk_stats_count_decode_error (stats, "cid_mismatch");
  atk_stats_count_decode_error (stats, "bad_cbor");
  /* bounds 0.005 0.01 0.015 0.02 0.025 0.03 0.04 0.05 0.06 0.075 0.1 0.15 0.25 0.5 1 2.5 5 10 30 */
  atk_stats_observe_latency (stats, 0.001);
  atk_stats_observe_latency (stats, 0.007);
  atk_stats_observe_latency (stats, 0.035);
  atk_stats_observe_latency (stats, 0.07);
  atk_stats_observe_latency (stats, 0.2);
  atk_stats_observe_latency (stats, 3);
  atk_stats_observe_latency (stats, 100);

  stats->source_state = "connected";
  stats->reconnects = 3;
  stats->frames_received = 1000;
  stats->bytes_received = 123456789012ull;
  stats->has_last_seq = TRUE;
  stats->last_seq = 7000000001;
  stats->has_cursor = TRUE;
  stats->cursor = 6999999990;
  stats->last_event_time_ms = 1700000000000;
  stats->filtered_ops = 11;
  stats->unknown_events = 12;
  stats->error_frames = 13;
  stats->outdated_cursor_infos = 14;
  stats->produced_ok = 7;
  stats->produced_error = 2;
  stats->in_flight = 40;
  stats->in_flight_bytes = 4096;
  stats->paused = TRUE;
  stats->backpressure_drops = 5;
  stats->osprey_compatible = FALSE;
}

static void
test_populated (void)
{
  AtkStats stats;
  g_autoptr (Exposition) e = NULL;

  atk_stats_init (&stats);
  populate (&stats);
  g_assert_cmpuint (atk_stats_get_handled_total (&stats), ==, 4);
  e = render_and_parse (&stats, 1700000002500);

  assert_sample (e, 2, "atkafka_handled_events", "action_name", "operation#create", "collection",
                 "app.bsky.feed.post");
  assert_sample (e, 1, "atkafka_handled_events", "action_name", "account", "collection", "");
  /* not an NSID: counted under "invalid" (issue 9), not as a label of its own */
  assert_sample (e, 1, "atkafka_handled_events", "action_name", "operation#delete", "collection",
                 "invalid");
  assert_sample (e, 2, "atkafka_decode_errors_total", "kind", "bad_cbor");
  assert_sample (e, 1, "atkafka_decode_errors_total", "kind", "cid_mismatch");
  assert_sample (e, 7, "atkafka_produced_events", "status", "ok");
  assert_sample (e, 2, "atkafka_produced_events", "status", "error");

  assert_sample (e, 1, "atkafka_delivery_latency_seconds_bucket", "le", "0.005");
  assert_sample (e, 2, "atkafka_delivery_latency_seconds_bucket", "le", "0.01");
  assert_sample (e, 2, "atkafka_delivery_latency_seconds_bucket", "le", "0.03");
  assert_sample (e, 3, "atkafka_delivery_latency_seconds_bucket", "le", "0.04");
  assert_sample (e, 3, "atkafka_delivery_latency_seconds_bucket", "le", "0.06");
  assert_sample (e, 4, "atkafka_delivery_latency_seconds_bucket", "le", "0.075");
  assert_sample (e, 4, "atkafka_delivery_latency_seconds_bucket", "le", "0.1");
  assert_sample (e, 5, "atkafka_delivery_latency_seconds_bucket", "le", "0.25");
  assert_sample (e, 5, "atkafka_delivery_latency_seconds_bucket", "le", "2.5");
  assert_sample (e, 6, "atkafka_delivery_latency_seconds_bucket", "le", "5");
  assert_sample (e, 6, "atkafka_delivery_latency_seconds_bucket", "le", "30");
  assert_sample (e, 7, "atkafka_delivery_latency_seconds_bucket", "le", "+Inf");
  assert_sample (e, 7, "atkafka_delivery_latency_seconds_count");
  assert_sample (e, 103.313, "atkafka_delivery_latency_seconds_sum");

  assert_sample (e, 1, "atkafka_relay_connected");
  assert_sample (e, 1, "atkafka_relay_state", "state", "connected");
  assert_sample (e, 0, "atkafka_relay_state", "state", "backoff");
  assert_sample (e, 0, "atkafka_relay_state", "state", "connecting");
  assert_sample (e, 3, "atkafka_relay_reconnects_total");
  assert_sample (e, 1000, "atkafka_frames_received_total");
  assert_sample (e, 123456789012.0, "atkafka_bytes_received_total");
  assert_sample (e, 7000000001.0, "atkafka_last_seq");
  assert_sample (e, 6999999990.0, "atkafka_cursor_seq");
  assert_sample (e, 2.5, "atkafka_event_lag_seconds");
  assert_sample (e, 11, "atkafka_filtered_ops_total");
  assert_sample (e, 12, "atkafka_unknown_events_total");
  assert_sample (e, 13, "atkafka_error_frames_total");
  assert_sample (e, 14, "atkafka_outdated_cursor_total");
  assert_sample (e, 40, "atkafka_kafka_in_flight_messages");
  assert_sample (e, 4096, "atkafka_kafka_in_flight_bytes");
  assert_sample (e, 1, "atkafka_paused");
  assert_sample (e, 5, "atkafka_backpressure_disconnects_total");
  assert_sample (e, 0, "atkafka_osprey_compatible");

  /* the reference's names and types, for drop-in dashboards */
  g_assert_cmpstr (g_hash_table_lookup (e->types, "atkafka_handled_events"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (e->types, "atkafka_produced_events"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (e->types, "atkafka_relay_connected"), ==, "gauge");
  g_assert_cmpstr (g_hash_table_lookup (e->types, "atkafka_delivery_latency_seconds"), ==,
                   "histogram");
  /* every family has its HELP */
  g_assert_cmpuint (g_hash_table_size (e->helps), ==, g_hash_table_size (e->types));

  atk_stats_clear (&stats);
}

static void
test_empty (void)
{
  AtkStats stats;
  g_autoptr (Exposition) e = NULL;

  atk_stats_init (&stats);
  g_assert_cmpuint (atk_stats_get_handled_total (&stats), ==, 0);
  e = render_and_parse (&stats, 1700000000000);

  /* unknown values are absent rather than a misleading 0 */
  g_assert_null (find_sample (e, "atkafka_last_seq", NULL));
  g_assert_null (find_sample (e, "atkafka_cursor_seq", NULL));
  g_assert_null (find_sample (e, "atkafka_event_lag_seconds", NULL));
  g_assert_null (find_sample (e, "atkafka_handled_events", NULL));
  assert_sample (e, 0, "atkafka_produced_events", "status", "ok");
  assert_sample (e, 0, "atkafka_delivery_latency_seconds_bucket", "le", "+Inf");
  assert_sample (e, 0, "atkafka_delivery_latency_seconds_count");
  assert_sample (e, 0, "atkafka_relay_connected");
  assert_sample (e, 1, "atkafka_relay_state", "state", "stopped");
  atk_stats_clear (&stats);
  atk_stats_clear (&stats); /* clearing twice is harmless */
}

static void
test_relay_state (void)
{
  AtkStats stats;
  g_autoptr (Exposition) e = NULL;
  guint ones = 0;

  atk_stats_init (&stats);
  stats.source_state = "backoff";
  e = render_and_parse (&stats, 0);
  assert_sample (e, 0, "atkafka_relay_connected");
  for (guint i = 0; i < e->samples->len; i++)
    {
      const Sample *sample = e->samples->pdata[i];
      if (strcmp (sample->name, "atkafka_relay_state") == 0 && sample->value == 1)
        {
          g_assert_cmpstr (sample_label (sample, "state"), ==, "backoff");
          ones++;
        }
    }
  g_assert_cmpuint (ones, ==, 1);
  g_clear_pointer (&e, exposition_free);

  /* a state this file does not know still shows */
  stats.source_state = "draining";
  e = render_and_parse (&stats, 0);
  assert_sample (e, 1, "atkafka_relay_state", "state", "draining");
  assert_sample (e, 0, "atkafka_relay_state", "state", "backoff");
  atk_stats_clear (&stats);
}

static void
test_latency_edges (void)
{
  AtkStats stats;

  atk_stats_init (&stats);
  /* a bucket counts observations less than or equal to its bound */
  atk_stats_observe_latency (&stats, 0.005);
  atk_stats_observe_latency (&stats, NAN); /* ignored */
  atk_stats_observe_latency (&stats, -1);  /* clock trouble: counts as 0 */
  atk_stats_observe_latency (&stats, 31);
  g_assert_cmpuint (stats.latency_count, ==, 3);
  g_assert_cmpuint (stats.latency_buckets[0], ==, 2);
  g_assert_cmpuint (stats.latency_buckets[ATK_STATS_LATENCY_BUCKETS - 1], ==, 2);
  g_assert_cmpfloat_with_epsilon (stats.latency_sum, 31.005, 1e-9);
  for (guint i = 1; i < ATK_STATS_LATENCY_BUCKETS; i++)
    g_assert_cmpfloat (atk_stats_latency_bound (i), >, atk_stats_latency_bound (i - 1));
  atk_stats_clear (&stats);
}

/* Same content, different insertion order: the same text. */
static void
test_deterministic (void)
{
  static const char *const collections[] = { "b.c", "a.b", "z", "", "a.b.c", "app.bsky.x" };
  AtkStats one, two;
  g_autoptr (GString) out_one = g_string_new (NULL);
  g_autoptr (GString) out_two = g_string_new (NULL);
  g_autoptr (GString) again = g_string_new (NULL);
  const Sample *previous = NULL;
  g_autoptr (Exposition) e = NULL;

  atk_stats_init (&one);
  atk_stats_init (&two);
  for (guint i = 0; i < G_N_ELEMENTS (collections); i++)
    {
      atk_stats_count_handled (&one, "operation#update", collections[i]);
      atk_stats_count_handled (&two, "operation#update",
                               collections[G_N_ELEMENTS (collections) - 1 - i]);
      atk_stats_count_decode_error (&one, collections[i]);
      atk_stats_count_decode_error (&two, collections[G_N_ELEMENTS (collections) - 1 - i]);
    }
  atk_stats_render_prometheus (&one, 5, out_one);
  atk_stats_render_prometheus (&two, 5, out_two);
  atk_stats_render_prometheus (&one, 5, again);
  g_assert_cmpstr (out_one->str, ==, out_two->str);
  g_assert_cmpstr (out_one->str, ==, again->str);

  /* and the order is by label value */
  e = parse_exposition (out_one->str);
  for (guint i = 0; i < e->samples->len; i++)
    {
      const Sample *sample = e->samples->pdata[i];
      if (strcmp (sample->name, "atkafka_handled_events") != 0)
        continue;
      if (previous != NULL)
        g_assert_cmpint (
            strcmp (sample_label (previous, "collection"), sample_label (sample, "collection")), <,
            0);
      previous = sample;
    }
  g_assert_nonnull (previous);
  atk_stats_clear (&one);
  atk_stats_clear (&two);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/stats/populated", test_populated);
  g_test_add_func ("/stats/empty", test_empty);
  g_test_add_func ("/stats/relay-state", test_relay_state);
  g_test_add_func ("/stats/latency-edges", test_latency_edges);
  g_test_add_func ("/stats/deterministic", test_deterministic);
  return g_test_run ();
}
