/* at-kafka: the producer's librdkafka configuration: at-kafka's defaults, then the user's
 * -X properties (which win), and the batch size that fits a topic's max.message.bytes.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <librdkafka/rdkafka.h>

#include "atk-kafka-sink.h"

G_BEGIN_DECLS

/* A bad value is ATK_ERROR_BAD_CONFIG naming the property. */
gboolean atk_kafka_conf_set (rd_kafka_conf_t *conf, const char *key, const char *value,
                             GError **error);

/* The producer configuration for options (no callbacks or opaque set yet). */
rd_kafka_conf_t *atk_kafka_conf_build (const AtkKafkaSinkOptions *options, GError **error);

/* A property's value (newly allocated), or a copy of fallback. */
char *atk_kafka_conf_get_string (const rd_kafka_conf_t *conf, const char *key,
                                 const char *fallback);

/* An integer property's value, or fallback. */
gint64 atk_kafka_conf_get_int (const rd_kafka_conf_t *conf, const char *key, gint64 fallback);

/* The largest batch.size whose batches the broker accepts for a topic with this
 * max.message.bytes (a message larger than it still goes out, alone in its batch). */
gint64 atk_kafka_conf_batch_cap (gint64 max_message_bytes);

G_END_DECLS
