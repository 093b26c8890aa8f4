/* Tests for the cursor state file.
 * SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atk-cursor-store.h"
#include "atk-error.h"
#include "atk-test-util.h"

typedef struct
{
  char *dir; /* a fresh temporary directory */
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  f->dir = atk_test_make_tmp_dir ("atk-cursor-store-XXXXXX");
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  atk_test_rm_rf (f->dir);
  g_free (f->dir);
}

static char *
read_file (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  char *contents = NULL;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  return contents;
}

static void
write_file (const char *dir, const char *name, const char *contents, gssize len)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, contents, len, &error);
  g_assert_no_error (error);
}

static gint64
load_ok (const char *dir)
{
  g_autoptr (GError) error = NULL;
  gint64 cursor = -1;

  g_assert_true (atk_cursor_store_load (dir, &cursor, &error));
  g_assert_no_error (error);
  return cursor;
}

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  static const gint64 values[] = { 0, 1, 4200000123, ATK_CURSOR_STORE_MAX_SEQ };
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *contents = NULL;
      g_autofree char *expected = NULL;

      g_assert_true (atk_cursor_store_save (f->dir, values[i], &error));
      g_assert_no_error (error);
      g_assert_cmpint (load_ok (f->dir), ==, values[i]);
      /* the documented format: decimal and a newline */
      contents = read_file (f->dir, "cursor");
      expected = g_strdup_printf ("%" G_GINT64_FORMAT "\n", values[i]);
      g_assert_cmpstr (contents, ==, expected);
    }
}

static void
test_overwrite (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = g_build_filename (f->dir, "cursor.tmp", NULL);

  g_assert_true (atk_cursor_store_save (f->dir, 500, &error));
  g_assert_true (atk_cursor_store_save (f->dir, 7, &error));
  g_assert_no_error (error);
  g_assert_cmpint (load_ok (f->dir), ==, 7);
  /* the rename consumed the temporary file */
  g_assert_false (g_file_test (tmp, G_FILE_TEST_EXISTS));
}

static void
test_missing (Fixture *f, gconstpointer data)
{
  g_autofree char *nested = g_build_filename (f->dir, "a", "b", NULL);
  g_autoptr (GError) error = NULL;
  gint64 cursor = 99;
  GStatBuf st;

  /* no file, and no directory: "no cursor yet", not an error */
  g_assert_false (atk_cursor_store_load (f->dir, &cursor, &error));
  g_assert_no_error (error);
  g_assert_false (atk_cursor_store_load (nested, &cursor, &error));
  g_assert_no_error (error);
  g_assert_cmpint (cursor, ==, 99);

  /* save creates the directory, private */
  g_assert_true (atk_cursor_store_save (nested, 31337, &error));
  g_assert_no_error (error);
  g_assert_no_errno (g_stat (nested, &st));
  g_assert_true (S_ISDIR (st.st_mode));
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  g_assert_cmpint (load_ok (nested), ==, 31337);
}

static void
test_garbage (Fixture *f, gconstpointer data)
{
  static const struct
  {
    const char *contents;
    gssize len;
  } cases[] = {
    { "", 0 },
    { "\n", -1 },
    { "abc\n", -1 },
    { "12 34\n", -1 },
    { " 12\n", -1 },
    { "-5\n", -1 },
    { "+5\n", -1 },
    { "0x10\n", -1 },
    { "123\n456\n", -1 },
    { "123\n\n", -1 },
    { "9223372036854775808\n", -1 }, /* G_MAXINT64 + 1 */
    { "9223372036854775807\n", -1 }, /* G_MAXINT64: beyond 2^53 */
    { "9007199254740993\n", -1 },    /* 2^53 + 1 */
    { "99999999999999999999\n", -1 },
    { "12\00034\n", 6 },
  };
  g_autofree char *path = g_build_filename (f->dir, "cursor", NULL);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      gint64 cursor = 99;

      write_file (f->dir, "cursor", cases[i].contents, cases[i].len);
      g_assert_false (atk_cursor_store_load (f->dir, &cursor, &error));
      g_assert_error (error, ATK_ERROR, ATK_ERROR_FAILED);
      g_assert_nonnull (strstr (error->message, path));
      g_assert_cmpint (cursor, ==, 99);
    }

  /* hand-written without the final newline is fine */
  write_file (f->dir, "cursor", "789", -1);
  g_assert_cmpint (load_ok (f->dir), ==, 789);
}

static void
test_tmp_left_over (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = g_build_filename (f->dir, "cursor.tmp", NULL);

  g_assert_true (atk_cursor_store_save (f->dir, 1000, &error));
  /* a crash between writing the temporary file and the rename */
  write_file (f->dir, "cursor.tmp", "10", -1);
  g_assert_cmpint (load_ok (f->dir), ==, 1000);
  write_file (f->dir, "cursor.tmp", "garbage", -1);
  g_assert_cmpint (load_ok (f->dir), ==, 1000);

  /* the next save overwrites it */
  g_assert_true (atk_cursor_store_save (f->dir, 1001, &error));
  g_assert_no_error (error);
  g_assert_cmpint (load_ok (f->dir), ==, 1001);
  g_assert_false (g_file_test (tmp, G_FILE_TEST_EXISTS));
}

static void
test_unusable_paths (Fixture *f, gconstpointer data)
{
  g_autofree char *file = g_build_filename (f->dir, "not-a-dir", NULL);
  g_autofree char *cursor_dir = g_build_filename (f->dir, "cursor", NULL);
  g_autoptr (GError) error = NULL;
  gint64 cursor = 99;

  /* the state directory is a regular file: saving fails and says where */
  write_file (f->dir, "not-a-dir", "x", -1);
  g_assert_false (atk_cursor_store_save (file, 5, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, file));
  g_clear_error (&error);

  /* "cursor" exists but cannot be read: an error, not "no cursor yet" */
  g_assert_no_errno (g_mkdir (cursor_dir, 0700));
  g_assert_false (atk_cursor_store_load (f->dir, &cursor, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, cursor_dir));
  g_clear_error (&error);

  /* and it cannot be replaced */
  g_assert_false (atk_cursor_store_save (f->dir, 5, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_FAILED);
}

/* What the file open as fd holds now (an fd opened on <dir>/cursor sees the saves written in
 * place, and not those that replaced the file). */
static char *
read_fd (int fd)
{
  char buf[64];
  ssize_t n = pread (fd, buf, sizeof buf - 1, 0);

  g_assert_cmpint (n, >=, 0);
  buf[n] = '\0';
  return g_strdup (buf);
}

static void
file_save_ok (AtkCursorFile *file, gint64 cursor)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (atk_cursor_file_save (file, cursor, &error));
  g_assert_no_error (error);
}

/* Saved again and again: in place while the length holds, by rename when it changes. */
static void
test_file_in_place (Fixture *f, gconstpointer data)
{
  g_autoptr (AtkCursorFile) file = atk_cursor_file_new (f->dir);
  g_autofree char *path = g_build_filename (f->dir, "cursor", NULL);
  g_autofree char *text = NULL;
  g_autofree char *held = NULL;
  g_autoptr (GError) error = NULL;
  int fd;

  file_save_ok (file, 31527465321);
  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  g_assert_cmpint (fd, >=, 0);
  for (gint64 seq = 31527465322; seq < 31527465400; seq++)
    {
      file_save_ok (file, seq);
      g_assert_cmpint (load_ok (f->dir), ==, seq);
    }
  text = read_file (f->dir, "cursor");
  g_assert_cmpstr (text, ==, "31527465399\n");
  held = read_fd (fd);
  g_assert_cmpstr (held, ==, "31527465399\n"); /* written over, not replaced */

  /* one digit more: a new file (the old one is not rewritten at a new length) */
  file_save_ok (file, 100000000000);
  g_assert_cmpint (load_ok (f->dir), ==, 100000000000);
  g_clear_pointer (&held, g_free);
  held = read_fd (fd);
  g_assert_cmpstr (held, ==, "31527465399\n");
  close (fd);
  /* and back down (a --cursor start): shorter, so a new file again, no digits left over */
  file_save_ok (file, 7);
  g_clear_pointer (&text, g_free);
  text = read_file (f->dir, "cursor");
  g_assert_cmpstr (text, ==, "7\n");

  g_assert_false (atk_cursor_file_save (file, -1, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_FAILED);
  g_assert_cmpint (load_ok (f->dir), ==, 7);
}

/* Whatever happened to <dir>/cursor between two saves, the save lands in it, whole. */
static void
test_file_changed_under_it (Fixture *f, gconstpointer data)
{
  g_autoptr (AtkCursorFile) file = atk_cursor_file_new (f->dir);
  g_autofree char *path = g_build_filename (f->dir, "cursor", NULL);
  g_autofree char *text = NULL;
  FILE *out;

  file_save_ok (file, 1000);
  /* replaced (an editor, g_file_set_contents: a new file renamed over it): a write to the
   * file we hold would go nowhere */
  write_file (f->dir, "cursor", "5000\n", -1);
  file_save_ok (file, 1001);
  g_assert_cmpint (load_ok (f->dir), ==, 1001);

  /* rewritten in place, longer (echo > cursor): a write of our length would leave its tail */
  file_save_ok (file, 1002);
  out = fopen (path, "w");
  g_assert_nonnull (out);
  fputs ("123456789012\n", out);
  fclose (out);
  file_save_ok (file, 1003);
  text = read_file (f->dir, "cursor");
  g_assert_cmpstr (text, ==, "1003\n");

  /* removed */
  g_assert_no_errno (g_unlink (path));
  file_save_ok (file, 1004);
  g_assert_cmpint (load_ok (f->dir), ==, 1004);

  /* the directory removed: made again */
  atk_test_rm_rf (f->dir);
  file_save_ok (file, 1005);
  g_assert_cmpint (load_ok (f->dir), ==, 1005);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/cursor-store/round-trip", test_round_trip);
  ADD ("/cursor-store/overwrite", test_overwrite);
  ADD ("/cursor-store/missing", test_missing);
  ADD ("/cursor-store/garbage", test_garbage);
  ADD ("/cursor-store/tmp-left-over", test_tmp_left_over);
  ADD ("/cursor-store/unusable-paths", test_unusable_paths);
  ADD ("/cursor-store/file-in-place", test_file_in_place);
  ADD ("/cursor-store/file-changed-under-it", test_file_changed_under_it);
#undef ADD
  return g_test_run ();
}
