/* Unit tests for the file runner (--input FILE --stdout, src/input/atk-file-runner.c): the
 * captured PDS frames run through it, and what it writes is compared with expectations
 * built from the independent oracle (frames.jsonl, rendered by the official libraries):
 * one line per event or operation, in order, each one JSON object of the right account;
 * filters, a broken frame in the middle, a torn file, a missing file.
 * SPDX-License-Identifier: MIT */
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "atk-config.h"
#include "atk-file-runner.h"
#include "atk-test-util.h"

#define CAPTURE "pds-capture/frames"

/* The account and collection (NULL but for ops) of each message the oracle implies. */
typedef struct
{
  char *did;
  char *collection;
} Expected;

static void
expected_free (gpointer data)
{
  Expected *e = data;
  g_free (e->did);
  g_free (e->collection);
  g_free (e);
}

static GPtrArray *
load_expected (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_jsonl (CAPTURE ".jsonl");
  GPtrArray *out = g_ptr_array_new_with_free_func (expected_free);

  for (guint i = 0; i < frames->len; i++)
    {
      JsonObject *frame = json_node_get_object (frames->pdata[i]);
      JsonObject *body = json_object_get_object_member (frame, "body");
      const char *t
          = json_object_get_string_member (json_object_get_object_member (frame, "header"), "t");

      if (g_strcmp0 (t, "#commit") == 0)
        {
          JsonArray *ops = json_object_get_array_member (body, "ops");
          for (guint j = 0; j < json_array_get_length (ops); j++)
            {
              const char *path
                  = json_object_get_string_member (json_array_get_object_element (ops, j), "path");
              Expected *e = g_new0 (Expected, 1);
              e->did = g_strdup (json_object_get_string_member (body, "repo"));
              e->collection = g_strndup (path, strcspn (path, "/"));
              g_ptr_array_add (out, e);
            }
        }
      else
        {
          Expected *e = g_new0 (Expected, 1);
          e->did = g_strdup (json_object_get_string_member (body, "did"));
          g_ptr_array_add (out, e);
        }
    }
  return out;
}

/* Writes frames (GBytes) as a [u32 LE length][frame] file; extra bytes go at the end. */
static char *
write_frame_file (const char *dir, GPtrArray *frames, const guint8 *extra, gsize extra_len)
{
  g_autoptr (GByteArray) data = g_byte_array_new ();
  char *path = g_build_filename (dir, "frames.bin", NULL);

  for (guint i = 0; i < frames->len; i++)
    {
      gsize len;
      const guint8 *bytes = g_bytes_get_data (frames->pdata[i], &len);
      guint32 le = GUINT32_TO_LE ((guint32)len);
      g_byte_array_append (data, (const guint8 *)&le, 4);
      g_byte_array_append (data, bytes, (guint)len);
    }
  if (extra != NULL)
    g_byte_array_append (data, extra, (guint)extra_len);
  g_assert_true (g_file_set_contents (path, (const char *)data->data, data->len, NULL));
  return path;
}

static AtkConfig *
file_config (const char *path, const char *flag)
{
  const char *args[] = { "at-kafka", "--input", path, "--stdout", flag, NULL };
  char **argv = g_memdup2 (args, sizeof args);
  int argc = flag != NULL ? 5 : 4;
  gboolean exit_now = FALSE;
  g_autoptr (GError) error = NULL;
  AtkConfig *config = atk_config_parse (&argc, &argv, NULL, &exit_now, &error);

  g_free (argv);
  g_assert_no_error (error);
  return config;
}

/* Runs the file; returns the output lines. */
static GPtrArray *
run (const AtkConfig *config, gboolean want_ok, AtkFileRunSummary *summary)
{
  char *buffer = NULL;
  size_t size = 0;
  FILE *out = open_memstream (&buffer, &size);
  g_autoptr (GError) error = NULL;
  gboolean ok = atk_file_runner_run (config, out, summary, &error);
  GPtrArray *lines = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) split = NULL;

  fclose (out);
  g_assert_cmpint (ok, ==, want_ok);
  if (want_ok)
    g_assert_no_error (error);
  else
    g_assert_nonnull (error);
  g_assert_true (size == 0 || buffer[size - 1] == '\n');
  split = g_strsplit (buffer, "\n", -1);
  for (guint i = 0; split[i] != NULL && split[i + 1] != NULL; i++)
    g_ptr_array_add (lines, g_strdup (split[i]));
  free (buffer);
  return lines;
}

/* Each line is a JSON object; with the standard shape its "did" is the expected one. */
static void
assert_lines (GPtrArray *lines, GPtrArray *expected, gboolean osprey)
{
  g_assert_cmpuint (lines->len, ==, expected->len);
  for (guint i = 0; i < lines->len; i++)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();
      g_autoptr (GError) error = NULL;
      JsonObject *object;
      const Expected *e = expected->pdata[i];

      g_assert_true (json_parser_load_from_data (parser, lines->pdata[i], -1, &error));
      g_assert_no_error (error);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
      object = json_node_get_object (json_parser_get_root (parser));
      if (osprey)
        object = json_object_get_object_member (json_object_get_object_member (object, "data"),
                                                "data");
      g_assert_cmpstr (json_object_get_string_member (object, "did"), ==, e->did);
      if (e->collection != NULL)
        g_assert_cmpstr (json_object_get_string_member (
                             json_object_get_object_member (object, "operation"), "collection"),
                         ==, e->collection);
    }
}

typedef struct
{
  char *dir;
  GPtrArray *frames;
  GPtrArray *expected;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  f->dir = atk_test_make_tmp_dir ("atk-file-runner-XXXXXX");
  f->frames = atk_test_load_frames (CAPTURE ".bin");
  f->expected = load_expected ();
  g_assert_cmpuint (f->frames->len, ==, 35);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  atk_test_rm_rf (f->dir);
  g_free (f->dir);
  g_ptr_array_unref (f->frames);
  g_ptr_array_unref (f->expected);
}

static void
test_whole_capture (Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_frame_file (f->dir, f->frames, NULL, 0);
  g_autoptr (AtkConfig) config = file_config (path, NULL);
  AtkFileRunSummary summary;
  g_autoptr (GPtrArray) lines = run (config, TRUE, &summary);

  assert_lines (lines, f->expected, FALSE);
  g_assert_cmpuint (summary.frames, ==, f->frames->len);
  g_assert_cmpuint (summary.messages, ==, f->expected->len);
  g_assert_cmpuint (summary.errors, ==, 0);
  g_assert_cmpuint (summary.filtered, ==, 0);
}

static void
test_osprey (Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_frame_file (f->dir, f->frames, NULL, 0);
  g_autoptr (AtkConfig) config = file_config (path, "--osprey-compatible");
  AtkFileRunSummary summary;
  g_autoptr (GPtrArray) lines = run (config, TRUE, &summary);

  assert_lines (lines, f->expected, TRUE);
}

/* A collection filter: exactly the ops of watched collections, and every other event. */
static void
test_filter (Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_frame_file (f->dir, f->frames, NULL, 0);
  g_autoptr (AtkConfig) config = file_config (path, "--watched-collections=app.bsky.feed.*");
  g_autoptr (GPtrArray) kept = g_ptr_array_new ();
  AtkFileRunSummary summary;
  g_autoptr (GPtrArray) lines = run (config, TRUE, &summary);
  guint dropped = 0;

  for (guint i = 0; i < f->expected->len; i++)
    {
      Expected *e = f->expected->pdata[i];
      if (e->collection == NULL || g_str_has_prefix (e->collection, "app.bsky.feed."))
        g_ptr_array_add (kept, e);
      else
        dropped++;
    }
  g_assert_cmpuint (dropped, >, 0);
  g_assert_cmpuint (kept->len, >, 0);
  assert_lines (lines, kept, FALSE);
  g_assert_cmpuint (summary.filtered, ==, dropped);
}

/* A frame that is not a frame: counted as an error, and the rest goes on. */
static void
test_bad_frame_in_the_middle (Fixture *f, gconstpointer data)
{
  g_autoptr (GPtrArray) frames = g_ptr_array_new ();
  g_autoptr (GBytes) junk = g_bytes_new_static ("\xff\x00junk", 6);
  g_autofree char *path = NULL;
  g_autoptr (AtkConfig) config = NULL;
  AtkFileRunSummary summary;
  g_autoptr (GPtrArray) lines = NULL;

  for (guint i = 0; i < f->frames->len; i++)
    {
      if (i == 10)
        g_ptr_array_add (frames, junk);
      g_ptr_array_add (frames, f->frames->pdata[i]);
    }
  path = write_frame_file (f->dir, frames, NULL, 0);
  config = file_config (path, NULL);
  lines = run (config, TRUE, &summary);
  assert_lines (lines, f->expected, FALSE);
  g_assert_cmpuint (summary.frames, ==, f->frames->len + 1);
  g_assert_cmpuint (summary.errors, ==, 1);
}

/* A file that ends inside a record: an error, after everything before it was written. */
static void
test_torn_file (Fixture *f, gconstpointer data)
{
  const guint8 torn[] = { 0x10, 0x00, 0x00, 0x00, 0xa2, 0x62 };
  g_autofree char *path = write_frame_file (f->dir, f->frames, torn, sizeof torn);
  g_autoptr (AtkConfig) config = file_config (path, NULL);
  AtkFileRunSummary summary;
  g_autoptr (GPtrArray) lines = run (config, FALSE, &summary);

  assert_lines (lines, f->expected, FALSE);
  g_assert_cmpuint (summary.frames, ==, f->frames->len);
}

static void
test_missing_file (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "no-such-file", NULL);
  g_autoptr (AtkConfig) config = file_config (path, NULL);
  AtkFileRunSummary summary;
  g_autoptr (GPtrArray) lines = run (config, FALSE, &summary);

  g_assert_cmpuint (lines->len, ==, 0);
  g_assert_cmpuint (summary.frames, ==, 0);
}

static void
test_empty_file (Fixture *f, gconstpointer data)
{
  g_autoptr (GPtrArray) none = g_ptr_array_new ();
  g_autofree char *path = write_frame_file (f->dir, none, NULL, 0);
  g_autoptr (AtkConfig) config = file_config (path, NULL);
  AtkFileRunSummary summary;
  g_autoptr (GPtrArray) lines = run (config, TRUE, &summary);

  g_assert_cmpuint (lines->len, ==, 0);
  g_assert_cmpuint (summary.frames, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func)                                                                            \
  g_test_add ("/file-runner/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("whole-capture", test_whole_capture);
  ADD ("osprey", test_osprey);
  ADD ("filter", test_filter);
  ADD ("bad-frame-in-the-middle", test_bad_frame_in_the_middle);
  ADD ("torn-file", test_torn_file);
  ADD ("missing-file", test_missing_file);
  ADD ("empty-file", test_empty_file);
  return g_test_run ();
}
