/* at-kafka: the sink's state, shared by the files that implement it: atk-kafka-sink.c (the
 * handle, producing, delivery reports), atk-kafka-sink-topic.c (topic creation, batches
 * that fit the topic) and atk-kafka-sink-txn.c (transactions). Not for other users.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <librdkafka/rdkafka.h>

#include "atk-kafka-sink.h"

G_BEGIN_DECLS

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
  gboolean creating; /* setting the topic up: CreateTopics, then DescribeConfigs */
  guint retry_id;
  guint retry_ms;
  guint ensure_attempts;
  gboolean disposing; /* delivery reports during teardown free their opaque, emit nothing */
  gboolean transactional;
  gboolean fatal;

  guint in_flight;
  guint64 in_flight_bytes;

  /* Batches that fit the topic: see fit_batches(). */
  rd_kafka_conf_t *conf_template; /* for a new handle with another batch.size */
  gint64 batch_size;              /* the handle's batch.size */
  gboolean has_limit;
  gint64 topic_limit; /* the topic's max.message.bytes */
  gboolean describing;
  gboolean refused_batches; /* the broker refused a batch as too large */
  guint rebuild_id;
  gint64 rebuild_batch_size;
};

/* atk-kafka-sink.c */
void atk_kafka_sink_mark_fatal (AtkKafkaSink *self, const char *reason);
void atk_kafka_sink_drain_queues (AtkKafkaSink *self);
void atk_kafka_sink_emit_ready (AtkKafkaSink *self);
/* Replaces the handle by one with this batch.size; what was in flight comes back as
 * "undelivered". */
gboolean atk_kafka_sink_rebuild_handle (AtkKafkaSink *self, gint64 batch_size, GError **error);

/* atk-kafka-sink-topic.c */
void atk_kafka_sink_handle_admin_event (AtkKafkaSink *self, rd_kafka_event_t *event);
/* Reads the topic's max.message.bytes again (after the broker refused a batch). */
void atk_kafka_sink_describe_topic (AtkKafkaSink *self);

G_END_DECLS
