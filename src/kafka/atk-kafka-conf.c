/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-kafka-conf.h"

#include <string.h>

#include "atk-error.h"

/* gzip's fastest level: see README (Kafka settings and Osprey) for what it costs. */
#define GZIP_LEVEL "1"

gboolean
atk_kafka_conf_set (rd_kafka_conf_t *conf, const char *key, const char *value, GError **error)
{
  char errstr[512];

  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Kafka property %s=%s: %s", key, value,
                   errstr);
      return FALSE;
    }
  return TRUE;
}

static gboolean
apply_user_properties (rd_kafka_conf_t *conf, const char *const *properties, GError **error)
{
  for (gsize i = 0; properties != NULL && properties[i] != NULL; i++)
    {
      const char *eq = strchr (properties[i], '=');
      g_autofree char *key = NULL;

      if (eq == NULL || eq == properties[i])
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                       "Kafka property “%s”: expected key=value", properties[i]);
          return FALSE;
        }
      key = g_strndup (properties[i], eq - properties[i]);
      if (!atk_kafka_conf_set (conf, g_strstrip (key), eq + 1, error))
        return FALSE;
    }
  return TRUE;
}

rd_kafka_conf_t *
atk_kafka_conf_build (const AtkKafkaSinkOptions *options, GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  /* Our defaults, before the user's properties so that those win. */
  const char *const defaults[][2] = {
    { "bootstrap.servers", options->bootstrap_servers },
    /* Java-compatible key hashing: the same partition as the reference (franz-go) and
     * any Java producer for the same DID. */
    { "partitioner", "murmur2_random" },
    /* Per-partition order and no duplicates when librdkafka retries. */
    { "enable.idempotence", "true" },
    { "acks", "all" },
    /* lz4 unless told (the daemon picks gzip for Osprey, whose stock worker reads only
     * gzip and uncompressed batches). */
    { "compression.codec", options->compression != NULL ? options->compression : "lz4" },
    /* The relay input already hands frames over in bursts, one per --read-batch-ms (40): 5 ms
     * is enough for librdkafka to take a whole burst into one batch per partition (it sends
     * one produce request per partition and batch, and sets an lz4 frame up for each), and
     * adds little latency. Measured at 3,000 frames/s over 16 partitions (tools/bench-pipeline,
     * README "Performance"): read batch 40 ms with linger 5 ms cost 9.3-9.8 % of a core, p99
     * received -> acknowledged 60-73 ms; 25 with 25 (the defaults before) 10.7-10.9 %, 73-74 ms;
     * 50 with 5, 8.6-8.9 %, 77-88 ms. */
    { "linger.ms", "5" },
    /* Never give a message up while the broker is away: the daemon bounds what is in
     * flight (and so memory) by pausing the relay instead. */
    { "message.timeout.ms", "0" },
    { "queue.buffering.max.messages", "1000000" },
    { "queue.buffering.max.kbytes", "2097152" },
    /* Logs go to the main queue and so reach GLib on the main thread. */
    { "log.queue", "true" },
    { "client.id", "at-kafka" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (defaults); i++)
    if (!atk_kafka_conf_set (conf, defaults[i][0], defaults[i][1], error))
      goto fail;
  if (g_strcmp0 (options->compression, "gzip") == 0
      && !atk_kafka_conf_set (conf, "compression.level", GZIP_LEVEL, error))
    goto fail;
  /* librdkafka wants every message settled within a transaction's lifetime. */
  if (options->transactional_id != NULL
      && (!atk_kafka_conf_set (conf, "transactional.id", options->transactional_id, error)
          || !atk_kafka_conf_set (conf, "transaction.timeout.ms", "60000", error)
          || !atk_kafka_conf_set (conf, "message.timeout.ms", "60000", error)))
    goto fail;
  if (!apply_user_properties (conf, options->properties, error))
    goto fail;
  return conf;

fail:
  rd_kafka_conf_destroy (conf);
  return NULL;
}

char *
atk_kafka_conf_get_string (const rd_kafka_conf_t *conf, const char *key, const char *fallback)
{
  char value[256];
  size_t size = sizeof value;

  if (rd_kafka_conf_get (conf, key, value, &size) != RD_KAFKA_CONF_OK)
    return g_strdup (fallback);
  return g_strdup (value);
}

gint64
atk_kafka_conf_get_int (const rd_kafka_conf_t *conf, const char *key, gint64 fallback)
{
  char value[64];
  size_t size = sizeof value;
  gint64 parsed;

  if (rd_kafka_conf_get (conf, key, value, &size) != RD_KAFKA_CONF_OK
      || !g_ascii_string_to_signed (value, 10, 0, G_MAXINT64, &parsed, NULL))
    return fallback;
  return parsed;
}

gint64
atk_kafka_conf_batch_cap (gint64 max_message_bytes)
{
  /* The broker checks a whole batch, compressed and framed (61 bytes of batch header, a
   * few per record), against the topic's limit; librdkafka's batch.size counts the
   * records before compression. Leave room for the framing and for codecs that grow
   * incompressible data a little. */
  return MAX (1, max_message_bytes - 512 - max_message_bytes / 64);
}
