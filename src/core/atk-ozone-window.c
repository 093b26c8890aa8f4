/* at-kafka: Ozone mode's window of recent events (see atk-ozone-window.h).
 * SPDX-License-Identifier: MIT */
#include "atk-ozone-window.h"

struct _AtkOzoneWindow
{
  gint64 lookback_ms;
  gboolean has_floor;
  AtkOzonePosition floor; /* never taken again */
  gboolean has_newest;
  gint64 newest_ms;  /* createdAt of the newest event taken */
  GHashTable *taken; /* event id (gint64 *) → createdAt ms (gint64 *) */
};

AtkOzoneWindow *
atk_ozone_window_new (gint64 lookback_ms)
{
  AtkOzoneWindow *self = g_new0 (AtkOzoneWindow, 1);

  self->lookback_ms = MAX (lookback_ms, 0);
  self->taken = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  return self;
}

void
atk_ozone_window_free (AtkOzoneWindow *self)
{
  if (self == NULL)
    return;
  atk_ozone_position_clear (&self->floor);
  g_hash_table_unref (self->taken);
  g_free (self);
}

void
atk_ozone_window_reset (AtkOzoneWindow *self, const AtkOzonePosition *floor)
{
  g_hash_table_remove_all (self->taken);
  self->has_floor = floor != NULL;
  self->has_newest = floor != NULL;
  if (floor != NULL)
    {
      atk_ozone_position_copy (&self->floor, floor);
      self->newest_ms = floor->created_ms;
    }
  else
    atk_ozone_position_clear (&self->floor);
}

gboolean
atk_ozone_window_take (AtkOzoneWindow *self, const AtkOzoneEvent *event)
{
  gint64 id = event->pos.id;

  if (self->has_floor && atk_ozone_position_compare (&event->pos, &self->floor) <= 0)
    return FALSE;
  if (g_hash_table_contains (self->taken, &id))
    return FALSE;
  g_hash_table_insert (self->taken, g_memdup2 (&id, sizeof id),
                       g_memdup2 (&event->pos.created_ms, sizeof (gint64)));
  if (!self->has_newest || event->pos.created_ms > self->newest_ms)
    self->newest_ms = event->pos.created_ms;
  self->has_newest = TRUE;
  return TRUE;
}

static gboolean
fell_out (gpointer key, gpointer value, gpointer user_data)
{
  return *(gint64 *)value < *(gint64 *)user_data;
}

char *
atk_ozone_window_created_after (AtkOzoneWindow *self)
{
  gint64 from;

  if (!self->has_newest)
    return NULL;
  from = self->newest_ms - self->lookback_ms;
  /* below the floor everything is in Kafka: no need to ask */
  if (self->has_floor && from < self->floor.created_ms)
    from = self->floor.created_ms;
  g_hash_table_foreach_remove (self->taken, fell_out, &from);
  return atk_ozone_format_ms (from);
}

guint
atk_ozone_window_get_size (AtkOzoneWindow *self)
{
  return g_hash_table_size (self->taken);
}

char *
atk_ozone_format_ms (gint64 ms)
{
  gint64 seconds = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (seconds);
  g_autofree char *base = NULL;

  if (t == NULL)
    return g_strdup ("1970-01-01T00:00:00.000Z");
  base = g_date_time_format (t, "%Y-%m-%dT%H:%M:%S");
  return g_strdup_printf ("%s.%03dZ", base, (int)(ms - seconds * 1000));
}
