/* The transformer against damaged input: truncated frames, flipped bytes, random bytes.
 *
 * Nothing may crash (run this under ASan/UBSan and valgrind), whatever comes out must be
 * valid JSON, and a bad frame must leave no trace on the frames after it.
 * SPDX-License-Identifier: MIT */
#include <json-glib/json-glib.h>
#include <string.h>

#include "atk-error.h"
#include "atk-event-transformer.h"
#include "atk-test-util.h"

#define TEST_NOW_US G_GINT64_CONSTANT (1704110400123456)

static const char *const frame_files[] = {
  "relay-capture/frames.bin",
  "pds-capture/frames.bin",
  "pds-capture/frames-replay-cursor0.bin",
  "pds-capture/frames-info-outdated.bin",
  "pds-capture/frames-error-futurecursor.bin",
};

static GPtrArray *
new_message_array (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
}

/* Transforms possibly damaged bytes (copied to an exact-size heap block, so that a read
 * past the end is caught by ASan/valgrind) and checks the result's invariants. */
static gboolean
transform_checked (AtkEventTransformer *t, const guint8 *data, gsize len, GPtrArray *messages)
{
  g_autofree guint8 *copy = g_malloc (MAX (len, 1));
  AtkTransformResult result = { 0 };
  GError *error = NULL;
  guint before = messages->len;
  gboolean ok;

  if (len > 0)
    memcpy (copy, data, len);
  ok = atk_event_transformer_transform (t, copy, len, TEST_NOW_US, messages, &result, &error);
  if (!ok)
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == ATK_ERROR);
      g_assert_nonnull (error->message);
      g_assert_cmpuint (messages->len, ==, before);
      g_assert_null (result.frame);
      g_clear_error (&error);
    }
  else
    {
      g_assert_no_error (error);
      g_assert_nonnull (result.frame);
      g_assert_cmpuint (messages->len - before, ==, result.n_messages);
      g_assert_true (result.n_op_errors == 0 || result.op_error != NULL);
      for (guint i = before; i < messages->len; i++)
        {
          AtkMessage *m = messages->pdata[i];
          g_autoptr (JsonParser) parser = json_parser_new ();
          g_autoptr (GError) parse_error = NULL;

          g_assert_nonnull (m->key);
          g_assert_nonnull (m->action_name);
          if (!json_parser_load_from_data (parser, m->value->str, (gssize)m->value->len,
                                           &parse_error))
            g_error ("invalid JSON out of a damaged frame: %s\n%s", parse_error->message,
                     m->value->str);
          g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
        }
    }
  atk_transform_result_clear (&result);
  return ok;
}

static AtkEventTransformer *
new_transformer (gboolean osprey)
{
  AtkEventTransformer *t = atk_event_transformer_new ();
  atk_event_transformer_set_osprey_compatible (t, osprey);
  return t;
}

static void
test_truncated (void)
{
  const guint step_divisor = 64;
  guint n_total = 0, n_rejected = 0;

  for (guint f = 0; f < G_N_ELEMENTS (frame_files); f++)
    {
      g_autoptr (GPtrArray) frames = atk_test_load_frames (frame_files[f]);
      for (guint osprey = 0; osprey < 2; osprey++)
        {
          g_autoptr (AtkEventTransformer) t = new_transformer (osprey);
          for (guint i = 0; i < frames->len; i++)
            {
              gsize len;
              const guint8 *data = g_bytes_get_data (frames->pdata[i], &len);
              gsize step = MAX (len / step_divisor, 1);

              /* Every cut in the first bytes (header, body start), then spread out. */
              for (gsize cut = 0; cut < len; cut = cut < 48 ? cut + 1 : cut + step)
                {
                  g_autoptr (GPtrArray) messages = new_message_array ();
                  if (!transform_checked (t, data, cut, messages))
                    n_rejected++;
                  n_total++;
                }
              {
                g_autoptr (GPtrArray) messages = new_message_array ();
                if (!transform_checked (t, data, len - 1, messages))
                  n_rejected++;
                n_total++;
              }
            }
        }
    }
  /* A CBOR map cut anywhere is incomplete: nearly every cut must be refused. */
  g_assert_cmpuint (n_rejected, ==, n_total);
}

static void
test_byte_flips (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (4242);
  const guint flips = 48;
  guint n_ok = 0, n_rejected = 0;

  for (guint f = 0; f < G_N_ELEMENTS (frame_files); f++)
    {
      g_autoptr (GPtrArray) frames = atk_test_load_frames (frame_files[f]);
      for (guint osprey = 0; osprey < 2; osprey++)
        {
          g_autoptr (AtkEventTransformer) t = new_transformer (osprey);
          for (guint i = 0; i < frames->len; i++)
            {
              gsize len;
              const guint8 *data = g_bytes_get_data (frames->pdata[i], &len);
              g_autofree guint8 *copy = g_memdup2 (data, len);

              for (guint k = 0; k < flips; k++)
                {
                  g_autoptr (GPtrArray) messages = new_message_array ();
                  /* Half the flips hit the first 200 bytes, where the structure is. */
                  gsize at
                      = g_rand_int_range (rand, 0, k % 2 ? (gint32)len : (gint32)MIN (len, 200));
                  guint8 mask = (guint8)g_rand_int_range (rand, 1, 256);

                  copy[at] ^= mask;
                  if (transform_checked (t, copy, len, messages))
                    n_ok++;
                  else
                    n_rejected++;
                  copy[at] ^= mask;
                }
            }
        }
    }
  /* Both outcomes happen: flips inside text or skipped values still decode. */
  g_assert_cmpuint (n_ok, >, 0);
  g_assert_cmpuint (n_rejected, >, 0);
}

static void
test_random_bytes (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (777);
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("pds-capture/frames.bin");
  const guint rounds = 5000;

  for (guint osprey = 0; osprey < 2; osprey++)
    {
      g_autoptr (AtkEventTransformer) t = new_transformer (osprey);
      for (guint k = 0; k < rounds; k++)
        {
          g_autoptr (GPtrArray) messages = new_message_array ();
          gsize len = g_rand_int_range (rand, 0, k % 10 == 0 ? 20000 : 300);
          g_autofree guint8 *buf = g_malloc (MAX (len, 1));
          gsize keep = 0;

          for (gsize j = 0; j < len; j++)
            buf[j] = (guint8)g_rand_int (rand);
          /* Some keep a real frame's start, so the random part reaches deeper code. */
          if (k % 3 == 0)
            {
              gsize flen;
              const guint8 *real = g_bytes_get_data (
                  frames->pdata[g_rand_int_range (rand, 0, frames->len)], &flen);
              keep = MIN (flen, (gsize)g_rand_int_range (rand, 0, 120));
              keep = MIN (keep, len);
              memcpy (buf, real, keep);
            }
          transform_checked (t, buf, len, messages);
        }
    }
}

/* Outputs of a clean run, one string per frame: every key and value, in order. */
static char *
describe (GPtrArray *messages)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < messages->len; i++)
    {
      AtkMessage *m = messages->pdata[i];
      g_string_append_printf (s, "%s|%s|%s|%" G_GINT64_FORMAT "|%" G_GINT64_FORMAT "\n", m->key,
                              m->value->str, m->collection ? m->collection : "-", m->seq,
                              m->action_id);
    }
  return g_string_free (s, FALSE);
}

/* A damaged frame before frame i changes nothing of frame i's output. */
static void
test_bad_frame_in_sequence (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (99);
  const char *files[] = { "relay-capture/frames.bin", "pds-capture/frames.bin" };

  for (guint f = 0; f < G_N_ELEMENTS (files); f++)
    {
      g_autoptr (GPtrArray) frames = atk_test_load_frames (files[f]);
      for (guint osprey = 0; osprey < 2; osprey++)
        {
          g_autoptr (AtkEventTransformer) clean = new_transformer (osprey);
          g_autoptr (AtkEventTransformer) dirty = new_transformer (osprey);
          g_autoptr (GPtrArray) expected = g_ptr_array_new_with_free_func (g_free);

          for (guint i = 0; i < frames->len; i++)
            {
              g_autoptr (GPtrArray) messages = new_message_array ();
              gsize len;
              const guint8 *data = g_bytes_get_data (frames->pdata[i], &len);
              g_assert_true (transform_checked (clean, data, len, messages));
              g_ptr_array_add (expected, describe (messages));
            }

          for (guint i = 1; i < frames->len; i++)
            {
              g_autoptr (GPtrArray) junk = new_message_array ();
              g_autoptr (GPtrArray) messages = new_message_array ();
              g_autofree char *got = NULL;
              gsize len, prev_len;
              const guint8 *data = g_bytes_get_data (frames->pdata[i], &len);
              const guint8 *prev = g_bytes_get_data (frames->pdata[i - 1], &prev_len);
              g_autofree guint8 *damaged = g_memdup2 (prev, prev_len);

              /* The previous frame cut short, then with a flipped byte deep inside. */
              transform_checked (dirty, prev, prev_len / 2, junk);
              damaged[g_rand_int_range (rand, 0, (gint32)prev_len)] ^= 0x5a;
              transform_checked (dirty, damaged, prev_len, junk);
              /* And three bytes that are not a frame at all. */
              transform_checked (dirty, (const guint8 *)"\xa1\x61t", 3, junk);

              g_assert_true (transform_checked (dirty, data, len, messages));
              got = describe (messages);
              g_assert_cmpstr (got, ==, expected->pdata[i]);
            }
        }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/corrupt/truncated", test_truncated);
  g_test_add_func ("/corrupt/byte-flips", test_byte_flips);
  g_test_add_func ("/corrupt/random-bytes", test_random_bytes);
  g_test_add_func ("/corrupt/bad-frame-in-sequence", test_bad_frame_in_sequence);

  return g_test_run ();
}
