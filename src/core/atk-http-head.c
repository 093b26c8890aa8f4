/* SPDX-License-Identifier: MIT */
#include "atk-http-head.h"

#include <string.h>

void
atk_http_head_init (AtkHttpHead *head)
{
  head->len = 0;
  head->verdict = ATK_HTTP_HEAD_INCOMPLETE;
}

/* Where the head ends (just past its blank line, "\r\n\r\n" or a bare "\n\n"), or 0. Lines
 * end at '\n'; a '\r' before it is optional, as parsers that accept bare LFs read them. */
static gsize
find_head_end (const char *buf, gsize len, gsize from)
{
  for (gsize i = from; i < len; i++)
    {
      if (buf[i] != '\n')
        continue;
      if (i + 1 < len && buf[i + 1] == '\n')
        return i + 2;
      if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
        return i + 3;
    }
  return 0;
}

/* TRUE when a header field of the head announces a body: a Transfer-Encoding of any value, or
 * a Content-Length other than zero (also one that does not parse: refused rather than
 * guessed). Header names are matched without case, optional whitespace around values. */
static gboolean
head_has_body (const char *buf, gsize len)
{
  const char *end = buf + len;
  const char *line = memchr (buf, '\n', len); /* skip the request line */

  while (line != NULL && ++line < end)
    {
      const char *eol = memchr (line, '\n', end - line);
      gsize n = (eol != NULL ? eol : end) - line;
      const char *colon = memchr (line, ':', n);

      if (colon != NULL)
        {
          gsize name_len = colon - line;
          const char *value = colon + 1;
          const char *value_end = line + n;

          while (value < value_end && (*value == ' ' || *value == '\t'))
            value++;
          while (value_end > value
                 && (value_end[-1] == '\r' || value_end[-1] == ' ' || value_end[-1] == '\t'))
            value_end--;
          if (name_len == strlen ("transfer-encoding")
              && g_ascii_strncasecmp (line, "transfer-encoding", name_len) == 0)
            return TRUE;
          if (name_len == strlen ("content-length")
              && g_ascii_strncasecmp (line, "content-length", name_len) == 0)
            {
              if (value == value_end)
                return TRUE;
              for (const char *p = value; p < value_end; p++)
                if (*p != '0')
                  return TRUE;
            }
        }
      line = eol;
    }
  return FALSE;
}

AtkHttpHeadVerdict
atk_http_head_feed (AtkHttpHead *head, const guint8 *data, gsize len, gsize *n_head)
{
  gsize room;
  gsize take;
  gsize from;
  gsize end;

  *n_head = 0;
  if (head->verdict != ATK_HTTP_HEAD_INCOMPLETE)
    return head->verdict;
  room = ATK_HTTP_HEAD_MAX - head->len;
  take = MIN (len, room);
  /* the blank line may straddle two reads: look again from up to two bytes back */
  from = head->len >= 2 ? head->len - 2 : 0;
  memcpy (head->buf + head->len, data, take);
  head->len += take;
  end = find_head_end (head->buf, head->len, from);
  if (end == 0)
    {
      if (head->len >= ATK_HTTP_HEAD_MAX)
        head->verdict = ATK_HTTP_HEAD_TOO_LARGE;
      else
        *n_head = take;
      return head->verdict;
    }
  *n_head = take - (head->len - end);
  head->len = end;
  head->verdict = head_has_body (head->buf, end) ? ATK_HTTP_HEAD_HAS_BODY : ATK_HTTP_HEAD_COMPLETE;
  return head->verdict;
}

guint
atk_http_head_refusal_status (AtkHttpHeadVerdict verdict)
{
  switch (verdict)
    {
    case ATK_HTTP_HEAD_TOO_LARGE:
      return 431;
    case ATK_HTTP_HEAD_HAS_BODY:
      return 413;
    default:
      return 0;
    }
}
