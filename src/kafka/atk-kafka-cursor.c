/* at-kafka: the cursor stored in Kafka (see the header for the format).
 *
 * Reading uses a short-lived consumer that joins no group: it asks for the partition's
 * end (with read_committed this is the last stable offset, so an open or aborted
 * transaction is never seen), assigns itself the last few hundred offsets and keeps the
 * newest record with our key. Compaction keeps that record however old it is; the tail is
 * read first because the topic normally holds one key, and the whole partition only when
 * the tail has none of ours. The newest record decides: a tombstone means nothing is
 * stored, and anything that is not a cursor makes the store corrupt (not "empty": an
 * older record must not silently win).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-cursor"

#include "atk-kafka-cursor.h"

#include <librdkafka/rdkafka.h>
#include <string.h>

#include "atk-error.h"

#define TAIL_RECORDS 256

char *
atk_kafka_cursor_topic_for (const char *output_topic)
{
  return g_strconcat (output_topic, ATK_KAFKA_CURSOR_SUFFIX, NULL);
}

char *
atk_kafka_cursor_format (gint64 seq, gint64 now_us)
{
  g_autoptr (GDateTime) now = g_date_time_new_from_unix_utc (now_us / G_USEC_PER_SEC);
  g_autofree char *stamp = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S");

  return g_strdup_printf ("{\"seq\":%" G_GINT64_FORMAT ",\"updated\":\"%s.%03dZ\"}", seq, stamp,
                          (int)((now_us % G_USEC_PER_SEC) / 1000));
}

gboolean
atk_kafka_cursor_parse (const char *value, gsize len, gint64 *seq, GError **error)
{
  g_autofree char *text = NULL;
  const char *p;
  char *end = NULL;
  gint64 parsed;

  if (value == NULL)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           "Not a cursor record: a tombstone (null value)");
      return FALSE;
    }
  /* The value is bytes from anyone who can write the topic: no NUL may cut it short. */
  if (memchr (value, '\0', len) != NULL)
    goto bad_bytes;
  text = g_strndup (value, len);
  p = strstr (text, "\"seq\"");

  if (p != NULL)
    {
      p += strlen ("\"seq\"");
      while (g_ascii_isspace (*p))
        p++;
      if (*p == ':')
        p++;
      while (g_ascii_isspace (*p))
        p++;
    }
  if (p == NULL || !g_ascii_isdigit (*p))
    goto bad;
  parsed = g_ascii_strtoll (p, &end, 10);
  if (parsed < 0 || parsed > ATK_KAFKA_CURSOR_MAX_SEQ
      || (*end != ',' && *end != '}' && !g_ascii_isspace (*end)))
    goto bad;
  *seq = parsed;
  return TRUE;

bad:
  if (g_utf8_validate (text, -1, NULL))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Not a cursor record: “%.80s”", text);
      return FALSE;
    }
bad_bytes:
  g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
               "Not a cursor record: %" G_GSIZE_FORMAT " bytes that are not UTF-8 text", len);
  return FALSE;
}

/* ---- reading -------------------------------------------------------------------------- */

static void
on_consumer_log (const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
  /* The user's producer properties make a consumer complain; none of it is actionable. */
  g_debug ("cursor reader %s: %s", facility, buf);
}

static rd_kafka_t *
new_reader (const char *bootstrap_servers, const char *const *properties, GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  const char *const settings[][2] = {
    { "bootstrap.servers", bootstrap_servers }, { "client.id", "at-kafka-cursor-reader" },
    { "group.id", "at-kafka-cursor-reader" }, /* never joined: we assign() */
    { "enable.auto.commit", "false" },          { "enable.auto.offset.store", "false" },
    { "enable.partition.eof", "true" },         { "isolation.level", "read_committed" },
  };
  char errstr[512];
  rd_kafka_t *rk;

  rd_kafka_conf_set_log_cb (conf, on_consumer_log);
  for (gsize i = 0; properties != NULL && properties[i] != NULL; i++)
    {
      g_auto (GStrv) kv = g_strsplit (properties[i], "=", 2);
      if (kv[0] != NULL && kv[1] != NULL)
        rd_kafka_conf_set (conf, g_strstrip (kv[0]), kv[1], errstr, sizeof errstr);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (settings); i++)
    if (rd_kafka_conf_set (conf, settings[i][0], settings[i][1], errstr, sizeof errstr)
        != RD_KAFKA_CONF_OK)
      {
        rd_kafka_conf_destroy (conf);
        g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "Cursor reader: %s", errstr);
        return NULL;
      }
  rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "Cursor reader: %s", errstr);
    }
  return rk;
}

static int
remaining_ms (gint64 deadline_us)
{
  gint64 left = deadline_us - g_get_monotonic_time ();
  return left > 0 ? (int)(left / 1000) : 0;
}

/* What the newest record with our key said. */
typedef struct
{
  gboolean seen;  /* a record with our key was read */
  gboolean found; /* the newest one is a cursor: seq */
  gint64 seq;
  GError *corrupt; /* the newest one is neither a cursor nor a tombstone */
} Newest;

static void
newest_take (Newest *newest, const rd_kafka_message_t *m)
{
  g_autoptr (GError) error = NULL;

  newest->seen = TRUE;
  newest->found = FALSE;
  g_clear_error (&newest->corrupt);
  /* A tombstone (null value) deletes the key: nothing is stored there. */
  if (m->payload == NULL)
    return;
  if (atk_kafka_cursor_parse (m->payload, m->len, &newest->seq, &error))
    newest->found = TRUE;
  else
    {
      newest->corrupt = g_steal_pointer (&error);
      g_prefix_error (&newest->corrupt, "offset %" G_GINT64_FORMAT ": ", (gint64)m->offset);
    }
}

/* Consumes [start, end of partition), keeping what the newest record with key says. */
static gboolean
scan (rd_kafka_t *rk, const char *topic, const char *key, gint64 start, gint64 deadline_us,
      Newest *newest, GError **error)
{
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new (1);
  gsize key_len = strlen (key);

  rd_kafka_topic_partition_list_add (parts, topic, 0)->offset = start;
  rd_kafka_assign (rk, parts);
  rd_kafka_topic_partition_list_destroy (parts);
  for (;;)
    {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (rk, MAX (1, remaining_ms (deadline_us)));
      rd_kafka_resp_err_t err;

      if (m == NULL)
        {
          if (remaining_ms (deadline_us) > 0)
            continue;
          g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "Timed out reading %s", topic);
          return FALSE;
        }
      err = m->err;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR && m->key_len == key_len
          && memcmp (m->key, key, key_len) == 0)
        newest_take (newest, m);
      rd_kafka_message_destroy (m);
      if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return TRUE;
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "Reading %s: %s", topic,
                       rd_kafka_err2str (err));
          return FALSE;
        }
    }
}

static gboolean
load_with (rd_kafka_t *rk, const char *topic, const char *key, gint64 deadline_us, Newest *newest,
           GError **error)
{
  int64_t low = 0, high = 0;
  rd_kafka_resp_err_t err;

  err = rd_kafka_query_watermark_offsets (rk, topic, 0, &low, &high, remaining_ms (deadline_us));
  /* no such topic: nothing stored yet */
  if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
      || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
    return TRUE;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "Cannot ask Kafka for %s: %s", topic,
                   rd_kafka_err2str (err));
      return FALSE;
    }
  if (high <= low)
    return TRUE;
  if (!scan (rk, topic, key, MAX (low, high - TAIL_RECORDS), deadline_us, newest, error))
    return FALSE;
  if (newest->seen || high - low <= TAIL_RECORDS)
    return TRUE;
  return scan (rk, topic, key, low, deadline_us, newest, error);
}

gboolean
atk_kafka_cursor_load (const char *bootstrap_servers, const char *const *properties,
                       const char *topic, const char *key, guint timeout_ms, gboolean *found,
                       gint64 *seq, GError **error)
{
  gint64 deadline_us = g_get_monotonic_time () + (gint64)timeout_ms * 1000;
  Newest newest = { FALSE, FALSE, 0, NULL };
  rd_kafka_t *rk;
  gboolean ok;

  *found = FALSE;
  rk = new_reader (bootstrap_servers, properties, error);
  if (rk == NULL)
    return FALSE;
  ok = load_with (rk, topic, key, deadline_us, &newest, error);
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  if (ok && newest.corrupt != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&newest.corrupt));
      return FALSE;
    }
  g_clear_error (&newest.corrupt);
  *found = ok && newest.found;
  if (*found)
    *seq = newest.seq;
  return ok;
}
