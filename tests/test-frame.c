/* Tests for frame decoding: every captured frame against its oracle rendering, hand-built
 * frames for the rules, and corruption that must fail cleanly.
 * SPDX-License-Identifier: MIT */
#include <json-glib/json-glib.h>

#include "atk-error.h"
#include "atk-frame.h"
#include "atk-test-util.h"

static const char *const capture_files[] = {
  "relay-capture/frames",
  "pds-capture/frames",
  "pds-capture/frames-replay-cursor0",
  "pds-capture/frames-info-outdated",
  "pds-capture/frames-error-futurecursor",
};

static char *
str_dup (AtkStr s)
{
  return g_strndup (s.ptr, s.len);
}

static void
assert_str (AtkStr got, const char *want)
{
  g_autofree char *s = str_dup (got);
  g_assert_cmpstr (s, ==, want);
}

static JsonObject *
member_object (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  g_assert_nonnull (n);
  return json_node_get_object (n);
}

static void
check_ops (const AtkFrame *frame, JsonArray *ops)
{
  g_assert_cmpuint (frame->n_ops, ==, json_array_get_length (ops));
  for (guint i = 0; i < frame->n_ops; i++)
    {
      const AtkRepoOp *op = &frame->ops[i];
      JsonObject *want = json_array_get_object_element (ops, i);
      JsonNode *cid = json_object_get_member (want, "cid");
      g_autofree char *collection = str_dup (op->collection);
      g_autofree char *rkey = str_dup (op->rkey);
      g_autofree char *joined = g_strdup_printf ("%s/%s", collection, rkey);

      g_assert_cmpstr (atk_op_action_name (op->action), ==,
                       json_object_get_string_member (want, "action"));
      assert_str (op->path, json_object_get_string_member (want, "path"));
      g_assert_cmpstr (joined, ==, json_object_get_string_member (want, "path"));
      g_assert_null (strchr (collection, '/'));
      if (cid == NULL || JSON_NODE_HOLDS_NULL (cid))
        g_assert_false (op->has_cid);
      else
        {
          g_autofree char *s = NULL;
          g_assert_true (op->has_cid);
          s = atk_cid_to_string (&op->cid);
          g_assert_cmpstr (s, ==,
                           json_object_get_string_member (json_node_get_object (cid), "$link"));
        }
    }
}

/* Compares a decoded frame field by field with its oracle line. */
static void
check_frame (const AtkFrame *frame, JsonObject *line)
{
  JsonObject *header = member_object (line, "header");
  JsonObject *body = member_object (line, "body");
  gint64 op = json_object_get_int_member (header, "op");

  if (op == -1)
    {
      g_assert_cmpint (frame->kind, ==, ATK_EVENT_ERROR);
      assert_str (frame->name, json_object_get_string_member (body, "error"));
      g_assert_cmpint (frame->has_message, ==, json_object_has_member (body, "message"));
      if (frame->has_message)
        assert_str (frame->message, json_object_get_string_member (body, "message"));
      return;
    }

  const char *t = json_object_get_string_member (header, "t");
  g_autofree char *kind_t = g_strdup_printf ("#%s", atk_event_kind_name (frame->kind));
  assert_str (frame->type, t);
  g_assert_cmpstr (kind_t, ==, t);

  if (frame->kind == ATK_EVENT_INFO)
    {
      assert_str (frame->name, json_object_get_string_member (body, "name"));
      g_assert_cmpint (frame->has_message, ==, json_object_has_member (body, "message"));
      if (frame->has_message)
        assert_str (frame->message, json_object_get_string_member (body, "message"));
      return;
    }

  g_assert_true (frame->has_seq);
  g_assert_cmpint (frame->seq, ==, json_object_get_int_member (body, "seq"));
  assert_str (frame->time, json_object_get_string_member (body, "time"));
  assert_str (frame->did, json_object_get_string_member (
                              body, frame->kind == ATK_EVENT_COMMIT ? "repo" : "did"));

  switch (frame->kind)
    {
    case ATK_EVENT_COMMIT:
      {
        g_autofree char *commit = atk_cid_to_string (&frame->commit);
        g_autofree guint8 *blocks = NULL;
        gsize blocks_len;
        g_autoptr (GString) b64 = NULL;

        assert_str (frame->rev, json_object_get_string_member (body, "rev"));
        g_assert_cmpstr (commit, ==,
                         json_object_get_string_member (member_object (body, "commit"), "$link"));
        check_ops (frame, json_object_get_array_member (body, "ops"));
        /* The blocks are the same bytes: compare via base64 of ours, padded like GLib's. */
        b64 = g_string_new (
            json_object_get_string_member (member_object (body, "blocks"), "$bytes"));
        while (b64->len % 4)
          g_string_append_c (b64, '=');
        blocks = g_base64_decode (b64->str, &blocks_len);
        g_assert_cmpmem (frame->blocks, frame->blocks_len, blocks, blocks_len);
        break;
      }
    case ATK_EVENT_SYNC:
      assert_str (frame->rev, json_object_get_string_member (body, "rev"));
      g_assert_cmpuint (frame->blocks_len, >, 0);
      break;
    case ATK_EVENT_IDENTITY:
      g_assert_cmpint (frame->has_handle, ==, json_object_has_member (body, "handle"));
      if (frame->has_handle)
        assert_str (frame->handle, json_object_get_string_member (body, "handle"));
      break;
    case ATK_EVENT_ACCOUNT:
      g_assert_cmpint (frame->active, ==, json_object_get_boolean_member (body, "active"));
      g_assert_cmpint (frame->has_status, ==, json_object_has_member (body, "status"));
      if (frame->has_status)
        assert_str (frame->status, json_object_get_string_member (body, "status"));
      break;
    case ATK_EVENT_UNKNOWN:
    case ATK_EVENT_INFO:
    case ATK_EVENT_ERROR:
    default:
      g_assert_not_reached ();
    }
}

static void
test_captures (void)
{
  guint counts[ATK_EVENT_ERROR + 1] = { 0 };
  guint n_ops = 0;

  for (gsize f = 0; f < G_N_ELEMENTS (capture_files); f++)
    {
      g_autofree char *bin = g_strconcat (capture_files[f], ".bin", NULL);
      g_autofree char *jsonl = g_strconcat (capture_files[f], ".jsonl", NULL);
      g_autoptr (GBytes) frames = atk_test_load_vector (bin);
      g_autoptr (GPtrArray) oracle = atk_test_load_jsonl (jsonl);
      g_autofree AtkFrame *frame = g_new0 (AtkFrame, 1);
      AtkFrameFileReader reader;
      const guint8 *data;
      gsize len;
      guint i = 0;
      g_autoptr (GError) error = NULL;

      atk_frame_file_reader_init (&reader, g_bytes_get_data (frames, NULL),
                                  g_bytes_get_size (frames));
      while (atk_frame_file_reader_next (&reader, &data, &len, &error))
        {
          g_assert_cmpuint (i, <, oracle->len);
          if (!atk_frame_decode (data, len, frame, &error))
            g_error ("%s frame %u: %s", bin, i, error->message);
          check_frame (frame, json_node_get_object (g_ptr_array_index (oracle, i)));
          counts[frame->kind]++;
          n_ops += frame->n_ops;
          i++;
        }
      g_assert_no_error (error);
      g_assert_cmpuint (i, ==, oracle->len);
      g_assert_cmpuint (i, >, 0);
    }

  /* The manifests' counts: relay 148 commits + pds 18 + replay and info extras. */
  g_assert_cmpuint (counts[ATK_EVENT_COMMIT], >=, 148 + 18);
  g_assert_cmpuint (counts[ATK_EVENT_SYNC], >=, 4);
  g_assert_cmpuint (counts[ATK_EVENT_IDENTITY], >=, 6);
  g_assert_cmpuint (counts[ATK_EVENT_ACCOUNT], >=, 9);
  g_assert_cmpuint (counts[ATK_EVENT_INFO], ==, 1);
  g_assert_cmpuint (counts[ATK_EVENT_ERROR], ==, 1);
  g_assert_cmpuint (counts[ATK_EVENT_UNKNOWN], ==, 0);
  g_assert_cmpuint (n_ops, >=, 150);
}

static const guint8 *
first_frame (GBytes *file, gsize *len)
{
  AtkFrameFileReader reader;
  const guint8 *data;

  atk_frame_file_reader_init (&reader, g_bytes_get_data (file, NULL), g_bytes_get_size (file));
  g_assert_true (atk_frame_file_reader_next (&reader, &data, len, NULL));
  return data;
}

static void
test_error_and_info (void)
{
  g_autoptr (GBytes) err = atk_test_load_vector ("pds-capture/frames-error-futurecursor.bin");
  g_autoptr (GBytes) info = atk_test_load_vector ("pds-capture/frames-info-outdated.bin");
  g_autofree AtkFrame *frame = g_new0 (AtkFrame, 1);
  g_autoptr (GError) error = NULL;
  const guint8 *data;
  gsize len;

  data = first_frame (err, &len);
  g_assert_true (atk_frame_decode (data, len, frame, &error));
  g_assert_no_error (error);
  g_assert_cmpint (frame->kind, ==, ATK_EVENT_ERROR);
  assert_str (frame->name, "FutureCursor");
  g_assert_cmpuint (frame->type.len, ==, 0);
  g_assert_false (frame->has_seq);

  data = first_frame (info, &len);
  g_assert_true (atk_frame_decode (data, len, frame, &error));
  g_assert_cmpint (frame->kind, ==, ATK_EVENT_INFO);
  assert_str (frame->type, "#info");
  assert_str (frame->name, "OutdatedCursor");
}

/* ---- hand-built frames ----------------------------------------------------------------- */

/* A tiny CBOR writer for building frames. */
static void
put_head (GByteArray *a, guint major, guint64 v)
{
  guint8 b[9];
  gsize n;

  if (v < 24)
    {
      b[0] = (guint8)(major << 5 | v);
      n = 1;
    }
  else if (v < 256)
    {
      b[0] = (guint8)(major << 5 | 24);
      b[1] = (guint8)v;
      n = 2;
    }
  else if (v < 65536)
    {
      b[0] = (guint8)(major << 5 | 25);
      b[1] = (guint8)(v >> 8);
      b[2] = (guint8)v;
      n = 3;
    }
  else
    {
      b[0] = (guint8)(major << 5 | 27);
      for (int i = 0; i < 8; i++)
        b[1 + i] = (guint8)(v >> (56 - 8 * i));
      n = 9;
    }
  g_byte_array_append (a, b, n);
}

static void
put_text (GByteArray *a, const char *s)
{
  put_head (a, 3, strlen (s));
  g_byte_array_append (a, (const guint8 *)s, strlen (s));
}

static void
put_link (GByteArray *a)
{
  static const guint8 cid[]
      = { 0x00, 0x01, 0x71, 0x12, 0x20, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
          15,   16,   17,   18,   19,   20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
  put_head (a, 6, 42);
  put_head (a, 2, sizeof cid);
  g_byte_array_append (a, cid, sizeof cid);
}

static void
put_header (GByteArray *a, const char *t)
{
  put_head (a, 5, 2);
  put_text (a, "t");
  put_text (a, t);
  put_text (a, "op");
  put_head (a, 0, 1);
}

/* An identity frame with optional extras. */
static GByteArray *
identity_frame (const char *t, gboolean with_unknown_field, gboolean trailing)
{
  GByteArray *a = g_byte_array_new ();

  put_header (a, t);
  put_head (a, 5, with_unknown_field ? 4 : 3);
  put_text (a, "did");
  put_text (a, "did:plc:x");
  put_text (a, "seq");
  put_head (a, 0, 77);
  put_text (a, "time");
  put_text (a, "2024-01-01T00:00:00Z");
  if (with_unknown_field)
    {
      put_text (a, "zzzzzz");
      put_head (a, 4, 2);
      put_link (a);
      put_head (a, 5, 0);
    }
  if (trailing)
    put_head (a, 7, 22);
  return a;
}

static void
test_handmade (void)
{
  g_autofree AtkFrame *frame = g_new0 (AtkFrame, 1);
  g_autoptr (GError) error = NULL;

  {
    g_autoptr (GByteArray) a = identity_frame ("#identity", TRUE, FALSE);
    g_assert_true (atk_frame_decode (a->data, a->len, frame, &error));
    g_assert_no_error (error);
    g_assert_cmpint (frame->kind, ==, ATK_EVENT_IDENTITY);
    g_assert_cmpint (frame->seq, ==, 77);
    g_assert_false (frame->has_handle);
    assert_str (frame->did, "did:plc:x");
  }
  {
    /* Unknown types decode as UNKNOWN, keeping type and seq. */
    g_autoptr (GByteArray) a = identity_frame ("#tombstone", TRUE, FALSE);
    g_assert_true (atk_frame_decode (a->data, a->len, frame, &error));
    g_assert_no_error (error);
    g_assert_cmpint (frame->kind, ==, ATK_EVENT_UNKNOWN);
    assert_str (frame->type, "#tombstone");
    g_assert_true (frame->has_seq);
    g_assert_cmpint (frame->seq, ==, 77);
    g_assert_cmpuint (frame->did.len, ==, 0);
  }
  {
    g_autoptr (GByteArray) a = identity_frame ("#identity", FALSE, TRUE);
    g_assert_false (atk_frame_decode (a->data, a->len, frame, &error));
    g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME);
    g_clear_error (&error);
  }
  {
    /* #account needs "active". */
    g_autoptr (GByteArray) a = identity_frame ("#account", FALSE, FALSE);
    g_assert_false (atk_frame_decode (a->data, a->len, frame, &error));
    g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME);
    g_clear_error (&error);
  }
  {
    /* Header op 2, and a header without t. */
    g_autoptr (GByteArray) a = g_byte_array_new ();
    put_head (a, 5, 1);
    put_text (a, "op");
    put_head (a, 0, 2);
    put_head (a, 5, 0);
    g_assert_false (atk_frame_decode (a->data, a->len, frame, &error));
    g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME);
    g_clear_error (&error);
    a->data[4] = 0x01;
    g_assert_false (atk_frame_decode (a->data, a->len, frame, &error));
    g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME);
    g_clear_error (&error);
  }
}

/* A #commit with the given ops: each op is action, path, and whether cid is a link. */
static GByteArray *
commit_frame (guint n_ops, const char *action, const char *path, gboolean with_cid)
{
  GByteArray *a = g_byte_array_new ();

  put_header (a, "#commit");
  put_head (a, 5, 8);
  put_text (a, "ops");
  put_head (a, 4, n_ops);
  for (guint i = 0; i < n_ops; i++)
    {
      put_head (a, 5, 3);
      put_text (a, "cid");
      if (with_cid)
        put_link (a);
      else
        put_head (a, 7, 22);
      put_text (a, "path");
      put_text (a, path);
      put_text (a, "action");
      put_text (a, action);
    }
  put_text (a, "rev");
  put_text (a, "3abc");
  put_text (a, "seq");
  put_head (a, 0, 9007199254740991);
  put_text (a, "repo");
  put_text (a, "did:plc:y");
  put_text (a, "time");
  put_text (a, "2024-01-01T00:00:00Z");
  put_text (a, "since");
  put_head (a, 7, 22);
  put_text (a, "blocks");
  put_head (a, 2, 0);
  put_text (a, "commit");
  put_link (a);
  return a;
}

static void
test_commit_rules (void)
{
  g_autofree AtkFrame *frame = g_new0 (AtkFrame, 1);
  struct
  {
    guint n_ops;
    const char *action, *path;
    gboolean cid;
    int code; /* -1: accepted */
  } cases[] = {
    { 0, "create", "a/b", TRUE, -1 },
    { 1, "create", "app.bsky.feed.post/3k", TRUE, -1 },
    { 200, "update", "a/b/c", TRUE, -1 },
    { 1, "delete", "a/b", FALSE, -1 },
    { 1, "delete", "a/b", TRUE, -1 },
    { 201, "create", "a/b", TRUE, ATK_ERROR_TOO_LARGE },
    { 1, "create", "a/b", FALSE, ATK_ERROR_BAD_FRAME },
    { 1, "update", "a/b", FALSE, ATK_ERROR_BAD_FRAME },
    { 1, "upsert", "a/b", TRUE, ATK_ERROR_BAD_FRAME },
    { 1, "create", "ab", TRUE, ATK_ERROR_BAD_FRAME },
    { 1, "create", "/b", TRUE, ATK_ERROR_BAD_FRAME },
    { 1, "create", "a/", TRUE, ATK_ERROR_BAD_FRAME },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GByteArray) a
          = commit_frame (cases[i].n_ops, cases[i].action, cases[i].path, cases[i].cid);
      g_autoptr (GError) error = NULL;
      gboolean ok = atk_frame_decode (a->data, a->len, frame, &error);

      g_test_message ("case %" G_GSIZE_FORMAT, i);
      if (cases[i].code < 0)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
          g_assert_cmpint (frame->kind, ==, ATK_EVENT_COMMIT);
          g_assert_cmpuint (frame->n_ops, ==, cases[i].n_ops);
          g_assert_cmpint (frame->seq, ==, G_GINT64_CONSTANT (9007199254740991));
          if (cases[i].n_ops > 0)
            {
              const AtkRepoOp *op = &frame->ops[cases[i].n_ops - 1];
              g_autofree char *c = str_dup (op->collection);
              g_autofree char *r = str_dup (op->rkey);
              g_assert_cmpint (op->has_cid, ==, cases[i].cid);
              g_assert_true (g_str_has_prefix (cases[i].path, c));
              g_assert_true (g_str_has_suffix (cases[i].path, r));
              g_assert_cmpuint (strlen (c) + 1 + strlen (r), ==, strlen (cases[i].path));
            }
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (error, ATK_ERROR, cases[i].code);
        }
    }
}

/* ---- corruption ------------------------------------------------------------------------ */

static void
test_corruption (void)
{
  g_autofree AtkFrame *frame = g_new0 (AtkFrame, 1);
  guint n_decoded = 0, n_failed = 0;

  for (gsize f = 0; f < G_N_ELEMENTS (capture_files); f++)
    {
      g_autofree char *bin = g_strconcat (capture_files[f], ".bin", NULL);
      g_autoptr (GBytes) frames = atk_test_load_vector (bin);
      AtkFrameFileReader reader;
      const guint8 *data;
      gsize len;
      GRand *rand = g_rand_new_with_seed (42 + f);

      atk_frame_file_reader_init (&reader, g_bytes_get_data (frames, NULL),
                                  g_bytes_get_size (frames));
      while (atk_frame_file_reader_next (&reader, &data, &len, NULL))
        {
          /* Truncations at ~16 points, each in an exact-size copy so ASan sees overreads. */
          for (guint k = 0; k < 16; k++)
            {
              gsize cut = k == 0 ? 0 : (gsize)g_rand_int_range (rand, 0, (gint32)len);
              g_autofree guint8 *copy = g_memdup2 (data, cut);
              g_autoptr (GError) error = NULL;
              gboolean ok = atk_frame_decode (copy, cut, frame, &error);
              g_assert_true (ok == (error == NULL));
              if (ok)
                n_decoded++;
              else
                n_failed++;
            }
          /* Single-byte flips. */
          for (guint k = 0; k < 16; k++)
            {
              g_autofree guint8 *copy = g_memdup2 (data, len);
              gsize at = (gsize)g_rand_int_range (rand, 0, (gint32)len);
              g_autoptr (GError) error = NULL;
              gboolean ok;

              copy[at] ^= (guint8)g_rand_int_range (rand, 1, 256);
              ok = atk_frame_decode (copy, len, frame, &error);
              g_assert_true (ok == (error == NULL));
              if (ok)
                {
                  g_assert_cmpuint (frame->n_ops, <=, ATK_FRAME_MAX_OPS);
                  n_decoded++;
                }
              else
                {
                  g_assert_true (error->domain == ATK_ERROR);
                  n_failed++;
                }
            }
        }
      g_rand_free (rand);
    }
  /* A truncated frame never decodes (the body map is incomplete), so most attempts fail. */
  g_assert_cmpuint (n_failed, >, n_decoded);
}

static void
test_file_reader (void)
{
  static const guint8 file[] = { 2, 0, 0, 0, 0xa0, 0xa0, 1, 0, 0, 0, 0xf6, 5, 0 };
  g_autoptr (GError) error = NULL;
  AtkFrameFileReader reader;
  const guint8 *data;
  gsize len;

  atk_frame_file_reader_init (&reader, file, sizeof file);
  g_assert_true (atk_frame_file_reader_next (&reader, &data, &len, &error));
  g_assert_cmpuint (len, ==, 2);
  g_assert_true (data == file + 4);
  g_assert_true (atk_frame_file_reader_next (&reader, &data, &len, &error));
  g_assert_cmpuint (len, ==, 1);
  g_assert_false (atk_frame_file_reader_next (&reader, &data, &len, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TRUNCATED);
  g_clear_error (&error);

  /* A length beyond the end. */
  atk_frame_file_reader_init (&reader, file, 5);
  g_assert_false (atk_frame_file_reader_next (&reader, &data, &len, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TRUNCATED);
  g_clear_error (&error);

  /* The clean end. */
  atk_frame_file_reader_init (&reader, file, 6);
  g_assert_true (atk_frame_file_reader_next (&reader, &data, &len, &error));
  g_assert_false (atk_frame_file_reader_next (&reader, &data, &len, &error));
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/frame/captures", test_captures);
  g_test_add_func ("/frame/error-and-info", test_error_and_info);
  g_test_add_func ("/frame/handmade", test_handmade);
  g_test_add_func ("/frame/commit-rules", test_commit_rules);
  g_test_add_func ("/frame/corruption", test_corruption);
  g_test_add_func ("/frame/file-reader", test_file_reader);
  return g_test_run ();
}
