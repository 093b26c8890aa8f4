/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-cursor"

#include "atk-cursor-store.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "atk-error.h"

/* The file format: "<dir>/cursor" holds the seq in decimal ASCII followed by one newline,
 * and nothing else, e.g. "4200000123\n". An operator can read it with cat and set it with
 * echo; the final newline is optional on reading. A save writes "<dir>/cursor.tmp",
 * fsyncs it, renames it over "cursor" and fsyncs the directory, so after a crash "cursor"
 * is either the old value or the new one; a "cursor.tmp" left behind is never read and is
 * overwritten by the next save. */

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
    return set_errno_error (error, errno, "create", path);
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

gboolean
atk_cursor_store_save (const char *state_directory, gint64 cursor, GError **error)
{
  g_autofree char *path = NULL;
  g_autofree char *tmp_path = NULL;
  g_autofree char *text = NULL;

  g_return_val_if_fail (state_directory != NULL, FALSE);

  if (cursor < 0 || cursor > ATK_CURSOR_STORE_MAX_SEQ)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_FAILED,
                   "Refusing to store %" G_GINT64_FORMAT " as the cursor: not in 0..2^53", cursor);
      return FALSE;
    }

  if (g_mkdir_with_parents (state_directory, 0700) < 0)
    return set_errno_error (error, errno, "create state directory", state_directory);

  path = g_build_filename (state_directory, CURSOR_FILE, NULL);
  tmp_path = g_build_filename (state_directory, CURSOR_TMP_FILE, NULL);
  text = g_strdup_printf ("%" G_GINT64_FORMAT "\n", cursor);
  if (!write_synced (tmp_path, text, error))
    {
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
