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
  const char *compression;       /* NULL: "lz4"; "gzip" comes with compression.level=1 */
  int partitions;                /* for topic creation; <= 0: 200 */
  int replication;               /* <= 0: 1 */
  const char *const *properties; /* "key=value", applied last; may be NULL */
  const char *cursor_topic;      /* also create this compacted 1-partition topic; NULL: none */
  const char *transactional_id;  /* NULL: not transactional */
} AtkKafkaSinkOptions;

typedef enum
{
  ATK_TXN_OK,
  ATK_TXN_RETRY,   /* timed out or retriable: call again */
  ATK_TXN_ABORTED, /* aborted: produce again from the last committed cursor */
  ATK_TXN_FATAL,   /* fenced or broken: this producer cannot go on */
} AtkTxnStatus;

/* Validates and applies the configuration (a bad property is ATK_ERROR_BAD_CONFIG).
 * Does not need the broker to be up. */
AtkKafkaSink *atk_kafka_sink_new (const AtkKafkaSinkOptions *options, GError **error);

/* Creates the topic if it is missing, retrying while the broker is unreachable;
 * "ready" is emitted once the topic exists. */
void atk_kafka_sink_ensure_topic (AtkKafkaSink *self);
gboolean atk_kafka_sink_is_ready (AtkKafkaSink *self);
/* How many CreateTopics requests were sent so far (for tests and diagnostics). */
guint atk_kafka_sink_get_ensure_attempts (AtkKafkaSink *self);
/* How often the sink asked whether every partition's leader serves the topic. */
guint atk_kafka_sink_get_leader_checks (AtkKafkaSink *self);

/* Takes ownership of message. Fails only for a message librdkafka refuses at once
 * (e.g. larger than message.max.bytes): ATK_ERROR_KAFKA or ATK_ERROR_TOO_LARGE. */
gboolean atk_kafka_sink_produce (AtkKafkaSink *self, AtkMessage *message, GError **error);

/* Called for each settled message, as "delivered" is (and before it), without a signal's cost:
 * one call per message. One function per sink (the pipeline's). */
typedef void (*AtkKafkaSinkDeliveryFunc) (gpointer user_data, gint64 seq, gboolean has_seq,
                                          gboolean ok, const char *error_message,
                                          gdouble latency_seconds);
void atk_kafka_sink_set_delivery_func (AtkKafkaSink *self, AtkKafkaSinkDeliveryFunc func,
                                       gpointer user_data);

/* The messages produced so far will be produced again (a rewind): their reports settle
 * nothing any more ("released" instead of "delivered"/"undelivered"). They stay in
 * flight (and counted) until librdkafka reports them. */
void atk_kafka_sink_forget_in_flight (AtkKafkaSink *self);

/* Drops what librdkafka still holds, queued or sent (their reports come back as
 * "undelivered", or "released" after forget_in_flight()): another instance produces now. */
void atk_kafka_sink_purge (AtkKafkaSink *self);

guint atk_kafka_sink_get_in_flight (AtkKafkaSink *self);
guint64 atk_kafka_sink_get_in_flight_bytes (AtkKafkaSink *self);

/* The compression codec in effect ("gzip", "lz4", …), the user's properties included. */
const char *atk_kafka_sink_get_compression (AtkKafkaSink *self);

/* Blocks for at most timeout_ms until every message is delivered; FALSE if some remain. */
gboolean atk_kafka_sink_flush (AtkKafkaSink *self, guint timeout_ms);

/* Produces a cursor record (key, {"seq":…}) to the cursor topic. Not counted in flight;
 * it emits no "delivered". In a transaction it commits with the transaction. */
gboolean atk_kafka_sink_produce_cursor (AtkKafkaSink *self, const char *key, gint64 seq,
                                        GError **error);

/* The sink's metrics (Prometheus text): atkafka_kafka_refusals_total{error}. */
void atk_kafka_sink_render_prometheus (AtkKafkaSink *self, GString *out);

/* TRUE once librdkafka reported a fatal error ("fatal" was emitted). */
gboolean atk_kafka_sink_is_fatal (AtkKafkaSink *self);

/* Transactions (only with options->transactional_id). Each blocks for at most timeout_ms;
 * init fences any older producer with the same id and aborts its open transaction. */
AtkTxnStatus atk_kafka_sink_init_transactions (AtkKafkaSink *self, guint timeout_ms,
                                               GError **error);
AtkTxnStatus atk_kafka_sink_begin_transaction (AtkKafkaSink *self, GError **error);
/* Commits (flushing first); on an abortable error, aborts and returns ATK_TXN_ABORTED. */
AtkTxnStatus atk_kafka_sink_commit_transaction (AtkKafkaSink *self, guint timeout_ms,
                                                GError **error);
/* Aborts the open transaction (e.g. at shutdown when commit failed). */
AtkTxnStatus atk_kafka_sink_abort_transaction (AtkKafkaSink *self, guint timeout_ms,
                                               GError **error);

/* Signals:
 *  "delivered" (gint64 seq, gboolean has_seq, gboolean ok, const char *error_message,
 *               gdouble latency_seconds)
 *     one per produced message that is settled; ok=FALSE means it failed for good (Kafka
 *     rejected it, e.g. too large for the topic: producing it again would fail again).
 *  "undelivered" (gint64 seq, gboolean has_seq, const char *error_message)
 *     a message that did not reach Kafka but is not settled: purged, timed out (only if
 *     message.timeout.ms was set), refused by the broker for any reason but its own size
 *     (its batch's size, retries run out, not allowed), or lost to a fatal producer
 *     error. Its frame has to be produced again (or the process restarted).
 *  "released" () a message produced before atk_kafka_sink_forget_in_flight() left the
 *     queue (delivered or not): it settles nothing, but is no longer in flight.
 *  "fatal" (const char *reason) the producer cannot go on (fenced, idempotence broken).
 *  "ready" () the topic exists and the producer can be used.
 */

G_END_DECLS
