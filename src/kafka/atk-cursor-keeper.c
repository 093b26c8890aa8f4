/* at-kafka: the durable cursor's two stores (state file and "<topic>.cursor").
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-cursor"

#include "atk-cursor-keeper.h"

#include "atk-cursor-store.h"
#include "atk-error.h"
#include "atk-kafka-cursor.h"

struct _AtkCursorKeeper
{
  const AtkConfig *config;
  char *topic;              /* "<output topic>.cursor" */
  GStrv properties;         /* the config's -X properties, NULL-terminated */
  AtkCursorFile *file;      /* <state-dir>/cursor; NULL without a state directory */
  gboolean has_file_cursor; /* what the state file held at start */
  gint64 file_cursor;
  gboolean has_saved; /* the state file holds saved */
  gint64 saved;
  gboolean has_produced; /* the last cursor record produced */
  gint64 produced;
};

AtkCursorKeeper *
atk_cursor_keeper_new (const AtkConfig *config)
{
  AtkCursorKeeper *self = g_new0 (AtkCursorKeeper, 1);
  GPtrArray *props = config->kafka_properties;

  self->config = config;
  self->topic = atk_kafka_cursor_topic_for (config->output_topic);
  self->properties = g_new0 (char *, props->len + 1);
  for (guint i = 0; i < props->len; i++)
    self->properties[i] = g_strdup (g_ptr_array_index (props, i));
  if (config->state_directory != NULL)
    self->file = atk_cursor_file_new (config->state_directory);
  return self;
}

void
atk_cursor_keeper_free (AtkCursorKeeper *self)
{
  if (self == NULL)
    return;
  g_free (self->topic);
  g_strfreev (self->properties);
  atk_cursor_file_free (self->file);
  g_free (self);
}

const char *
atk_cursor_keeper_get_topic (AtkCursorKeeper *self)
{
  return self->topic;
}

gboolean
atk_cursor_keeper_load_kafka (AtkCursorKeeper *self, guint timeout_ms, gboolean *found,
                              gint64 *cursor, GError **error)
{
  g_autoptr (GError) local_error = NULL;

  atk_kafka_cursor_load (self->config->bootstrap_servers, (const char *const *)self->properties,
                         self->topic, self->config->output_topic, timeout_ms, found, cursor,
                         &local_error);
  if (g_error_matches (local_error, ATK_ERROR, ATK_ERROR_BAD_CONFIG))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   "The cursor store in Kafka topic %s is corrupt: the newest record for key "
                   "“%s” is not a cursor (%s). Delete it with a tombstone (a null value for that "
                   "key, e.g. kcat -P -b SERVERS -t %s -K: -Z with the line “%s:”), or start "
                   "once with --cursor SEQ or --cursor live, which overwrites it",
                   self->topic, self->config->output_topic, local_error->message, self->topic,
                   self->config->output_topic);
      return FALSE;
    }
  if (local_error != NULL)
    g_message ("No cursor from Kafka (%s): using the state directory's", local_error->message);
  else if (*found)
    g_message ("Cursor in Kafka topic %s: seq %" G_GINT64_FORMAT, self->topic, *cursor);
  return local_error == NULL;
}

/* The two stores only ever hold acknowledged watermarks written on the same timer, so they
 * differ by little; a gap wider than --max-seq-jump means one of them was written by
 * something else (or belongs to another relay), and neither may silently win. */
static gboolean
check_agreement (AtkCursorKeeper *self, gint64 kafka_cursor, GError **error)
{
  gint64 bound = self->config->max_seq_jump;
  gint64 gap;

  if (!self->has_file_cursor || bound <= 0)
    return TRUE;
  gap = ABS (kafka_cursor - self->file_cursor);
  if (gap <= bound)
    return TRUE;
  g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
               "The two cursor stores disagree: %s/cursor holds seq %" G_GINT64_FORMAT
               " and Kafka topic %s holds seq %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT
               " apart, more than --max-seq-jump %" G_GINT64_FORMAT "). Start once with "
               "--cursor SEQ (or --cursor live), which overwrites both, or fix the wrong one "
               "(delete the file, or produce a tombstone for key “%s” to %s)",
               self->config->state_directory, self->file_cursor, self->topic, kafka_cursor, gap,
               bound, self->config->output_topic, self->topic);
  return FALSE;
}

AtkCursorMerge
atk_cursor_keeper_merge_kafka (AtkCursorKeeper *self, gboolean *has_cursor, gint64 *cursor,
                               GError **error)
{
  gboolean found = FALSE;
  gint64 kafka_cursor = 0;
  g_autoptr (GError) local_error = NULL;

  if (!atk_cursor_keeper_load_kafka (self, ATK_CURSOR_KEEPER_LOAD_MS, &found, &kafka_cursor,
                                     &local_error))
    {
      if (local_error == NULL)
        return ATK_CURSOR_MERGE_UNREACHABLE;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return ATK_CURSOR_MERGE_REFUSED;
    }
  if (!found)
    return ATK_CURSOR_MERGE_OK;
  if (!check_agreement (self, kafka_cursor, error))
    return ATK_CURSOR_MERGE_REFUSED;
  if (!*has_cursor || kafka_cursor > *cursor)
    {
      *has_cursor = TRUE;
      *cursor = kafka_cursor;
    }
  return ATK_CURSOR_MERGE_OK;
}

static gboolean
load_state_file (AtkCursorKeeper *self, gboolean *has_cursor, gint64 *cursor, GError **error)
{
  const char *dir = self->config->state_directory;
  g_autoptr (GError) local_error = NULL;

  if (dir == NULL)
    return TRUE;
  if (atk_cursor_store_load (dir, cursor, &local_error))
    {
      *has_cursor = TRUE;
      self->has_file_cursor = TRUE;
      self->file_cursor = *cursor;
      g_message ("Cursor in %s: seq %" G_GINT64_FORMAT, dir, *cursor);
      return TRUE;
    }
  if (local_error == NULL)
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

gboolean
atk_cursor_keeper_load_start (AtkCursorKeeper *self, gboolean transactional, gboolean *has_cursor,
                              gint64 *cursor, GError **error)
{
  *has_cursor = FALSE;
  switch (self->config->cursor_mode)
    {
    case ATK_CURSOR_LIVE:
      g_message ("Starting at the live tip (--cursor live)");
      return TRUE;
    case ATK_CURSOR_SEQ:
      *has_cursor = TRUE;
      *cursor = self->config->cursor;
      g_message ("Starting after seq %" G_GINT64_FORMAT " (--cursor)", *cursor);
      return TRUE;
    case ATK_CURSOR_STORED:
    default:
      break;
    }
  if (!load_state_file (self, has_cursor, cursor, error))
    return FALSE;
  if (!transactional
      && atk_cursor_keeper_merge_kafka (self, has_cursor, cursor, error)
             == ATK_CURSOR_MERGE_REFUSED)
    return FALSE;
  if (*has_cursor)
    g_message ("Resuming after stored seq %" G_GINT64_FORMAT, *cursor);
  else if (!transactional)
    g_message ("No stored cursor: starting at the live tip");
  return TRUE;
}

static void
save_state_file (AtkCursorKeeper *self, gint64 cursor)
{
  g_autoptr (GError) error = NULL;

  if (self->file == NULL || (self->has_saved && self->saved == cursor))
    return;
  if (!atk_cursor_file_save (self->file, cursor, &error))
    {
      g_warning ("Cannot save the cursor: %s", error != NULL ? error->message : "unknown error");
      return;
    }
  self->has_saved = TRUE;
  self->saved = cursor;
}

static void
save_kafka_cursor (AtkCursorKeeper *self, AtkKafkaSink *sink, gint64 cursor)
{
  g_autoptr (GError) error = NULL;

  if (sink == NULL || !atk_kafka_sink_is_ready (sink)
      || (self->has_produced && self->produced == cursor))
    return;
  if (!atk_kafka_sink_produce_cursor (sink, self->config->output_topic, cursor, &error))
    {
      g_message ("%s", error != NULL ? error->message : "Cannot produce the cursor record");
      return;
    }
  self->has_produced = TRUE;
  self->produced = cursor;
}

void
atk_cursor_keeper_save (AtkCursorKeeper *self, AtkKafkaSink *sink, gint64 cursor)
{
  save_state_file (self, cursor);
  save_kafka_cursor (self, sink, cursor);
}
