/* at-kafka: the Admin API requests the sink makes about its topics: creating them
 * (CreateTopics) and reading the output topic's max.message.bytes (DescribeConfigs).
 * Requests go out on the producer's handle; results come back as events on `queue`, which
 * the sink drains on the main context and hands to the *_result() readers here.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <librdkafka/rdkafka.h>

G_BEGIN_DECLS

/* Creates topic (partitions, replication) and, unless NULL, the compacted one-partition
 * cursor topic. FALSE with an error only for arguments librdkafka refuses (a bug). */
gboolean atk_kafka_topic_admin_create (rd_kafka_t *rk, rd_kafka_queue_t *queue, const char *topic,
                                       int partitions, int replication, const char *cursor_topic,
                                       guint timeout_ms, GError **error);

/* Reads a CreateTopics result: TRUE when topic exists (created now, or before). A cursor
 * topic that cannot be created is logged, not an error (the state file keeps the cursor).
 * FALSE with a reason to retry otherwise. */
gboolean atk_kafka_topic_admin_create_result (rd_kafka_event_t *event, const char *topic,
                                              gboolean with_cursor_topic, GError **error);

/* Asks for topic's configuration. */
void atk_kafka_topic_admin_describe (rd_kafka_t *rk, rd_kafka_queue_t *queue, const char *topic,
                                     guint timeout_ms);

/* Reads a DescribeConfigs result: the topic's max.message.bytes (the broker's default when
 * the topic does not set it). FALSE with an error when Kafka did not say. */
gboolean atk_kafka_topic_admin_describe_result (rd_kafka_event_t *event, const char *topic,
                                                gint64 *max_message_bytes, GError **error);

/* TRUE when the leader of every partition of topic answers a ListOffsets for it (a leader
 * the metadata names may not serve its partition yet). Blocks up to about twice timeout_ms;
 * for a thread. Uses a handle of its own built from conf (taken), without its callbacks.
 * FALSE with the partitions that did not answer. */
gboolean atk_kafka_topic_admin_leaders_serve (rd_kafka_conf_t *conf, const char *topic,
                                              guint timeout_ms, GError **error);

G_END_DECLS
