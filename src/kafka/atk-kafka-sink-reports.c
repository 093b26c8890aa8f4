/* at-kafka: what librdkafka reports back to the sink, and how it gets to the main context.
 *
 * Delivery reports, errors, throttling and logs are librdkafka callbacks; they (and the Admin
 * API results, atk-kafka-sink-topic.c) wait on two librdkafka queues whose "became non-empty"
 * event writes a byte into one pipe. A GSource watches the pipe and drains both queues, so
 * every callback here runs inside rd_kafka_poll() on the main context.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-kafka-sink-private.h"

#include <glib-unix.h>
#include <unistd.h>

/* ---- librdkafka callbacks (all run inside rd_kafka_poll() on the main context) ----- */

static void
on_delivery (rd_kafka_t *rk, const rd_kafka_message_t *rkmessage, void *opaque)
{
  AtkKafkaSink *self = opaque;
  g_autofree DeliveryTicket *ticket = rkmessage->_private;
  rd_kafka_resp_err_t err = rkmessage->err;
  gboolean ok = err == RD_KAFKA_RESP_ERR_NO_ERROR;

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
  /* Produced before atk_kafka_sink_forget_in_flight(): its producer has moved on (it
   * produces the message again), so the report settles nothing, delivered or not. */
  if (ticket->generation != self->generation)
    {
      atk_kafka_sink_emit_released (self);
      return;
    }
  if (ok)
    {
      atk_kafka_sink_emit_delivered (self, ticket, TRUE, NULL);
      return;
    }
  /* The broker checks whole batches against the topic's limit. Only a message larger than
   * batch.size travels alone (batch.size applies from the second message of a batch on):
   * its refusal is its own, and producing it again would fail again: settled for good. */
  if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
      && (gint64)ticket->record_bytes > self->batch_size)
    {
      atk_kafka_sink_emit_delivered (self, ticket, FALSE, rd_kafka_err2str (err));
      return;
    }
  /* Any other refusal is its batch's: make batches fit, and produce the message again. */
  if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
    {
      self->refused_batches = TRUE;
      atk_kafka_sink_describe_topic (self);
      atk_kafka_sink_emit_undelivered (self, ticket, "its batch was larger than the topic takes");
      return;
    }
  /* Refused for a reason no retry cures (permissions, the topic's policy or format): the
   * sink goes fatal, and the message is not settled (atk-kafka-sink-refusal.c). */
  atk_kafka_sink_refused_for_good (self, err, ticket);
  /* Everything else (timed out, purged, a broker error whose retries ran out, a batch
   * refused for one of its neighbours) says nothing for sure about this message: it is
   * not settled, and whoever produced it produces it again. */
  atk_kafka_sink_emit_undelivered (self, ticket, rd_kafka_err2str (err));
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
    atk_kafka_sink_mark_fatal (opaque, fatal_reason);
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

/* ---- the wake-up pipe --------------------------------------------------------------- */

void
atk_kafka_sink_drain_queues (AtkKafkaSink *self)
{
  rd_kafka_event_t *event;

  /* The pipe is written only when a queue goes from empty to non-empty, so both must be
   * emptied completely each time. rd_kafka_poll() serves the main queue's callbacks. */
  while (rd_kafka_poll (self->rk, 0) > 0)
    ;
  atk_kafka_sink_hold_pump (self); /* the reports made room */
  while ((event = rd_kafka_queue_poll (self->admin_queue, 0)) != NULL)
    {
      if (!self->disposing)
        atk_kafka_sink_handle_admin_event (self, event);
      rd_kafka_event_destroy (event);
    }
}

static gboolean
on_gathered (gpointer user_data)
{
  g_autoptr (AtkKafkaSink) self = g_object_ref (ATK_KAFKA_SINK (user_data));

  self->gather_id = 0;
  if (self->rk != NULL)
    atk_kafka_sink_drain_queues (self);
  return G_SOURCE_REMOVE;
}

/* The broker answers a linger's batches (one produce request per partition) within a few
 * milliseconds of each other, and librdkafka writes the pipe again as soon as the queue has
 * been served: draining at the first answer meant one main-loop turn per answer or two (at
 * 3,000 frames/s over 16 partitions, ~270 a second). The drain waits REPORT_GATHER_MS for
 * the rest of them; librdkafka does not write the pipe again in the meantime. */
#define REPORT_GATHER_MS 4

static gboolean
on_wake (int fd, GIOCondition condition, gpointer user_data)
{
  AtkKafkaSink *self = ATK_KAFKA_SINK (user_data);
  char buf[64];

  while (read (fd, buf, sizeof buf) > 0)
    ;
  if (self->gather_id == 0)
    self->gather_id = g_timeout_add (REPORT_GATHER_MS, on_gathered, self);
  return G_SOURCE_CONTINUE;
}

gboolean
atk_kafka_sink_setup_wakeup (AtkKafkaSink *self, GError **error)
{
  g_autoptr (GSource) source = NULL;

  if (!g_unix_open_pipe (self->wake_fds, FD_CLOEXEC, error)
      || !g_unix_set_fd_nonblocking (self->wake_fds[0], TRUE, error)
      || !g_unix_set_fd_nonblocking (self->wake_fds[1], TRUE, error))
    return FALSE;
  source = g_unix_fd_source_new (self->wake_fds[0], G_IO_IN);
  g_source_set_callback (source, G_SOURCE_FUNC (on_wake), self, NULL);
  /* GLib takes a source's descriptor out of the poll set while it dispatches (unless it
   * may recurse) and back in after, and each change wakes the loop once more for nothing. */
  g_source_set_can_recurse (source, TRUE);
  self->wake_id = g_source_attach (source, NULL);
  return TRUE;
}

void
atk_kafka_sink_set_callbacks (rd_kafka_conf_t *conf)
{
  rd_kafka_conf_set_dr_msg_cb (conf, on_delivery);
  rd_kafka_conf_set_error_cb (conf, on_error);
  rd_kafka_conf_set_throttle_cb (conf, on_throttle);
  rd_kafka_conf_set_log_cb (conf, on_log);
}
