/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-kafka-topic-admin.h"

#include "atk-error.h"

static rd_kafka_AdminOptions_t *
admin_options (rd_kafka_t *rk, rd_kafka_admin_op_t op, guint timeout_ms)
{
  rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new (rk, op);

  rd_kafka_AdminOptions_set_request_timeout (options, (int)timeout_ms, NULL, 0);
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
    rd_kafka_AdminOptions_set_operation_timeout (options, (int)timeout_ms, NULL, 0);
  return options;
}

/* The cursor topic: one partition (one key, read back from its end) and compacted, so
 * the newest record per key is kept for ever and the rest goes. */
static rd_kafka_NewTopic_t *
new_cursor_topic (const char *cursor_topic, int replication, char *errstr, size_t errstr_size)
{
  rd_kafka_NewTopic_t *new_topic
      = rd_kafka_NewTopic_new (cursor_topic, 1, replication, errstr, errstr_size);

  if (new_topic != NULL)
    rd_kafka_NewTopic_set_config (new_topic, "cleanup.policy", "compact");
  return new_topic;
}

gboolean
atk_kafka_topic_admin_create (rd_kafka_t *rk, rd_kafka_queue_t *queue, const char *topic,
                              int partitions, int replication, const char *cursor_topic,
                              guint timeout_ms, GError **error)
{
  char errstr[512];
  rd_kafka_NewTopic_t *new_topics[2] = { NULL, NULL };
  size_t n_topics = 1;
  rd_kafka_AdminOptions_t *options;

  new_topics[0] = rd_kafka_NewTopic_new (topic, partitions, replication, errstr, sizeof errstr);
  if (new_topics[0] != NULL && cursor_topic != NULL)
    new_topics[n_topics++] = new_cursor_topic (cursor_topic, replication, errstr, sizeof errstr);
  if (new_topics[0] == NULL || new_topics[n_topics - 1] == NULL)
    {
      g_clear_pointer (&new_topics[0], rd_kafka_NewTopic_destroy);
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "rd_kafka_NewTopic_new(%s): %s", topic,
                   errstr);
      return FALSE;
    }
  options = admin_options (rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
  rd_kafka_CreateTopics (rk, new_topics, n_topics, options, queue);
  rd_kafka_AdminOptions_destroy (options);
  rd_kafka_NewTopic_destroy_array (new_topics, n_topics);
  return TRUE;
}

gboolean
atk_kafka_topic_admin_create_result (rd_kafka_event_t *event, const char *topic,
                                     gboolean with_cursor_topic, GError **error)
{
  const rd_kafka_CreateTopics_result_t *result = rd_kafka_event_CreateTopics_result (event);
  const rd_kafka_topic_result_t **topics;
  size_t n = 0;

  if (rd_kafka_event_error (event) != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_KAFKA, rd_kafka_event_error_string (event));
      return FALSE;
    }
  topics = rd_kafka_CreateTopics_result_topics (result, &n);
  if (n != (with_cursor_topic ? 2 : 1))
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_KAFKA, "no result for the topic");
      return FALSE;
    }
  for (size_t i = n; i-- > 0;)
    {
      const char *name = rd_kafka_topic_result_name (topics[i]);
      const char *why = rd_kafka_topic_result_error_string (topics[i]);
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error (topics[i]);

      if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        continue;
      why = why != NULL ? why : rd_kafka_err2str (err);
      if (g_strcmp0 (name, topic) == 0)
        {
          g_set_error_literal (error, ATK_ERROR, ATK_ERROR_KAFKA, why);
          return FALSE;
        }
      /* Without its cursor topic at-kafka still runs; the state file keeps the cursor. */
      g_message ("Cannot create the cursor topic %s (%s): the cursor is kept in the state "
                 "directory only",
                 name, why);
    }
  return TRUE;
}

void
atk_kafka_topic_admin_describe (rd_kafka_t *rk, rd_kafka_queue_t *queue, const char *topic,
                                guint timeout_ms)
{
  rd_kafka_ConfigResource_t *resource
      = rd_kafka_ConfigResource_new (RD_KAFKA_RESOURCE_TOPIC, topic);
  rd_kafka_AdminOptions_t *options
      = admin_options (rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms);

  rd_kafka_DescribeConfigs (rk, &resource, 1, options, queue);
  rd_kafka_AdminOptions_destroy (options);
  rd_kafka_ConfigResource_destroy (resource);
}

gboolean
atk_kafka_topic_admin_describe_result (rd_kafka_event_t *event, const char *topic,
                                       gint64 *max_message_bytes, GError **error)
{
  const rd_kafka_DescribeConfigs_result_t *result = rd_kafka_event_DescribeConfigs_result (event);
  const rd_kafka_ConfigResource_t **resources;
  const rd_kafka_ConfigEntry_t **entries;
  size_t n = 0, n_entries = 0;

  if (rd_kafka_event_error (event) != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_KAFKA, rd_kafka_event_error_string (event));
      return FALSE;
    }
  resources = rd_kafka_DescribeConfigs_result_resources (result, &n);
  if (n != 1 || g_strcmp0 (rd_kafka_ConfigResource_name (resources[0]), topic) != 0)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_KAFKA, "no result for the topic");
      return FALSE;
    }
  if (rd_kafka_ConfigResource_error (resources[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      const char *why = rd_kafka_ConfigResource_error_string (resources[0]);
      g_set_error_literal (
          error, ATK_ERROR, ATK_ERROR_KAFKA,
          why != NULL ? why : rd_kafka_err2str (rd_kafka_ConfigResource_error (resources[0])));
      return FALSE;
    }
  entries = rd_kafka_ConfigResource_configs (resources[0], &n_entries);
  for (size_t i = 0; i < n_entries; i++)
    {
      const char *value = rd_kafka_ConfigEntry_value (entries[i]);
      guint64 parsed;

      if (g_strcmp0 (rd_kafka_ConfigEntry_name (entries[i]), "max.message.bytes") != 0)
        continue;
      if (value == NULL || !g_ascii_string_to_unsigned (value, 10, 1, G_MAXINT32, &parsed, NULL))
        break;
      *max_message_bytes = (gint64)parsed;
      return TRUE;
    }
  g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "no max.message.bytes for %s", topic);
  return FALSE;
}

/* ---- every partition served by its leader --------------------------------------- */

static void
quiet_log (const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  g_debug ("leader check: %s: %s", fac, buf);
}

gboolean
atk_kafka_topic_admin_leaders_serve (rd_kafka_conf_t *conf, const char *topic, guint timeout_ms,
                                     GError **error)
{
  g_autoptr (GString) missing = g_string_new (NULL);
  const rd_kafka_metadata_t *metadata = NULL;
  rd_kafka_topic_partition_list_t *list;
  rd_kafka_topic_t *rkt;
  rd_kafka_resp_err_t err;
  rd_kafka_t *rk;
  gint partitions = 0;
  char errstr[512];

  rd_kafka_conf_set_opaque (conf, NULL);
  rd_kafka_conf_set_dr_msg_cb (conf, NULL);
  rd_kafka_conf_set_error_cb (conf, NULL);
  rd_kafka_conf_set_throttle_cb (conf, NULL);
  rd_kafka_conf_set_log_cb (conf, quiet_log);
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "%s", errstr);
      return FALSE;
    }
  /* The topic's own partition count: it may be older than our --topic-partitions. */
  rkt = rd_kafka_topic_new (rk, topic, NULL);
  err = rd_kafka_metadata (rk, 0, rkt, &metadata, timeout_ms);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        partitions = metadata->topics[0].partition_cnt;
      else
        err = metadata->topic_cnt == 1 ? metadata->topics[0].err
                                       : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
      rd_kafka_metadata_destroy (metadata);
    }
  rd_kafka_topic_destroy (rkt);
  list = rd_kafka_topic_partition_list_new (MAX (partitions, 1));
  for (gint p = 0; p < partitions; p++)
    rd_kafka_topic_partition_list_add (list, topic, p)->offset = RD_KAFKA_OFFSET_END;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && partitions == 0)
    err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    err = rd_kafka_offsets_for_times (rk, list, timeout_ms);
  for (gint i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++)
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR && missing->len < 200)
      g_string_append_printf (missing, "%s%d (%s)", missing->len > 0 ? ", " : "",
                              list->elems[i].partition, rd_kafka_err2str (list->elems[i].err));
  rd_kafka_topic_partition_list_destroy (list);
  rd_kafka_destroy (rk);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "%s", rd_kafka_err2str (err));
  else if (missing->len > 0)
    g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "partitions %s", missing->str);
  return err == RD_KAFKA_RESP_ERR_NO_ERROR && missing->len == 0;
}
