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

/* Created, and batches fit: the last step before "ready" is the leaders check. */
static void
topic_set_up (AtkKafkaSink *self)
{
  if (self->ready)
    {
      self->creating = FALSE;
      return;
    }
  check_leaders (self);
}

static void
set_ready (AtkKafkaSink *self)
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

/* Logs what failed and calls again after a growing delay. */
static void
retry_later (AtkKafkaSink *self, GSourceFunc again, const char *what, const char *why)
{
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "ATK_KAFKA_TOPIC", self->topic, "MESSAGE",
                    "%s %s (%s); asking again in %u ms", what, self->topic, why, self->retry_ms);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_id = g_timeout_add (self->retry_ms, again, self);
  self->retry_ms = MIN (self->retry_ms * 2, RETRY_MAX_MS);
}

static void
schedule_retry (AtkKafkaSink *self, const char *why)
{
  self->creating = FALSE;
  retry_later (self, on_retry_timeout, "Cannot create Kafka topic", why);
}

/* ---- every partition led ---------------------------------------------------------- */

/* A partition the broker lists with a leader may not be served by that leader yet (a new
 * topic, a broker still loading its logs). librdkafka 2.0's idempotent producer can then lose
 * a message: the first batch is refused ("not leader"), the next one, sent before the retry
 * of the first, is taken by the new leader (it knows no sequence of ours yet), and the first
 * is reported delivered though the broker never stored it. So the topic is ready only once
 * every partition's leader answers a ListOffsets for it. The check blocks, so it runs in a
 * thread, on a handle of its own (the sink's may be replaced meanwhile). */
static void
check_leaders_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancel)
{
  const char *topic = g_object_get_data (G_OBJECT (task), "topic");
  GError *error = NULL;

  if (atk_kafka_topic_admin_leaders_serve (task_data, topic, ADMIN_TIMEOUT_MS, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
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
      set_ready (self);
      return;
    }
  retry_later (self, on_leaders_retry, "Not every partition's leader serves Kafka topic",
               error->message);
}

static void
check_leaders (AtkKafkaSink *self)
{
  g_autoptr (GTask) task = NULL;

  if (self->checking_leaders)
    return;
  self->checking_leaders = TRUE;
  self->leader_checks++;
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
    topic_set_up (self);
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
        topic_set_up (self);
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

guint
atk_kafka_sink_get_leader_checks (AtkKafkaSink *self)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), 0);
  return self->leader_checks;
}

void
atk_kafka_sink_handle_admin_event (AtkKafkaSink *self, rd_kafka_event_t *event)
{
  if (rd_kafka_event_type (event) == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
    handle_create_topics_result (self, event);
  else if (rd_kafka_event_type (event) == RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT)
    handle_describe_result (self, event);
}
