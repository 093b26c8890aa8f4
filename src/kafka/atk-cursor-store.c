/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-cursor"

#include "atk-cursor-store.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atk-error.h"

/* The file format: "<dir>/cursor" holds the seq in decimal ASCII followed by one newline,
 * and nothing else, e.g. "4200000123\n". An operator can read it with cat and set it with
 * echo; the final newline is optional on reading. A save writes "<dir>/cursor.tmp",
 * fsyncs it, renames it over "cursor" and fsyncs the directory, so after a crash "cursor"
 * is either the old value or the new one; a "cursor.tmp" left behind is never read and is
 * overwritten by the next save.
 *
 * An AtkCursorFile saves that way once, then writes a cursor of the same length over the
 * same bytes (pwrite at 0, fdatasync): a kill -9 leaves the old text or the new one (a write
 * of a few bytes to the page cache is not cut in half); a power cut could tear it only where
 * a disk tears a single sector, and then the next start refuses the file with the error
 * above rather than guess. (A reader racing the write may see digits of both, which is why
 * at-kafka itself reads the file only before it writes.) */

#define CURSOR_FILE "cursor"
#define CURSOR_TMP_FILE "cursor.tmp"
#define MAX_SEQ_DIGITS 19 /* G_MAXINT64 */

static gboolean
set_errno_error (GError **error, int saved_errno, const char *what, const char *path)
{
  g_set_error (error, ATK_ERROR, ATK_ERROR_FAILED, "Cannot %s “%s”: %s", what, path,
               g_strerror (saved_errno));
  return FALSE;
}

static gboolean
parse_cursor (const char *contents, gsize len, gint64 *cursor)
{
  guint64 value = 0;

  if (len > 0 && contents[len - 1] == '\n')
    len--;
  if (len == 0 || len > MAX_SEQ_DIGITS)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isdigit (contents[i]))
        return FALSE;
      value = value * 10 + (guint64)(contents[i] - '0');
    }
  if (value > (guint64)ATK_CURSOR_STORE_MAX_SEQ)
    return FALSE;
  *cursor = (gint64)value;
  return TRUE;
}

gboolean
atk_cursor_store_load (const char *state_directory, gint64 *cursor, GError **error)
{
  g_autofree char *path = g_build_filename (state_directory, CURSOR_FILE, NULL);
  g_autofree char *contents = NULL;
  g_autoptr (GError) local_error = NULL;
  gsize len = 0;

  g_return_val_if_fail (state_directory != NULL && cursor != NULL, FALSE);

  if (!g_file_get_contents (path, &contents, &len, &local_error))
    {
      /* first start: no cursor yet, not an error */
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return FALSE;
      g_set_error (error, ATK_ERROR, ATK_ERROR_FAILED, "Cannot read cursor file “%s”: %s", path,
                   local_error->message);
      return FALSE;
    }
  if (!parse_cursor (contents, len, cursor))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_FAILED,
                   "Cursor file “%s” does not hold a sequence number (expected decimal digits "
                   "up to 2^53 and a newline); fix or delete it, or start once with --cursor "
                   "SEQ or --cursor live",
                   path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_all (int fd, const char *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        errno = EIO;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize)n;
    }
  return TRUE;
}

/* Writes text to path and flushes it to the disk. */
static gboolean
write_synced (const char *path, const char *text, GError **error)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int saved_errno;

  if (fd < 0)
    {
      saved_errno = errno; /* G_FILE_ERROR: the caller tells a missing directory apart */
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "Cannot create “%s”: %s", path, g_strerror (saved_errno));
      return FALSE;
    }
  if (!write_all (fd, text, strlen (text)) || fsync (fd) < 0)
    {
      saved_errno = errno;
      close (fd);
      return set_errno_error (error, saved_errno, "write", path);
    }
  if (close (fd) < 0)
    return set_errno_error (error, errno, "write", path);
  return TRUE;
}

/* The rename is durable only once the directory entry is on disk. */
static gboolean
sync_directory (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int saved_errno;

  if (fd < 0)
    return set_errno_error (error, errno, "open directory", path);
  if (fsync (fd) < 0)
    {
      saved_errno = errno;
      close (fd);
      return set_errno_error (error, saved_errno, "sync directory", path);
    }
  close (fd);
  return TRUE;
}

static gboolean
check_range (gint64 cursor, GError **error)
{
  if (cursor >= 0 && cursor <= ATK_CURSOR_STORE_MAX_SEQ)
    return TRUE;
  g_set_error (error, ATK_ERROR, ATK_ERROR_FAILED,
               "Refusing to store %" G_GINT64_FORMAT " as the cursor: not in 0..2^53", cursor);
  return FALSE;
}

gboolean
atk_cursor_store_save (const char *state_directory, gint64 cursor, GError **error)
{
  g_autofree char *path = NULL;
  g_autofree char *tmp_path = NULL;
  g_autofree char *text = NULL;
  g_autoptr (GError) local_error = NULL;

  g_return_val_if_fail (state_directory != NULL, FALSE);

  if (!check_range (cursor, error))
    return FALSE;

  path = g_build_filename (state_directory, CURSOR_FILE, NULL);
  tmp_path = g_build_filename (state_directory, CURSOR_TMP_FILE, NULL);
  text = g_strdup_printf ("%" G_GINT64_FORMAT "\n", cursor);
  /* The directory is made when it is missing, not looked for on every save (ten a second). */
  if (!write_synced (tmp_path, text, &local_error)
      && g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    {
      g_clear_error (&local_error);
      if (g_mkdir_with_parents (state_directory, 0700) < 0)
        return set_errno_error (error, errno, "create state directory", state_directory);
      write_synced (tmp_path, text, &local_error);
    }
  if (local_error != NULL)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_FAILED, local_error->message);
      g_unlink (tmp_path);
      return FALSE;
    }
  if (g_rename (tmp_path, path) < 0)
    {
      int saved_errno = errno;
      g_unlink (tmp_path);
      return set_errno_error (error, saved_errno, "replace", path);
    }
  return sync_directory (state_directory, error);
}

/* ---- saved again and again ------------------------------------------------------- */

struct _AtkCursorFile
{
  char *dir;
  char *path;
  int fd; /* <dir>/cursor as the last save left it, or -1 */
  dev_t dev;
  ino_t ino;
  gsize len; /* of the text it holds */
};

AtkCursorFile *
atk_cursor_file_new (const char *state_directory)
{
  AtkCursorFile *self;

  g_return_val_if_fail (state_directory != NULL, NULL);
  self = g_new0 (AtkCursorFile, 1);
  self->dir = g_strdup (state_directory);
  self->path = g_build_filename (state_directory, CURSOR_FILE, NULL);
  self->fd = -1;
  return self;
}

static void
forget_file (AtkCursorFile *self)
{
  if (self->fd >= 0)
    close (self->fd);
  self->fd = -1;
}

void
atk_cursor_file_free (AtkCursorFile *self)
{
  if (self == NULL)
    return;
  forget_file (self);
  g_free (self->dir);
  g_free (self->path);
  g_free (self);
}

/* Only while <dir>/cursor is still the file we wrote, as long as the new text. */
static gboolean
save_in_place (AtkCursorFile *self, const char *text, gsize len)
{
  struct stat st;

  if (self->fd < 0 || len != self->len)
    return FALSE;
  if (stat (self->path, &st) < 0 || st.st_dev != self->dev || st.st_ino != self->ino
      || st.st_size != (off_t)len)
    return FALSE;
  return pwrite (self->fd, text, len, 0) == (ssize_t)len && fdatasync (self->fd) == 0;
}

gboolean
atk_cursor_file_save (AtkCursorFile *self, gint64 cursor, GError **error)
{
  char text[MAX_SEQ_DIGITS + 2];
  struct stat st;
  gsize len;

  g_return_val_if_fail (self != NULL, FALSE);

  if (!check_range (cursor, error))
    return FALSE;
  len = (gsize)g_snprintf (text, sizeof text, "%" G_GINT64_FORMAT "\n", cursor);
  if (save_in_place (self, text, len))
    return TRUE;
  /* A failed write in place may have left anything there: the whole file is replaced. */
  forget_file (self);
  if (!atk_cursor_store_save (self->dir, cursor, error))
    return FALSE;
  self->fd = open (self->path, O_RDWR | O_CLOEXEC);
  if (self->fd >= 0 && fstat (self->fd, &st) == 0)
    {
      self->dev = st.st_dev;
      self->ino = st.st_ino;
      self->len = len;
    }
  else
    forget_file (self); /* saved all the same; the next save goes the long way too */
  return TRUE;
}
