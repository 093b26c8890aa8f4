/* Tests for the EventTransformer against the captured vectors.
 *
 * The expected messages are built here, independently, from the oracle renderings
 * (frames.jsonl: header, body, records) following docs/reference.md, and compared as
 * parsed JSON values with what the transformer makes from the binary frames.
 * SPDX-License-Identifier: MIT */
#include <json-glib/json-glib.h>
#include <string.h>

#include "atk-car.h"
#include "atk-error.h"
#include "atk-event-transformer.h"
#include "atk-test-util.h"

#define SNOWFLAKE_EPOCH_MS G_GINT64_CONSTANT (1420070400000)
/* 2024-01-01T12:00:00.123456Z, the "now" passed to every transform. */
#define TEST_NOW_US G_GINT64_CONSTANT (1704110400123456)

/* ---- vector loading ---- */

typedef struct
{
  GPtrArray *frames; /* GBytes views of each frame */
  GPtrArray *oracle; /* JsonNode* per frame (the jsonl line) */
} Vector;

static void
vector_free (Vector *v)
{
  g_ptr_array_unref (v->frames);
  g_ptr_array_unref (v->oracle);
  g_free (v);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Vector, vector_free)

static Vector *
vector_load (const char *name)
{
  g_autofree char *bin = g_strdup_printf ("%s.bin", name);
  g_autofree char *jsonl = g_strdup_printf ("%s.jsonl", name);
  Vector *v = g_new0 (Vector, 1);

  v->frames = atk_test_load_frames (bin);
  v->oracle = atk_test_load_jsonl (jsonl);
  g_assert_cmpuint (v->frames->len, ==, v->oracle->len);
  g_assert_cmpuint (v->frames->len, >, 0);
  return v;
}

/* ---- the expected messages, from the oracle ---- */

typedef struct
{
  char *key;
  JsonNode *value;         /* the standard event */
  const char *action_name; /* static */
  char *collection;
  gboolean has_seq;
  gint64 seq;
  char *time; /* the event's time as sent, or NULL */
  guint op_index;
} Expected;

static void
expected_free (Expected *e)
{
  g_free (e->key);
  json_node_unref (e->value);
  g_free (e->collection);
  g_free (e->time);
  g_free (e);
}

static JsonNode *
object_node (JsonObject *object)
{
  JsonNode *node = json_node_init_object (json_node_alloc (), object);
  json_object_unref (object);
  return node;
}

static Expected *
expected_new (JsonObject *body, const char *did, const char *action_name)
{
  Expected *e = g_new0 (Expected, 1);

  e->key = g_strdup (did != NULL && *did != '\0' ? did : "<unknown>");
  e->action_name = action_name;
  e->has_seq = json_object_has_member (body, "seq");
  e->seq = e->has_seq ? json_object_get_int_member (body, "seq") : 0;
  if (json_object_has_member (body, "time"))
    e->time = g_strdup (json_object_get_string_member (body, "time"));
  return e;
}

static JsonObject *
event_object (const char *did, const char *timestamp)
{
  JsonObject *event = json_object_new ();
  json_object_set_string_member (event, "did", did);
  json_object_set_string_member (event, "timestamp", timestamp);
  json_object_set_null_member (event, "eventMetadata");
  return event;
}

static void
expect_commit (JsonObject *line, JsonObject *body, GPtrArray *out)
{
  const char *did = json_object_get_string_member (body, "repo");
  const char *time = json_object_get_string_member (body, "time");
  JsonArray *ops = json_object_get_array_member (body, "ops");
  JsonObject *records = json_object_get_object_member (line, "records");

  for (guint i = 0; i < json_array_get_length (ops); i++)
    {
      JsonObject *op = json_array_get_object_element (ops, i);
      const char *action = json_object_get_string_member (op, "action");
      const char *path = json_object_get_string_member (op, "path");
      const char *slash = strchr (path, '/');
      g_autofree char *collection = g_strndup (path, slash - path);
      g_autofree char *uri = g_strdup_printf ("at://%s/%s", did, path);
      JsonObject *event = event_object (did, time);
      JsonObject *operation = json_object_new ();
      const char *action_name = g_str_equal (action, "create")   ? "operation#create"
                                : g_str_equal (action, "update") ? "operation#update"
                                                                 : "operation#delete";
      Expected *e = expected_new (body, did, action_name);

      g_assert_nonnull (slash);
      json_object_set_string_member (operation, "action", action);
      json_object_set_string_member (operation, "collection", collection);
      json_object_set_string_member (operation, "rkey", slash + 1);
      json_object_set_string_member (operation, "uri", uri);
      json_object_set_string_member (operation, "path", path);
      if (g_str_equal (action, "delete"))
        {
          json_object_set_string_member (operation, "cid", "");
          json_object_set_null_member (operation, "record");
        }
      else
        {
          JsonObject *link = json_object_get_object_member (op, "cid");
          json_object_set_string_member (operation, "cid",
                                         json_object_get_string_member (link, "$link"));
          g_assert_true (json_object_has_member (records, path));
          json_object_set_member (operation, "record",
                                  json_node_copy (json_object_get_member (records, path)));
        }
      json_object_set_object_member (event, "operation", operation);
      e->value = object_node (event);
      e->collection = g_steal_pointer (&collection);
      e->op_index = i;
      g_ptr_array_add (out, e);
    }
}

static void
expect_event (const char *type, JsonObject *body, GPtrArray *out)
{
  JsonObject *inner = json_object_new ();
  JsonObject *event;
  Expected *e;

  if (g_str_equal (type, "#info"))
    {
      event = event_object ("", "");
      e = expected_new (body, NULL, "info");
      json_object_set_string_member (inner, "name", json_object_get_string_member (body, "name"));
      if (json_object_has_member (body, "message"))
        json_object_set_string_member (inner, "message",
                                       json_object_get_string_member (body, "message"));
      json_object_set_object_member (event, "info", inner);
      e->value = object_node (event);
      g_ptr_array_add (out, e);
      return;
    }

  event = event_object (json_object_get_string_member (body, "did"),
                        json_object_get_string_member (body, "time"));
  if (g_str_equal (type, "#account"))
    {
      e = expected_new (body, json_object_get_string_member (body, "did"), "account");
      json_object_set_boolean_member (inner, "active",
                                      json_object_get_boolean_member (body, "active"));
      json_object_set_int_member (inner, "seq", json_object_get_int_member (body, "seq"));
      if (json_object_has_member (body, "status"))
        json_object_set_string_member (inner, "status",
                                       json_object_get_string_member (body, "status"));
      json_object_set_object_member (event, "account", inner);
    }
  else if (g_str_equal (type, "#identity"))
    {
      e = expected_new (body, json_object_get_string_member (body, "did"), "identity");
      json_object_set_int_member (inner, "seq", json_object_get_int_member (body, "seq"));
      json_object_set_string_member (inner, "handle",
                                     json_object_has_member (body, "handle")
                                         ? json_object_get_string_member (body, "handle")
                                         : "");
      json_object_set_object_member (event, "identity", inner);
    }
  else
    {
      g_assert_cmpstr (type, ==, "#sync");
      e = expected_new (body, json_object_get_string_member (body, "did"), "sync");
      json_object_set_int_member (inner, "seq", json_object_get_int_member (body, "seq"));
      json_object_set_string_member (inner, "rev", json_object_get_string_member (body, "rev"));
      json_object_set_object_member (event, "sync", inner);
    }
  e->value = object_node (event);
  g_ptr_array_add (out, e);
}

/* The messages reference.md says this oracle frame becomes. */
static GPtrArray *
expected_for_frame (JsonNode *oracle)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)expected_free);
  JsonObject *line = json_node_get_object (oracle);
  JsonObject *header = json_object_get_object_member (line, "header");
  JsonObject *body = json_object_get_object_member (line, "body");
  const char *type;

  if (json_object_get_int_member (header, "op") != 1)
    return out; /* error frame */
  type = json_object_get_string_member (header, "t");
  if (g_str_equal (type, "#commit"))
    expect_commit (line, body, out);
  else if (g_str_equal (type, "#account") || g_str_equal (type, "#identity")
           || g_str_equal (type, "#info") || g_str_equal (type, "#sync"))
    expect_event (type, body, out);
  return out;
}

/* ---- running the transformer ---- */

static GPtrArray *
transform_frame (AtkEventTransformer *t, GBytes *frame, AtkTransformResult *result)
{
  GPtrArray *messages = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  g_autoptr (GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (frame, &len);

  g_assert_true (
      atk_event_transformer_transform (t, data, len, TEST_NOW_US, messages, result, &error));
  g_assert_no_error (error);
  g_assert_nonnull (result->frame);
  g_assert_cmpuint (result->n_messages, ==, messages->len);
  return messages;
}

static JsonNode *
parse_value (const AtkMessage *m)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node;

  /* Compact: no newline may appear in a Kafka value line. */
  g_assert_null (memchr (m->value->str, '\n', m->value->len));
  g_assert_cmpuint (strlen (m->value->str), ==, m->value->len);
  node = json_from_string (m->value->str, &error);
  g_assert_no_error (error);
  g_assert_nonnull (node);
  return node;
}

/* Event time in ms, parsed with GDateTime (not the code under test). */
static gint64
oracle_time_ms (const char *text)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_iso8601 (text, NULL);
  g_assert_nonnull (dt);
  return g_date_time_to_unix (dt) * 1000 + g_date_time_get_microsecond (dt) / 1000;
}

static char *
expected_send_time (void)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (TEST_NOW_US / G_USEC_PER_SEC);
  return g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ");
}

static void
check_message_fields (const Expected *e, const AtkMessage *m, const char *context)
{
  g_assert_cmpstr (m->key, ==, e->key);
  g_assert_cmpstr (m->action_name, ==, e->action_name);
  g_assert_cmpstr (m->collection, ==, e->collection);
  g_assert_cmpint (m->has_seq, ==, e->has_seq);
  if (e->has_seq)
    g_assert_cmpint (m->seq, ==, e->seq);
  if (e->time != NULL)
    g_assert_cmpint (m->event_time_ms, ==, oracle_time_ms (e->time));
  else
    g_assert_cmpint (m->event_time_ms, ==, 0);
  (void)context;
}

static void
check_osprey (const Expected *e, const AtkMessage *m, JsonNode *value, const char *context)
{
  JsonObject *root = json_node_get_object (value);
  JsonObject *data;
  g_autofree char *send_time = expected_send_time ();
  gint64 id, expected_ms;

  g_assert_cmpuint (json_object_get_size (root), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (root, "send_time"), ==, send_time);
  data = json_object_get_object_member (root, "data");
  g_assert_nonnull (data);
  g_assert_cmpuint (json_object_get_size (data), ==, 6);
  g_assert_cmpstr (json_object_get_string_member (data, "action_name"), ==, e->action_name);
  g_assert_cmpstr (json_object_get_string_member (data, "encoding"), ==, "UTF8");
  g_assert_cmpuint (json_object_get_size (json_object_get_object_member (data, "secret_data")), ==,
                    0);
  if (e->time != NULL)
    g_assert_cmpstr (json_object_get_string_member (data, "timestamp"), ==, e->time);
  else
    g_assert_cmpstr (json_object_get_string_member (data, "timestamp"), ==, send_time);
  atk_test_assert_json_equal (json_object_get_member (data, "data"), e->value,
                              ATK_TEST_JSON_NUMBERS_STRICT, context);

  g_assert_cmpuint (json_node_get_value_type (json_object_get_member (data, "action_id")), ==,
                    G_TYPE_INT64);
  id = json_object_get_int_member (data, "action_id");
  g_assert_cmpint (id, ==, m->action_id);
  g_assert_cmpint (id, >, 0);
  expected_ms = e->time != NULL ? oracle_time_ms (e->time) : TEST_NOW_US / 1000;
  g_assert_cmpint ((id >> 22) + SNOWFLAKE_EPOCH_MS, ==, expected_ms);
  if (e->has_seq)
    {
      g_assert_cmpint ((id >> 8) & 0x3fff, ==, e->seq & 0x3fff);
      g_assert_cmpint (id & 0xff, ==, e->op_index);
    }
}

typedef struct
{
  guint n_messages;
  GHashTable *by_action; /* action_name → count */
  GArray *ids;           /* gint64 action_ids (Osprey) in order */
} RunStats;

static void
run_stats_clear (RunStats *s)
{
  g_clear_pointer (&s->by_action, g_hash_table_unref);
  g_clear_pointer (&s->ids, g_array_unref);
}

/* Transforms every frame of a vector and compares with the oracle; both modes. */
static void
check_vector (AtkEventTransformer *t, const Vector *v, gboolean osprey, RunStats *stats)
{
  atk_event_transformer_set_osprey_compatible (t, osprey);
  stats->by_action = g_hash_table_new (g_str_hash, g_str_equal);
  stats->ids = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (guint i = 0; i < v->frames->len; i++)
    {
      AtkTransformResult result = { 0 };
      g_autoptr (GPtrArray) expected = expected_for_frame (v->oracle->pdata[i]);
      g_autoptr (GPtrArray) messages = transform_frame (t, v->frames->pdata[i], &result);

      g_assert_cmpuint (result.n_op_errors, ==, 0);
      g_assert_no_error (result.op_error);
      g_assert_cmpuint (result.n_filtered, ==, 0);
      g_assert_cmpuint (messages->len, ==, expected->len);
      for (guint j = 0; j < messages->len; j++)
        {
          const Expected *e = expected->pdata[j];
          const AtkMessage *m = messages->pdata[j];
          g_autoptr (JsonNode) value = parse_value (m);
          g_autofree char *context = g_strdup_printf ("frame %u message %u", i, j);

          check_message_fields (e, m, context);
          if (osprey)
            check_osprey (e, m, value, context);
          else
            atk_test_assert_json_equal (value, e->value, ATK_TEST_JSON_NUMBERS_STRICT, context);
          g_hash_table_insert (
              stats->by_action, (gpointer)m->action_name,
              GUINT_TO_POINTER (
                  GPOINTER_TO_UINT (g_hash_table_lookup (stats->by_action, m->action_name)) + 1));
          g_array_append_val (stats->ids, m->action_id);
          stats->n_messages++;
        }
      atk_transform_result_clear (&result);
    }
}

static const char *const vector_names[] = {
  "relay-capture/frames",
  "pds-capture/frames",
  "pds-capture/frames-info-outdated",
  "pds-capture/frames-error-futurecursor",
};

static guint
count_of (const RunStats *s, const char *action)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (s->by_action, action));
}

static void
test_vectors_standard (void)
{
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  guint total = 0;

  g_assert_false (atk_event_transformer_get_osprey_compatible (t));
  for (guint i = 0; i < G_N_ELEMENTS (vector_names); i++)
    {
      g_autoptr (Vector) v = vector_load (vector_names[i]);
      RunStats stats = { 0 };

      check_vector (t, v, FALSE, &stats);
      total += stats.n_messages;
      if (i == 0)
        {
          g_autoptr (GBytes) manifest_bytes = atk_test_load_vector ("relay-capture/manifest.json");
          g_autoptr (JsonNode) manifest
              = json_from_string (g_bytes_get_data (manifest_bytes, NULL), NULL);
          JsonObject *m = json_node_get_object (manifest);

          g_assert_cmpuint (v->frames->len, ==, json_object_get_int_member (m, "frames"));
          g_assert_cmpuint (count_of (&stats, "operation#create"), ==,
                            json_object_get_int_member (m, "creates"));
          g_assert_cmpuint (count_of (&stats, "operation#update"), ==,
                            json_object_get_int_member (m, "updates"));
          g_assert_cmpuint (count_of (&stats, "operation#delete"), ==,
                            json_object_get_int_member (m, "deletes"));
          g_assert_cmpuint (count_of (&stats, "identity"), ==,
                            json_object_get_int_member (m, "identity"));
          g_assert_cmpuint (count_of (&stats, "account"), ==,
                            json_object_get_int_member (m, "account"));
          /* And the numbers the task states, in case the manifest were wrong. */
          g_assert_cmpuint (count_of (&stats, "operation#create"), ==, 144);
          g_assert_cmpuint (count_of (&stats, "operation#update"), ==, 2);
          g_assert_cmpuint (count_of (&stats, "operation#delete"), ==, 4);
          g_assert_cmpuint (count_of (&stats, "identity"), ==, 1);
          g_assert_cmpuint (count_of (&stats, "account"), ==, 1);
        }
      if (i == 1)
        {
          g_assert_cmpuint (count_of (&stats, "sync"), ==, 4);
          g_assert_cmpuint (count_of (&stats, "account"), ==, 8);
          g_assert_cmpuint (count_of (&stats, "identity"), ==, 5);
        }
      if (i == 2)
        g_assert_cmpuint (count_of (&stats, "info"), ==, 1);
      if (i == 3)
        g_assert_cmpuint (stats.n_messages, ==, 0);
      run_stats_clear (&stats);
    }
  /* 152 (relay) + 34 (PDS) + 2 (#info, then a commit) + 0 (an error frame), per the oracles. */
  g_assert_cmpuint (total, ==, 188);
}

static void
test_vectors_osprey (void)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr (GArray) all_ids = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (guint i = 0; i < G_N_ELEMENTS (vector_names); i++)
    {
      g_autoptr (Vector) v = vector_load (vector_names[i]);
      g_autoptr (AtkEventTransformer) t1 = atk_event_transformer_new ();
      g_autoptr (AtkEventTransformer) t2 = atk_event_transformer_new ();
      RunStats first = { 0 }, again = { 0 }, other = { 0 };

      check_vector (t1, v, TRUE, &first);
      g_assert_true (atk_event_transformer_get_osprey_compatible (t1));
      /* A second run (same instance) gives the same ids, except for #info whose id
       * comes from a per-instance counter; a fresh instance gives exactly the same. */
      check_vector (t1, v, TRUE, &again);
      check_vector (t2, v, TRUE, &other);
      g_assert_cmpuint (first.ids->len, ==, other.ids->len);
      g_assert_cmpmem (first.ids->data, first.ids->len * sizeof (gint64), other.ids->data,
                       other.ids->len * sizeof (gint64));
      g_assert_cmpuint (first.ids->len, ==, again.ids->len);
      for (guint j = 0; j < first.ids->len; j++)
        if (count_of (&first, "info") == 0)
          g_assert_cmpint (g_array_index (first.ids, gint64, j), ==,
                           g_array_index (again.ids, gint64, j));
      g_array_append_vals (all_ids, first.ids->data, first.ids->len);
      run_stats_clear (&first);
      run_stats_clear (&again);
      run_stats_clear (&other);
    }

  g_assert_cmpuint (all_ids->len, ==, 188);
  for (guint j = 0; j < all_ids->len; j++)
    {
      gint64 *id = &g_array_index (all_ids, gint64, j);
      g_assert_false (g_hash_table_contains (seen, id));
      g_hash_table_add (seen, id);
    }
}

/* A replay of the same stream (cursor=0) yields the same ids for the same events. */
static void
test_replay_same_ids (void)
{
  g_autoptr (Vector) live = vector_load ("pds-capture/frames");
  g_autoptr (Vector) replay = vector_load ("pds-capture/frames-replay-cursor0");
  g_autoptr (AtkEventTransformer) t1 = atk_event_transformer_new ();
  g_autoptr (AtkEventTransformer) t2 = atk_event_transformer_new ();
  g_autoptr (GHashTable) by_event = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint matched = 0;

  atk_event_transformer_set_osprey_compatible (t1, TRUE);
  atk_event_transformer_set_osprey_compatible (t2, TRUE);
  for (guint i = 0; i < live->frames->len; i++)
    {
      AtkTransformResult result = { 0 };
      g_autoptr (GPtrArray) messages = transform_frame (t1, live->frames->pdata[i], &result);
      for (guint j = 0; j < messages->len; j++)
        {
          AtkMessage *m = messages->pdata[j];
          g_hash_table_insert (by_event, g_strdup_printf ("%" G_GINT64_FORMAT "/%u", m->seq, j),
                               GINT_TO_POINTER (1));
          g_hash_table_insert (by_event,
                               g_strdup_printf ("%" G_GINT64_FORMAT "/%u/%" G_GINT64_FORMAT, m->seq,
                                                j, m->action_id),
                               GINT_TO_POINTER (1));
        }
      atk_transform_result_clear (&result);
    }
  /* And a different instance at a different "now" must still agree. */
  for (guint i = 0; i < replay->frames->len; i++)
    {
      AtkTransformResult result = { 0 };
      g_autoptr (GPtrArray) messages
          = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
      gsize len;
      const guint8 *data = g_bytes_get_data (replay->frames->pdata[i], &len);

      g_assert_true (atk_event_transformer_transform (t2, data, len, TEST_NOW_US + 3600000000,
                                                      messages, &result, NULL));
      for (guint j = 0; j < messages->len; j++)
        {
          AtkMessage *m = messages->pdata[j];
          g_autofree char *event = g_strdup_printf ("%" G_GINT64_FORMAT "/%u", m->seq, j);
          g_autofree char *with_id = g_strdup_printf ("%" G_GINT64_FORMAT "/%u/%" G_GINT64_FORMAT,
                                                      m->seq, j, m->action_id);
          if (g_hash_table_contains (by_event, event))
            {
              g_assert_true (g_hash_table_contains (by_event, with_id));
              matched++;
            }
        }
      atk_transform_result_clear (&result);
    }
  /* Every message of the replay (26 in its oracle) is one of the live stream's. */
  g_assert_cmpuint (matched, ==, 26);
}

/* ---- filters ---- */

static gboolean
nsid_under (const char *collection, const char *base)
{
  gsize n = strlen (base);
  return strncmp (collection, base, n) == 0 && (collection[n] == '\0' || collection[n] == '.');
}

/* Runs the relay and PDS captures through a filtered transformer; checks against the
 * oracle: which collections pass, and how many ops were filtered. */
static void
check_filter (const char *const *watched, const char *const *ignored, const char *base,
              gboolean keep_matching)
{
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  g_autoptr (GError) error = NULL;
  guint expect_pass = 0, expect_filtered = 0, got_filtered = 0, got_ops = 0;

  g_assert_true (atk_event_transformer_set_collection_filter (t, watched, ignored, &error));
  g_assert_no_error (error);
  for (guint f = 0; f < 2; f++)
    {
      g_autoptr (Vector) v = vector_load (vector_names[f]);
      for (guint i = 0; i < v->frames->len; i++)
        {
          AtkTransformResult result = { 0 };
          g_autoptr (GPtrArray) expected = expected_for_frame (v->oracle->pdata[i]);
          g_autoptr (GPtrArray) messages = transform_frame (t, v->frames->pdata[i], &result);
          guint k = 0;

          for (guint j = 0; j < expected->len; j++)
            {
              Expected *e = expected->pdata[j];
              AtkMessage *m;
              g_autoptr (JsonNode) value = NULL;

              if (e->collection != NULL && nsid_under (e->collection, base) != keep_matching)
                {
                  expect_filtered++;
                  continue;
                }
              if (e->collection != NULL)
                expect_pass++;
              g_assert_cmpuint (k, <, messages->len);
              m = messages->pdata[k++];
              value = parse_value (m);
              atk_test_assert_json_equal (value, e->value, ATK_TEST_JSON_NUMBERS_STRICT,
                                          "filtered");
              if (m->collection != NULL)
                {
                  g_assert_cmpint (nsid_under (m->collection, base), ==, keep_matching);
                  got_ops++;
                }
            }
          g_assert_cmpuint (k, ==, messages->len);
          got_filtered += result.n_filtered;
          atk_transform_result_clear (&result);
        }
    }
  g_assert_cmpuint (got_filtered, ==, expect_filtered);
  g_assert_cmpuint (got_ops, ==, expect_pass);
  g_assert_cmpuint (expect_filtered, >, 0);
  g_assert_cmpuint (expect_pass, >, 0);
}

static void
test_filter_watched (void)
{
  const char *const watched[] = { "app.bsky.feed.*", NULL };
  const char *const exact[] = { " app.bsky.feed ", "", NULL };

  check_filter (watched, NULL, "app.bsky.feed", TRUE);
  check_filter (exact, NULL, "app.bsky.feed", TRUE);
}

static void
test_filter_ignored (void)
{
  const char *const ignored[] = { "app.bsky.feed.*", NULL };
  const char *const empty[] = { NULL };

  check_filter (empty, ignored, "app.bsky.feed", FALSE);
}

/* Patterns match whole NSID segments: "app.bsky.fe" is not a prefix of "app.bsky.feed.like". */
static void
test_filter_segment_boundary (void)
{
  const char *const watched[]
      = { "app.bsky.fe", "app.bsky.feed.lik.*", "app.bsky.graph.follo", NULL };
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  g_autoptr (Vector) v = vector_load ("relay-capture/frames");
  guint n_ops = 0, n_filtered = 0, n_op_messages = 0;

  g_assert_true (atk_event_transformer_set_collection_filter (t, watched, NULL, NULL));
  for (guint i = 0; i < v->frames->len; i++)
    {
      AtkTransformResult result = { 0 };
      g_autoptr (GPtrArray) expected = expected_for_frame (v->oracle->pdata[i]);
      g_autoptr (GPtrArray) messages = transform_frame (t, v->frames->pdata[i], &result);

      for (guint j = 0; j < expected->len; j++)
        n_ops += ((Expected *)expected->pdata[j])->collection != NULL;
      for (guint j = 0; j < messages->len; j++)
        n_op_messages += ((AtkMessage *)messages->pdata[j])->collection != NULL;
      n_filtered += result.n_filtered;
      atk_transform_result_clear (&result);
    }
  g_assert_cmpuint (n_ops, ==, 150);
  g_assert_cmpuint (n_filtered, ==, n_ops);
  g_assert_cmpuint (n_op_messages, ==, 0);
}

static void
test_filter_config (void)
{
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  const char *const a[] = { "app.bsky.*", NULL };
  const char *const b[] = { "com.example", NULL };
  const char *const bad[] = { "app.*.feed", NULL };
  const char *const blank[] = { "  ", NULL };
  GError *error = NULL;

  g_assert_false (atk_event_transformer_set_collection_filter (t, a, b, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_clear_error (&error);
  g_assert_false (atk_event_transformer_set_collection_filter (t, bad, NULL, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_clear_error (&error);
  /* Blank entries are no filter at all, as if the option were empty. */
  g_assert_true (atk_event_transformer_set_collection_filter (t, blank, blank, &error));
  g_assert_no_error (error);
  /* Unsetting: NULL lists accept everything again. */
  g_assert_true (atk_event_transformer_set_collection_filter (t, a, NULL, &error));
  g_assert_true (atk_event_transformer_set_collection_filter (t, NULL, NULL, &error));
  g_assert_no_error (error);
}

/* ---- damaged commits ---- */

/* The first commit frame with at least n ops (all of them creates). */
static guint
find_multi_op_commit (const Vector *v, guint n)
{
  for (guint i = 0; i < v->frames->len; i++)
    {
      g_autoptr (GPtrArray) expected = expected_for_frame (v->oracle->pdata[i]);
      gboolean all_creates = expected->len >= n;
      for (guint j = 0; j < expected->len; j++)
        all_creates
            = all_creates
              && g_str_equal (((Expected *)expected->pdata[j])->action_name, "operation#create");
      if (all_creates)
        return i;
    }
  g_assert_not_reached ();
}

typedef enum
{
  DAMAGE_RECORD_BYTE,
  DAMAGE_OP_CID,
} Damage;

/* Damages op #victim of a frame. By default only that op loses its record: it comes out
 * with "record":null, "recordError":<kind> and the CID its commit names; with
 * skip_unrenderable_records (the reference's behaviour) only that op is skipped. The
 * other ops come out as the oracle says either way. */
static void
check_damaged_op (Damage damage, gboolean skip, GQuark domain, gint code, const char *kind)
{
  g_autoptr (Vector) v = vector_load ("relay-capture/frames");
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  guint index = find_multi_op_commit (v, 3);
  const guint victim = 1;
  g_autoptr (GPtrArray) expected = expected_for_frame (v->oracle->pdata[index]);
  gsize len;
  const guint8 *clean = g_bytes_get_data (v->frames->pdata[index], &len);
  g_autofree guint8 *copy = g_memdup2 (clean, len);
  g_autoptr (GBytes) damaged = NULL;
  g_autoptr (GPtrArray) messages = NULL;
  g_autofree char *victim_cid = NULL;
  AtkTransformResult result = { 0 };
  const AtkFrame *frame;
  gsize offset;

  atk_event_transformer_set_skip_unrenderable_records (t, skip);
  /* Find where the bytes to damage are, through the decoded views into `clean`. */
  {
    g_autoptr (GPtrArray) ignore = transform_frame (t, v->frames->pdata[index], &result);
    const AtkRepoOp *op;
    g_autofree AtkCarIndex *car = g_new0 (AtkCarIndex, 1);
    const AtkCarBlock *block;

    frame = result.frame;
    g_assert_cmpuint (frame->n_ops, ==, expected->len);
    g_assert_cmpuint (ignore->len, ==, expected->len);
    op = &frame->ops[victim];
    g_assert_true (op->has_cid);
    if (damage == DAMAGE_OP_CID)
      offset = (gsize)(op->cid.digest - clean) + op->cid.digest_len - 1;
    else
      {
        g_assert_true (atk_car_index_build (car, frame->blocks, frame->blocks_len, NULL));
        block = atk_car_index_lookup (car, &op->cid);
        g_assert_nonnull (block);
        g_assert_cmpuint (block->len, >, 8);
        offset = (gsize)(block->data - clean) + block->len / 2;
      }
    g_assert_cmpuint (offset, <, len);
    atk_transform_result_clear (&result);
  }

  copy[offset] ^= 0x01;
  damaged = g_bytes_new (copy, len);
  messages = transform_frame (t, damaged, &result);
  g_assert_cmpuint (result.n_op_errors, ==, 1);
  g_assert_true (result.ops_skipped == skip);
  g_assert_cmpuint (result.n_op_error_kinds, ==, 1);
  g_assert_cmpstr (result.op_error_kinds[0].kind, ==, kind);
  g_assert_cmpuint (result.op_error_kinds[0].count, ==, 1);
  g_assert_error (result.op_error, domain, code);
  g_assert_cmpuint (messages->len, ==, skip ? expected->len - 1 : expected->len);
  victim_cid = atk_cid_to_string (&result.frame->ops[victim].cid);
  for (guint j = 0, k = 0; j < expected->len; j++)
    {
      g_autoptr (JsonNode) value = NULL;
      g_autoptr (JsonNode) want = json_node_copy (((Expected *)expected->pdata[j])->value);
      if (j == victim)
        {
          JsonObject *operation;
          if (skip)
            continue;
          operation = json_object_get_object_member (json_node_get_object (want), "operation");
          json_object_set_null_member (operation, "record");
          json_object_set_string_member (operation, "recordError", kind);
          json_object_set_string_member (operation, "cid", victim_cid);
        }
      value = parse_value (messages->pdata[k]);
      atk_test_assert_json_equal (value, want, ATK_TEST_JSON_NUMBERS_STRICT, "damaged commit");
      k++;
    }
  atk_transform_result_clear (&result);
  g_assert_null (result.op_error);
}

static void
test_record_byte_flipped (void)
{
  check_damaged_op (DAMAGE_RECORD_BYTE, FALSE, ATK_ERROR, ATK_ERROR_CID_MISMATCH, "cid_mismatch");
}

static void
test_op_cid_unknown (void)
{
  check_damaged_op (DAMAGE_OP_CID, FALSE, ATK_ERROR, ATK_ERROR_MISSING_BLOCK, "missing_block");
}

static void
test_record_byte_flipped_skipped (void)
{
  check_damaged_op (DAMAGE_RECORD_BYTE, TRUE, ATK_ERROR, ATK_ERROR_CID_MISMATCH, "cid_mismatch");
}

static void
test_op_cid_unknown_skipped (void)
{
  check_damaged_op (DAMAGE_OP_CID, TRUE, ATK_ERROR, ATK_ERROR_MISSING_BLOCK, "missing_block");
}

/* ---- frames we build by hand ---- */

static void
test_unknown_and_error_frames (void)
{
  /* {t: "#handle", op: 1} {seq: 5}: a type gone from the lexicon. */
  static const guint8 unknown[] = { 0xa2, 0x61, 't', 0x67, '#',  'h',  'a', 'n', 'd', 'l', 'e',
                                    0x62, 'o',  'p', 0x01, 0xa1, 0x63, 's', 'e', 'q', 0x05 };
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  g_autoptr (Vector) err = vector_load ("pds-capture/frames-error-futurecursor");
  AtkTransformResult result = { 0 };
  GError *error = NULL;
  gsize len;
  const guint8 *data;

  for (int osprey = 0; osprey < 2; osprey++)
    {
      atk_event_transformer_set_osprey_compatible (t, osprey);
      g_assert_true (atk_event_transformer_transform (t, unknown, sizeof unknown, TEST_NOW_US,
                                                      messages, &result, &error));
      g_assert_no_error (error);
      g_assert_cmpint (result.frame->kind, ==, ATK_EVENT_UNKNOWN);
      g_assert_cmpuint (messages->len, ==, 0);
      g_assert_cmpuint (result.n_messages, ==, 0);

      data = g_bytes_get_data (err->frames->pdata[0], &len);
      g_assert_true (
          atk_event_transformer_transform (t, data, len, TEST_NOW_US, messages, &result, &error));
      g_assert_no_error (error);
      g_assert_cmpint (result.frame->kind, ==, ATK_EVENT_ERROR);
      g_assert_cmpuint (messages->len, ==, 0);

      /* Not a frame at all: FALSE with an error, nothing appended. */
      g_assert_false (
          atk_event_transformer_transform (t, data, 3, TEST_NOW_US, messages, &result, &error));
      g_assert_nonnull (error);
      g_assert_true (error->domain == ATK_ERROR);
      g_clear_error (&error);
      g_assert_null (result.frame);
      g_assert_cmpuint (messages->len, ==, 0);
      atk_transform_result_clear (&result);
    }
}

/* ---- snowflakes and datetimes ---- */

static void
test_snowflake (void)
{
  /* 2024-01-01T00:00:00Z is 1704067200000 ms; 283996800000 ms after 2015-01-01. */
  const gint64 t2024 = G_GINT64_CONSTANT (1704067200000);
  gint64 id = atk_snowflake_for_event (t2024 + 7, 31527015322, 3);

  g_assert_cmpint (id, ==,
                   (G_GINT64_CONSTANT (283996800007) << 22) | ((31527015322 % 16384) << 8) | 3);
  g_assert_cmpint ((id >> 22) + SNOWFLAKE_EPOCH_MS, ==, t2024 + 7);
  g_assert_cmpint (atk_snowflake_for_event (SNOWFLAKE_EPOCH_MS + 1, 1, 0), ==,
                   (1 << 22) | (1 << 8));
  /* seq keeps its low 14 bits; op index its low 8. */
  g_assert_cmpint (atk_snowflake_for_event (SNOWFLAKE_EPOCH_MS, 0x4005, 0), ==, 5 << 8);
  g_assert_cmpint (atk_snowflake_for_event (SNOWFLAKE_EPOCH_MS, 0, 199), ==, 199);
  /* Neighbouring ops and events differ. */
  g_assert_cmpint (atk_snowflake_for_event (t2024, 10, 0), !=,
                   atk_snowflake_for_event (t2024, 10, 1));
  g_assert_cmpint (atk_snowflake_for_event (t2024, 10, 0), !=,
                   atk_snowflake_for_event (t2024, 11, 0));
  /* Times before the epoch do not make negative ids. */
  g_assert_cmpint (atk_snowflake_for_event (0, 1, 1), >=, 0);
  g_assert_cmpint (atk_snowflake_for_event (-5, 1, 1), ==, (1 << 8) | 1);
  /* Still positive near the end of the 41-bit range (year 2084). */
  g_assert_cmpint (atk_snowflake_for_event (G_GINT64_CONSTANT (3600000000000), 0x3fff, 0xff), >, 0);
}

static gint64
glib_ms (const char *text)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_iso8601 (text, NULL);
  g_assert_nonnull (dt);
  return g_date_time_to_unix (dt) * 1000 + g_date_time_get_microsecond (dt) / 1000;
}

static void
test_datetime_fixed (void)
{
  static const struct
  {
    const char *text;
    gint64 ms;
  } good[] = {
    { "1970-01-01T00:00:00Z", 0 },
    { "1970-01-01T00:00:00.001Z", 1 },
    { "2024-01-01T12:00:00.000Z", G_GINT64_CONSTANT (1704110400000) },
    { "2024-01-01T12:00:00Z", G_GINT64_CONSTANT (1704110400000) },
    { "2024-01-01T12:00:00.5Z", G_GINT64_CONSTANT (1704110400500) },
    { "2024-01-01T12:00:00.123456789Z", G_GINT64_CONSTANT (1704110400123) },
    { "2024-01-01T14:00:00+02:00", G_GINT64_CONSTANT (1704110400000) },
    { "2024-01-01T07:30:00.250-04:30", G_GINT64_CONSTANT (1704110400250) },
    { "2024-02-29T00:00:00Z", G_GINT64_CONSTANT (1709164800000) },
    { "2000-02-29T00:00:00Z", G_GINT64_CONSTANT (951782400000) },
    { "2026-07-04T14:38:07.517Z", G_GINT64_CONSTANT (1783175887517) },
    { "1969-12-31T23:59:59.999Z", -1 },
  };
  static const char *const bad[] = {
    "",
    "2024",
    "2024-01-01",
    "2024-01-01T12:00:00",   /* no zone */
    "2024-01-01T12:00Z",     /* no seconds */
    "2024-01-01T12:00:00.Z", /* empty fraction */
    "2024-13-01T00:00:00Z",
    "2024-00-01T00:00:00Z",
    "2024-01-00T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T12:60:00Z",
    "2024-01-01T12:00:61Z",
    "2024-01-01T12:00:00+24:00",
    "2024-01-01T12:00:00+0200",
    "2024-01-01T12:00:00Zjunk",
    "2024-01-01X12:00:00Z",
    "202a-01-01T12:00:00Z",
    "+2024-01-01T12:00:00Z",
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      gint64 ms = G_MININT64;
      g_assert_true (atk_parse_datetime_ms (good[i].text, strlen (good[i].text), &ms));
      g_assert_cmpint (ms, ==, good[i].ms);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      gint64 ms = 42;
      if (atk_parse_datetime_ms (bad[i], strlen (bad[i]), &ms))
        g_error ("accepted bad datetime “%s”", bad[i]);
      g_assert_cmpint (ms, ==, 42);
    }
  /* Length is honoured: the text need not be NUL-terminated. */
  {
    const char *text = "2024-01-01T12:00:00Z trailing";
    gint64 ms = 0;
    g_assert_true (atk_parse_datetime_ms (text, 20, &ms));
    g_assert_cmpint (ms, ==, G_GINT64_CONSTANT (1704110400000));
    g_assert_false (atk_parse_datetime_ms (text, 19, &ms));
  }
}

/* Random valid datetimes, checked against GDateTime's parser. */
static void
test_datetime_random (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (20240101);

  for (guint i = 0; i < 20000; i++)
    {
      guint year = g_rand_int_range (rand, 1971, 2200);
      guint month = g_rand_int_range (rand, 1, 13);
      guint day = g_rand_int_range (
          rand, 1, g_date_get_days_in_month ((GDateMonth)month, (GDateYear)year) + 1);
      g_autoptr (GString) s = g_string_new (NULL);
      gint64 ms = 0;

      g_string_printf (s, "%04u-%02u-%02uT%02d:%02d:%02d", year, month, day,
                       g_rand_int_range (rand, 0, 24), g_rand_int_range (rand, 0, 60),
                       g_rand_int_range (rand, 0, 60));
      switch (g_rand_int_range (rand, 0, 4))
        {
        case 0:
          break;
        case 1:
          g_string_append_printf (s, ".%03d", g_rand_int_range (rand, 0, 1000));
          break;
        case 2:
          g_string_append_printf (s, ".%06d", g_rand_int_range (rand, 0, 1000000));
          break;
        default:
          g_string_append_printf (s, ".%d", g_rand_int_range (rand, 0, 10));
          break;
        }
      if (g_rand_boolean (rand))
        g_string_append_c (s, 'Z');
      else
        g_string_append_printf (s, "%c%02d:%02d", g_rand_boolean (rand) ? '+' : '-',
                                g_rand_int_range (rand, 0, 15), g_rand_int_range (rand, 0, 60));
      g_assert_true (atk_parse_datetime_ms (s->str, s->len, &ms));
      g_assert_cmpint (ms, ==, glib_ms (s->str));
    }
}

/* Messages are recycled (atk-message.c): one freed comes back as new, every field cleared and
 * its value empty, with at least the room asked for; a huge buffer is not kept. */
static gpointer
free_in_thread (gpointer data)
{
  AtkMessage *message = atk_message_new_sized (64);

  g_string_append (message->value, "from another thread");
  atk_message_free (message); /* into this thread's own pool */
  atk_message_free (data);    /* one made by the main thread: freed here, no lock */
  return NULL;
}

static void
test_message_recycled (void)
{
  AtkMessage *message = atk_message_new_sized (100);
  AtkMessage *again, *huge, *after;
  GThread *thread;

  message->key = g_strdup ("did:plc:abc");
  message->collection = g_strdup ("app.bsky.feed.post");
  message->has_seq = TRUE;
  message->seq = 42;
  message->metadata_offset = 7;
  message->received_us = 9;
  g_string_append (message->value, "{\"x\":1}");
  atk_message_free (message);

  again = atk_message_new_sized (100);
  g_assert_true (again == message);
  g_assert_null (again->key);
  g_assert_null (again->collection);
  g_assert_false (again->has_seq);
  g_assert_cmpint (again->seq, ==, 0);
  g_assert_cmpuint (again->metadata_offset, ==, 0);
  g_assert_cmpint (again->received_us, ==, 0);
  g_assert_cmpuint (again->value->len, ==, 0);
  g_assert_cmpstr (again->value->str, ==, "");
  g_assert_cmpuint (again->value->allocated_len, >, 100);
  atk_message_free (again);

  /* more room than the recycled one has: it is given */
  again = atk_message_new_sized (10000);
  g_assert_cmpuint (again->value->allocated_len, >, 10000);
  atk_message_free (again);

  /* a value grown past 64 KiB goes back to malloc, not to the pool */
  huge = atk_message_new_sized (16);
  g_string_set_size (huge->value, 200 * 1024);
  atk_message_free (huge);
  after = atk_message_new_sized (16);
  g_assert_cmpuint (after->value->allocated_len, <=, 64 * 1024);
  g_assert_cmpuint (after->value->len, ==, 0);

  thread = g_thread_new ("free", free_in_thread, after);
  g_thread_join (thread);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/transformer/vectors/standard", test_vectors_standard);
  g_test_add_func ("/transformer/message-recycled", test_message_recycled);
  g_test_add_func ("/transformer/vectors/osprey", test_vectors_osprey);
  g_test_add_func ("/transformer/vectors/replay-same-ids", test_replay_same_ids);
  g_test_add_func ("/transformer/filter/watched", test_filter_watched);
  g_test_add_func ("/transformer/filter/ignored", test_filter_ignored);
  g_test_add_func ("/transformer/filter/segment-boundary", test_filter_segment_boundary);
  g_test_add_func ("/transformer/filter/config", test_filter_config);
  g_test_add_func ("/transformer/damaged/record-byte", test_record_byte_flipped);
  g_test_add_func ("/transformer/damaged/op-cid", test_op_cid_unknown);
  g_test_add_func ("/transformer/damaged/record-byte-skipped", test_record_byte_flipped_skipped);
  g_test_add_func ("/transformer/damaged/op-cid-skipped", test_op_cid_unknown_skipped);
  g_test_add_func ("/transformer/frames/unknown-and-error", test_unknown_and_error_frames);
  g_test_add_func ("/transformer/snowflake", test_snowflake);
  g_test_add_func ("/transformer/datetime/fixed", test_datetime_fixed);
  g_test_add_func ("/transformer/datetime/random", test_datetime_random);

  return g_test_run ();
}
