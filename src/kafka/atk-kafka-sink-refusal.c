/* at-kafka: delivery errors that producing again cannot cure.
 *
 * A message that did not reach Kafka is normally produced again (a rewind). For the errors
 * below a retry meets the same refusal, so a rewind would replay the same events for ever
 * while the cursor stands still. There are two ways out, chosen per class:
 *
 *  - Skip the message, counted as produced with an error, and let the cursor move past it.
 *    Only for a refusal that is the message's own: a message larger than the topic takes
 *    and that travelled alone (atk-kafka-sink.c), or larger than librdkafka's whole queue.
 *
 *  - Stop with a clear error (the daemon exits 1; systemd's Restart= brings it back after
 *    its delay, from the stored cursor), for everything here. These say that the cluster
 *    refuses *us*: our permissions (…_AUTHORIZATION_FAILED), a broker policy or record
 *    validation (POLICY_VIOLATION, INVALID_RECORD: e.g. a keyless message on a compacted
 *    topic, or broker-side schema validation), the host's clock (INVALID_TIMESTAMP), the
 *    topic's format or the producer's settings (UNSUPPORTED_FOR_MESSAGE_FORMAT,
 *    INVALID_REQUIRED_ACKS, INVALID_TOPIC_EXCEPTION), a topic deleted under us
 *    (_UNKNOWN_TOPIC, _UNKNOWN_PARTITION). Every later message would meet the same refusal,
 *    and librdkafka reports a broker's refusal for a whole batch (it has no per-record
 *    errors), so skipping would drop good events with the bad one — possibly the whole
 *    stream. Stopping loses nothing: the cursor covers only what Kafka acknowledged.
 *
 * Each such error is counted by name (atkafka_kafka_refusals_total{error=NAME}) and logged
 * at most once per ATK_LOG_INTERVAL_S (a whole window of messages in flight reports it).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-kafka-sink-private.h"

#include "atk-log.h"

static gboolean
cannot_succeed (rd_kafka_resp_err_t err)
{
  switch (err)
    {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return TRUE;
    default:
      return FALSE;
    }
}

gboolean
atk_kafka_sink_refused_for_good (AtkKafkaSink *self, rd_kafka_resp_err_t err,
                                 const DeliveryTicket *ticket)
{
  static AtkLogLimit lines; /* one sink per process */
  const char *name = rd_kafka_err2name (err);
  g_autofree char *reason = NULL;
  gpointer count;

  if (!cannot_succeed (err))
    return FALSE;
  if (self->refusals == NULL)
    self->refusals = g_hash_table_new (g_str_hash, g_str_equal); /* names are static */
  count = g_hash_table_lookup (self->refusals, name);
  g_hash_table_insert (self->refusals, (gpointer)name,
                       GSIZE_TO_POINTER (GPOINTER_TO_SIZE (count) + 1));
  reason = g_strdup_printf ("Kafka refused a message to %s for good (%s: %s); producing it again "
                            "cannot help: check the topic's settings and the producer's "
                            "permissions",
                            self->topic, name, rd_kafka_err2str (err));
  atk_log_event (G_LOG_LEVEL_WARNING, &lines, ticket->has_seq, ticket->seq, NULL, "%s", reason);
  atk_kafka_sink_mark_fatal (self, reason);
  return TRUE;
}

void
atk_kafka_sink_render_prometheus (AtkKafkaSink *self, GString *out)
{
  GHashTableIter iter;
  gpointer name, count;

  g_return_if_fail (ATK_IS_KAFKA_SINK (self));
  if (self->refusals == NULL)
    return; /* a labelled family without samples until the first */
  g_string_append (out, "# HELP atkafka_kafka_refusals_total Messages Kafka refused for a reason "
                        "no retry cures (the daemon stops), by librdkafka error name.\n"
                        "# TYPE atkafka_kafka_refusals_total counter\n");
  g_hash_table_iter_init (&iter, self->refusals);
  while (g_hash_table_iter_next (&iter, &name, &count))
    g_string_append_printf (out, "atkafka_kafka_refusals_total{error=\"%s\"} %" G_GSIZE_FORMAT "\n",
                            (const char *)name, GPOINTER_TO_SIZE (count));
}
