/* at-kafka: the acknowledged watermark. Frames are announced in stream order with the
 * number of messages each produced; delivery reports arrive in any order. The cursor is
 * the highest seq such that every frame up to it is fully acknowledged (frames with no
 * messages count as done at once). Pure: no I/O.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define ATK_TYPE_CURSOR_TRACKER (atk_cursor_tracker_get_type ())
G_DECLARE_FINAL_TYPE (AtkCursorTracker, atk_cursor_tracker, ATK, CURSOR_TRACKER, GObject)

AtkCursorTracker *atk_cursor_tracker_new (void);

/* A frame was handed to the sink with n_messages messages (0 is fine). seq must be greater
 * than every seq added before; an older or equal seq is ignored and returns FALSE. */
gboolean atk_cursor_tracker_add (AtkCursorTracker *self, gint64 seq, guint n_messages);

/* One message of frame seq is settled (delivered, or failed for good). */
void atk_cursor_tracker_ack (AtkCursorTracker *self, gint64 seq);

/* The watermark; FALSE if nothing is acknowledged yet. */
gboolean atk_cursor_tracker_get_cursor (AtkCursorTracker *self, gint64 *seq);

/* Highest seq ever added (acknowledged or not); FALSE if none. */
gboolean atk_cursor_tracker_get_last_added (AtkCursorTracker *self, gint64 *seq);

/* Frames added but not yet fully acknowledged. */
guint atk_cursor_tracker_get_pending (AtkCursorTracker *self);

/* Starts from a known cursor (e.g. loaded from disk): seqs <= it count as acknowledged. */
void atk_cursor_tracker_reset (AtkCursorTracker *self, gboolean has_cursor, gint64 cursor);

G_END_DECLS
