/* AtkKafkaSink's delivery reports when Kafka fails, against librdkafka's mock cluster (used
 * only to inject the faults: a broker that is down, produce requests refused). What must
 * hold: a message is settled ("delivered") only when Kafka took it, or refused it for
 * reasons of its own; anything else is "undelivered" (produced again after a rewind); and
 * after atk_kafka_sink_forget_in_flight() the older messages' reports settle nothing. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "atk-kafka-sink.h"
#include "atk-test-util.h"

#define WAIT_MS 30000
#define TOPIC "faults"
#define API_KEY_PRODUCE 0 /* the Produce request (librdkafka keeps its name private) */

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
    f->ok++;
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

/* data: message.timeout.ms */
static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autofree char *timeout = g_strdup_printf ("message.timeout.ms=%s", (const char *)data);
  const char *properties[]
      = { timeout, "retries=2", "retry.backoff.ms=20", "reconnect.backoff.max.ms=100", NULL };
  g_autoptr (GError) error = NULL;
  char errstr[512];
  AtkKafkaSinkOptions options = { .topic = TOPIC, .partitions = 1, .properties = properties };

  f->mock_rk = rd_kafka_new (RD_KAFKA_PRODUCER, rd_kafka_conf_new (), errstr, sizeof errstr);
  g_assert_nonnull (f->mock_rk);
  f->cluster = rd_kafka_mock_cluster_new (f->mock_rk, 1);
  g_assert_nonnull (f->cluster);
  g_assert_cmpint (rd_kafka_mock_topic_create (f->cluster, TOPIC, 1, 1), ==, 0);
  options.bootstrap_servers = rd_kafka_mock_cluster_bootstraps (f->cluster);
  f->sink = atk_kafka_sink_new (&options, &error);
  g_assert_no_error (error);
  f->settled_seqs = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_signal_connect (f->sink, "delivered", G_CALLBACK (on_delivered), f);
  g_signal_connect (f->sink, "undelivered", G_CALLBACK (on_undelivered), f);
  g_signal_connect (f->sink, "released", G_CALLBACK (on_released), f);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->sink);
  g_hash_table_unref (f->settled_seqs);
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

static void
test_refused_retries_run_out (Fixture *f, gconstpointer data)
{
  check_refused (f, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
}

static void
test_refused_batch (Fixture *f, gconstpointer data)
{
  check_refused (f, RD_KAFKA_RESP_ERR_INVALID_RECORD);
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

  g_test_add ("/kafka-sink-faults/timed-out", Fixture, "1500", fixture_setup, test_timed_out,
              fixture_teardown);
  g_test_add ("/kafka-sink-faults/refused-retries-run-out", Fixture, "10000", fixture_setup,
              test_refused_retries_run_out, fixture_teardown);
  g_test_add ("/kafka-sink-faults/refused-batch", Fixture, "10000", fixture_setup,
              test_refused_batch, fixture_teardown);
  g_test_add ("/kafka-sink-faults/forgotten", Fixture, "6000", fixture_setup, test_forgotten,
              fixture_teardown);
  return g_test_run ();
}
