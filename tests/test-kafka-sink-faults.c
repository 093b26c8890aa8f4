/* AtkKafkaSink's delivery reports when Kafka fails, against librdkafka's mock cluster (used
 * only to inject the faults: a broker that is down, produce requests refused). What must
 * hold: a message is settled ("delivered") only when Kafka took it, or refused it for
 * reasons of its own; anything else is "undelivered" (produced again after a rewind); and
 * after atk_kafka_sink_forget_in_flight() the older messages' reports settle nothing.
 * A message librdkafka's full queue refuses waits in the sink, in order, and goes in when
 * there is room; an error that no retry can cure makes the sink fatal and is counted. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <string.h>

#include "atk-error.h"
#include "atk-kafka-sink.h"
#include "atk-kafka-topic-admin.h"
#include "atk-test-util.h"

#define WAIT_MS 30000
#define TOPIC "faults"
#define API_KEY_PRODUCE 0 /* the Produce request (librdkafka keeps its name private) */
#define API_KEY_LIST_OFFSETS 2

typedef struct
{
  rd_kafka_t *mock_rk; /* owns the mock cluster */
  rd_kafka_mock_cluster_t *cluster;
  AtkKafkaSink *sink;
  guint ok;          /* "delivered", ok */
  guint failed;      /* "delivered", failed for good */
  guint undelivered; /* "undelivered" */
  guint released;    /* "released" */
  GHashTable *settled_seqs;
  GArray *ok_seqs; /* in report order */
  guint fatal;
  guint expected; /* reports of any kind */
  gboolean all_reported;
} Fixture;

static void
count_report (Fixture *f)
{
  f->all_reported = f->ok + f->failed + f->undelivered + f->released >= f->expected;
}

static void
on_delivered (AtkKafkaSink *sink, gint64 seq, gboolean has_seq, gboolean ok,
              const char *error_message, gdouble latency, Fixture *f)
{
  if (ok)
    {
      f->ok++;
      g_array_append_val (f->ok_seqs, seq);
    }
  else
    f->failed++;
  g_hash_table_add (f->settled_seqs, GINT_TO_POINTER ((int)seq));
  count_report (f);
}

static void
on_undelivered (AtkKafkaSink *sink, gint64 seq, gboolean has_seq, const char *error_message,
                Fixture *f)
{
  g_assert_true (has_seq);
  g_assert_nonnull (error_message);
  f->undelivered++;
  count_report (f);
}

static void
on_released (AtkKafkaSink *sink, Fixture *f)
{
  f->released++;
  count_report (f);
}

static void
on_fatal (AtkKafkaSink *sink, const char *reason, Fixture *f)
{
  g_assert_nonnull (strstr (reason, "for good"));
  f->fatal++;
}

/* data: message.timeout.ms, then more properties, space-separated */
static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_auto (GStrv) words = g_strsplit (data, " ", -1);
  g_autofree char *timeout = g_strdup_printf ("message.timeout.ms=%s", words[0]);
  const char *properties[8]
      = { timeout, "retries=2", "retry.backoff.ms=20", "reconnect.backoff.max.ms=100", NULL };
  guint n = 4;
  g_autoptr (GError) error = NULL;
  char errstr[512];
  AtkKafkaSinkOptions options = { .topic = TOPIC, .partitions = 1, .properties = properties };

  for (guint i = 1; words[i] != NULL && n + 1 < G_N_ELEMENTS (properties); i++)
    properties[n++] = words[i];
  properties[n] = NULL;
  f->mock_rk = rd_kafka_new (RD_KAFKA_PRODUCER, rd_kafka_conf_new (), errstr, sizeof errstr);
  g_assert_nonnull (f->mock_rk);
  f->cluster = rd_kafka_mock_cluster_new (f->mock_rk, 1);
  g_assert_nonnull (f->cluster);
  g_assert_cmpint (rd_kafka_mock_topic_create (f->cluster, TOPIC, 1, 1), ==, 0);
  options.bootstrap_servers = rd_kafka_mock_cluster_bootstraps (f->cluster);
  f->sink = atk_kafka_sink_new (&options, &error);
  g_assert_no_error (error);
  f->settled_seqs = g_hash_table_new (g_direct_hash, g_direct_equal);
  f->ok_seqs = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_signal_connect (f->sink, "fatal", G_CALLBACK (on_fatal), f);
  g_signal_connect (f->sink, "delivered", G_CALLBACK (on_delivered), f);
  g_signal_connect (f->sink, "undelivered", G_CALLBACK (on_undelivered), f);
  g_signal_connect (f->sink, "released", G_CALLBACK (on_released), f);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->sink);
  g_hash_table_unref (f->settled_seqs);
  g_array_unref (f->ok_seqs);
  rd_kafka_mock_cluster_destroy (f->cluster);
  rd_kafka_destroy (f->mock_rk);
}

static void
produce (Fixture *f, gint64 first, gint64 last)
{
  for (gint64 seq = first; seq <= last; seq++)
    {
      AtkMessage *m = atk_message_new ();
      g_autoptr (GError) error = NULL;

      m->key = g_strdup ("did:plc:faults");
      g_string_printf (m->value, "{\"seq\":%" G_GINT64_FORMAT "}", seq);
      m->has_seq = TRUE;
      m->seq = seq;
      m->kind = ATK_EVENT_SYNC;
      m->action_name = "sync";
      g_assert_true (atk_kafka_sink_produce (f->sink, m, &error));
      g_assert_no_error (error);
    }
}

static void
wait_reports (Fixture *f, guint expected)
{
  f->expected = expected;
  count_report (f);
  g_assert_true (atk_test_wait_for_flag (NULL, &f->all_reported, WAIT_MS));
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (f->sink), ==, 0);
}

/* A first message through, so that the producer has its id and the partition its leader. */
static void
warm_up (Fixture *f)
{
  produce (f, 1, 1);
  wait_reports (f, 1);
  g_assert_cmpuint (f->ok, ==, 1);
}

/* The broker is down longer than message.timeout.ms: every message times out, and none is
 * settled. */
static void
test_timed_out (Fixture *f, gconstpointer data)
{
  warm_up (f);
  rd_kafka_mock_broker_set_down (f->cluster, 1);
  produce (f, 2, 11);
  wait_reports (f, 11);
  g_assert_cmpuint (f->undelivered, ==, 10);
  g_assert_cmpuint (f->ok + f->failed, ==, 1);
}

/* The broker refuses every produce request with err: a batch comes back refused for
 * reasons that are not its messages' own (a short ISR until the retries run out; a batch
 * invalid for one of its records). Not settled, so that they are produced again: settling
 * them would move the cursor past events Kafka never took. */
static void
check_refused (Fixture *f, rd_kafka_resp_err_t err)
{
  rd_kafka_resp_err_t errors[30];

  for (guint i = 0; i < G_N_ELEMENTS (errors); i++)
    errors[i] = err;
  warm_up (f);
  /* 30: enough for each message in its own batch, with its retries */
  rd_kafka_mock_push_request_errors_array (f->cluster, API_KEY_PRODUCE, G_N_ELEMENTS (errors),
                                           errors);
  produce (f, 2, 6);
  wait_reports (f, 6);
  g_assert_cmpuint (f->failed, ==, 0);
  g_assert_cmpuint (f->undelivered, ==, 5);
  g_assert_cmpuint (f->ok, ==, 1);
  g_assert_cmpuint (g_hash_table_size (f->settled_seqs), ==, 1);
}

/* A partition whose leader does not serve it yet ("not leader", as a broker still loading a
 * new partition answers) is found, so the sink does not call the topic ready (and nothing is
 * produced) until every leader answers a ListOffsets: librdkafka 2.0 could otherwise report
 * a message delivered that the broker never stored. */
static rd_kafka_conf_t *
conf_for (const char *servers)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();

  g_assert_cmpint (rd_kafka_conf_set (conf, "bootstrap.servers", servers, NULL, 0), ==,
                   RD_KAFKA_CONF_OK);
  return conf;
}

static void
test_leaders_not_serving (Fixture *f, gconstpointer data)
{
  const char *servers = rd_kafka_mock_cluster_bootstraps (f->cluster);
  g_autoptr (GError) error = NULL;

  rd_kafka_mock_push_request_errors (f->cluster, API_KEY_LIST_OFFSETS, 1,
                                     RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
  g_assert_false (atk_kafka_topic_admin_leaders_serve (conf_for (servers), TOPIC, 5000, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_KAFKA);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "leader"));
  g_clear_error (&error);
  /* served now */
  g_assert_true (atk_kafka_topic_admin_leaders_serve (conf_for (servers), TOPIC, 5000, &error));
  g_assert_no_error (error);
}

static char *
sink_metrics (Fixture *f)
{
  GString *out = g_string_new (NULL);

  atk_kafka_sink_render_prometheus (f->sink, out);
  return g_string_free (out, FALSE);
}

/* Retriable: produced again, the sink goes on. */
static void
test_refused_retries_run_out (Fixture *f, gconstpointer data)
{
  g_autofree char *metrics = NULL;

  check_refused (f, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  g_assert_cmpuint (f->fatal, ==, 0);
  g_assert_false (atk_kafka_sink_is_fatal (f->sink));
  metrics = sink_metrics (f);
  g_assert_null (strstr (metrics, "atkafka_kafka_refusals_total{"));
}

/* No retry cures these (atk-kafka-sink-refusal.c): not settled (the cursor stays before
 * them), but the sink goes fatal once (the daemon stops with a clear error instead of
 * rewinding for ever), and each refusal is counted by name. */
static void
check_refused_for_good (Fixture *f, rd_kafka_resp_err_t err)
{
  g_autofree char *metrics = NULL;
  g_autofree char *sample = NULL;

  check_refused (f, err);
  g_assert_cmpuint (f->fatal, ==, 1);
  g_assert_true (atk_kafka_sink_is_fatal (f->sink));
  metrics = sink_metrics (f);
  sample
      = g_strdup_printf ("atkafka_kafka_refusals_total{error=\"%s\"} 5\n", rd_kafka_err2name (err));
  g_assert_nonnull (strstr (metrics, sample));
}

static void
test_refused_batch (Fixture *f, gconstpointer data)
{
  check_refused_for_good (f, RD_KAFKA_RESP_ERR_INVALID_RECORD);
}

static void
test_refused_by_policy (Fixture *f, gconstpointer data)
{
  check_refused_for_good (f, RD_KAFKA_RESP_ERR_POLICY_VIOLATION);
}

/* queue.buffering.max.messages=5 and 60 messages at once (one commit with 60 operations):
 * before, the 6th was refused (QUEUE_FULL), the pipeline rewound, and the replayed commit
 * met the same full queue for ever. Now each message is taken, the ones without room wait
 * in the sink, counted in flight, and all arrive in the order they were produced. */
static void
test_queue_full_held (Fixture *f, gconstpointer data)
{
  warm_up (f);
  produce (f, 2, 61);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (f->sink), ==, 60);
  wait_reports (f, 61);
  g_assert_cmpuint (f->ok, ==, 61);
  g_assert_cmpuint (f->undelivered + f->failed + f->released, ==, 0);
  for (guint i = 0; i < f->ok_seqs->len; i++)
    g_assert_cmpint (g_array_index (f->ok_seqs, gint64, i), ==, i + 1);

  /* flushing pushes held messages in too */
  produce (f, 62, 91);
  g_assert_true (atk_kafka_sink_flush (f->sink, WAIT_MS));
  g_assert_cmpuint (f->ok, ==, 91);
  for (guint i = 0; i < f->ok_seqs->len; i++)
    g_assert_cmpint (g_array_index (f->ok_seqs, gint64, i), ==, i + 1);
}

/* A rewind drops the held messages at once (they never were in librdkafka: the rewind
 * produces them again), and only librdkafka's own report back, as "released". */
static void
test_queue_full_forgotten (Fixture *f, gconstpointer data)
{
  guint old;

  warm_up (f);
  rd_kafka_mock_broker_set_down (f->cluster, 1);
  produce (f, 2, 41);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (f->sink), ==, 40);
  atk_kafka_sink_forget_in_flight (f->sink);
  old = atk_kafka_sink_get_in_flight (f->sink); /* librdkafka's: its queue of 5 */
  g_assert_cmpuint (old, ==, 5);
  produce (f, 2, 41); /* produced again */
  rd_kafka_mock_broker_set_up (f->cluster, 1);
  wait_reports (f, 1 + old + 40);
  g_assert_cmpuint (f->released, ==, old);
  g_assert_cmpuint (f->ok, ==, 41);
  g_assert_cmpuint (f->undelivered + f->failed, ==, 0);
  for (guint i = 0; i < f->ok_seqs->len; i++)
    g_assert_cmpint (g_array_index (f->ok_seqs, gint64, i), ==, i + 1);
}

/* A message larger than librdkafka's whole queue (queue.buffering.max.kbytes) would wait
 * for ever: refused at once as too large, settled for good by the pipeline. */
static void
test_larger_than_queue (Fixture *f, gconstpointer data)
{
  AtkMessage *m = atk_message_new ();
  g_autoptr (GError) error = NULL;

  warm_up (f);
  m->key = g_strdup ("did:plc:faults");
  g_string_printf (m->value, "{\"pad\":\"%04000d\"}", 0);
  m->has_seq = TRUE;
  m->seq = 2;
  m->kind = ATK_EVENT_SYNC;
  m->action_name = "sync";
  /* refused at once, or (while librdkafka still had events for us) held until the queue
   * was empty and then settled for good */
  if (atk_kafka_sink_produce (f->sink, m, &error))
    {
      wait_reports (f, 2);
      g_assert_cmpuint (f->failed, ==, 1);
    }
  else
    g_assert_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);
  g_assert_cmpuint (f->ok, ==, 1);
  g_assert_cmpuint (f->undelivered, ==, 0);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (f->sink), ==, 0);
}

/* A rewind while Kafka is away: the messages produced before it are produced again. When
 * Kafka is back, the old ones' reports (delivered or timed out) must settle nothing: only
 * the new ones may settle their seqs. */
static void
test_forgotten (Fixture *f, gconstpointer data)
{
  warm_up (f);
  rd_kafka_mock_broker_set_down (f->cluster, 1);
  produce (f, 2, 6); /* the first generation */
  atk_kafka_sink_forget_in_flight (f->sink);
  produce (f, 2, 6); /* produced again */
  rd_kafka_mock_broker_set_up (f->cluster, 1);
  wait_reports (f, 11);
  g_assert_cmpuint (f->released, ==, 5);
  g_assert_cmpuint (f->ok, ==, 6);
  g_assert_cmpuint (f->undelivered + f->failed, ==, 0);

  /* Now the old ones time out while the new ones are delivered. */
  rd_kafka_mock_broker_set_down (f->cluster, 1);
  produce (f, 7, 9);
  atk_kafka_sink_forget_in_flight (f->sink);
  wait_reports (f, 14);
  g_assert_cmpuint (f->released, ==, 8);
  g_assert_cmpuint (f->undelivered, ==, 0);
  rd_kafka_mock_broker_set_up (f->cluster, 1);
  produce (f, 7, 9);
  wait_reports (f, 17);
  g_assert_cmpuint (f->ok, ==, 9);
  g_assert_cmpuint (f->undelivered + f->failed, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* a refusal for good is logged as a warning (and checked through "fatal") */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);

  g_test_add ("/kafka-sink-faults/leaders-not-serving", Fixture, "10000", fixture_setup,
              test_leaders_not_serving, fixture_teardown);
  g_test_add ("/kafka-sink-faults/timed-out", Fixture, "1500", fixture_setup, test_timed_out,
              fixture_teardown);
  g_test_add ("/kafka-sink-faults/refused-retries-run-out", Fixture, "10000", fixture_setup,
              test_refused_retries_run_out, fixture_teardown);
  g_test_add ("/kafka-sink-faults/refused-batch", Fixture, "10000", fixture_setup,
              test_refused_batch, fixture_teardown);
  g_test_add ("/kafka-sink-faults/forgotten", Fixture, "6000", fixture_setup, test_forgotten,
              fixture_teardown);
  g_test_add ("/kafka-sink-faults/refused-by-policy", Fixture, "10000", fixture_setup,
              test_refused_by_policy, fixture_teardown);
  g_test_add ("/kafka-sink-faults/queue-full-held", Fixture,
              "0 queue.buffering.max.messages=5 linger.ms=20", fixture_setup, test_queue_full_held,
              fixture_teardown);
  g_test_add ("/kafka-sink-faults/queue-full-forgotten", Fixture,
              "0 queue.buffering.max.messages=5", fixture_setup, test_queue_full_forgotten,
              fixture_teardown);
  g_test_add ("/kafka-sink-faults/larger-than-queue", Fixture, "0 queue.buffering.max.kbytes=2",
              fixture_setup, test_larger_than_queue, fixture_teardown);
  return g_test_run ();
}
