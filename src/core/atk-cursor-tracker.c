/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-cursor-tracker.h"

/* Pending frames live in a ring buffer in stream order, so seqs in it are strictly
 * increasing: an ack finds its frame by binary search, and the watermark is whatever
 * leaves from the head. Memory is proportional to the frames between the watermark and
 * the newest frame; the ring shrinks again when that window narrows. */

#define MIN_CAPACITY 64

typedef struct
{
  gint64 seq;
  guint remaining; /* messages not yet settled */
} Entry;

struct _AtkCursorTracker
{
  GObject parent_instance;

  Entry *ring;
  gsize capacity;  /* a power of two, or 0 before the first add */
  gsize head;      /* index of the oldest pending frame */
  gsize length;    /* frames in the ring, done or not */
  guint unsettled; /* frames in the ring with remaining > 0 */

  gboolean has_cursor;
  gint64 cursor;
  gboolean has_last_added;
  gint64 last_added;
};

G_DEFINE_FINAL_TYPE (AtkCursorTracker, atk_cursor_tracker, G_TYPE_OBJECT)

static void
atk_cursor_tracker_finalize (GObject *object)
{
  AtkCursorTracker *self = ATK_CURSOR_TRACKER (object);

  g_free (self->ring);
  G_OBJECT_CLASS (atk_cursor_tracker_parent_class)->finalize (object);
}

static void
atk_cursor_tracker_class_init (AtkCursorTrackerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = atk_cursor_tracker_finalize;
}

static void
atk_cursor_tracker_init (AtkCursorTracker *self)
{
}

AtkCursorTracker *
atk_cursor_tracker_new (void)
{
  return g_object_new (ATK_TYPE_CURSOR_TRACKER, NULL);
}

static Entry *
entry_at (AtkCursorTracker *self, gsize i)
{
  return &self->ring[(self->head + i) & (self->capacity - 1)];
}

/* Moves the pending frames into a fresh ring of new_capacity, head at 0. */
static void
resize (AtkCursorTracker *self, gsize new_capacity)
{
  Entry *ring = g_new (Entry, new_capacity);

  for (gsize i = 0; i < self->length; i++)
    ring[i] = *entry_at (self, i);
  g_free (self->ring);
  self->ring = ring;
  self->capacity = new_capacity;
  self->head = 0;
}

/* Frames at the head whose messages are all settled move the watermark. */
static void
advance (AtkCursorTracker *self)
{
  while (self->length > 0 && entry_at (self, 0)->remaining == 0)
    {
      self->cursor = entry_at (self, 0)->seq;
      self->has_cursor = TRUE;
      self->head = (self->head + 1) & (self->capacity - 1);
      self->length--;
    }
  if (self->capacity > MIN_CAPACITY && self->length < self->capacity / 4)
    resize (self, self->capacity / 2);
}

gboolean
atk_cursor_tracker_add (AtkCursorTracker *self, gint64 seq, guint n_messages)
{
  g_return_val_if_fail (ATK_IS_CURSOR_TRACKER (self), FALSE);

  if (self->has_last_added && seq <= self->last_added)
    {
      g_debug ("ignoring frame %" G_GINT64_FORMAT ": not after %" G_GINT64_FORMAT, seq,
               self->last_added);
      return FALSE;
    }
  self->has_last_added = TRUE;
  self->last_added = seq;

  /* nothing to wait for, nothing before it: it is acknowledged at once */
  if (n_messages == 0 && self->length == 0)
    {
      self->has_cursor = TRUE;
      self->cursor = seq;
      return TRUE;
    }

  if (self->length == self->capacity)
    resize (self, MAX (MIN_CAPACITY, self->capacity * 2));
  *entry_at (self, self->length) = (Entry){ .seq = seq, .remaining = n_messages };
  self->length++;
  if (n_messages > 0)
    self->unsettled++;
  return TRUE;
}

/* The ring index of seq, or -1. */
static gssize
find (AtkCursorTracker *self, gint64 seq)
{
  gsize lo = 0, hi = self->length;

  while (lo < hi)
    {
      gsize mid = lo + (hi - lo) / 2;
      gint64 mid_seq = entry_at (self, mid)->seq;

      if (mid_seq == seq)
        return mid;
      if (mid_seq < seq)
        lo = mid + 1;
      else
        hi = mid;
    }
  return -1;
}

void
atk_cursor_tracker_ack (AtkCursorTracker *self, gint64 seq)
{
  gssize i;
  Entry *entry;

  g_return_if_fail (ATK_IS_CURSOR_TRACKER (self));

  /* unknown seqs are normal after a reset: reports of messages produced before it */
  i = find (self, seq);
  if (i < 0)
    {
      g_debug ("ack for frame %" G_GINT64_FORMAT " that is not pending", seq);
      return;
    }
  entry = entry_at (self, i);
  if (entry->remaining == 0)
    {
      g_debug ("extra ack for frame %" G_GINT64_FORMAT, seq);
      return;
    }
  entry->remaining--;
  if (entry->remaining == 0)
    {
      self->unsettled--;
      if (i == 0)
        advance (self);
    }
}

gboolean
atk_cursor_tracker_get_cursor (AtkCursorTracker *self, gint64 *seq)
{
  g_return_val_if_fail (ATK_IS_CURSOR_TRACKER (self), FALSE);

  if (self->has_cursor && seq != NULL)
    *seq = self->cursor;
  return self->has_cursor;
}

gboolean
atk_cursor_tracker_get_last_added (AtkCursorTracker *self, gint64 *seq)
{
  g_return_val_if_fail (ATK_IS_CURSOR_TRACKER (self), FALSE);

  if (self->has_last_added && seq != NULL)
    *seq = self->last_added;
  return self->has_last_added;
}

guint
atk_cursor_tracker_get_pending (AtkCursorTracker *self)
{
  g_return_val_if_fail (ATK_IS_CURSOR_TRACKER (self), 0);

  return self->unsettled;
}

/* Forgets every pending frame. The cursor also becomes the newest seq "added", so a
 * frame at or before it (a replay overlap) is refused like any duplicate. */
void
atk_cursor_tracker_reset (AtkCursorTracker *self, gboolean has_cursor, gint64 cursor)
{
  g_return_if_fail (ATK_IS_CURSOR_TRACKER (self));

  g_clear_pointer (&self->ring, g_free);
  self->capacity = 0;
  self->head = 0;
  self->length = 0;
  self->unsettled = 0;
  self->has_cursor = has_cursor;
  self->cursor = has_cursor ? cursor : 0;
  self->has_last_added = has_cursor;
  self->last_added = self->cursor;
}
