/* at-kafka: the cursor kept in Kafka itself, so that a fresh host producing to the same
 * topic resumes too. It lives in a compacted single-partition topic "<topic>.cursor"; each
 * record has the output topic as key and {"seq":N,"updated":"<RFC 3339>"} as value. The
 * sink writes the records (atk_kafka_sink_produce_cursor); this file formats, parses and
 * reads them back at start.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ATK_KAFKA_CURSOR_SUFFIX ".cursor"
/* The largest seq a record may hold (2^53, as for frames). */
#define ATK_KAFKA_CURSOR_MAX_SEQ G_GINT64_CONSTANT (9007199254740992)

/* "<topic>.cursor"; free with g_free. */
char *atk_kafka_cursor_topic_for (const char *output_topic);

/* {"seq":N,"updated":"2024-01-01T12:00:00.000Z"} for now_us (Unix µs). */
char *atk_kafka_cursor_format (gint64 seq, gint64 now_us);

/* The seq of a record value; ATK_ERROR_BAD_CONFIG if it holds none (a record someone else
 * wrote into the topic, a seq outside 0..2^53, or value NULL: a tombstone). */
gboolean atk_kafka_cursor_parse (const char *value, gsize len, gint64 *seq, GError **error);

/* Reads the newest record with this key from partition 0 of topic, as a read_committed
 * consumer (so only committed transactions count). Blocks for at most timeout_ms.
 * TRUE with *found FALSE when the topic or the key holds nothing yet, or the newest record
 * for the key is a tombstone; FALSE with ATK_ERROR_KAFKA when Kafka could not be asked
 * (e.g. the broker is down), with ATK_ERROR_BAD_CONFIG when the newest record for the key
 * is not a cursor (the store is corrupt).
 * properties: "key=value" librdkafka properties (security settings…), may be NULL. */
gboolean atk_kafka_cursor_load (const char *bootstrap_servers, const char *const *properties,
                                const char *topic, const char *key, guint timeout_ms,
                                gboolean *found, gint64 *seq, GError **error);

G_END_DECLS
