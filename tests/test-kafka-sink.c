/* AtkKafkaSink against a real broker ($ATK_BOOTSTRAP_SERVERS, default 127.0.0.1:9092; start
 * one with tools/kafka-local start). Without a broker these tests fail: they never skip. */
#include <librdkafka/rdkafka.h>
#include <string.h>

#include "atk-error.h"
#include "atk-kafka-sink.h"
#include "atk-test-util.h"

#define WAIT_SECONDS 60

static const char *
bootstrap (void)
{
  const char *servers = g_getenv ("ATK_BOOTSTRAP_SERVERS");
  return servers != NULL && *servers != '\0' ? servers : "127.0.0.1:9092";
}

static char *
unique_topic (const char *what)
{
  return g_strdup_printf ("atk-test-sink-%s-%d-%08x", what, (int)getpid (), g_random_int ());
}

/* ---- an independent murmur2 (Kafka's Java DefaultPartitioner algorithm) -------------- */

static gint32
java_murmur2 (const guint8 *data, gsize length)
{
  const guint32 m = 0x5bd1e995;
  guint32 h = 0x9747b28c ^ (guint32)length;
  gsize tail = length & ~(gsize)3;

  for (gsize i = 0; i < tail; i += 4)
    {
      guint32 k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | ((guint32)data[i + 3] << 24);
      k *= m;
      k ^= k >> 24;
      k *= m;
      h *= m;
      h ^= k;
    }
  switch (length & 3)
    {
    case 3:
      h ^= (guint32)data[tail + 2] << 16;
      G_GNUC_FALLTHROUGH;
    case 2:
      h ^= (guint32)data[tail + 1] << 8;
      G_GNUC_FALLTHROUGH;
    case 1:
      h ^= data[tail];
      h *= m;
    }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return (gint32)h;
}

static int
java_partition (const char *key, int partitions)
{
  return (java_murmur2 ((const guint8 *)key, strlen (key)) & 0x7fffffff) % partitions;
}

static void
test_murmur2_reference (void)
{
  /* Values from Kafka's own Java test suite (UtilsTest.testMurmur2). */
  g_assert_cmpint (java_murmur2 ((const guint8 *)"21", 2), ==, -973932308);
  g_assert_cmpint (java_murmur2 ((const guint8 *)"foobar", 6), ==, -790332482);
  g_assert_cmpint (java_murmur2 ((const guint8 *)"a-little-bit-long-string", 24), ==, -985981536);
  g_assert_cmpint (java_murmur2 ((const guint8 *)"a-little-bit-longer-string", 26), ==,
                   -1486304829);
  g_assert_cmpint (java_murmur2 ((const guint8 *)"abc", 3), ==, 479470107);
}

/* ---- helpers talking to the broker directly (blocking is fine in a test) ------------- */

static rd_kafka_t *
plain_client (rd_kafka_type_t type, const char *group)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  char errstr[512];
  rd_kafka_t *rk;

  g_assert_cmpint (
      rd_kafka_conf_set (conf, "bootstrap.servers", bootstrap (), errstr, sizeof errstr), ==,
      RD_KAFKA_CONF_OK);
  if (group != NULL)
    {
      g_assert_cmpint (rd_kafka_conf_set (conf, "group.id", group, errstr, sizeof errstr), ==,
                       RD_KAFKA_CONF_OK);
      g_assert_cmpint (
          rd_kafka_conf_set (conf, "enable.auto.commit", "false", errstr, sizeof errstr), ==,
          RD_KAFKA_CONF_OK);
    }
  rk = rd_kafka_new (type, conf, errstr, sizeof errstr);
  g_assert_nonnull (rk);
  return rk;
}

static void
assert_broker_up (void)
{
  rd_kafka_t *rk = plain_client (RD_KAFKA_PRODUCER, NULL);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err = rd_kafka_metadata (rk, 0, NULL, &md, 15000);

  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    g_error ("no Kafka broker at %s (%s): start one with tools/kafka-local start", bootstrap (),
             rd_kafka_err2str (err));
  rd_kafka_metadata_destroy (md);
  rd_kafka_destroy (rk);
}

static int
topic_partition_count (const char *topic)
{
  rd_kafka_t *rk = plain_client (RD_KAFKA_PRODUCER, NULL);
  rd_kafka_topic_t *rkt = rd_kafka_topic_new (rk, topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  int count = -1;

  g_assert_cmpint (rd_kafka_metadata (rk, 0, rkt, &md, 15000), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  g_assert_cmpint (md->topic_cnt, ==, 1);
  if (md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    count = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy (md);
  rd_kafka_topic_destroy (rkt);
  rd_kafka_destroy (rk);
  return count;
}

/* Creates a topic with one config entry, the way the sink cannot (it takes no topic configs). */
static void
create_topic_with_config (const char *topic, int partitions, const char *name, const char *value)
{
  rd_kafka_t *rk = plain_client (RD_KAFKA_PRODUCER, NULL);
  rd_kafka_queue_t *queue = rd_kafka_queue_new (rk);
  char errstr[512];
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new (topic, partitions, 1, errstr, sizeof errstr);
  rd_kafka_event_t *event;
  const rd_kafka_topic_result_t **results;
  size_t n = 0;

  g_assert_nonnull (nt);
  g_assert_cmpint (rd_kafka_NewTopic_set_config (nt, name, value), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_CreateTopics (rk, &nt, 1, NULL, queue);
  event = rd_kafka_queue_poll (queue, 30000);
  g_assert_nonnull (event);
  g_assert_cmpint (rd_kafka_event_error (event), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  results = rd_kafka_CreateTopics_result_topics (rd_kafka_event_CreateTopics_result (event), &n);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpint (rd_kafka_topic_result_error (results[0]), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_event_destroy (event);
  rd_kafka_NewTopic_destroy (nt);
  rd_kafka_queue_destroy (queue);
  rd_kafka_destroy (rk);
}

typedef struct
{
  int partition;
  gint64 offset;
  char *key;
  char *value;
  GHashTable *headers; /* name → value */
} Consumed;

static void
consumed_free (gpointer data)
{
  Consumed *c = data;
  g_free (c->key);
  g_free (c->value);
  g_hash_table_unref (c->headers);
  g_free (c);
}

/* Reads `expected` messages from every partition of topic, from the beginning. */
static GPtrArray *
consume_all (const char *topic, int partitions, guint expected)
{
  g_autofree char *group = unique_topic ("group");
  rd_kafka_t *rk = plain_client (RD_KAFKA_CONSUMER, group);
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new (partitions);
  GPtrArray *out = g_ptr_array_new_with_free_func (consumed_free);
  gint64 deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;

  for (int p = 0; p < partitions; p++)
    rd_kafka_topic_partition_list_add (list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  g_assert_cmpint (rd_kafka_assign (rk, list), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy (list);

  while (out->len < expected && g_get_monotonic_time () < deadline)
    {
      rd_kafka_message_t *msg = rd_kafka_consumer_poll (rk, 200);
      rd_kafka_headers_t *headers = NULL;
      Consumed *c;

      if (msg == NULL)
        continue;
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          g_assert_cmpint (msg->err, ==, RD_KAFKA_RESP_ERR__PARTITION_EOF);
          rd_kafka_message_destroy (msg);
          continue;
        }
      c = g_new0 (Consumed, 1);
      c->partition = msg->partition;
      c->offset = msg->offset;
      c->key = g_strndup (msg->key, msg->key_len);
      c->value = g_strndup (msg->payload, msg->len);
      c->headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      if (rd_kafka_message_headers (msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          const char *name;
          const void *value;
          size_t size;

          for (size_t i = 0; rd_kafka_header_get_all (headers, i, &name, &value, &size)
                             == RD_KAFKA_RESP_ERR_NO_ERROR;
               i++)
            {
              g_assert_false (g_hash_table_contains (c->headers, name));
              g_hash_table_insert (c->headers, g_strdup (name), g_strndup (value, size));
            }
        }
      g_ptr_array_add (out, c);
      rd_kafka_message_destroy (msg);
    }
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  return out;
}

/* ---- recording the sink's signals ------------------------------------------------ */

typedef struct
{
  gboolean ready;
  guint delivered;
  guint ok;
  guint failed;
  guint expected;
  gboolean all_delivered;
  GHashTable *seqs; /* seq → number of reports */
  guint no_seq;
  char *last_error;
  gboolean last_ok;
} Recorder;

static void
on_ready (AtkKafkaSink *sink, gpointer user_data)
{
  Recorder *r = user_data;
  g_assert_true (atk_kafka_sink_is_ready (sink));
  r->ready = TRUE;
}

static void
on_delivered (AtkKafkaSink *sink, gint64 seq, gboolean has_seq, gboolean ok, const char *error,
              gdouble latency, gpointer user_data)
{
  Recorder *r = user_data;

  g_assert_cmpfloat (latency, >=, 0.0);
  g_assert_cmpfloat (latency, <, 600.0);
  r->delivered++;
  r->last_ok = ok;
  if (ok)
    {
      g_assert_null (error);
      r->ok++;
    }
  else
    {
      g_assert_nonnull (error);
      g_assert_cmpstr (error, !=, "");
      r->failed++;
      g_free (r->last_error);
      r->last_error = g_strdup (error);
    }
  if (has_seq)
    {
      gpointer key = GINT_TO_POINTER ((int)seq);
      g_hash_table_insert (
          r->seqs, key,
          GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (r->seqs, key)) + 1));
    }
  else
    r->no_seq++;
  r->all_delivered = r->expected > 0 && r->delivered >= r->expected;
}

static void
recorder_init (Recorder *r, AtkKafkaSink *sink)
{
  memset (r, 0, sizeof *r);
  r->seqs = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_signal_connect (sink, "ready", G_CALLBACK (on_ready), r);
  g_signal_connect (sink, "delivered", G_CALLBACK (on_delivered), r);
}

static void
recorder_clear (Recorder *r)
{
  g_hash_table_unref (r->seqs);
  g_free (r->last_error);
}

static AtkMessage *
make_message (const char *key, const char *value, gboolean has_seq, gint64 seq, AtkEventKind kind,
              const char *action, const char *collection)
{
  AtkMessage *m = atk_message_new ();
  m->key = g_strdup (key);
  g_string_assign (m->value, value);
  m->has_seq = has_seq;
  m->seq = seq;
  m->kind = kind;
  m->action_name = action;
  m->collection = g_strdup (collection);
  return m;
}

static AtkKafkaSink *
new_sink (const char *topic, int partitions, const char *const *properties)
{
  AtkKafkaSinkOptions options = {
    .bootstrap_servers = bootstrap (),
    .topic = topic,
    .partitions = partitions,
    .properties = properties,
  };
  g_autoptr (GError) error = NULL;
  AtkKafkaSink *sink = atk_kafka_sink_new (&options, &error);

  g_assert_no_error (error);
  g_assert_nonnull (sink);
  return sink;
}

/* ---- the tests ------------------------------------------------------------------- */

#define N_MESSAGES 1000
#define SEQ_BASE 5000000
#define N_KEYS 37

/* Message i: what was produced, so the consumed copy can be checked field by field. */
static void
message_fields (guint i, char **key, char **value, gboolean *has_seq, AtkEventKind *kind,
                const char **action, const char **collection)
{
  *key = i % 50 == 49 ? g_strdup ("<unknown>") : g_strdup_printf ("did:plc:key%u", i % N_KEYS);
  *value = g_strdup_printf ("{\"i\":%u,\"text\":\"caf\xc3\xa9 %u\"}", i, i * 7);
  *has_seq = i % 50 != 49;
  switch (i % 3)
    {
    case 0:
      *kind = ATK_EVENT_COMMIT, *action = "operation#create", *collection = "app.bsky.feed.post";
      break;
    case 1:
      *kind = ATK_EVENT_ACCOUNT, *action = "account", *collection = NULL;
      break;
    default:
      *kind = ATK_EVENT_COMMIT, *action = "operation#delete", *collection = "app.bsky.feed.like";
      break;
    }
  if (!*has_seq)
    *kind = ATK_EVENT_INFO, *action = "info", *collection = NULL;
}

static guint
value_index (const char *value)
{
  guint i = G_MAXUINT;
  g_assert_cmpint (sscanf (value, "{\"i\":%u,", &i), ==, 1);
  return i;
}

static void
check_consumed (GPtrArray *consumed, int partitions)
{
  g_autofree gboolean *seen = g_new0 (gboolean, N_MESSAGES);
  g_autoptr (GHashTable) last_index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_assert_cmpuint (consumed->len, ==, N_MESSAGES);
  for (guint n = 0; n < consumed->len; n++)
    {
      Consumed *c = consumed->pdata[n];
      guint i = value_index (c->value);
      g_autofree char *key = NULL, *value = NULL;
      gboolean has_seq;
      AtkEventKind kind;
      const char *action, *collection;

      g_assert_cmpuint (i, <, N_MESSAGES);
      g_assert_false (seen[i]);
      seen[i] = TRUE;
      message_fields (i, &key, &value, &has_seq, &kind, &action, &collection);
      g_assert_cmpstr (c->key, ==, key);
      g_assert_cmpstr (c->value, ==, value);
      g_assert_cmpint (c->partition, ==, java_partition (key, partitions));
      if (has_seq)
        {
          g_autofree char *seq = g_strdup_printf ("%u", SEQ_BASE + i);
          g_assert_cmpstr (g_hash_table_lookup (c->headers, "seq"), ==, seq);
        }
      else
        g_assert_false (g_hash_table_contains (c->headers, "seq"));
      g_assert_cmpstr (g_hash_table_lookup (c->headers, "type"), ==, atk_event_kind_name (kind));
      g_assert_cmpstr (g_hash_table_lookup (c->headers, "action"), ==, action);
      g_assert_cmpstr (g_hash_table_lookup (c->headers, "collection"), ==, collection);
      g_assert_cmpuint (g_hash_table_size (c->headers), ==,
                        2 + (has_seq ? 1 : 0) + (collection != NULL ? 1 : 0));
    }

  /* One key's messages are in produce order within their partition (the consumer returns
   * each partition in offset order). */
  for (guint n = 0; n < consumed->len; n++)
    {
      Consumed *c = consumed->pdata[n];
      guint i = value_index (c->value);
      gpointer prev;

      if (g_hash_table_lookup_extended (last_index, c->key, NULL, &prev))
        g_assert_cmpuint (GPOINTER_TO_UINT (prev), <, i);
      g_hash_table_insert (last_index, g_strdup (c->key), GUINT_TO_POINTER (i));
    }
}

static void
test_produce_and_consume (void)
{
  g_autofree char *topic = unique_topic ("produce");
  g_autoptr (AtkKafkaSink) sink = NULL;
  g_autoptr (GPtrArray) consumed = NULL;
  Recorder r;
  guint64 bytes = 0;
  const int partitions = 7;

  assert_broker_up ();
  sink = new_sink (topic, partitions, NULL);
  recorder_init (&r, sink);
  g_assert_false (atk_kafka_sink_is_ready (sink));
  atk_kafka_sink_ensure_topic (sink);
  g_assert_true (atk_test_wait_for_flag (NULL, &r.ready, WAIT_SECONDS * 1000));
  g_assert_cmpint (topic_partition_count (topic), ==, partitions);

  r.expected = N_MESSAGES;
  for (guint i = 0; i < N_MESSAGES; i++)
    {
      g_autofree char *key = NULL, *value = NULL;
      gboolean has_seq;
      AtkEventKind kind;
      const char *action, *collection;
      g_autoptr (GError) error = NULL;

      message_fields (i, &key, &value, &has_seq, &kind, &action, &collection);
      bytes += strlen (key) + strlen (value);
      g_assert_true (atk_kafka_sink_produce (
          sink, make_message (key, value, has_seq, SEQ_BASE + i, kind, action, collection),
          &error));
      g_assert_no_error (error);
    }
  /* Reports arrive only through the main context, which has not run yet. */
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, N_MESSAGES);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight_bytes (sink), ==, bytes);
  g_assert_cmpuint (r.delivered, ==, 0);

  g_assert_true (atk_test_wait_for_flag (NULL, &r.all_delivered, WAIT_SECONDS * 1000));
  g_assert_cmpuint (r.delivered, ==, N_MESSAGES);
  g_assert_cmpuint (r.ok, ==, N_MESSAGES);
  g_assert_cmpuint (r.failed, ==, 0);
  g_assert_cmpuint (r.no_seq, ==, N_MESSAGES / 50);
  g_assert_cmpuint (g_hash_table_size (r.seqs), ==, N_MESSAGES - N_MESSAGES / 50);
  for (guint i = 0; i < N_MESSAGES; i++)
    if (i % 50 != 49)
      g_assert_cmpuint (
          GPOINTER_TO_UINT (g_hash_table_lookup (r.seqs, GINT_TO_POINTER (SEQ_BASE + i))), ==, 1);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 0);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight_bytes (sink), ==, 0);

  consumed = consume_all (topic, partitions, N_MESSAGES);
  check_consumed (consumed, partitions);

  /* A second ensure_topic on a ready sink is a no-op. */
  atk_kafka_sink_ensure_topic (sink);
  g_assert_cmpuint (atk_kafka_sink_get_ensure_attempts (sink), ==, 1);
  recorder_clear (&r);
}

static void
test_existing_topic_is_ready (void)
{
  g_autofree char *topic = unique_topic ("existing");
  g_autoptr (AtkKafkaSink) sink = NULL;
  Recorder r;

  assert_broker_up ();
  create_topic_with_config (topic, 3, "retention.ms", "3600000");
  sink = new_sink (topic, 11, NULL);
  recorder_init (&r, sink);
  atk_kafka_sink_ensure_topic (sink);
  g_assert_true (atk_test_wait_for_flag (NULL, &r.ready, WAIT_SECONDS * 1000));
  /* TOPIC_ALREADY_EXISTS counts as success and leaves the topic as it was. */
  g_assert_cmpint (topic_partition_count (topic), ==, 3);
  recorder_clear (&r);
}

static void
produce_one (AtkKafkaSink *sink, Recorder *r, const char *key, const char *value, gint64 seq)
{
  g_autoptr (GError) error = NULL;

  r->all_delivered = FALSE;
  r->expected = r->delivered + 1;
  g_assert_true (atk_kafka_sink_produce (
      sink, make_message (key, value, TRUE, seq, ATK_EVENT_IDENTITY, "identity", NULL), &error));
  g_assert_no_error (error);
  g_assert_true (atk_test_wait_for_flag (NULL, &r->all_delivered, WAIT_SECONDS * 1000));
}

static void
test_too_large_for_topic (void)
{
  g_autofree char *topic = unique_topic ("toolarge");
  g_autoptr (AtkKafkaSink) sink = NULL;
  g_autoptr (GString) big = g_string_new (NULL);
  Recorder r;

  assert_broker_up ();
  create_topic_with_config (topic, 1, "max.message.bytes", "1000");
  sink = new_sink (topic, 1, NULL);
  recorder_init (&r, sink);
  atk_kafka_sink_ensure_topic (sink);
  g_assert_true (atk_test_wait_for_flag (NULL, &r.ready, WAIT_SECONDS * 1000));

  /* Random hex does not compress below the topic's limit. */
  while (big->len < 5000)
    g_string_append_printf (big, "%08x", g_random_int ());

  produce_one (sink, &r, "did:plc:small", "{\"before\":true}", 1);
  g_assert_true (r.last_ok);
  produce_one (sink, &r, "did:plc:big", big->str, 2);
  g_assert_false (r.last_ok);
  g_assert_nonnull (r.last_error);
  g_test_message ("too large: %s", r.last_error);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 0);
  /* The producer goes on after a permanent failure. */
  produce_one (sink, &r, "did:plc:small", "{\"after\":true}", 3);
  g_assert_true (r.last_ok);
  produce_one (sink, &r, "did:plc:other", "{\"after\":2}", 4);
  g_assert_true (r.last_ok);
  g_assert_cmpuint (r.ok, ==, 3);
  g_assert_cmpuint (r.failed, ==, 1);
  recorder_clear (&r);
}

static void
test_too_large_for_producer (void)
{
  const char *const properties[] = { "message.max.bytes=2000", NULL };
  g_autofree char *topic = unique_topic ("producerlimit");
  g_autoptr (AtkKafkaSink) sink = new_sink (topic, 1, properties);
  g_autoptr (GError) error = NULL;
  AtkMessage *m = make_message ("did:plc:x", "", TRUE, 1, ATK_EVENT_COMMIT, "operation#create",
                                "app.bsky.feed.post");

  g_string_set_size (m->value, 10000);
  memset (m->value->str, 'x', m->value->len);
  g_assert_false (atk_kafka_sink_produce (sink, m, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 0);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight_bytes (sink), ==, 0);
}

static void
assert_bad_config (const char *const *properties, const char *compression, const char *mentions)
{
  AtkKafkaSinkOptions options = {
    .bootstrap_servers = bootstrap (),
    .topic = "atk-test-never-created",
    .compression = compression,
    .properties = properties,
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkKafkaSink) sink = atk_kafka_sink_new (&options, &error);

  g_assert_null (sink);
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, mentions));
}

static void
test_bad_config (void)
{
  const char *const unknown[] = { "linger.ms=5", "no.such.property=1", NULL };
  const char *const bad_value[] = { "linger.ms=soon", NULL };
  const char *const no_equals[] = { "acks", NULL };
  const char *const empty_key[] = { "=1", NULL };
  const char *const good[] = { "linger.ms=20", "client.id=atk-test", NULL };
  AtkKafkaSinkOptions no_servers = { .bootstrap_servers = "", .topic = "t" };
  AtkKafkaSinkOptions no_topic = { .bootstrap_servers = bootstrap (), .topic = "" };
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkKafkaSink) sink = NULL;

  assert_bad_config (unknown, NULL, "no.such.property");
  assert_bad_config (bad_value, NULL, "linger.ms");
  assert_bad_config (no_equals, NULL, "acks");
  assert_bad_config (empty_key, NULL, "=1");
  assert_bad_config (NULL, "brotli", "compression.codec");

  g_assert_null (atk_kafka_sink_new (&no_servers, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_clear_error (&error);
  g_assert_null (atk_kafka_sink_new (&no_topic, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_clear_error (&error);

  /* Valid user properties and the other codecs Osprey can read are accepted. */
  for (const char *const *codec = (const char *const[]){ "gzip", "snappy", "lz4", "none", NULL };
       *codec != NULL; codec++)
    {
      AtkKafkaSinkOptions options = {
        .bootstrap_servers = bootstrap (),
        .topic = "atk-test-never-created",
        .compression = *codec,
        .properties = good,
      };
      sink = atk_kafka_sink_new (&options, &error);
      g_assert_no_error (error);
      g_assert_nonnull (sink);
      g_clear_object (&sink);
    }
}

typedef struct
{
  AtkKafkaSink *sink;
  guint attempts;
  gboolean reached;
} AttemptWait;

static gboolean
check_attempts (gpointer user_data)
{
  AttemptWait *w = user_data;
  w->reached = atk_kafka_sink_get_ensure_attempts (w->sink) >= w->attempts;
  return G_SOURCE_CONTINUE;
}

static void
test_broker_unreachable (void)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *servers = NULL;
  g_autoptr (AtkKafkaSink) sink = NULL;
  AtkKafkaSinkOptions options = { .topic = "atk-test-unreachable" };
  AttemptWait w = { 0 };
  Recorder r;
  gint64 t0;
  guint check_id;

  /* Nothing listening there, for as long as the test holds the socket. */
  servers = g_strdup_printf ("127.0.0.1:%u", atk_test_refusing_port (&socket));
  options.bootstrap_servers = servers;

  sink = atk_kafka_sink_new (&options, &error);
  g_assert_no_error (error);
  recorder_init (&r, sink);

  /* Asking for the topic does not wait for the answer: the call returns long before the
   * admin request could have timed out (5 s), however loaded the machine, with the first
   * attempt still outstanding. */
  t0 = g_get_monotonic_time ();
  atk_kafka_sink_ensure_topic (sink);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 4 * G_USEC_PER_SEC);
  g_assert_cmpuint (atk_kafka_sink_get_ensure_attempts (sink), ==, 1);
  g_assert_true (atk_kafka_sink_produce (
      sink, make_message ("did:plc:x", "{}", TRUE, 7, ATK_EVENT_SYNC, "sync", NULL), &error));
  g_assert_no_error (error);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 1);

  /* It keeps trying: a second CreateTopics goes out after the first one times out. */
  w.sink = sink;
  w.attempts = 2;
  check_id = g_timeout_add (100, check_attempts, &w);
  g_assert_true (atk_test_wait_for_flag (NULL, &w.reached, WAIT_SECONDS * 1000));
  g_source_remove (check_id);

  g_assert_false (r.ready);
  g_assert_false (atk_kafka_sink_is_ready (sink));
  /* The message is neither delivered nor given up on while the broker is away. */
  g_assert_cmpuint (r.delivered, ==, 0);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 1);
  g_assert_false (atk_kafka_sink_flush (sink, 200));
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 1);

  /* Tearing down with a queued message neither blocks long nor crashes. */
  t0 = g_get_monotonic_time ();
  g_clear_object (&sink);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 10 * G_USEC_PER_SEC);
  recorder_clear (&r);
}

static void
test_flush (void)
{
  g_autofree char *topic = unique_topic ("flush");
  g_autoptr (AtkKafkaSink) sink = NULL;
  Recorder r;

  assert_broker_up ();
  sink = new_sink (topic, 2, NULL);
  recorder_init (&r, sink);
  atk_kafka_sink_ensure_topic (sink);
  g_assert_true (atk_test_wait_for_flag (NULL, &r.ready, WAIT_SECONDS * 1000));
  for (guint i = 0; i < 100; i++)
    g_assert_true (atk_kafka_sink_produce (
        sink, make_message ("did:plc:flush", "{}", TRUE, i, ATK_EVENT_SYNC, "sync", NULL), NULL));
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 100);

  /* flush() delivers the reports itself, without the main loop running. */
  g_assert_true (atk_kafka_sink_flush (sink, WAIT_SECONDS * 1000));
  g_assert_cmpuint (r.delivered, ==, 100);
  g_assert_cmpuint (r.ok, ==, 100);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 0);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight_bytes (sink), ==, 0);
  recorder_clear (&r);
}

/* ---- an outage: a private broker (tools/kafka-local) stopped and started again ------- */

typedef struct
{
  char *dir;
  guint port;
  char *servers;
} PrivateBroker;

static void
kafka_local (PrivateBroker *broker, const char *command, const char *option)
{
  const char *source_dir = g_getenv ("ATK_SOURCE_DIR");
  g_autofree char *script = NULL;
  g_autofree char *port = g_strdup_printf ("%u", broker->port);
  g_auto (GStrv) env = g_get_environ ();
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;
  const char *argv[] = { NULL, command, option, NULL };
  int status = -1;

  g_assert_nonnull (source_dir);
  script = g_build_filename (source_dir, "tools", "kafka-local", NULL);
  argv[0] = script;
  env = g_environ_setenv (env, "ATK_KAFKA_DIR", broker->dir, TRUE);
  env = g_environ_setenv (env, "ATK_KAFKA_PORT", port, TRUE);
  env = g_environ_unsetenv (env, "ATK_KAFKA_CONTROLLER_PORT");
  g_spawn_sync (NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
  g_assert_no_error (error);
  g_test_message ("kafka-local %s: %s", command, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

static void
test_outage (void)
{
  PrivateBroker broker = { 0 };
  g_autofree char *topic = unique_topic ("outage");
  g_autoptr (AtkKafkaSink) sink = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) consumed = NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  const char *saved_servers;
  Recorder r;

  broker.dir = atk_test_make_tmp_dir ("atk-test-kafka-XXXXXX");
  broker.port = atk_test_unused_port_pair ();
  broker.servers = g_strdup_printf ("127.0.0.1:%u", broker.port);
  kafka_local (&broker, "start", "--fresh");

  {
    AtkKafkaSinkOptions options
        = { .bootstrap_servers = broker.servers, .topic = topic, .partitions = 3 };
    sink = atk_kafka_sink_new (&options, &error);
    g_assert_no_error (error);
  }
  recorder_init (&r, sink);
  atk_kafka_sink_ensure_topic (sink);
  g_assert_true (atk_test_wait_for_flag (NULL, &r.ready, WAIT_SECONDS * 1000));
  r.expected = 10;
  for (guint i = 0; i < 10; i++)
    {
      g_autofree char *key = g_strdup_printf ("did:plc:k%u", i);
      g_autofree char *value = g_strdup_printf ("before-%u", i);
      g_assert_true (atk_kafka_sink_produce (
          sink, make_message (key, value, TRUE, i, ATK_EVENT_SYNC, "sync", NULL), NULL));
    }
  g_assert_true (atk_test_wait_for_flag (NULL, &r.all_delivered, WAIT_SECONDS * 1000));

  /* Broker gone: messages queue up; none is failed while it is away. */
  kafka_local (&broker, "stop", NULL);
  r.all_delivered = FALSE;
  r.expected = 60;
  for (guint i = 10; i < 60; i++)
    {
      g_autofree char *key = g_strdup_printf ("did:plc:k%u", i % 13);
      g_autofree char *value = g_strdup_printf ("during-%u", i);
      g_assert_true (atk_kafka_sink_produce (
          sink, make_message (key, value, TRUE, i, ATK_EVENT_SYNC, "sync", NULL), NULL));
    }
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 50);
  g_assert_false (atk_kafka_sink_flush (sink, 2000));
  g_assert_cmpuint (r.delivered, ==, 10);

  /* Back with its data: everything queued arrives, once. */
  kafka_local (&broker, "start", NULL);
  g_assert_true (atk_test_wait_for_flag (NULL, &r.all_delivered, WAIT_SECONDS * 1000));
  g_assert_cmpuint (r.ok, ==, 60);
  g_assert_cmpuint (r.failed, ==, 0);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (sink), ==, 0);

  saved_servers = g_getenv ("ATK_BOOTSTRAP_SERVERS");
  g_setenv ("ATK_BOOTSTRAP_SERVERS", broker.servers, TRUE);
  consumed = consume_all (topic, 3, 60);
  if (saved_servers != NULL)
    g_setenv ("ATK_BOOTSTRAP_SERVERS", saved_servers, TRUE);
  else
    g_unsetenv ("ATK_BOOTSTRAP_SERVERS");
  g_assert_cmpuint (consumed->len, ==, 60);
  for (guint n = 0; n < consumed->len; n++)
    {
      Consumed *c = consumed->pdata[n];
      g_assert_false (g_hash_table_contains (seen, c->value));
      g_hash_table_add (seen, c->value);
    }

  g_clear_object (&sink);
  kafka_local (&broker, "stop", NULL);
  atk_test_rm_rf (broker.dir);
  recorder_clear (&r);
  g_free (broker.dir);
  g_free (broker.servers);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/kafka-sink/murmur2-reference", test_murmur2_reference);
  g_test_add_func ("/kafka-sink/bad-config", test_bad_config);
  g_test_add_func ("/kafka-sink/produce-and-consume", test_produce_and_consume);
  g_test_add_func ("/kafka-sink/existing-topic", test_existing_topic_is_ready);
  g_test_add_func ("/kafka-sink/too-large-for-topic", test_too_large_for_topic);
  g_test_add_func ("/kafka-sink/too-large-for-producer", test_too_large_for_producer);
  g_test_add_func ("/kafka-sink/broker-unreachable", test_broker_unreachable);
  g_test_add_func ("/kafka-sink/flush", test_flush);
  g_test_add_func ("/kafka-sink/outage", test_outage);

  return g_test_run ();
}
