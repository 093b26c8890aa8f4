/* Hostile input to the pure core (issue 9): seqs that cannot be a cursor, seq jumps and
 * replays, the skip-log limiter, and Tap event ids that must be readable whatever else the
 * event holds.
 * SPDX-License-Identifier: MIT */
#include <glib.h>
#include <string.h>

#include "atk-error.h"
#include "atk-frame.h"
#include "atk-seq-check.h"
#include "atk-tap-event.h"

/* ---- a few bytes of CBOR ---- */

static void
put_head (GByteArray *a, guint major, guint64 v)
{
  guint8 b[9];
  guint n = 1;

  if (v < 24)
    b[0] = (guint8)(major << 5 | v);
  else
    {
      guint w = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
      b[0] = (guint8)(major << 5 | (w == 1 ? 24 : w == 2 ? 25 : w == 4 ? 26 : 27));
      for (guint i = 0; i < w; i++)
        b[1 + i] = (guint8)(v >> (8 * (w - 1 - i)));
      n += w;
    }
  g_byte_array_append (a, b, n);
}

static void
put_text (GByteArray *a, const char *s)
{
  put_head (a, 3, strlen (s));
  g_byte_array_append (a, (const guint8 *)s, (guint)strlen (s));
}

static void
put_int (GByteArray *a, gint64 v)
{
  if (v >= 0)
    put_head (a, 0, (guint64)v);
  else
    put_head (a, 1, (guint64)(-1 - v));
}

/* {t, op:1} then an #identity body {did, seq, time}, or an unknown type's {seq}. */
static GByteArray *
frame_with_seq (const char *type, gint64 seq)
{
  GByteArray *a = g_byte_array_new ();
  gboolean identity = g_strcmp0 (type, "#identity") == 0;

  put_head (a, 5, 2);
  put_text (a, "t");
  put_text (a, type);
  put_text (a, "op");
  put_int (a, 1);
  put_head (a, 5, identity ? 3 : 1);
  if (identity)
    {
      put_text (a, "did");
      put_text (a, "did:plc:hostile");
    }
  put_text (a, "seq");
  put_int (a, seq);
  if (identity)
    {
      put_text (a, "time");
      put_text (a, "2024-05-01T12:00:00.000Z");
    }
  return a;
}

static void
test_seq_range (void)
{
  static const struct
  {
    gint64 seq;
    gboolean ok;
  } cases[] = {
    { 0, TRUE },
    { 1, TRUE },
    { ATK_FRAME_MAX_SEQ, TRUE },
    { ATK_FRAME_MAX_SEQ + 1, FALSE },
    { G_MAXINT64, FALSE },
    { -1, FALSE },
    { -5, FALSE },
    { G_MININT64, FALSE },
  };
  g_autofree AtkFrame *frame = g_new0 (AtkFrame, 1);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    for (guint t = 0; t < 2; t++)
      {
        g_autoptr (GByteArray) a = frame_with_seq (t == 0 ? "#identity" : "#weird", cases[i].seq);
        g_autoptr (GError) error = NULL;
        gboolean ok = atk_frame_decode (a->data, a->len, frame, &error);

        g_test_message ("seq %" G_GINT64_FORMAT " type %u", cases[i].seq, t);
        g_assert_cmpint (ok, ==, cases[i].ok);
        if (ok)
          {
            g_assert_true (frame->has_seq);
            g_assert_cmpint (frame->seq, ==, cases[i].seq);
          }
        else
          g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME);
      }
}

static void
test_seq_check (void)
{
  /* no reference: anything goes (a live start, after FutureCursor) */
  g_assert_cmpint (atk_seq_check (FALSE, 0, 1 << 30, 10, FALSE), ==, ATK_SEQ_NEW);
  g_assert_cmpint (atk_seq_check (TRUE, 50, 51, 10, FALSE), ==, ATK_SEQ_NEW);
  g_assert_cmpint (atk_seq_check (TRUE, 50, 60, 10, FALSE), ==, ATK_SEQ_NEW);
  g_assert_cmpint (atk_seq_check (TRUE, 50, 61, 10, FALSE), ==, ATK_SEQ_TOO_FAR);
  g_assert_cmpint (atk_seq_check (TRUE, 50, ATK_FRAME_MAX_SEQ, 10, FALSE), ==, ATK_SEQ_TOO_FAR);
  /* after an OutdatedCursor, or with no bound */
  g_assert_cmpint (atk_seq_check (TRUE, 50, 61, 10, TRUE), ==, ATK_SEQ_NEW);
  g_assert_cmpint (atk_seq_check (TRUE, 50, ATK_FRAME_MAX_SEQ, 0, FALSE), ==, ATK_SEQ_NEW);
  /* replays, and seqs going backwards */
  g_assert_cmpint (atk_seq_check (TRUE, 50, 50, 10, FALSE), ==, ATK_SEQ_SEEN);
  g_assert_cmpint (atk_seq_check (TRUE, 50, 0, 10, TRUE), ==, ATK_SEQ_SEEN);
}

static void
test_log_limit (void)
{
  AtkLogLimit limit = { 0, 0 };
  guint64 held = 99;
  gint64 second = G_USEC_PER_SEC;

  g_assert_true (atk_log_limit_allow (&limit, 100 * second, 10 * second, &held));
  g_assert_cmpuint (held, ==, 0);
  for (int i = 0; i < 1000; i++)
    g_assert_false (atk_log_limit_allow (&limit, 100 * second + i, 10 * second, &held));
  g_assert_false (atk_log_limit_allow (&limit, 110 * second - 1, 10 * second, &held));
  g_assert_true (atk_log_limit_allow (&limit, 110 * second, 10 * second, &held));
  g_assert_cmpuint (held, ==, 1001);
  g_assert_true (atk_log_limit_allow (&limit, 500 * second, 10 * second, &held));
  g_assert_cmpuint (held, ==, 0);
}

static void
test_tap_id_deep_nesting (void)
{
  /* A million levels: a recursive reader would overflow the stack, a scan does not. */
  gsize depth = 1000000;
  g_autoptr (GString) text = g_string_new ("{\"type\":\"record\",\"record\":");
  guint64 id = 0;

  for (gsize i = 0; i < depth; i++)
    g_string_append_c (text, '[');
  for (gsize i = 0; i < depth; i++)
    g_string_append_c (text, ']');
  g_string_append (text, ",\"id\":77}");
  g_assert_true (atk_tap_event_peek_id (text->str, text->len, &id));
  g_assert_cmpuint (id, ==, 77);
  /* unclosed: the id came first, so it is still read */
  g_string_assign (text, "{\"id\":78,\"record\":");
  for (gsize i = 0; i < depth; i++)
    g_string_append_c (text, '{');
  g_assert_true (atk_tap_event_peek_id (text->str, text->len, &id));
  g_assert_cmpuint (id, ==, 78);
}

static void
test_tap_id_hostile (void)
{
  static const struct
  {
    const char *text;
    gsize len; /* 0: strlen */
    gboolean readable;
    guint64 id;
  } cases[] = {
    { "{\"id\":1,\"identity\":{\"did\":\"a\0b\"}}", 33, TRUE, 1 },
    { "{\"x\":\"\\\"id\\\":5\",\"id\":6}", 0, TRUE, 6 }, /* an "id" inside a string */
    { "{\"x\":{\"id\":5}}", 0, FALSE, 0 },               /* nested: not ours */
    { "{\"x\":[\"id\",5]}", 0, FALSE, 0 },               /* a value, not a key */
    { "{\"id\":5,\"id\":6}", 0, TRUE, 6 },               /* the last wins */
    { "{\"id\":5,\"id\":\"6\"}", 0, FALSE, 0 },          /* the last is no id */
    { "{\"id\" : 18446744073709551615 }", 0, TRUE, G_MAXUINT64 },
    { "{\"id\":18446744073709551616}", 0, FALSE, 0 },
    { "{\"id\":1e3}", 0, FALSE, 0 },
    { "{\"id\":-0}", 0, FALSE, 0 },
    { "{\"id\":0}", 0, TRUE, 0 },
    { "{\"id\":3}\xff\xfe garbage", 0, TRUE, 3 },
    { " \n{\"id\":4,\"type\":\"record\",\"record\":{\"did\":\"\\ud800\"}}", 0, TRUE, 4 },
    { "[{\"id\":3}]", 0, FALSE, 0 },
    { "{\"id\":", 0, FALSE, 0 },
    { "{\"id\":12", 0, FALSE, 0 }, /* cut inside the number */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize len = cases[i].len != 0 ? cases[i].len : strlen (cases[i].text);
      guint64 id = 12345;

      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpint (atk_tap_event_peek_id (cases[i].text, len, &id), ==, cases[i].readable);
      if (cases[i].readable)
        g_assert_cmpuint (id, ==, cases[i].id);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hostile-input/seq-range", test_seq_range);
  g_test_add_func ("/hostile-input/seq-check", test_seq_check);
  g_test_add_func ("/hostile-input/log-limit", test_log_limit);
  g_test_add_func ("/hostile-input/tap-id-deep-nesting", test_tap_id_deep_nesting);
  g_test_add_func ("/hostile-input/tap-id-hostile", test_tap_id_hostile);
  return g_test_run ();
}
