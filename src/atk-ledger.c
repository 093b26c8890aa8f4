/* at-kafka: the pipeline's ledger (see atk-ledger.h).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-ledger.h"

#include "atk-ack-table.h"
#include "atk-cursor-tracker.h"

struct _AtkLedger
{
  AtkInput *input;
  gboolean keeps_place;
  AtkCursorTracker *tracker; /* inputs with a cursor (empty for the others) */
  AtkAckTable *acks;         /* inputs that keep their place */
  gboolean has_first_seq;    /* the first seq taken when there was no cursor */
  gint64 first_seq;
};

AtkLedger *
atk_ledger_new (AtkInput *input)
{
  AtkLedger *self = g_new0 (AtkLedger, 1);

  self->input = input;
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
atk_ledger_forget_first (AtkLedger *self)
{
  self->has_first_seq = FALSE;
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

AtkSeqVerdict
atk_ledger_check_seq (AtkLedger *self, const AtkInputEvent *event, gint64 max_jump,
                      gboolean jump_ok, gint64 *last)
{
  gboolean has_last;

  *last = 0;
  if (self->keeps_place || !event->has_position)
    return ATK_SEQ_NEW;
  has_last = atk_cursor_tracker_get_last_added (self->tracker, last);
  return atk_seq_check (has_last, *last, event->position, max_jump, jump_ok);
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
