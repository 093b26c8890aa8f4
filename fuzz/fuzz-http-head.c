/* libFuzzer target: the metrics endpoint's request path of our own, AtkHttpHead (what libsoup
 * gets to read of a connection is decided there). One input = the bytes of one connection;
 * its first byte seeds how they are cut into reads. Checks: a chunked feed gives the same
 * verdict and the same head as one feed of everything; no more than ATK_HTTP_HEAD_MAX bytes
 * pass; a complete head ends with its blank line and announces no body.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-http-head.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  static AtkHttpHead whole;
  static AtkHttpHead chunked;
  AtkHttpHeadVerdict whole_verdict;
  AtkHttpHeadVerdict chunked_verdict = ATK_HTTP_HEAD_INCOMPLETE;
  gsize whole_head = 0;
  gsize chunked_head = 0;
  guint32 seed;
  gsize pos = 1;

  if (size < 1)
    return 0;
  seed = data[0] * 2654435761u + 1;
  atk_http_head_init (&whole);
  atk_http_head_init (&chunked);
  whole_verdict = atk_http_head_feed (&whole, data + 1, size - 1, &whole_head);
  while (pos < size)
    {
      gsize n_head = 0;
      gsize len;

      seed = seed * 1103515245u + 12345u;
      len = MIN (size - pos, 1 + (seed >> 16) % 97);
      chunked_verdict = atk_http_head_feed (&chunked, data + pos, len, &n_head);
      if (n_head > len)
        abort ();
      chunked_head += n_head;
      pos += len;
    }
  if (size == 1)
    chunked_verdict = whole.verdict;
  if (chunked_verdict != whole_verdict || chunked_head != whole_head)
    abort ();
  if (whole_head > ATK_HTTP_HEAD_MAX || whole.len > ATK_HTTP_HEAD_MAX)
    abort ();
  if (whole_verdict == ATK_HTTP_HEAD_COMPLETE || whole_verdict == ATK_HTTP_HEAD_HAS_BODY)
    {
      if (memcmp (whole.buf, data + 1, whole.len) != 0)
        abort ();
      if (!(whole.len >= 2 && whole.buf[whole.len - 1] == '\n'
            && (whole.buf[whole.len - 2] == '\n'
                || (whole.len >= 3 && whole.buf[whole.len - 2] == '\r'
                    && whole.buf[whole.len - 3] == '\n'))))
        abort ();
    }
  if (whole_verdict == ATK_HTTP_HEAD_COMPLETE)
    {
      /* No header may announce a body as libsoup reads headers: a name without whitespace
       * (other lines are ignored), a value continued by lines that start with a space or a
       * tab. Checked here with GLib's string functions, not with the guard's own parser. */
      g_autofree char *text = g_strndup (whole.buf, whole.len);
      g_auto (GStrv) lines = NULL;
      g_autoptr (GString) value = NULL;
      char *name = NULL;

      if (strlen (text) != whole.len)
        return 0; /* libsoup refuses NULs in a head */
      lines = g_strsplit (text, "\n", -1);
      for (guint i = 1; lines[i] != NULL; i++)
        {
          char *line = lines[i];
          char *colon;
          gboolean last
              = lines[i + 1] == NULL || (lines[i + 1][0] != ' ' && lines[i + 1][0] != '\t');

          if ((line[0] == ' ' || line[0] == '\t') && value != NULL)
            g_string_append (value, line);
          else if ((colon = strchr (line, ':')) != NULL && colon > line
                   && strcspn (line, " \t\r") >= (gsize)(colon - line))
            {
              g_free (name);
              name = g_ascii_strdown (line, colon - line);
              if (value != NULL)
                g_string_free (value, TRUE);
              value = g_string_new (colon + 1);
            }
          else
            continue;
          if (!last || value == NULL)
            continue;
          g_strstrip (value->str);
          if (g_strcmp0 (name, "transfer-encoding") == 0)
            abort ();
          if (g_strcmp0 (name, "content-length") == 0
              && g_ascii_strtoull (value->str, NULL, 10) > 0)
            abort ();
        }
      g_free (name);
    }
  if (whole_verdict != ATK_HTTP_HEAD_INCOMPLETE && atk_http_head_refusal_status (whole_verdict) == 0
      && whole_verdict != ATK_HTTP_HEAD_COMPLETE)
    abort ();
  return 0;
}
