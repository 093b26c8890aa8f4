/* bench-producer: the bare librdkafka producer that tools/bench-pipeline measures at-kafka
 * against.
 *
 * Decodes a frame file once (before the clock starts), then produces exactly the messages
 * at-kafka would (same keys, values and headers) with the same producer configuration
 * (atk_kafka_conf_build(): lz4, idempotence, acks=all, murmur2_random, linger.ms, …, then
 * the -X properties), paced like at-kafka-replay --rate (every frame that is due, at most
 * one wakeup per millisecond) or flat out. No main loop, no decoding, no cursor: what is
 * left is what librdkafka itself costs. kcat -P cannot be used for this: it cannot give
 * each message its own headers.
 *
 * Prints one line of key=value pairs: messages, wall, cpu (user+system of the whole
 * process, all threads, from the first message to the last acknowledgement), peak RSS
 * and p50/p99 of produce → acknowledged (after the first tenth of the messages).
 * SPDX-License-Identifier: MIT */
#include <glib.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "atk-event-transformer.h"
#include "atk-kafka-conf.h"
#include "atk-kafka-topic-admin.h"

typedef struct
{
  char *key;
  GString *value;
  rd_kafka_headers_t *headers;
} Prepared;

typedef struct
{
  guint first; /* index of its first message in the Prepared array */
  guint count;
} FrameSpan;

static guint64 acked, failed;
static GArray *latencies_us; /* gint64 */

static gdouble
cpu_seconds (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return (gdouble)usage.ru_utime.tv_sec + (gdouble)usage.ru_utime.tv_usec / 1e6
         + (gdouble)usage.ru_stime.tv_sec + (gdouble)usage.ru_stime.tv_usec / 1e6;
}

/* Voluntary context switches of all threads: how often they went to sleep and woke up. */
static gint64
wakeups (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_nvcsw;
}

static gdouble
peak_rss_mib (void)
{
  g_autofree char *status = NULL;
  const char *hwm;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return 0;
  hwm = strstr (status, "VmHWM:");
  return hwm != NULL ? g_ascii_strtod (hwm + 6, NULL) / 1024 : 0;
}

static void
on_delivery (rd_kafka_t *rk, const rd_kafka_message_t *rkmessage, void *opaque)
{
  gint64 latency = g_get_monotonic_time () - GPOINTER_TO_SIZE (rkmessage->_private);

  if (rkmessage->err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      failed++;
      return;
    }
  acked++;
  g_array_append_val (latencies_us, latency);
}

static void
add_header (rd_kafka_headers_t *headers, const char *name, const char *value)
{
  rd_kafka_header_add (headers, name, -1, value, -1);
}

/* The headers at-kafka's sink gives the message (see atk-kafka-sink.c). */
static rd_kafka_headers_t *
headers_for (const AtkMessage *message)
{
  rd_kafka_headers_t *headers = rd_kafka_headers_new (4);

  if (message->has_seq)
    {
      char seq[24];
      g_snprintf (seq, sizeof seq, "%" G_GINT64_FORMAT, message->seq);
      add_header (headers, "seq", seq);
    }
  add_header (headers, "type", atk_event_kind_name (message->kind));
  if (message->action_name != NULL)
    add_header (headers, "action", message->action_name);
  if (message->collection != NULL)
    add_header (headers, "collection", message->collection);
  return headers;
}

static gboolean
prepare (const char *path, GArray *prepared, GArray *spans, GError **error)
{
  g_autoptr (GMappedFile) file = g_mapped_file_new (path, FALSE, error);
  g_autoptr (AtkEventTransformer) transformer = atk_event_transformer_new ();
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  AtkFrameFileReader reader;
  const guint8 *data;
  gsize len;

  if (file == NULL)
    return FALSE;
  atk_frame_file_reader_init (&reader, (const guint8 *)g_mapped_file_get_contents (file),
                              g_mapped_file_get_length (file));
  while (atk_frame_file_reader_next (&reader, &data, &len, error))
    {
      AtkTransformResult result = { 0 };
      FrameSpan span = { prepared->len, 0 };

      atk_event_transformer_transform (transformer, data, len, g_get_real_time (), messages,
                                       &result, NULL);
      for (guint i = 0; i < messages->len; i++)
        {
          AtkMessage *message = g_ptr_array_index (messages, i);
          Prepared p = { g_strdup (message->key),
                         g_string_new_len (message->value->str, message->value->len),
                         headers_for (message) };
          g_array_append_val (prepared, p);
          span.count++;
        }
      g_array_append_val (spans, span);
      g_ptr_array_set_size (messages, 0);
      atk_transform_result_clear (&result);
    }
  return error == NULL || *error == NULL;
}

static gboolean
create_topic (rd_kafka_t *rk, const char *topic, int partitions, GError **error)
{
  rd_kafka_queue_t *queue = rd_kafka_queue_new (rk);
  rd_kafka_event_t *event;
  gboolean ok;

  if (!atk_kafka_topic_admin_create (rk, queue, topic, partitions, 1, NULL, 10000, error))
    {
      rd_kafka_queue_destroy (queue);
      return FALSE;
    }
  event = rd_kafka_queue_poll (queue, 15000);
  ok = event != NULL && atk_kafka_topic_admin_create_result (event, topic, FALSE, error);
  if (event == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "CreateTopics timed out");
  g_clear_pointer (&event, rd_kafka_event_destroy);
  rd_kafka_queue_destroy (queue);
  return ok;
}

static gint
compare_i64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return (x > y) - (x < y);
}

static gdouble
percentile_ms (gdouble p)
{
  guint i;

  if (latencies_us->len == 0)
    return 0;
  i = MIN (latencies_us->len - 1, (guint)(p * latencies_us->len));
  return g_array_index (latencies_us, gint64, i) / 1000.0;
}

int
main (int argc, char **argv)
{
  g_autofree char *bootstrap = g_strdup ("127.0.0.1:9092");
  g_autofree char *topic = NULL;
  g_autofree char *compression = NULL;
  g_auto (GStrv) properties = NULL;
  gdouble rate = 0;
  gint loops = 1, partitions = 16;
  const GOptionEntry entries[] = {
    { "bootstrap-servers", 'b', 0, G_OPTION_ARG_STRING, &bootstrap, "Kafka brokers", "HOSTS" },
    { "topic", 't', 0, G_OPTION_ARG_STRING, &topic, "Topic (created if missing)", "TOPIC" },
    { "topic-partitions", 0, 0, G_OPTION_ARG_INT, &partitions, "Partitions (default 16)", "N" },
    { "compression", 0, 0, G_OPTION_ARG_STRING, &compression, "Codec (default lz4)", "CODEC" },
    { "rate", 'r', 0, G_OPTION_ARG_DOUBLE, &rate, "Frames per second (default: flat out)", "N" },
    { "loop", 'l', 0, G_OPTION_ARG_INT, &loops, "Passes over the file (default 1)", "N" },
    { "property", 'X', 0, G_OPTION_ARG_STRING_ARRAY, &properties, "librdkafka property",
      "KEY=VALUE" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("FRAMES.bin");
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) prepared = g_array_new (FALSE, FALSE, sizeof (Prepared));
  g_autoptr (GArray) spans = g_array_new (FALSE, FALSE, sizeof (FrameSpan));
  AtkKafkaSinkOptions options = { 0 };
  rd_kafka_conf_t *conf;
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  char errstr[512];
  guint64 total, sent_frames = 0, n_frames;
  gint64 start;
  gdouble cpu_start, cpu, wall;
  gint64 wakeups_start, woke;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc != 2 || topic == NULL)
    {
      g_printerr ("bench-producer: %s\n",
                  error != NULL ? error->message : "usage: --topic TOPIC FRAMES.bin");
      return 2;
    }
  if (!prepare (argv[1], prepared, spans, &error))
    {
      g_printerr ("bench-producer: %s: %s\n", argv[1], error->message);
      return 1;
    }
  n_frames = (guint64)spans->len * loops;
  total = (guint64)prepared->len * loops;
  latencies_us = g_array_sized_new (FALSE, FALSE, sizeof (gint64), total);

  options.bootstrap_servers = bootstrap;
  options.topic = topic;
  options.compression = compression;
  options.properties = (const char *const *)properties;
  conf = atk_kafka_conf_build (&options, &error);
  if (conf == NULL)
    {
      g_printerr ("bench-producer: %s\n", error->message);
      return 2;
    }
  rd_kafka_conf_set_dr_msg_cb (conf, on_delivery);
  rd_kafka_conf_set (conf, "log.queue", "false", NULL, 0);
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      g_printerr ("bench-producer: %s\n", errstr);
      return 2;
    }
  if (!create_topic (rk, topic, partitions, &error))
    {
      g_printerr ("bench-producer: %s\n", error->message);
      return 1;
    }
  rkt = rd_kafka_topic_new (rk, topic, NULL);

  start = g_get_monotonic_time ();
  cpu_start = cpu_seconds ();
  wakeups_start = wakeups ();
  while (sent_frames < n_frames)
    {
      guint64 due = n_frames;

      if (rate > 0)
        {
          gdouble elapsed_s = (g_get_monotonic_time () - start) / 1e6;
          due = MIN (n_frames, (guint64)(elapsed_s * rate) + 1);
          if (due <= sent_frames)
            {
              gdouble wait_s = sent_frames / rate - elapsed_s;
              struct timespec ts = { 0, (long)(MAX (wait_s, 0.001) * 1e9) };
              rd_kafka_poll (rk, 0);
              nanosleep (&ts, NULL);
              continue;
            }
        }
      for (; sent_frames < due; sent_frames++)
        {
          const FrameSpan *span = &g_array_index (spans, FrameSpan, sent_frames % spans->len);
          for (guint i = 0; i < span->count; i++)
            {
              const Prepared *p = &g_array_index (prepared, Prepared, span->first + i);
              rd_kafka_resp_err_t err;

              while ((err = rd_kafka_producev (
                          rk, RD_KAFKA_V_RKT (rkt), RD_KAFKA_V_KEY (p->key, strlen (p->key)),
                          RD_KAFKA_V_VALUE (p->value->str, p->value->len),
                          RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_HEADERS (rd_kafka_headers_copy (p->headers)),
                          RD_KAFKA_V_OPAQUE (GSIZE_TO_POINTER (g_get_monotonic_time ())),
                          RD_KAFKA_V_END))
                     == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll (rk, 10);
              if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
                {
                  g_printerr ("bench-producer: %s\n", rd_kafka_err2str (err));
                  return 1;
                }
            }
          if (rate <= 0 && sent_frames % 64 == 0)
            rd_kafka_poll (rk, 0);
        }
      rd_kafka_poll (rk, 0);
    }
  while (acked + failed < total)
    rd_kafka_poll (rk, 100);
  wall = (g_get_monotonic_time () - start) / 1e6;
  cpu = cpu_seconds () - cpu_start;
  woke = wakeups () - wakeups_start;

  /* The first tenth (the first metadata requests and connections) is warm-up. */
  g_array_remove_range (latencies_us, 0, latencies_us->len / 10);
  g_array_sort (latencies_us, compare_i64);
  g_print ("messages=%" G_GUINT64_FORMAT " failed=%" G_GUINT64_FORMAT " frames=%" G_GUINT64_FORMAT
           " wall=%.3f cpu=%.3f wakeups=%" G_GINT64_FORMAT " rss_mib=%.1f p50_ms=%.2f"
           " p99_ms=%.2f\n",
           acked, failed, n_frames, wall, cpu, woke, peak_rss_mib (), percentile_ms (0.50),
           percentile_ms (0.99));
  rd_kafka_topic_destroy (rkt);
  rd_kafka_destroy (rk);
  return failed > 0 ? 1 : 0;
}
