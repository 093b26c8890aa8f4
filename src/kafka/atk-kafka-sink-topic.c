/* at-kafka: the sink's topic: creating it (and the cursor topic) until the broker answers,
 * then making the producer's batches fit the topic's max.message.bytes, then waiting until
 * the leader of every partition answers for it, before "ready".
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-kafka-sink.h"
#include "atk-kafka-sink-private.h"

#include "atk-error.h"
#include "atk-kafka-conf.h"
#include "atk-kafka-topic-admin.h"

/* How long one Admin request may take, and the retry backoff while the broker cannot be
 * reached. */
#define ADMIN_TIMEOUT_MS 5000
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000
/* Halving batch.size (when the topic's limit cannot be read) stops here. */
#define MIN_BATCH_BYTES 16384

static void ensure_topic_now (AtkKafkaSink *self);
static void check_leaders (AtkKafkaSink *self);

/* ---- topic creation --------------------------------------------------------------- */

static void
set_ready (AtkKafkaSink *self)
{
  if (self->ready)
    {
      self->creating = FALSE;
      return;
    }
  check_leaders (self);
}

static void
leaders_confirmed (AtkKafkaSink *self)
{
  self->creating = FALSE;
  self->retry_ms = RETRY_MIN_MS;
  if (self->ready)
    return;
  self->ready = TRUE;
  g_debug ("topic %s is ready", self->topic);
  atk_kafka_sink_emit_ready (self);
}

static gboolean
on_retry_timeout (gpointer user_data)
{
  AtkKafkaSink *self = user_data;

  self->retry_id = 0;
  ensure_topic_now (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (AtkKafkaSink *self, const char *why)
{
  self->creating = FALSE;
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "ATK_KAFKA_TOPIC", self->topic, "MESSAGE",
                    "Cannot create Kafka topic %s (%s); retrying in %u ms", self->topic, why,
                    self->retry_ms);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_id = g_timeout_add (self->retry_ms, on_retry_timeout, self);
  self->retry_ms = MIN (self->retry_ms * 2, RETRY_MAX_MS);
}

/* ---- every partition led ---------------------------------------------------------- */

/* A partition the broker lists with a leader may not be served by that leader yet (a new
 * topic, a broker still loading its logs). librdkafka 2.0's idempotent producer can then lose
 * a message: the first batch is refused ("not leader"), the next one, sent before the retry
 * of the first, is taken by the new leader (it knows no sequence of ours yet), and the first
 * is reported delivered though the broker never stored it. So the topic is ready only once
 * every partition's leader answers a ListOffsets for it. The check runs in a thread on a
 * handle of its own (the sink's may be replaced meanwhile), built from the sink's settings
 * without its callbacks. */
static void
quiet_log (const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  g_debug ("leader check: %s: %s", fac, buf);
}

static void
check_leaders_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancel)
{
  rd_kafka_conf_t *conf = task_data; /* ours: rd_kafka_new() takes it */
  const char *topic = g_object_get_data (G_OBJECT (task), "topic");
  g_autoptr (GString) missing = g_string_new (NULL);
  const rd_kafka_metadata_t *metadata = NULL;
  rd_kafka_topic_partition_list_t *list;
  rd_kafka_topic_t *rkt;
  rd_kafka_resp_err_t err;
  rd_kafka_t *rk;
  gint partitions = 0;
  char errstr[512];

  rd_kafka_conf_set_opaque (conf, NULL);
  rd_kafka_conf_set_dr_msg_cb (conf, NULL);
  rd_kafka_conf_set_error_cb (conf, NULL);
  rd_kafka_conf_set_throttle_cb (conf, NULL);
  rd_kafka_conf_set_log_cb (conf, quiet_log);
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      rd_kafka_conf_destroy (conf);
      g_task_return_new_error (task, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "%s", errstr);
      return;
    }
  /* The topic's own partition count: it may be older than our --topic-partitions. */
  rkt = rd_kafka_topic_new (rk, topic, NULL);
  err = rd_kafka_metadata (rk, 0, rkt, &metadata, ADMIN_TIMEOUT_MS);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        partitions = metadata->topics[0].partition_cnt;
      else
        err = metadata->topic_cnt == 1 ? metadata->topics[0].err
                                       : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
      rd_kafka_metadata_destroy (metadata);
    }
  rd_kafka_topic_destroy (rkt);
  list = rd_kafka_topic_partition_list_new (MAX (partitions, 1));
  for (gint p = 0; p < partitions; p++)
    rd_kafka_topic_partition_list_add (list, topic, p)->offset = RD_KAFKA_OFFSET_END;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && partitions == 0)
    err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    err = rd_kafka_offsets_for_times (rk, list, ADMIN_TIMEOUT_MS);
  for (gint i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++)
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR && missing->len < 200)
      g_string_append_printf (missing, "%s%d (%s)", missing->len > 0 ? ", " : "",
                              list->elems[i].partition, rd_kafka_err2str (list->elems[i].err));
  rd_kafka_topic_partition_list_destroy (list);
  rd_kafka_destroy (rk);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    g_task_return_new_error (task, ATK_ERROR, ATK_ERROR_KAFKA, "%s", rd_kafka_err2str (err));
  else if (missing->len > 0)
    g_task_return_new_error (task, ATK_ERROR, ATK_ERROR_KAFKA, "partitions %s", missing->str);
  else
    g_task_return_boolean (task, TRUE);
}

static gboolean
on_leaders_retry (gpointer user_data)
{
  AtkKafkaSink *self = user_data;

  self->retry_id = 0;
  check_leaders (self);
  return G_SOURCE_REMOVE;
}

static void
on_leaders_checked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AtkKafkaSink *self = ATK_KAFKA_SINK (source);
  g_autoptr (GError) error = NULL;

  self->checking_leaders = FALSE;
  if (self->disposing)
    return;
  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      leaders_confirmed (self);
      return;
    }
  g_log_structured (
      G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "ATK_KAFKA_TOPIC", self->topic, "MESSAGE",
      "Kafka topic %s is not served by all its leaders yet (%s); asking again in %u ms",
      self->topic, error->message, self->retry_ms);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_id = g_timeout_add (self->retry_ms, on_leaders_retry, self);
  self->retry_ms = MIN (self->retry_ms * 2, RETRY_MAX_MS / 6);
}

static void
check_leaders (AtkKafkaSink *self)
{
  g_autoptr (GTask) task = NULL;

  if (self->checking_leaders)
    return;
  self->checking_leaders = TRUE;
  task = g_task_new (self, NULL, on_leaders_checked, NULL);
  g_object_set_data_full (G_OBJECT (task), "topic", g_strdup (self->topic), g_free);
  g_task_set_task_data (task, rd_kafka_conf_dup (self->conf_template), NULL);
  g_task_run_in_thread (task, check_leaders_thread);
}

/* ---- the topic's message size limit ------------------------------------------------- */

void
atk_kafka_sink_describe_topic (AtkKafkaSink *self)
{
  if (self->describing || self->rk == NULL)
    return;
  self->describing = TRUE;
  atk_kafka_topic_admin_describe (self->rk, self->admin_queue, self->topic, ADMIN_TIMEOUT_MS);
}

static gboolean
on_rebuild (gpointer user_data)
{
  AtkKafkaSink *self = user_data;
  g_autoptr (GError) error = NULL;

  self->rebuild_id = 0;
  if (!atk_kafka_sink_rebuild_handle (self, self->rebuild_batch_size, &error))
    {
      atk_kafka_sink_mark_fatal (self, error->message);
      return G_SOURCE_REMOVE;
    }
  if (self->creating)
    set_ready (self);
  return G_SOURCE_REMOVE;
}

/* Batches must fit the topic: a producer whose batch.size is above what the topic takes is
 * replaced by one with a smaller batch.size (before the topic is ready, or later with
 * whatever was in flight handed back as undelivered, to be produced again). */
static void
fit_batches (AtkKafkaSink *self, gint64 batch_size)
{
  if (batch_size >= self->batch_size)
    {
      if (self->creating)
        set_ready (self);
      return;
    }
  if (self->transactional && self->ready)
    {
      g_autofree char *reason
          = g_strdup_printf ("Kafka topic %s takes batches of at most %" G_GINT64_FORMAT
                             " bytes, less than the producer's batch.size %" G_GINT64_FORMAT
                             ": restart to produce smaller batches",
                             self->topic, batch_size, self->batch_size);
      atk_kafka_sink_mark_fatal (self, reason);
      return;
    }
  g_message ("Kafka topic %s (max.message.bytes %" G_GINT64_FORMAT "%s): producing with "
             "batch.size %" G_GINT64_FORMAT " instead of %" G_GINT64_FORMAT,
             self->topic, self->topic_limit, self->has_limit ? "" : ", unknown", batch_size,
             self->batch_size);
  self->rebuild_batch_size = batch_size;
  /* Not from inside the queue drain that brought the news: the handle goes away. */
  if (self->rebuild_id == 0)
    self->rebuild_id = g_idle_add (on_rebuild, self);
}

static void
handle_describe_result (AtkKafkaSink *self, rd_kafka_event_t *event)
{
  g_autoptr (GError) error = NULL;
  gint64 limit = 0;
  gint64 want = self->batch_size;

  self->describing = FALSE;
  if (atk_kafka_topic_admin_describe_result (event, self->topic, &limit, &error))
    {
      self->has_limit = TRUE;
      self->topic_limit = limit;
      want = atk_kafka_conf_batch_cap (limit);
    }
  else
    g_message ("Cannot read the max.message.bytes of Kafka topic %s (%s)", self->topic,
               error->message);
  /* The broker refused a batch that should have fitted (or the limit is unknown): halve
   * batch.size, so that whatever the reason the next batches fit in the end. */
  if (self->refused_batches)
    want = MIN (want, MAX (MIN_BATCH_BYTES, self->batch_size / 2));
  fit_batches (self, want);
}

/* ---- topic creation --------------------------------------------------------------- */

static void
handle_create_topics_result (AtkKafkaSink *self, rd_kafka_event_t *event)
{
  g_autoptr (GError) error = NULL;

  if (!atk_kafka_topic_admin_create_result (event, self->topic, self->cursor_topic != NULL, &error))
    {
      schedule_retry (self, error->message);
      return;
    }
  /* Ready once the producer's batches are known to fit the topic. */
  atk_kafka_sink_describe_topic (self);
}

static void
ensure_topic_now (AtkKafkaSink *self)
{
  g_autoptr (GError) error = NULL;

  if (!atk_kafka_topic_admin_create (self->rk, self->admin_queue, self->topic, self->partitions,
                                     self->replication, self->cursor_topic, ADMIN_TIMEOUT_MS,
                                     &error))
    {
      /* Only bad arguments fail here; new() validated them, so this is a bug. */
      g_critical ("%s", error->message);
      return;
    }
  self->creating = TRUE;
  self->ensure_attempts++;
}

void
atk_kafka_sink_ensure_topic (AtkKafkaSink *self)
{
  g_return_if_fail (ATK_IS_KAFKA_SINK (self));

  if (self->ready || self->creating || self->retry_id != 0)
    return;
  ensure_topic_now (self);
}

gboolean
atk_kafka_sink_is_ready (AtkKafkaSink *self)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), FALSE);
  return self->ready;
}

guint
atk_kafka_sink_get_ensure_attempts (AtkKafkaSink *self)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), 0);
  return self->ensure_attempts;
}

void
atk_kafka_sink_handle_admin_event (AtkKafkaSink *self, rd_kafka_event_t *event)
{
  if (rd_kafka_event_type (event) == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
    handle_create_topics_result (self, event);
  else if (rd_kafka_event_type (event) == RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT)
    handle_describe_result (self, event);
}
