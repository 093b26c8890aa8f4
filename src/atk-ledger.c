/* at-kafka: the pipeline's ledger (see atk-ledger.h).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-ledger.h"

#include "atk-ack-table.h"
#include "atk-cursor-tracker.h"
#include "atk-log.h"

struct _AtkLedger
{
  AtkInput *input;
  gboolean keeps_place;
  AtkCursorTracker *tracker; /* inputs with a cursor (empty for the others) */
  AtkAckTable *acks;         /* inputs that keep their place */
  gboolean has_first_seq;    /* the first seq taken when there was no cursor */
  gint64 first_seq;

  AtkStats *stats;
  gint64 max_seq_jump;
  gboolean outdated_pending; /* an OutdatedCursor came: measure the gap at the next seq */
  gint64 outdated_after;
  AtkLogLimit seen_lines; /* frames dropped as already seen */
  AtkLogLimit jump_lines; /* frames dropped for a seq jump */
};

AtkLedger *
atk_ledger_new (AtkInput *input, AtkStats *stats, gint64 max_seq_jump)
{
  AtkLedger *self = g_new0 (AtkLedger, 1);

  self->input = input;
  self->stats = stats;
  self->max_seq_jump = max_seq_jump;
  self->keeps_place = (atk_input_get_flags (input) & ATK_INPUT_KEEPS_PLACE) != 0;
  self->tracker = atk_cursor_tracker_new ();
  if (self->keeps_place)
    self->acks = atk_ack_table_new ();
  return self;
}

void
atk_ledger_free (AtkLedger *self)
{
  if (self == NULL)
    return;
  g_clear_object (&self->tracker);
  g_clear_pointer (&self->acks, atk_ack_table_free);
  g_free (self);
}

gboolean
atk_ledger_uses_cursor (AtkLedger *self)
{
  return !self->keeps_place;
}

void
atk_ledger_reset (AtkLedger *self, gboolean has_cursor, gint64 cursor)
{
  atk_cursor_tracker_reset (self->tracker, has_cursor, cursor);
  atk_input_set_cursor (self->input, has_cursor, cursor);
}

void
atk_ledger_rewind_point (AtkLedger *self, gboolean *has_cursor, gint64 *cursor)
{
  if (!*has_cursor && self->has_first_seq)
    {
      *has_cursor = TRUE;
      *cursor = self->first_seq - 1;
    }
}

/* After an OutdatedCursor, the first seq shows how much the relay no longer had. */
static void
log_outdated_gap (AtkLedger *self, gint64 seq)
{
  if (!self->outdated_pending)
    return;
  self->outdated_pending = FALSE;
  if (seq > self->outdated_after + 1)
    g_warning ("Relay resumed at seq %" G_GINT64_FORMAT " after our cursor %" G_GINT64_FORMAT
               ": up to %" G_GINT64_FORMAT " events are missing",
               seq, self->outdated_after, seq - self->outdated_after - 1);
}

gboolean
atk_ledger_accept (AtkLedger *self, const AtkInputEvent *event)
{
  gint64 last = 0;
  gboolean has_last;

  if (self->keeps_place || !event->has_position)
    return TRUE;
  has_last = atk_cursor_tracker_get_last_added (self->tracker, &last);
  switch (
      atk_seq_check (has_last, last, event->position, self->max_seq_jump, self->outdated_pending))
    {
    case ATK_SEQ_SEEN:
      self->stats->seen_frames++;
      atk_log_event (G_LOG_LEVEL_MESSAGE, &self->seen_lines, TRUE, event->position, NULL,
                     "Frame of seq %" G_GINT64_FORMAT " dropped: seq %" G_GINT64_FORMAT
                     " was taken already",
                     event->position, last);
      return FALSE;
    case ATK_SEQ_TOO_FAR:
      atk_stats_count_decode_error (self->stats, "bad_frame");
      atk_log_event (G_LOG_LEVEL_WARNING, &self->jump_lines, TRUE, event->position, NULL,
                     "Frame of seq %" G_GINT64_FORMAT " skipped as bad: %" G_GINT64_FORMAT
                     " past the last seq %" G_GINT64_FORMAT
                     ", more than --max-seq-jump %" G_GINT64_FORMAT,
                     event->position, event->position - last, last, self->max_seq_jump);
      return FALSE;
    case ATK_SEQ_NEW:
    default:
      log_outdated_gap (self, event->position);
      return TRUE;
    }
}

void
atk_ledger_notice (AtkLedger *self, AtkInputNotice notice)
{
  switch (notice)
    {
    case ATK_INPUT_NOTICE_OUTDATED_CURSOR:
      self->stats->outdated_cursor_infos++;
      self->outdated_pending
          = atk_cursor_tracker_get_last_added (self->tracker, &self->outdated_after);
      break;
    case ATK_INPUT_NOTICE_FUTURE_CURSOR:
      self->stats->error_frames++;
      atk_ledger_reset (self, FALSE, 0);
      self->has_first_seq = FALSE;
      break;
    case ATK_INPUT_NOTICE_ERROR:
      self->stats->error_frames++;
      break;
    case ATK_INPUT_NOTICE_NONE:
      break;
    }
}

guint64
atk_ledger_get_held_lines (AtkLedger *self)
{
  return self->seen_lines.held + self->jump_lines.held;
}

void
atk_ledger_track (AtkLedger *self, const AtkInputEvent *event, guint n_messages)
{
  gint64 last_added;

  if (!event->has_position)
    return;
  if (self->keeps_place)
    {
      /* An event without messages is done now. */
      if (atk_ack_table_add (self->acks, (guint64)event->position, n_messages))
        atk_input_ack (self->input, (guint64)event->position);
      return;
    }
  if (!self->has_first_seq && !atk_cursor_tracker_get_last_added (self->tracker, &last_added))
    {
      self->has_first_seq = TRUE;
      self->first_seq = event->position;
    }
  atk_cursor_tracker_add (self->tracker, event->position, n_messages);
  atk_input_set_cursor (self->input, TRUE, event->position);
}

void
atk_ledger_settle (AtkLedger *self, gboolean has_seq, gint64 seq, gboolean ok)
{
  if (!has_seq)
    return;
  if (!self->keeps_place)
    atk_cursor_tracker_ack (self->tracker, seq);
  else if (atk_ack_table_settle (self->acks, (guint64)seq, ok))
    atk_input_ack (self->input, (guint64)seq);
}

gboolean
atk_ledger_get_cursor (AtkLedger *self, gint64 *cursor)
{
  return atk_cursor_tracker_get_cursor (self->tracker, cursor);
}

gboolean
atk_ledger_get_last_added (AtkLedger *self, gint64 *seq)
{
  return atk_cursor_tracker_get_last_added (self->tracker, seq);
}

void
atk_ledger_render_prometheus (AtkLedger *self, GString *out)
{
  if (self->acks == NULL)
    return;
  g_string_append_printf (out,
                          "# HELP atkafka_tap_events_pending Tap events whose messages are not "
                          "all delivered yet.\n"
                          "# TYPE atkafka_tap_events_pending gauge\n"
                          "atkafka_tap_events_pending %u\n",
                          atk_ack_table_get_pending (self->acks));
}
