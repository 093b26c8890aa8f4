/* at-kafka: the sink's state, shared by the files that implement it: atk-kafka-sink.c (the
 * handle, producing, the signals), atk-kafka-sink-reports.c (delivery reports and librdkafka's
 * other callbacks, the wake-up pipe), atk-kafka-sink-topic.c (topic creation, batches
 * that fit the topic), atk-kafka-sink-txn.c (transactions), atk-kafka-sink-hold.c (messages
 * waiting for room in librdkafka's queue) and atk-kafka-sink-refusal.c (delivery errors
 * that no retry can cure). Not for other users.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <librdkafka/rdkafka.h>

#include "atk-kafka-sink.h"

G_BEGIN_DECLS

/* Travels with each message through librdkafka and comes back in its delivery report. */
typedef struct
{
  gint64 seq;
  gboolean has_seq;
  gint64 since_us;    /* where its delivery latency starts: its frame's receipt, or the produce */
  gsize bytes;        /* key and value */
  gsize record_bytes; /* key, value and headers */
  gboolean is_cursor; /* a cursor record: not in flight, no signal */
  guint generation;   /* the sink's generation when it was produced */
} DeliveryTicket;

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
  guint gather_id; /* a drain due once the reports of the same moment have come */

  AtkKafkaSinkDeliveryFunc delivery_func;
  gpointer delivery_data;

  char *topic;
  char *cursor_topic;
  char *compression; /* the codec in effect, after the user's properties */
  int partitions;
  int replication;

  gboolean ready;
  gboolean creating; /* setting the topic up: CreateTopics, DescribeConfigs, leaders */
  gboolean checking_leaders;
  guint leader_checks;
  guint retry_id;
  guint retry_ms;
  guint ensure_attempts;
  gboolean disposing; /* delivery reports during teardown free their opaque, emit nothing */
  gboolean transactional;
  gboolean fatal;

  guint in_flight;
  guint64 in_flight_bytes;
  guint generation; /* see atk_kafka_sink_forget_in_flight() */

  /* Batches that fit the topic: see fit_batches(). */
  rd_kafka_conf_t *conf_template; /* for a new handle with another batch.size */
  gint64 batch_size;              /* the handle's batch.size */
  gboolean has_limit;
  gint64 topic_limit; /* the topic's max.message.bytes */
  gboolean describing;
  gboolean refused_batches; /* the broker refused a batch as too large */
  guint rebuild_id;
  gint64 rebuild_batch_size;

  /* Messages librdkafka's queue had no room for, in produce order (atk-kafka-sink-hold.c);
   * counted in flight. */
  GQueue held;
  /* Delivery errors no retry cures, by name (atk-kafka-sink-refusal.c): name → count. */
  GHashTable *refusals;
};

/* atk-kafka-sink.c */
void atk_kafka_sink_mark_fatal (AtkKafkaSink *self, const char *reason);
void atk_kafka_sink_emit_ready (AtkKafkaSink *self);
/* Replaces the handle by one with this batch.size; what was in flight comes back as
 * "undelivered". */
gboolean atk_kafka_sink_rebuild_handle (AtkKafkaSink *self, gint64 batch_size, GError **error);

/* The signals, for the other files (atk-kafka-sink.c). A delivery goes to the delivery
 * function, then to "delivered" when something is connected to it. */
void atk_kafka_sink_emit_delivered (AtkKafkaSink *self, const DeliveryTicket *ticket, gboolean ok,
                                    const char *error_message);
void atk_kafka_sink_emit_undelivered (AtkKafkaSink *self, const DeliveryTicket *ticket,
                                      const char *error_message);
void atk_kafka_sink_emit_released (AtkKafkaSink *self);
/* librdkafka's producev() for one message; on success librdkafka owns headers and ticket, and
 * with take_value the value too (g_malloc()ed: librdkafka free()s it), else it copies it. */
rd_kafka_resp_err_t atk_kafka_sink_producev (AtkKafkaSink *self, const char *key, gsize key_len,
                                             const char *value, gsize value_len,
                                             gboolean take_value, rd_kafka_headers_t *headers,
                                             DeliveryTicket *ticket);

/* atk-kafka-sink-reports.c */
/* Sets the callbacks for delivery reports, errors, throttling and logs on conf (its opaque
 * must be the sink). */
void atk_kafka_sink_set_callbacks (rd_kafka_conf_t *conf);
/* The pipe both queues write to, and the GSource that drains them on the main context. */
gboolean atk_kafka_sink_setup_wakeup (AtkKafkaSink *self, GError **error);
/* Serves everything both queues hold (delivery reports, Admin API results). */
void atk_kafka_sink_drain_queues (AtkKafkaSink *self);

/* atk-kafka-sink-hold.c: a message refused with QUEUE_FULL waits, in order, for room. */
/* TRUE if a message must wait behind held ones, or librdkafka refused it with err for want of
 * room (err QUEUE_FULL while librdkafka still holds messages whose reports make room). */
gboolean atk_kafka_sink_hold_wanted (AtkKafkaSink *self, rd_kafka_resp_err_t err);
/* Takes headers and ticket; copies key and value. */
void atk_kafka_sink_hold (AtkKafkaSink *self, const char *key, gsize key_len, const char *value,
                          gsize value_len, rd_kafka_headers_t *headers, DeliveryTicket *ticket);
/* A newer cursor record in place of a held one; FALSE if none is held. */
gboolean atk_kafka_sink_hold_replace_cursor (AtkKafkaSink *self, const char *value, gsize value_len,
                                             gint64 seq);
/* Moves held messages into librdkafka while it has room (after delivery reports). */
void atk_kafka_sink_hold_pump (AtkKafkaSink *self);
/* Pumps and serves delivery reports until nothing is held or timeout_ms passed. */
gboolean atk_kafka_sink_hold_flush (AtkKafkaSink *self, guint timeout_ms);
/* Drops every held message (they leave the in-flight count). With report, each is reported
 * as librdkafka would report a purged message ("undelivered", or nothing after a rewind);
 * without, silently (a rewind produces them again). */
void atk_kafka_sink_hold_drop (AtkKafkaSink *self, gboolean report);

/* atk-kafka-sink-refusal.c: delivery errors that producing again cannot cure. */
/* TRUE if err is one: it is counted, logged (rate-limited) and the sink goes fatal. */
gboolean atk_kafka_sink_refused_for_good (AtkKafkaSink *self, rd_kafka_resp_err_t err,
                                          const DeliveryTicket *ticket);

/* atk-kafka-sink-topic.c */
void atk_kafka_sink_handle_admin_event (AtkKafkaSink *self, rd_kafka_event_t *event);
/* Reads the topic's max.message.bytes again (after the broker refused a batch). */
void atk_kafka_sink_describe_topic (AtkKafkaSink *self);

G_END_DECLS
