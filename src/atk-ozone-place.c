/* at-kafka: Ozone mode's place in "<topic>.cursor" (see atk-ozone-place.h).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-ozone-place.h"

#include "atk-error.h"
#include "atk-kafka-cursor.h"

char *
atk_ozone_place_key (const AtkConfig *config)
{
  return g_strconcat ("ozone ", config->ozone_labeler_did, NULL);
}

gboolean
atk_ozone_place_load (AtkOzoneSource *source, const AtkConfig *config, const char *cursor_topic,
                      guint timeout_ms, GError **error)
{
  g_autofree char *key = atk_ozone_place_key (config);
  g_autoptr (GError) local = NULL;
  gboolean found = FALSE;
  gint64 id = 0;

  if (atk_ozone_source_get_durable_id (source, NULL))
    return TRUE;
  g_ptr_array_add (config->kafka_properties, NULL);
  atk_kafka_cursor_load (config->bootstrap_servers,
                         (const char *const *)config->kafka_properties->pdata, cursor_topic, key,
                         timeout_ms, &found, &id, &local);
  g_ptr_array_remove_index (config->kafka_properties, config->kafka_properties->len - 1);
  if (g_error_matches (local, ATK_ERROR, ATK_ERROR_BAD_CONFIG))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   "The Ozone place in Kafka topic %s is corrupt: the newest record for key "
                   "\"%s\" %s; delete the key (a tombstone) to start from Ozone's first event",
                   cursor_topic, key, local->message);
      return FALSE;
    }
  if (local != NULL)
    {
      g_warning ("Cannot read the Ozone place from Kafka topic %s (%s): starting from Ozone's "
                 "first event",
                 cursor_topic, local->message);
      return TRUE;
    }
  if (found)
    {
      g_message ("No %s/ozone-cursor: resuming after Ozone event %" G_GINT64_FORMAT
                 " from Kafka topic %s",
                 config->state_directory != NULL ? config->state_directory : "(no state directory)",
                 id, cursor_topic);
      atk_ozone_source_resume_after_id (source, id);
    }
  return TRUE;
}

void
atk_ozone_place_save (AtkOzoneSource *source, const AtkConfig *config, AtkKafkaSink *sink,
                      gint64 *saved_id)
{
  g_autofree char *key = NULL;
  g_autoptr (GError) error = NULL;
  gint64 id;

  if (!atk_ozone_source_get_durable_id (source, &id) || id == *saved_id)
    return;
  key = atk_ozone_place_key (config);
  if (!atk_kafka_sink_produce_cursor (sink, key, id, &error))
    {
      g_message ("%s", error->message);
      return;
    }
  *saved_id = id;
}
