/* at-kafka: the librdkafka producer. Messages go in with atk_kafka_sink_produce();
 * delivery reports come back as the "delivered" signal on the thread-default main
 * context (librdkafka's queue wakes a GSource through a file descriptor: no polling).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-message.h"

G_BEGIN_DECLS

#define ATK_TYPE_KAFKA_SINK (atk_kafka_sink_get_type ())
G_DECLARE_FINAL_TYPE (AtkKafkaSink, atk_kafka_sink, ATK, KAFKA_SINK, GObject)

typedef struct
{
  const char *bootstrap_servers;
  const char *topic;
  const char *compression;       /* NULL: "lz4" */
  int partitions;                /* for topic creation; <= 0: 200 */
  int replication;               /* <= 0: 1 */
  const char *const *properties; /* "key=value", applied last; may be NULL */
} AtkKafkaSinkOptions;

/* Validates and applies the configuration (a bad property is ATK_ERROR_BAD_CONFIG).
 * Does not need the broker to be up. */
AtkKafkaSink *atk_kafka_sink_new (const AtkKafkaSinkOptions *options, GError **error);

/* Creates the topic if it is missing, retrying while the broker is unreachable;
 * "ready" is emitted once the topic exists. */
void atk_kafka_sink_ensure_topic (AtkKafkaSink *self);
gboolean atk_kafka_sink_is_ready (AtkKafkaSink *self);
/* How many CreateTopics requests were sent so far (for tests and diagnostics). */
guint atk_kafka_sink_get_ensure_attempts (AtkKafkaSink *self);

/* Takes ownership of message. Fails only for a message librdkafka refuses at once
 * (e.g. larger than message.max.bytes): ATK_ERROR_KAFKA or ATK_ERROR_TOO_LARGE. */
gboolean atk_kafka_sink_produce (AtkKafkaSink *self, AtkMessage *message, GError **error);

guint atk_kafka_sink_get_in_flight (AtkKafkaSink *self);
guint64 atk_kafka_sink_get_in_flight_bytes (AtkKafkaSink *self);

/* Blocks for at most timeout_ms until every message is delivered; FALSE if some remain. */
gboolean atk_kafka_sink_flush (AtkKafkaSink *self, guint timeout_ms);

/* Signals:
 *  "delivered" (gint64 seq, gboolean has_seq, gboolean ok, const char *error_message,
 *               gdouble latency_seconds)
 *     one per produced message; ok=FALSE means it failed for good (it will not be retried).
 *  "ready" () the topic exists and the producer can be used.
 */

G_END_DECLS
