/* at-kafka: the librdkafka producer.
 *
 * Threads: librdkafka's own threads do the network I/O. Everything it hands back to us
 * (delivery reports, errors, throttling, logs, Admin API results) is queued on two
 * librdkafka queues whose "became non-empty" event writes a byte into one pipe; a GSource
 * watches the pipe and drains both queues on the main context. So our code runs on one
 * thread, needs no locks, and never polls on a timer.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-kafka-sink.h"

#include <errno.h>
#include <glib-unix.h>
#include <librdkafka/rdkafka.h>
#include <string.h>
#include <unistd.h>

#include "atk-error.h"
#include "atk-kafka-cursor.h"

#define DEFAULT_PARTITIONS 200
/* Topic creation: how long one CreateTopics may take, and the retry backoff while the
 * broker cannot be reached. */
#define ADMIN_TIMEOUT_MS 5000
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000
/* gzip's fastest level: see README (Kafka settings and Osprey) for what it costs. */
#define GZIP_LEVEL "1"

struct _AtkKafkaSink
{
  GObject parent_instance;

  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  rd_kafka_topic_t *cursor_rkt;  /* NULL without a cursor topic */
  rd_kafka_queue_t *main_queue;  /* delivery reports, errors, throttle, logs */
  rd_kafka_queue_t *admin_queue; /* CreateTopics results */
  int wake_fds[2];               /* both queues write here when they become non-empty */
  guint wake_id;

  char *topic;
  char *cursor_topic;
  char *compression; /* the codec in effect, after the user's properties */
  int partitions;
  int replication;

  gboolean ready;
  gboolean creating; /* a CreateTopics request is outstanding */
  guint retry_id;
  guint retry_ms;
  guint ensure_attempts;
  gboolean disposing; /* delivery reports during teardown free their opaque, emit nothing */
  gboolean transactional;
  gboolean fatal;

  guint in_flight;
  guint64 in_flight_bytes;
};

/* Travels with each message through librdkafka and comes back in its delivery report. */
typedef struct
{
  gint64 seq;
  gboolean has_seq;
  gint64 enqueued_us;
  gsize bytes;
  gboolean is_cursor; /* a cursor record: not in flight, no signal */
} DeliveryTicket;

enum
{
  SIGNAL_DELIVERED,
  SIGNAL_UNDELIVERED,
  SIGNAL_FATAL,
  SIGNAL_READY,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (AtkKafkaSink, atk_kafka_sink, G_TYPE_OBJECT)

static void ensure_topic_now (AtkKafkaSink *self);

/* ---- configuration ---------------------------------------------------------------- */

static gboolean
conf_set (rd_kafka_conf_t *conf, const char *key, const char *value, GError **error)
{
  char errstr[512];

  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Kafka property %s=%s: %s", key, value,
                   errstr);
      return FALSE;
    }
  return TRUE;
}

static gboolean
apply_user_properties (rd_kafka_conf_t *conf, const char *const *properties, GError **error)
{
  for (gsize i = 0; properties != NULL && properties[i] != NULL; i++)
    {
      const char *eq = strchr (properties[i], '=');
      g_autofree char *key = NULL;

      if (eq == NULL || eq == properties[i])
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                       "Kafka property “%s”: expected key=value", properties[i]);
          return FALSE;
        }
      key = g_strndup (properties[i], eq - properties[i]);
      if (!conf_set (conf, g_strstrip (key), eq + 1, error))
        return FALSE;
    }
  return TRUE;
}

static rd_kafka_conf_t *
build_conf (const AtkKafkaSinkOptions *options, GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  /* Our defaults, before the user's properties so that those win. */
  const char *const defaults[][2] = {
    { "bootstrap.servers", options->bootstrap_servers },
    /* Java-compatible key hashing: the same partition as the reference (franz-go) and
     * any Java producer for the same DID. */
    { "partitioner", "murmur2_random" },
    /* Per-partition order and no duplicates when librdkafka retries. */
    { "enable.idempotence", "true" },
    { "acks", "all" },
    /* lz4 unless told (the daemon picks gzip for Osprey, whose stock worker reads only
     * gzip and uncompressed batches). */
    { "compression.codec", options->compression != NULL ? options->compression : "lz4" },
    { "linger.ms", "10" },
    /* Never give a message up while the broker is away: the daemon bounds what is in
     * flight (and so memory) by pausing the relay instead. */
    { "message.timeout.ms", "0" },
    { "queue.buffering.max.messages", "1000000" },
    { "queue.buffering.max.kbytes", "2097152" },
    /* Logs go to the main queue and so reach GLib on the main thread. */
    { "log.queue", "true" },
    { "client.id", "at-kafka" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (defaults); i++)
    if (!conf_set (conf, defaults[i][0], defaults[i][1], error))
      goto fail;
  if (g_strcmp0 (options->compression, "gzip") == 0
      && !conf_set (conf, "compression.level", GZIP_LEVEL, error))
    goto fail;
  /* librdkafka wants every message settled within a transaction's lifetime. */
  if (options->transactional_id != NULL
      && (!conf_set (conf, "transactional.id", options->transactional_id, error)
          || !conf_set (conf, "transaction.timeout.ms", "60000", error)
          || !conf_set (conf, "message.timeout.ms", "60000", error)))
    goto fail;
  if (!apply_user_properties (conf, options->properties, error))
    goto fail;
  return conf;

fail:
  rd_kafka_conf_destroy (conf);
  return NULL;
}

/* ---- librdkafka callbacks (all run inside rd_kafka_poll() on the main context) ----- */

static void
mark_fatal (AtkKafkaSink *self, const char *reason)
{
  if (self->fatal || self->disposing)
    return;
  self->fatal = TRUE;
  g_signal_emit (self, signals[SIGNAL_FATAL], 0, reason);
}

/* Failures that say nothing about the message itself: producing it again may well work,
 * so they must not settle it (and move the cursor past it). */
static gboolean
is_unsettled_error (rd_kafka_resp_err_t err)
{
  return err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT
         || err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__FENCED
         || err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT || err == RD_KAFKA_RESP_ERR__TIMED_OUT
         || err == RD_KAFKA_RESP_ERR__STATE || err == RD_KAFKA_RESP_ERR__TRANSPORT
         || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED
         || err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH
         || err == RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
}

static void
on_delivery (rd_kafka_t *rk, const rd_kafka_message_t *rkmessage, void *opaque)
{
  AtkKafkaSink *self = opaque;
  g_autofree DeliveryTicket *ticket = rkmessage->_private;
  rd_kafka_resp_err_t err = rkmessage->err;
  gboolean ok = err == RD_KAFKA_RESP_ERR_NO_ERROR;
  gdouble latency = (g_get_monotonic_time () - ticket->enqueued_us) / (gdouble)G_USEC_PER_SEC;

  if (ticket->is_cursor)
    {
      g_debug ("cursor record %" G_GINT64_FORMAT ": %s", ticket->seq, rd_kafka_err2str (err));
      return;
    }
  g_assert (self->in_flight > 0);
  self->in_flight--;
  self->in_flight_bytes -= ticket->bytes;

  if (!ok)
    g_debug ("message of seq %" G_GINT64_FORMAT " failed: %s", ticket->seq, rd_kafka_err2str (err));
  if (self->disposing)
    return;
  if (!ok && is_unsettled_error (err))
    g_signal_emit (self, signals[SIGNAL_UNDELIVERED], 0, ticket->seq, ticket->has_seq,
                   rd_kafka_err2str (err));
  else
    g_signal_emit (self, signals[SIGNAL_DELIVERED], 0, ticket->seq, ticket->has_seq, ok,
                   ok ? NULL : rd_kafka_err2str (err), latency);
}

static void
on_error (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  gboolean fatal = err == RD_KAFKA_RESP_ERR__FATAL;
  char fatal_reason[512] = "";

  if (fatal)
    err = rd_kafka_fatal_error (rk, fatal_reason, sizeof fatal_reason);
  /* Fields first: g_log_structured() formats only MESSAGE, which must come last. */
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "ATK_KAFKA_ERROR", rd_kafka_err2name (err),
                    "ATK_KAFKA_FATAL", fatal ? "1" : "0", "MESSAGE", "Kafka %serror: %s",
                    fatal ? "fatal " : "", fatal ? fatal_reason : reason);
  if (fatal)
    mark_fatal (opaque, fatal_reason);
}

static void
on_throttle (rd_kafka_t *rk, const char *broker_name, int32_t broker_id, int throttle_ms,
             void *opaque)
{
  if (throttle_ms > 0)
    g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, "ATK_KAFKA_BROKER", broker_name, "MESSAGE",
                      "Kafka broker %s throttled us for %d ms", broker_name, throttle_ms);
}

static void
on_log (const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
  /* syslog levels: 0..4 (emerg..warning) are worth a message, the rest is debug.
   * Connection failures ("FAIL") also reach on_error(): one message for them is enough. */
  gboolean loud = level <= 4 && g_strcmp0 (facility, "FAIL") != 0;
  GLogLevelFlags glevel = loud ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_DEBUG;

  g_log_structured (G_LOG_DOMAIN, glevel, "ATK_KAFKA_FACILITY", facility, "MESSAGE",
                    "librdkafka %s: %s", facility, buf);
}

/* ---- topic creation --------------------------------------------------------------- */

static void
set_ready (AtkKafkaSink *self)
{
  self->creating = FALSE;
  self->retry_ms = RETRY_MIN_MS;
  if (self->ready)
    return;
  self->ready = TRUE;
  g_debug ("topic %s is ready", self->topic);
  g_signal_emit (self, signals[SIGNAL_READY], 0);
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

static void
handle_create_topics_result (AtkKafkaSink *self, rd_kafka_event_t *event)
{
  const rd_kafka_CreateTopics_result_t *result = rd_kafka_event_CreateTopics_result (event);
  const rd_kafka_topic_result_t **topics;
  size_t n = 0;
  rd_kafka_resp_err_t err;

  if (rd_kafka_event_error (event) != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      schedule_retry (self, rd_kafka_event_error_string (event));
      return;
    }
  topics = rd_kafka_CreateTopics_result_topics (result, &n);
  if (n != (self->cursor_topic != NULL ? 2 : 1))
    {
      schedule_retry (self, "no result for the topic");
      return;
    }
  for (size_t i = n; i-- > 0;)
    {
      const char *name = rd_kafka_topic_result_name (topics[i]);
      const char *why = rd_kafka_topic_result_error_string (topics[i]);

      err = rd_kafka_topic_result_error (topics[i]);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        continue;
      why = why != NULL ? why : rd_kafka_err2str (err);
      if (g_strcmp0 (name, self->topic) == 0)
        {
          schedule_retry (self, why);
          return;
        }
      /* Without its cursor topic at-kafka still runs; the state file keeps the cursor. */
      g_message ("Cannot create the cursor topic %s (%s): the cursor is kept in the state "
                 "directory only",
                 name, why);
    }
  set_ready (self);
}

/* The cursor topic: one partition (one key, read back from its end) and compacted, so
 * the newest record per key is kept for ever and the rest goes. */
static rd_kafka_NewTopic_t *
new_cursor_topic (AtkKafkaSink *self, char *errstr, size_t errstr_size)
{
  rd_kafka_NewTopic_t *new_topic
      = rd_kafka_NewTopic_new (self->cursor_topic, 1, self->replication, errstr, errstr_size);

  if (new_topic != NULL)
    rd_kafka_NewTopic_set_config (new_topic, "cleanup.policy", "compact");
  return new_topic;
}

static void
ensure_topic_now (AtkKafkaSink *self)
{
  char errstr[512];
  rd_kafka_NewTopic_t *new_topics[2] = { NULL, NULL };
  size_t n_topics = 1;
  rd_kafka_AdminOptions_t *admin_options;

  new_topics[0] = rd_kafka_NewTopic_new (self->topic, self->partitions, self->replication, errstr,
                                         sizeof errstr);
  if (new_topics[0] != NULL && self->cursor_topic != NULL)
    new_topics[n_topics++] = new_cursor_topic (self, errstr, sizeof errstr);
  if (new_topics[0] == NULL || new_topics[n_topics - 1] == NULL)
    {
      /* Only bad arguments fail here; new() validated them, so this is a bug. */
      g_critical ("rd_kafka_NewTopic_new(%s): %s", self->topic, errstr);
      g_clear_pointer (&new_topics[0], rd_kafka_NewTopic_destroy);
      return;
    }
  admin_options = rd_kafka_AdminOptions_new (self->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout (admin_options, ADMIN_TIMEOUT_MS, NULL, 0);
  rd_kafka_AdminOptions_set_operation_timeout (admin_options, ADMIN_TIMEOUT_MS, NULL, 0);

  self->creating = TRUE;
  self->ensure_attempts++;
  rd_kafka_CreateTopics (self->rk, new_topics, n_topics, admin_options, self->admin_queue);
  rd_kafka_AdminOptions_destroy (admin_options);
  rd_kafka_NewTopic_destroy_array (new_topics, n_topics);
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

/* ---- the wake-up pipe --------------------------------------------------------------- */

static void
drain_queues (AtkKafkaSink *self)
{
  rd_kafka_event_t *event;

  /* The pipe is written only when a queue goes from empty to non-empty, so both must be
   * emptied completely each time. rd_kafka_poll() serves the main queue's callbacks. */
  while (rd_kafka_poll (self->rk, 0) > 0)
    ;
  while ((event = rd_kafka_queue_poll (self->admin_queue, 0)) != NULL)
    {
      if (rd_kafka_event_type (event) == RD_KAFKA_EVENT_CREATETOPICS_RESULT && !self->disposing)
        handle_create_topics_result (self, event);
      rd_kafka_event_destroy (event);
    }
}

static gboolean
on_wake (int fd, GIOCondition condition, gpointer user_data)
{
  g_autoptr (AtkKafkaSink) self = g_object_ref (ATK_KAFKA_SINK (user_data));
  char buf[64];

  while (read (fd, buf, sizeof buf) > 0)
    ;
  drain_queues (self);
  return G_SOURCE_CONTINUE;
}

static gboolean
setup_wakeup (AtkKafkaSink *self, GError **error)
{
  static const char payload = 1;

  if (!g_unix_open_pipe (self->wake_fds, FD_CLOEXEC, error)
      || !g_unix_set_fd_nonblocking (self->wake_fds[0], TRUE, error)
      || !g_unix_set_fd_nonblocking (self->wake_fds[1], TRUE, error))
    return FALSE;
  rd_kafka_queue_io_event_enable (self->main_queue, self->wake_fds[1], &payload, 1);
  rd_kafka_queue_io_event_enable (self->admin_queue, self->wake_fds[1], &payload, 1);
  self->wake_id = g_unix_fd_add (self->wake_fds[0], G_IO_IN, on_wake, self);
  return TRUE;
}

/* ---- producing ------------------------------------------------------------------- */

static rd_kafka_headers_t *
message_headers (const AtkMessage *message)
{
  rd_kafka_headers_t *headers = rd_kafka_headers_new (4);

  if (message->has_seq)
    {
      char seq[24];
      g_snprintf (seq, sizeof seq, "%" G_GINT64_FORMAT, message->seq);
      rd_kafka_header_add (headers, "seq", -1, seq, -1);
    }
  rd_kafka_header_add (headers, "type", -1, atk_event_kind_name (message->kind), -1);
  if (message->action_name != NULL)
    rd_kafka_header_add (headers, "action", -1, message->action_name, -1);
  if (message->collection != NULL)
    rd_kafka_header_add (headers, "collection", -1, message->collection, -1);
  return headers;
}

gboolean
atk_kafka_sink_produce (AtkKafkaSink *self, AtkMessage *message, GError **error)
{
  g_autoptr (AtkMessage) owned = message; /* freed on every return */
  (void)owned;
  DeliveryTicket *ticket;
  rd_kafka_headers_t *headers;
  gsize key_len;
  rd_kafka_resp_err_t err;

  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);

  key_len = message->key != NULL ? strlen (message->key) : 0;
  ticket = g_new0 (DeliveryTicket, 1);
  ticket->seq = message->seq;
  ticket->has_seq = message->has_seq;
  ticket->enqueued_us = g_get_monotonic_time ();
  ticket->bytes = key_len + message->value->len;
  headers = message_headers (message);

  /* F_COPY: the value is a few KB at most; copying it keeps AtkMessage's ownership simple. */
  err = rd_kafka_producev (self->rk, RD_KAFKA_V_RKT (self->rkt),
                           RD_KAFKA_V_KEY (message->key, key_len),
                           RD_KAFKA_V_VALUE (message->value->str, message->value->len),
                           RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS (headers),
                           RD_KAFKA_V_OPAQUE (ticket), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      /* On failure the headers and the ticket are still ours. */
      rd_kafka_headers_destroy (headers);
      g_free (ticket);
      g_set_error (error, ATK_ERROR,
                   err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? ATK_ERROR_TOO_LARGE
                                                               : ATK_ERROR_KAFKA,
                   "Cannot produce a %" G_GSIZE_FORMAT "-byte message to %s: %s",
                   message->value->len, self->topic, rd_kafka_err2str (err));
      return FALSE;
    }
  self->in_flight++;
  self->in_flight_bytes += ticket->bytes;
  return TRUE;
}

guint
atk_kafka_sink_get_in_flight (AtkKafkaSink *self)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), 0);
  return self->in_flight;
}

guint64
atk_kafka_sink_get_in_flight_bytes (AtkKafkaSink *self)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), 0);
  return self->in_flight_bytes;
}

const char *
atk_kafka_sink_get_compression (AtkKafkaSink *self)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), NULL);
  return self->compression;
}

gboolean
atk_kafka_sink_flush (AtkKafkaSink *self, guint timeout_ms)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), FALSE);

  /* rd_kafka_flush() serves the delivery callbacks itself, so "delivered" is emitted
   * for everything that makes it before the deadline. */
  rd_kafka_flush (self->rk, (int)MIN (timeout_ms, (guint)G_MAXINT));
  drain_queues (self);
  return self->in_flight == 0;
}

gboolean
atk_kafka_sink_produce_cursor (AtkKafkaSink *self, const char *key, gint64 seq, GError **error)
{
  g_autofree char *value = atk_kafka_cursor_format (seq, g_get_real_time ());
  DeliveryTicket *ticket;
  rd_kafka_resp_err_t err;

  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), FALSE);

  if (self->cursor_rkt == NULL)
    return TRUE;
  ticket = g_new0 (DeliveryTicket, 1);
  ticket->seq = seq;
  ticket->has_seq = TRUE;
  ticket->is_cursor = TRUE;
  err = rd_kafka_producev (
      self->rk, RD_KAFKA_V_RKT (self->cursor_rkt), RD_KAFKA_V_PARTITION (0),
      RD_KAFKA_V_KEY (key, strlen (key)), RD_KAFKA_V_VALUE (value, strlen (value)),
      RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE (ticket), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_free (ticket);
      g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "Cannot produce the cursor to %s: %s",
                   self->cursor_topic, rd_kafka_err2str (err));
      return FALSE;
    }
  return TRUE;
}

gboolean
atk_kafka_sink_is_fatal (AtkKafkaSink *self)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), TRUE);
  return self->fatal;
}

/* ---- transactions ------------------------------------------------------------------ */

/* Turns a librdkafka transaction error into a status and a GError; takes txn_error. */
static AtkTxnStatus
txn_status (AtkKafkaSink *self, rd_kafka_error_t *txn_error, const char *what, GError **error)
{
  AtkTxnStatus status;

  if (txn_error == NULL)
    return ATK_TXN_OK;
  if (rd_kafka_error_is_fatal (txn_error))
    status = ATK_TXN_FATAL;
  else if (rd_kafka_error_txn_requires_abort (txn_error))
    status = ATK_TXN_ABORTED;
  else
    status = ATK_TXN_RETRY;
  g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "Kafka transaction %s: %s", what,
               rd_kafka_error_string (txn_error));
  if (status == ATK_TXN_FATAL)
    mark_fatal (self, rd_kafka_error_string (txn_error));
  rd_kafka_error_destroy (txn_error);
  return status;
}

AtkTxnStatus
atk_kafka_sink_init_transactions (AtkKafkaSink *self, guint timeout_ms, GError **error)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self) && self->transactional, ATK_TXN_FATAL);
  return txn_status (self, rd_kafka_init_transactions (self->rk, (int)timeout_ms), "init", error);
}

AtkTxnStatus
atk_kafka_sink_begin_transaction (AtkKafkaSink *self, GError **error)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self) && self->transactional, ATK_TXN_FATAL);
  return txn_status (self, rd_kafka_begin_transaction (self->rk), "begin", error);
}

AtkTxnStatus
atk_kafka_sink_abort_transaction (AtkKafkaSink *self, guint timeout_ms, GError **error)
{
  AtkTxnStatus status;

  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self) && self->transactional, ATK_TXN_FATAL);
  status
      = txn_status (self, rd_kafka_abort_transaction (self->rk, (int)timeout_ms), "abort", error);
  drain_queues (self); /* the purged messages' reports */
  return status == ATK_TXN_OK ? ATK_TXN_ABORTED : status;
}

AtkTxnStatus
atk_kafka_sink_commit_transaction (AtkKafkaSink *self, guint timeout_ms, GError **error)
{
  AtkTxnStatus status;

  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self) && self->transactional, ATK_TXN_FATAL);
  /* commit flushes, and serves delivery reports while it waits: they run in here. */
  status
      = txn_status (self, rd_kafka_commit_transaction (self->rk, (int)timeout_ms), "commit", error);
  drain_queues (self);
  if (status != ATK_TXN_ABORTED)
    return status;
  g_debug ("aborting: %s", (*error)->message);
  return atk_kafka_sink_abort_transaction (self, timeout_ms, NULL) == ATK_TXN_FATAL
             ? ATK_TXN_FATAL
             : ATK_TXN_ABORTED;
}

/* ---- construction --------------------------------------------------------------- */

AtkKafkaSink *
atk_kafka_sink_new (const AtkKafkaSinkOptions *options, GError **error)
{
  g_autoptr (AtkKafkaSink) self = NULL;
  rd_kafka_conf_t *conf;
  char errstr[512];

  g_return_val_if_fail (options != NULL, NULL);

  if (options->bootstrap_servers == NULL || *options->bootstrap_servers == '\0')
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           "Kafka bootstrap servers are required");
      return NULL;
    }
  if (options->topic == NULL || *options->topic == '\0' || strlen (options->topic) > 249)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Invalid Kafka topic name “%s”",
                   options->topic != NULL ? options->topic : "");
      return NULL;
    }

  conf = build_conf (options, error);
  if (conf == NULL)
    return NULL;

  self = g_object_new (ATK_TYPE_KAFKA_SINK, NULL);
  {
    char codec[32] = "";
    size_t size = sizeof codec;

    if (rd_kafka_conf_get (conf, "compression.codec", codec, &size) != RD_KAFKA_CONF_OK)
      g_strlcpy (codec, "unknown", sizeof codec);
    self->compression = g_strdup (codec);
  }
  self->topic = g_strdup (options->topic);
  self->partitions = options->partitions > 0 ? options->partitions : DEFAULT_PARTITIONS;
  self->replication = options->replication > 0 ? options->replication : 1;
  self->cursor_topic = g_strdup (options->cursor_topic);
  self->transactional = options->transactional_id != NULL;

  rd_kafka_conf_set_opaque (conf, self);
  rd_kafka_conf_set_dr_msg_cb (conf, on_delivery);
  rd_kafka_conf_set_error_cb (conf, on_error);
  rd_kafka_conf_set_throttle_cb (conf, on_throttle);
  rd_kafka_conf_set_log_cb (conf, on_log);

  /* On success rd_kafka_new() owns conf; on failure it is still ours. */
  self->rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (self->rk == NULL)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Invalid Kafka configuration: %s",
                   errstr);
      return NULL;
    }
  self->main_queue = rd_kafka_queue_get_main (self->rk);
  self->admin_queue = rd_kafka_queue_new (self->rk);
  rd_kafka_set_log_queue (self->rk, NULL);
  self->rkt = rd_kafka_topic_new (self->rk, self->topic, NULL);
  if (self->rkt == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Kafka topic “%s”: %s", self->topic,
                   rd_kafka_err2str (rd_kafka_last_error ()));
      return NULL;
    }
  if (self->cursor_topic != NULL)
    self->cursor_rkt = rd_kafka_topic_new (self->rk, self->cursor_topic, NULL);
  if (!setup_wakeup (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

static void
atk_kafka_sink_dispose (GObject *object)
{
  AtkKafkaSink *self = ATK_KAFKA_SINK (object);

  self->disposing = TRUE;
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_clear_handle_id (&self->wake_id, g_source_remove);

  if (self->rk != NULL)
    {
      /* Whatever was not flushed is dropped: purge it so its delivery reports (and so
       * their tickets) come back now instead of leaking. */
      rd_kafka_purge (self->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_flush (self->rk, 5000);
      drain_queues (self);
      if (self->in_flight > 0)
        g_debug ("dropping %u undelivered messages", self->in_flight);
      rd_kafka_queue_io_event_enable (self->main_queue, -1, NULL, 0);
      rd_kafka_queue_io_event_enable (self->admin_queue, -1, NULL, 0);
      g_clear_pointer (&self->rkt, rd_kafka_topic_destroy);
      g_clear_pointer (&self->cursor_rkt, rd_kafka_topic_destroy);
      g_clear_pointer (&self->main_queue, rd_kafka_queue_destroy);
      g_clear_pointer (&self->admin_queue, rd_kafka_queue_destroy);
      g_clear_pointer (&self->rk, rd_kafka_destroy);
    }
  for (int i = 0; i < 2; i++)
    if (self->wake_fds[i] >= 0)
      {
        close (self->wake_fds[i]);
        self->wake_fds[i] = -1;
      }

  G_OBJECT_CLASS (atk_kafka_sink_parent_class)->dispose (object);
}

static void
atk_kafka_sink_finalize (GObject *object)
{
  AtkKafkaSink *self = ATK_KAFKA_SINK (object);

  g_free (self->topic);
  g_free (self->cursor_topic);
  g_free (self->compression);

  G_OBJECT_CLASS (atk_kafka_sink_parent_class)->finalize (object);
}

static void
atk_kafka_sink_class_init (AtkKafkaSinkClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atk_kafka_sink_dispose;
  object_class->finalize = atk_kafka_sink_finalize;

  signals[SIGNAL_DELIVERED] = g_signal_new (
      "delivered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
      5, G_TYPE_INT64, G_TYPE_BOOLEAN, G_TYPE_BOOLEAN, G_TYPE_STRING, G_TYPE_DOUBLE);
  signals[SIGNAL_UNDELIVERED]
      = g_signal_new ("undelivered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 3, G_TYPE_INT64, G_TYPE_BOOLEAN, G_TYPE_STRING);
  signals[SIGNAL_FATAL] = g_signal_new ("fatal", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_READY] = g_signal_new ("ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
atk_kafka_sink_init (AtkKafkaSink *self)
{
  self->wake_fds[0] = self->wake_fds[1] = -1;
  self->retry_ms = RETRY_MIN_MS;
}
