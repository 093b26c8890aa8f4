/* at-kafka: the durable cursor's two stores (state file and "<topic>.cursor").
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-cursor"

#include "atk-cursor-keeper.h"

#include "atk-cursor-store.h"
#include "atk-kafka-cursor.h"

struct _AtkCursorKeeper
{
  const AtkConfig *config;
  char *topic;        /* "<output topic>.cursor" */
  GStrv properties;   /* the config's -X properties, NULL-terminated */
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
  return self;
}

void
atk_cursor_keeper_free (AtkCursorKeeper *self)
{
  if (self == NULL)
    return;
  g_free (self->topic);
  g_strfreev (self->properties);
  g_free (self);
}

const char *
atk_cursor_keeper_get_topic (AtkCursorKeeper *self)
{
  return self->topic;
}

gboolean
atk_cursor_keeper_load_kafka (AtkCursorKeeper *self, guint timeout_ms, gboolean *found,
                              gint64 *cursor)
{
  g_autoptr (GError) error = NULL;

  atk_kafka_cursor_load (self->config->bootstrap_servers, (const char *const *)self->properties,
                         self->topic, self->config->output_topic, timeout_ms, found, cursor,
                         &error);
  if (error != NULL)
    g_message ("No cursor from Kafka (%s): using the state directory's", error->message);
  else if (*found)
    g_message ("Cursor in Kafka topic %s: seq %" G_GINT64_FORMAT, self->topic, *cursor);
  return error == NULL;
}

/* The higher of the state file's and Kafka's cursor: both only ever hold acknowledged
 * watermarks, so the higher one is safe, and the lower one is merely stale (a host that
 * was replaced, a state directory that was lost). */
static void
merge_kafka_cursor (AtkCursorKeeper *self, gboolean *has_cursor, gint64 *cursor)
{
  gboolean found = FALSE;
  gint64 kafka_cursor = 0;

  if (!atk_cursor_keeper_load_kafka (self, ATK_CURSOR_KEEPER_LOAD_MS, &found, &kafka_cursor)
      || !found)
    return;
  if (*has_cursor && *cursor >= kafka_cursor)
    return;
  *has_cursor = TRUE;
  *cursor = kafka_cursor;
}

static gboolean
load_state_file (AtkCursorKeeper *self, gboolean *has_cursor, gint64 *cursor, GError **error)
{
  const char *dir = self->config->state_directory;

  if (dir == NULL)
    return TRUE;
  if (atk_cursor_store_load (dir, cursor, error))
    {
      *has_cursor = TRUE;
      g_message ("Cursor in %s: seq %" G_GINT64_FORMAT, dir, *cursor);
      return TRUE;
    }
  return error == NULL || *error == NULL;
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
  if (!transactional)
    merge_kafka_cursor (self, has_cursor, cursor);
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

  if (self->config->state_directory == NULL || (self->has_saved && self->saved == cursor))
    return;
  if (!atk_cursor_store_save (self->config->state_directory, cursor, &error))
    {
      g_warning ("Cannot save the cursor: %s", error->message);
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
      g_message ("%s", error->message);
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
