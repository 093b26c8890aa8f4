/* Tests for AtkCursorTracker: the acknowledged watermark under out-of-order delivery
 * reports, checked step by step against a brute-force model.
 * SPDX-License-Identifier: MIT */
#include "atk-cursor-tracker.h"
#include "atk-test-util.h"

/* ---- the model: every frame since the last reset, and a scan from the start ---- */

typedef struct
{
  gint64 seq;
  guint n;
  guint acked;
} ModelFrame;

typedef struct
{
  GArray *frames; /* ModelFrame, in the order added */
  gboolean has_base;
  gint64 base; /* the cursor given to the last reset */
} Model;

static void
model_init (Model *m)
{
  m->frames = g_array_new (FALSE, FALSE, sizeof (ModelFrame));
  m->has_base = FALSE;
  m->base = 0;
}

static void
model_reset (Model *m, gboolean has_cursor, gint64 cursor)
{
  g_array_set_size (m->frames, 0);
  m->has_base = has_cursor;
  m->base = cursor;
}

static ModelFrame *
model_find (Model *m, gint64 seq)
{
  for (guint i = 0; i < m->frames->len; i++)
    if (g_array_index (m->frames, ModelFrame, i).seq == seq)
      return &g_array_index (m->frames, ModelFrame, i);
  return NULL;
}

/* The highest seq with every frame up to it fully acked. */
static gboolean
model_cursor (Model *m, gint64 *cursor)
{
  gboolean has = m->has_base;

  *cursor = m->base;
  for (guint i = 0; i < m->frames->len; i++)
    {
      ModelFrame *f = &g_array_index (m->frames, ModelFrame, i);
      if (f->acked < f->n)
        break;
      *cursor = f->seq;
      has = TRUE;
    }
  return has;
}

static guint
model_pending (Model *m)
{
  guint pending = 0;

  for (guint i = 0; i < m->frames->len; i++)
    {
      ModelFrame *f = &g_array_index (m->frames, ModelFrame, i);
      pending += f->acked < f->n;
    }
  return pending;
}

static void
check_against_model (AtkCursorTracker *tracker, Model *m)
{
  gint64 expected = -1, actual = -1;
  gboolean has_expected = model_cursor (m, &expected);
  gboolean has_actual = atk_cursor_tracker_get_cursor (tracker, &actual);

  g_assert_cmpint (has_actual, ==, has_expected);
  if (has_expected)
    g_assert_cmpint (actual, ==, expected);
  g_assert_cmpuint (atk_cursor_tracker_get_pending (tracker), ==, model_pending (m));

  /* never past a frame with messages outstanding */
  if (has_actual)
    for (guint i = 0; i < m->frames->len; i++)
      {
        ModelFrame *f = &g_array_index (m->frames, ModelFrame, i);
        if (f->seq > actual)
          break;
        g_assert_cmpuint (f->acked, ==, f->n);
      }
}

/* ---- random runs ---- */

typedef struct
{
  gint64 seq;
  gboolean stale; /* its frame was forgotten by a reset */
} Token;

static void
run_random (guint n_frames, gboolean with_resets)
{
  g_autoptr (AtkCursorTracker) tracker = atk_cursor_tracker_new ();
  g_autoptr (GArray) outstanding = g_array_new (FALSE, FALSE, sizeof (Token));
  Model m;
  gint64 next_seq = g_test_rand_int_range (1, 1000000);
  guint added = 0;
  guint step = 0;
  guint max_pending = 0;

  model_init (&m);
  while (added < n_frames || outstanding->len > 0)
    {
      /* phases that let the window of pending frames grow, then drain */
      gdouble p_add = (step / 700) % 2 == 0 ? 0.7 : 0.3;
      gdouble r = g_test_rand_double ();

      step++;
      if (added < n_frames && (outstanding->len == 0 || r < p_add))
        {
          guint n = g_test_rand_int_range (0, 6);
          ModelFrame f = { next_seq, n, 0 };

          g_assert_true (atk_cursor_tracker_add (tracker, next_seq, n));
          g_array_append_val (m.frames, f);
          for (guint i = 0; i < n; i++)
            {
              Token t = { next_seq, FALSE };
              g_array_append_val (outstanding, t);
            }
          next_seq += g_test_rand_int_range (1, 4); /* relays skip seqs */
          added++;
        }
      else if (r < p_add + 0.02)
        {
          /* a duplicate or older frame is refused and changes nothing */
          gint64 old = next_seq - g_test_rand_int_range (1, 50);
          gint64 last = 0;

          if (atk_cursor_tracker_get_last_added (tracker, &last) && old <= last)
            g_assert_false (atk_cursor_tracker_add (tracker, old, 3));
        }
      else if (r < p_add + 0.03)
        {
          /* a report for a seq never added is ignored */
          atk_cursor_tracker_ack (tracker, next_seq + 1000);
        }
      else if (with_resets && r > 0.999)
        {
          /* a reconnect from the saved cursor: pending frames are forgotten, and their
           * late reports must not count */
          gint64 cursor = 0;
          gboolean has = model_cursor (&m, &cursor);

          atk_cursor_tracker_reset (tracker, has, cursor);
          model_reset (&m, has, cursor);
          for (guint i = 0; i < outstanding->len; i++)
            g_array_index (outstanding, Token, i).stale = TRUE;
        }
      else
        {
          guint i = g_test_rand_int_range (0, outstanding->len);
          Token t = g_array_index (outstanding, Token, i);

          g_array_remove_index_fast (outstanding, i);
          atk_cursor_tracker_ack (tracker, t.seq);
          if (!t.stale)
            {
              ModelFrame *frame = model_find (&m, t.seq);
              if (frame == NULL)
                g_error ("no model frame for seq %" G_GINT64_FORMAT, t.seq);
              frame->acked++;
            }
        }
      check_against_model (tracker, &m);
      max_pending = MAX (max_pending, atk_cursor_tracker_get_pending (tracker));
    }

  /* everything settled: the cursor is the last frame of the last reset's epoch */
  g_assert_cmpuint (atk_cursor_tracker_get_pending (tracker), ==, 0);
  if (m.frames->len > 0)
    {
      gint64 cursor = 0;
      g_assert_true (atk_cursor_tracker_get_cursor (tracker, &cursor));
      g_assert_cmpint (cursor, ==, g_array_index (m.frames, ModelFrame, m.frames->len - 1).seq);
    }
  /* the window grew large enough to exercise the ring's growth */
  g_assert_cmpuint (max_pending, >, 200);
  g_test_message ("%u steps, at most %u frames pending", step, max_pending);
  g_array_unref (m.frames);
}

static void
test_random (void)
{
  for (guint round = 0; round < 3; round++)
    run_random (4000, FALSE);
}

static void
test_random_with_resets (void)
{
  for (guint round = 0; round < 3; round++)
    run_random (4000, TRUE);
}

/* ---- fixed cases ---- */

static gint64
cursor_of (AtkCursorTracker *tracker)
{
  gint64 cursor = -1;
  g_assert_true (atk_cursor_tracker_get_cursor (tracker, &cursor));
  return cursor;
}

static void
test_empty (void)
{
  g_autoptr (AtkCursorTracker) tracker = atk_cursor_tracker_new ();
  gint64 seq = 42;

  g_assert_false (atk_cursor_tracker_get_cursor (tracker, &seq));
  g_assert_false (atk_cursor_tracker_get_last_added (tracker, &seq));
  g_assert_cmpint (seq, ==, 42); /* untouched */
  g_assert_cmpuint (atk_cursor_tracker_get_pending (tracker), ==, 0);
  atk_cursor_tracker_ack (tracker, 7); /* nothing to ack: ignored */
  g_assert_false (atk_cursor_tracker_get_cursor (tracker, NULL));
}

static void
test_zero_message_frames (void)
{
  g_autoptr (AtkCursorTracker) tracker = atk_cursor_tracker_new ();
  gint64 last = 0;

  /* at the head: done at once */
  g_assert_true (atk_cursor_tracker_add (tracker, 10, 0));
  g_assert_cmpint (cursor_of (tracker), ==, 10);

  /* behind a frame with messages: waits for it */
  g_assert_true (atk_cursor_tracker_add (tracker, 11, 2));
  g_assert_true (atk_cursor_tracker_add (tracker, 12, 0));
  g_assert_true (atk_cursor_tracker_add (tracker, 13, 0));
  g_assert_cmpint (cursor_of (tracker), ==, 10);
  g_assert_cmpuint (atk_cursor_tracker_get_pending (tracker), ==, 1);
  atk_cursor_tracker_ack (tracker, 11);
  g_assert_cmpint (cursor_of (tracker), ==, 10);
  atk_cursor_tracker_ack (tracker, 11);
  g_assert_cmpint (cursor_of (tracker), ==, 13);
  g_assert_cmpuint (atk_cursor_tracker_get_pending (tracker), ==, 0);

  /* an extra report for a settled frame changes nothing */
  g_assert_true (atk_cursor_tracker_add (tracker, 14, 1));
  atk_cursor_tracker_ack (tracker, 11);
  atk_cursor_tracker_ack (tracker, 13);
  g_assert_cmpint (cursor_of (tracker), ==, 13);
  g_assert_true (atk_cursor_tracker_get_last_added (tracker, &last));
  g_assert_cmpint (last, ==, 14);
}

static void
test_out_of_order (void)
{
  g_autoptr (AtkCursorTracker) tracker = atk_cursor_tracker_new ();

  for (gint64 seq = 1; seq <= 5; seq++)
    g_assert_true (atk_cursor_tracker_add (tracker, seq, 1));
  atk_cursor_tracker_ack (tracker, 3);
  atk_cursor_tracker_ack (tracker, 5);
  atk_cursor_tracker_ack (tracker, 2);
  g_assert_false (atk_cursor_tracker_get_cursor (tracker, NULL));
  g_assert_cmpuint (atk_cursor_tracker_get_pending (tracker), ==, 2);
  atk_cursor_tracker_ack (tracker, 1);
  g_assert_cmpint (cursor_of (tracker), ==, 3);
  atk_cursor_tracker_ack (tracker, 4);
  g_assert_cmpint (cursor_of (tracker), ==, 5);
}

static void
test_duplicates_refused (void)
{
  g_autoptr (AtkCursorTracker) tracker = atk_cursor_tracker_new ();

  g_assert_true (atk_cursor_tracker_add (tracker, 100, 1));
  g_assert_false (atk_cursor_tracker_add (tracker, 100, 1));
  g_assert_false (atk_cursor_tracker_add (tracker, 99, 0));
  g_assert_cmpuint (atk_cursor_tracker_get_pending (tracker), ==, 1);
  /* the refused zero-message frame did not move the cursor */
  g_assert_false (atk_cursor_tracker_get_cursor (tracker, NULL));
  atk_cursor_tracker_ack (tracker, 100);
  g_assert_cmpint (cursor_of (tracker), ==, 100);
  /* one message was added, so a second report is extra */
  atk_cursor_tracker_ack (tracker, 100);
  g_assert_cmpuint (atk_cursor_tracker_get_pending (tracker), ==, 0);
}

static void
test_reset (void)
{
  g_autoptr (AtkCursorTracker) tracker = atk_cursor_tracker_new ();
  gint64 last = 0;

  g_assert_true (atk_cursor_tracker_add (tracker, 90, 2));
  g_assert_true (atk_cursor_tracker_add (tracker, 95, 1));

  /* from a loaded cursor: it is the watermark, and nothing up to it is taken again */
  atk_cursor_tracker_reset (tracker, TRUE, 100);
  g_assert_cmpint (cursor_of (tracker), ==, 100);
  g_assert_cmpuint (atk_cursor_tracker_get_pending (tracker), ==, 0);
  g_assert_true (atk_cursor_tracker_get_last_added (tracker, &last));
  g_assert_cmpint (last, ==, 100);
  g_assert_false (atk_cursor_tracker_add (tracker, 100, 1));
  g_assert_false (atk_cursor_tracker_add (tracker, 50, 1));

  /* late reports for frames from before the reset are ignored */
  atk_cursor_tracker_ack (tracker, 90);
  atk_cursor_tracker_ack (tracker, 95);
  g_assert_cmpint (cursor_of (tracker), ==, 100);

  g_assert_true (atk_cursor_tracker_add (tracker, 101, 1));
  g_assert_true (atk_cursor_tracker_add (tracker, 102, 0));
  g_assert_cmpint (cursor_of (tracker), ==, 100);
  atk_cursor_tracker_ack (tracker, 101);
  g_assert_cmpint (cursor_of (tracker), ==, 102);

  /* to nothing: live tip, any seq is new */
  atk_cursor_tracker_reset (tracker, FALSE, 0);
  g_assert_false (atk_cursor_tracker_get_cursor (tracker, NULL));
  g_assert_false (atk_cursor_tracker_get_last_added (tracker, NULL));
  g_assert_true (atk_cursor_tracker_add (tracker, 5, 0));
  g_assert_cmpint (cursor_of (tracker), ==, 5);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cursor-tracker/empty", test_empty);
  g_test_add_func ("/cursor-tracker/zero-message-frames", test_zero_message_frames);
  g_test_add_func ("/cursor-tracker/out-of-order", test_out_of_order);
  g_test_add_func ("/cursor-tracker/duplicates-refused", test_duplicates_refused);
  g_test_add_func ("/cursor-tracker/reset", test_reset);
  g_test_add_func ("/cursor-tracker/random", test_random);
  g_test_add_func ("/cursor-tracker/random-with-resets", test_random_with_resets);
  return g_test_run ();
}
