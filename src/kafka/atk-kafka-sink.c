/* at-kafka: the librdkafka producer: the handle, producing, the signals.
 *
 * Threads: librdkafka's own threads do the network I/O. Everything it hands back to us
 * (delivery reports, errors, throttling, logs, Admin API results) is queued on two
 * librdkafka queues whose "became non-empty" event writes a byte into one pipe; a GSource
 * watches the pipe and drains both queues on the main context (atk-kafka-sink-reports.c).
 * So our code runs on one thread, needs no locks, and never polls on a timer.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-kafka-sink.h"
#include "atk-kafka-sink-private.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <string.h>
#include <unistd.h>

#include "atk-error.h"
#include "atk-json-out.h"
#include "atk-kafka-conf.h"
#include "atk-kafka-cursor.h"

#define DEFAULT_PARTITIONS 200
#define RETRY_MIN_MS 500 /* topic creation's first retry backoff */

enum
{
  SIGNAL_DELIVERED,
  SIGNAL_UNDELIVERED,
  SIGNAL_RELEASED,
  SIGNAL_FATAL,
  SIGNAL_READY,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (AtkKafkaSink, atk_kafka_sink, G_TYPE_OBJECT)

void
atk_kafka_sink_emit_ready (AtkKafkaSink *self)
{
  g_signal_emit (self, signals[SIGNAL_READY], 0);
}

void
atk_kafka_sink_emit_delivered (AtkKafkaSink *self, const DeliveryTicket *ticket, gboolean ok,
                               const char *error_message)
{
  gdouble latency = (g_get_monotonic_time () - ticket->since_us) / (gdouble)G_USEC_PER_SEC;

  if (self->delivery_func != NULL)
    self->delivery_func (self->delivery_data, ticket->seq, ticket->has_seq, ok, error_message,
                         latency);
  /* Most reports have no handler but the function: skip the signal's machinery then. */
  if (g_signal_has_handler_pending (self, signals[SIGNAL_DELIVERED], 0, TRUE))
    g_signal_emit (self, signals[SIGNAL_DELIVERED], 0, ticket->seq, ticket->has_seq, ok,
                   error_message, latency);
}

void
atk_kafka_sink_set_delivery_func (AtkKafkaSink *self, AtkKafkaSinkDeliveryFunc func,
                                  gpointer user_data)
{
  g_return_if_fail (ATK_IS_KAFKA_SINK (self));

  self->delivery_func = func;
  self->delivery_data = user_data;
}

void
atk_kafka_sink_emit_undelivered (AtkKafkaSink *self, const DeliveryTicket *ticket,
                                 const char *error_message)
{
  g_signal_emit (self, signals[SIGNAL_UNDELIVERED], 0, ticket->seq, ticket->has_seq, error_message);
}

void
atk_kafka_sink_emit_released (AtkKafkaSink *self)
{
  g_signal_emit (self, signals[SIGNAL_RELEASED], 0);
}

void
atk_kafka_sink_mark_fatal (AtkKafkaSink *self, const char *reason)
{
  if (self->fatal || self->disposing)
    return;
  self->fatal = TRUE;
  g_signal_emit (self, signals[SIGNAL_FATAL], 0, reason);
}

/* ---- the librdkafka handle ---------------------------------------------------------- */

/* Creates the handle from conf (taken), with batch.size set unless batch_size <= 0. */
static gboolean
open_handle (AtkKafkaSink *self, rd_kafka_conf_t *conf, gint64 batch_size, GError **error)
{
  static const char payload = 1;
  char errstr[512];

  if (batch_size > 0)
    {
      g_autofree char *value = g_strdup_printf ("%" G_GINT64_FORMAT, batch_size);
      if (!atk_kafka_conf_set (conf, "batch.size", value, error))
        {
          rd_kafka_conf_destroy (conf);
          return FALSE;
        }
    }
  self->batch_size = atk_kafka_conf_get_int (conf, "batch.size", 1000000);
  /* On success rd_kafka_new() owns conf; on failure it is still ours. */
  self->rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (self->rk == NULL)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Invalid Kafka configuration: %s",
                   errstr);
      return FALSE;
    }
  self->main_queue = rd_kafka_queue_get_main (self->rk);
  self->admin_queue = rd_kafka_queue_new (self->rk);
  rd_kafka_set_log_queue (self->rk, NULL);
  self->rkt = rd_kafka_topic_new (self->rk, self->topic, NULL);
  if (self->rkt == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Kafka topic “%s”: %s", self->topic,
                   rd_kafka_err2str (rd_kafka_last_error ()));
      return FALSE;
    }
  if (self->cursor_topic != NULL)
    self->cursor_rkt = rd_kafka_topic_new (self->rk, self->cursor_topic, NULL);
  rd_kafka_queue_io_event_enable (self->main_queue, self->wake_fds[1], &payload, 1);
  rd_kafka_queue_io_event_enable (self->admin_queue, self->wake_fds[1], &payload, 1);
  return TRUE;
}

/* Whatever was not delivered is purged: its delivery reports (and so their tickets) come
 * back now, as "undelivered" unless disposing. */
static void
close_handle (AtkKafkaSink *self)
{
  if (self->rk == NULL)
    return;
  atk_kafka_sink_hold_drop (self, TRUE);
  rd_kafka_purge (self->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_flush (self->rk, 5000);
  atk_kafka_sink_drain_queues (self);
  if (self->in_flight > 0)
    g_debug ("dropping %u undelivered messages", self->in_flight);
  rd_kafka_queue_io_event_enable (self->main_queue, -1, NULL, 0);
  rd_kafka_queue_io_event_enable (self->admin_queue, -1, NULL, 0);
  g_clear_pointer (&self->rkt, rd_kafka_topic_destroy);
  g_clear_pointer (&self->cursor_rkt, rd_kafka_topic_destroy);
  g_clear_pointer (&self->main_queue, rd_kafka_queue_destroy);
  g_clear_pointer (&self->admin_queue, rd_kafka_queue_destroy);
  g_clear_pointer (&self->rk, rd_kafka_destroy);
  self->describing = FALSE;
}

gboolean
atk_kafka_sink_rebuild_handle (AtkKafkaSink *self, gint64 batch_size, GError **error)
{
  g_autoptr (AtkKafkaSink) keep = g_object_ref (self); /* signals run in close_handle() */

  (void)keep; /* clang: -Wunused-variable */
  close_handle (self);
  self->in_flight = 0;
  self->in_flight_bytes = 0;
  self->refused_batches = FALSE;
  return open_handle (self, rd_kafka_conf_dup (self->conf_template), batch_size, error);
}

/* ---- producing ------------------------------------------------------------------- */

static void
add_header (rd_kafka_headers_t *headers, const char *name, gsize name_len, const char *value,
            gsize value_len, gsize *bytes)
{
  rd_kafka_header_add (headers, name, (ssize_t)name_len, value, (ssize_t)value_len);
  *bytes += name_len + value_len + 2; /* and their two length varints */
}

#define ADD_HEADER(headers, lit, value, bytes)                                                     \
  add_header ((headers), (lit), sizeof (lit) - 1, (value), strlen (value), (bytes))

/* The message's headers; *bytes gets their size in a record. (Per message, so no printf:
 * g_snprintf() was a third of this function's time.) */
static rd_kafka_headers_t *
message_headers (const AtkMessage *message, gsize *bytes)
{
  rd_kafka_headers_t *headers = rd_kafka_headers_new (4);

  *bytes = 0;
  if (message->has_seq)
    {
      char seq[ATK_OUT_INT_BYTES];
      char *end = seq + sizeof seq;
      char *p = atk_out_format_int (message->seq, end);

      add_header (headers, "seq", 3, p, (gsize)(end - p), bytes);
    }
  ADD_HEADER (headers, "type", atk_event_kind_name (message->kind), bytes);
  if (message->action_name != NULL)
    ADD_HEADER (headers, "action", message->action_name, bytes);
  if (message->collection != NULL)
    ADD_HEADER (headers, "collection", message->collection, bytes);
  return headers;
}

rd_kafka_resp_err_t
atk_kafka_sink_producev (AtkKafkaSink *self, const char *key, gsize key_len, const char *value,
                         gsize value_len, gboolean take_value, rd_kafka_headers_t *headers,
                         DeliveryTicket *ticket)
{
  int flags = take_value ? RD_KAFKA_MSG_F_FREE : RD_KAFKA_MSG_F_COPY;

  if (ticket->is_cursor)
    return rd_kafka_producev (
        self->rk, RD_KAFKA_V_RKT (self->cursor_rkt), RD_KAFKA_V_PARTITION (0),
        RD_KAFKA_V_KEY (key, key_len), RD_KAFKA_V_VALUE ((void *)value, value_len),
        RD_KAFKA_V_MSGFLAGS (flags), RD_KAFKA_V_OPAQUE (ticket), RD_KAFKA_V_END);
  return rd_kafka_producev (self->rk, RD_KAFKA_V_RKT (self->rkt), RD_KAFKA_V_KEY (key, key_len),
                            RD_KAFKA_V_VALUE ((void *)value, value_len),
                            RD_KAFKA_V_MSGFLAGS (flags), RD_KAFKA_V_HEADERS (headers),
                            RD_KAFKA_V_OPAQUE (ticket), RD_KAFKA_V_END);
}

gboolean
atk_kafka_sink_produce (AtkKafkaSink *self, AtkMessage *message, GError **error)
{
  g_autoptr (AtkMessage) owned = message; /* freed (recycled) on every return */
  (void)owned;
  DeliveryTicket *ticket;
  rd_kafka_headers_t *headers;
  gsize key_len, value_len;
  const char *value;
  rd_kafka_resp_err_t err;

  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), FALSE);
  g_return_val_if_fail (message != NULL, FALSE);

  key_len = message->key != NULL ? strlen (message->key) : 0;
  /* librdkafka copies the value, exactly sized, into the allocation it makes for the message
   * anyway (with the key), and the message's buffer goes back to the pool at once
   * (atk-message.c). Handing the buffer over instead cost a trip through malloc's large bins
   * and a shrinking realloc per message. */
  value = message->value->str;
  value_len = message->value->len;
  ticket = g_new0 (DeliveryTicket, 1);
  ticket->seq = message->seq;
  ticket->has_seq = message->has_seq;
  /* The delivery latency counts from when the frame reached us, where the input knows it. */
  ticket->since_us = message->received_us > 0 ? message->received_us : g_get_monotonic_time ();
  ticket->generation = self->generation;
  ticket->bytes = key_len + value_len;
  headers = message_headers (message, &ticket->record_bytes);
  ticket->record_bytes += ticket->bytes;

  /* Behind held messages, or no room now: held, in order (atk-kafka-sink-hold.c). */
  err = g_queue_is_empty (&self->held) ? atk_kafka_sink_producev (
            self, message->key, key_len, value, value_len, FALSE, headers, ticket)
                                       : RD_KAFKA_RESP_ERR__QUEUE_FULL;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      self->in_flight++;
      self->in_flight_bytes += ticket->bytes;
      return TRUE;
    }
  if (atk_kafka_sink_hold_wanted (self, err))
    {
      atk_kafka_sink_hold (self, message->key, key_len, value, value_len, headers, ticket);
      return TRUE;
    }
  /* On failure the value, the headers and the ticket are still ours. A QUEUE_FULL with
   * nothing in librdkafka: larger than its whole queue, too large for good. */
  rd_kafka_headers_destroy (headers);
  g_free (ticket);
  g_set_error (error, ATK_ERROR,
               err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || err == RD_KAFKA_RESP_ERR__QUEUE_FULL
                   ? ATK_ERROR_TOO_LARGE
                   : ATK_ERROR_KAFKA,
               "Cannot produce a %" G_GSIZE_FORMAT "-byte message to %s: %s", value_len,
               self->topic, rd_kafka_err2str (err));
  return FALSE;
}

void
atk_kafka_sink_forget_in_flight (AtkKafkaSink *self)
{
  g_return_if_fail (ATK_IS_KAFKA_SINK (self));
  self->generation++;
  /* never in librdkafka: produced again after the rewind, like the rest */
  atk_kafka_sink_hold_drop (self, FALSE);
}

void
atk_kafka_sink_purge (AtkKafkaSink *self)
{
  g_return_if_fail (ATK_IS_KAFKA_SINK (self));
  rd_kafka_purge (self->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
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
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;

  atk_kafka_sink_hold_flush (self, timeout_ms);
  rd_kafka_flush (self->rk,
                  (int)CLAMP ((deadline - g_get_monotonic_time ()) / 1000, 0, (gint64)G_MAXINT));
  atk_kafka_sink_drain_queues (self);
  return self->in_flight == 0;
}

gboolean
atk_kafka_sink_produce_cursor (AtkKafkaSink *self, const char *key, gint64 seq, GError **error)
{
  g_autofree char *value = atk_kafka_cursor_format (seq, g_get_real_time ());
  DeliveryTicket *ticket;
  rd_kafka_resp_err_t err;

  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self), FALSE);

  if (self->cursor_rkt == NULL
      || atk_kafka_sink_hold_replace_cursor (self, value, strlen (value), seq))
    return TRUE;
  ticket = g_new0 (DeliveryTicket, 1);
  ticket->seq = seq;
  ticket->has_seq = TRUE;
  ticket->is_cursor = TRUE;
  /* behind held messages, or no room now: held too (a small queue full of messages would
   * otherwise keep the cursor out of Kafka) */
  err = g_queue_is_empty (&self->held) ? atk_kafka_sink_producev (
            self, key, strlen (key), value, strlen (value), FALSE, NULL, ticket)
                                       : RD_KAFKA_RESP_ERR__QUEUE_FULL;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && atk_kafka_sink_hold_wanted (self, err))
    {
      atk_kafka_sink_hold (self, key, strlen (key), value, strlen (value), NULL, ticket);
      return TRUE;
    }
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

/* ---- construction --------------------------------------------------------------- */

AtkKafkaSink *
atk_kafka_sink_new (const AtkKafkaSinkOptions *options, GError **error)
{
  g_autoptr (AtkKafkaSink) self = NULL;
  rd_kafka_conf_t *conf;

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

  conf = atk_kafka_conf_build (options, error);
  if (conf == NULL)
    return NULL;

  self = g_object_new (ATK_TYPE_KAFKA_SINK, NULL);
  self->topic = g_strdup (options->topic);
  self->compression = atk_kafka_conf_get_string (conf, "compression.codec", "unknown");
  self->partitions = options->partitions > 0 ? options->partitions : DEFAULT_PARTITIONS;
  self->replication = options->replication > 0 ? options->replication : 1;
  self->cursor_topic = g_strdup (options->cursor_topic);
  self->transactional = options->transactional_id != NULL;

  rd_kafka_conf_set_opaque (conf, self);
  atk_kafka_sink_set_callbacks (conf);
  self->conf_template = rd_kafka_conf_dup (conf);
  if (!atk_kafka_sink_setup_wakeup (self, error))
    {
      rd_kafka_conf_destroy (conf);
      return NULL;
    }
  if (!open_handle (self, conf, 0, error))
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
  g_clear_handle_id (&self->gather_id, g_source_remove);

  g_clear_handle_id (&self->rebuild_id, g_source_remove);
  close_handle (self);
  g_clear_pointer (&self->conf_template, rd_kafka_conf_destroy);
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
  g_clear_pointer (&self->refusals, g_hash_table_unref);

  G_OBJECT_CLASS (atk_kafka_sink_parent_class)->finalize (object);
}

/* "delivered" is emitted once per message: a C marshaller instead of the generic one, which
 * goes through libffi (measured with callgrind: ~5 % of the daemon's instructions at the live
 * rate were libffi's). */
typedef void (*DeliveredFunc) (gpointer instance, gint64 seq, gboolean has_seq, gboolean ok,
                               const char *error_message, gdouble latency, gpointer data);

static void
marshal_delivered (GClosure *closure, GValue *return_value, guint n_param_values,
                   const GValue *param_values, gpointer invocation_hint, gpointer marshal_data)
{
  gpointer instance = g_value_peek_pointer (param_values + 0);
  gboolean swap = G_CCLOSURE_SWAP_DATA (closure);
  DeliveredFunc callback
      = (DeliveredFunc)(marshal_data != NULL ? marshal_data : ((GCClosure *)closure)->callback);

  g_return_if_fail (n_param_values == 6);
  callback (swap ? closure->data : instance, g_value_get_int64 (param_values + 1),
            g_value_get_boolean (param_values + 2), g_value_get_boolean (param_values + 3),
            g_value_get_string (param_values + 4), g_value_get_double (param_values + 5),
            swap ? instance : closure->data);
}

static void
atk_kafka_sink_class_init (AtkKafkaSinkClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atk_kafka_sink_dispose;
  object_class->finalize = atk_kafka_sink_finalize;

  signals[SIGNAL_DELIVERED] = g_signal_new (
      "delivered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, marshal_delivered,
      G_TYPE_NONE, 5, G_TYPE_INT64, G_TYPE_BOOLEAN, G_TYPE_BOOLEAN, G_TYPE_STRING, G_TYPE_DOUBLE);
  signals[SIGNAL_UNDELIVERED]
      = g_signal_new ("undelivered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 3, G_TYPE_INT64, G_TYPE_BOOLEAN, G_TYPE_STRING);
  signals[SIGNAL_RELEASED] = g_signal_new ("released", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                           0, NULL, NULL, NULL, G_TYPE_NONE, 0);
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
