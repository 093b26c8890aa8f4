/* at-kafka: messages (and cursor records) waiting for room in librdkafka's queue.
 *
 * librdkafka refuses a message with QUEUE_FULL while queue.buffering.max.messages (or
 * .kbytes) messages wait in it. Refusing it to the pipeline would rewind, and a payload with
 * more messages than the queue takes (one commit with many operations and a user-lowered
 * queue size) would then be refused again on every replay: a livelock. Instead such a
 * message is held here, counted in flight (so the pipeline's backpressure sees it), and
 * every later message queues behind it, so that the order of the messages of a key is the
 * order they were produced in. Delivery reports make room: the held messages go in after
 * each batch of reports, in order. A held message is not acknowledged, so it holds the
 * cursor back like any other message in flight.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-kafka-sink-private.h"

typedef struct
{
  char *key; /* NULL: no key */
  gsize key_len;
  char *value;
  gsize value_len;
  rd_kafka_headers_t *headers;
  DeliveryTicket *ticket;
} HeldMessage;

static void
held_message_free (HeldMessage *held)
{
  g_free (held->key);
  g_free (held->value);
  if (held->headers != NULL)
    rd_kafka_headers_destroy (held->headers);
  g_free (held->ticket);
  g_free (held);
}

/* The message leaves the in-flight count without having been in librdkafka. */
static void
leave_flight (AtkKafkaSink *self, const DeliveryTicket *ticket)
{
  if (ticket->is_cursor)
    return; /* never counted */
  g_assert (self->in_flight > 0);
  self->in_flight--;
  self->in_flight_bytes -= ticket->bytes;
}

gboolean
atk_kafka_sink_hold_wanted (AtkKafkaSink *self, rd_kafka_resp_err_t err)
{
  if (!g_queue_is_empty (&self->held))
    return TRUE;
  /* With nothing of ours in librdkafka no report will make room: the message is larger
   * than the whole queue (queue.buffering.max.kbytes), and waiting would be for ever. */
  return err == RD_KAFKA_RESP_ERR__QUEUE_FULL && rd_kafka_outq_len (self->rk) > 0;
}

void
atk_kafka_sink_hold (AtkKafkaSink *self, const char *key, gsize key_len, const char *value,
                     gsize value_len, rd_kafka_headers_t *headers, DeliveryTicket *ticket)
{
  HeldMessage *held = g_new0 (HeldMessage, 1);

  if (g_queue_is_empty (&self->held))
    g_debug ("librdkafka's queue is full: holding messages until it has room");
  held->key = key != NULL ? g_memdup2 (key, key_len) : NULL;
  held->key_len = key_len;
  held->value = g_memdup2 (value, value_len);
  held->value_len = value_len;
  held->headers = headers;
  held->ticket = ticket;
  g_queue_push_tail (&self->held, held);
  if (ticket->is_cursor)
    return; /* a cursor record: not in flight */
  self->in_flight++;
  self->in_flight_bytes += ticket->bytes;
}

gboolean
atk_kafka_sink_hold_replace_cursor (AtkKafkaSink *self, const char *value, gsize value_len,
                                    gint64 seq)
{
  /* A cursor record only ever says "everything up to seq is acknowledged": a newer one may
   * take an older one's place, so that a queue full for hours holds one, not one a save. */
  for (GList *l = self->held.tail; l != NULL; l = l->prev)
    {
      HeldMessage *held = l->data;

      if (!held->ticket->is_cursor)
        continue;
      g_free (held->value);
      held->value = g_memdup2 (value, value_len);
      held->value_len = value_len;
      held->ticket->seq = seq;
      return TRUE;
    }
  return FALSE;
}

void
atk_kafka_sink_hold_pump (AtkKafkaSink *self)
{
  HeldMessage *held;

  /* Reports emitted below may run handlers that produce: they queue behind, so peek again
   * on every turn. */
  while (self->rk != NULL && !self->disposing && (held = g_queue_peek_head (&self->held)) != NULL)
    {
      rd_kafka_resp_err_t err
          = atk_kafka_sink_producev (self, held->key, held->key_len, held->value, held->value_len,
                                     TRUE, held->headers, held->ticket);

      /* Still no room, or between two transactions: later, in the same order. */
      if ((err == RD_KAFKA_RESP_ERR__QUEUE_FULL && rd_kafka_outq_len (self->rk) > 0)
          || err == RD_KAFKA_RESP_ERR__STATE)
        return;
      g_queue_pop_head (&self->held);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          held->value = NULL; /* librdkafka's now, like the headers and the ticket */
          held->headers = NULL;
          held->ticket = NULL;
          held_message_free (held);
          continue;
        }
      /* Refused for itself: larger than the whole queue or than message.max.bytes (settled
       * for good, as atk_kafka_sink_produce() settles it), or anything else (not settled:
       * produced again after a rewind). */
      leave_flight (self, held->ticket);
      if (held->ticket->is_cursor)
        g_message ("Cannot produce the cursor to %s: %s", self->cursor_topic,
                   rd_kafka_err2str (err));
      else if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL || err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        atk_kafka_sink_emit_delivered (self, held->ticket, FALSE, rd_kafka_err2str (err));
      else
        atk_kafka_sink_emit_undelivered (self, held->ticket, rd_kafka_err2str (err));
      held_message_free (held);
    }
}

gboolean
atk_kafka_sink_hold_flush (AtkKafkaSink *self, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;

  atk_kafka_sink_hold_pump (self);
  while (!g_queue_is_empty (&self->held) && self->rk != NULL)
    {
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;

      if (left_ms <= 0)
        return FALSE;
      /* serves delivery reports (on_delivery), which make room */
      rd_kafka_poll (self->rk, (int)MIN (left_ms, 100));
      atk_kafka_sink_hold_pump (self);
    }
  return TRUE;
}

void
atk_kafka_sink_hold_drop (AtkKafkaSink *self, gboolean report)
{
  HeldMessage *held;

  while ((held = g_queue_pop_head (&self->held)) != NULL)
    {
      leave_flight (self, held->ticket);
      if (report && !self->disposing && !held->ticket->is_cursor
          && held->ticket->generation == self->generation)
        atk_kafka_sink_emit_undelivered (self, held->ticket, "purged from the queue");
      held_message_free (held);
    }
}
