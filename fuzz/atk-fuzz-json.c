/* A strict JSON checker for the fuzz targets (see the header): the grammar of RFC 8259
 * section 2–7, checked byte by byte, and UTF-8 validity of the whole text.
 * SPDX-License-Identifier: MIT */
#include "atk-fuzz-json.h"

#include <string.h>

/* Deeper than anything at-kafka writes; deeper text is reported as invalid. */
#define MAX_DEPTH 4096

typedef struct
{
  const char *p;
  const char *end;
} Checker;

static gboolean check_value (Checker *c, guint depth);

static void
skip_ws (Checker *c)
{
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static gboolean
check_word (Checker *c, const char *word)
{
  gsize n = strlen (word);

  if ((gsize)(c->end - c->p) < n || memcmp (c->p, word, n) != 0)
    return FALSE;
  c->p += n;
  return TRUE;
}

static gboolean
check_string (Checker *c)
{
  if (c->p >= c->end || *c->p != '"')
    return FALSE;
  c->p++;
  while (c->p < c->end)
    {
      guchar ch = (guchar)*c->p++;
      if (ch == '"')
        return TRUE;
      if (ch < 0x20)
        return FALSE;
      if (ch != '\\')
        continue;
      if (c->p >= c->end)
        return FALSE;
      ch = (guchar)*c->p++;
      if (strchr ("\"\\/bfnrt", ch) != NULL && ch != '\0')
        continue;
      if (ch != 'u' || c->end - c->p < 4)
        return FALSE;
      for (int i = 0; i < 4; i++)
        if (!g_ascii_isxdigit (*c->p++))
          return FALSE;
    }
  return FALSE;
}

static gboolean
check_digits (Checker *c)
{
  const char *start = c->p;

  while (c->p < c->end && g_ascii_isdigit (*c->p))
    c->p++;
  return c->p > start;
}

static gboolean
check_number (Checker *c)
{
  if (c->p < c->end && *c->p == '-')
    c->p++;
  if (c->p < c->end && *c->p == '0')
    c->p++;
  else if (!check_digits (c))
    return FALSE;
  if (c->p < c->end && *c->p == '.')
    {
      c->p++;
      if (!check_digits (c))
        return FALSE;
    }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E'))
    {
      c->p++;
      if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
        c->p++;
      if (!check_digits (c))
        return FALSE;
    }
  return TRUE;
}

/* An object (close '}') or an array (close ']'), after its opening bracket. */
static gboolean
check_container (Checker *c, char close, guint depth)
{
  gboolean first = TRUE;

  for (;;)
    {
      skip_ws (c);
      if (c->p < c->end && *c->p == close && first)
        {
          c->p++;
          return TRUE;
        }
      if (close == '}')
        {
          if (!check_string (c))
            return FALSE;
          skip_ws (c);
          if (c->p >= c->end || *c->p++ != ':')
            return FALSE;
        }
      if (!check_value (c, depth + 1))
        return FALSE;
      skip_ws (c);
      if (c->p >= c->end)
        return FALSE;
      if (*c->p == close)
        {
          c->p++;
          return TRUE;
        }
      if (*c->p++ != ',')
        return FALSE;
      first = FALSE;
    }
}

static gboolean
check_value (Checker *c, guint depth)
{
  if (depth > MAX_DEPTH)
    return FALSE;
  skip_ws (c);
  if (c->p >= c->end)
    return FALSE;
  switch (*c->p)
    {
    case '{':
      c->p++;
      return check_container (c, '}', depth);
    case '[':
      c->p++;
      return check_container (c, ']', depth);
    case '"':
      return check_string (c);
    case 't':
      return check_word (c, "true");
    case 'f':
      return check_word (c, "false");
    case 'n':
      return check_word (c, "null");
    default:
      return check_number (c);
    }
}

gboolean
atk_fuzz_json_valid (const char *text, gsize len)
{
  Checker c = { text, text + len };

  if (memchr (text, '\0', len) != NULL || !g_utf8_validate (text, (gssize)len, NULL))
    return FALSE;
  if (!check_value (&c, 0))
    return FALSE;
  skip_ws (&c);
  return c.p == c.end;
}

gboolean
atk_fuzz_json_object_valid (const char *text, gsize len)
{
  const char *p = text;

  while (p < text + len && g_ascii_isspace (*p))
    p++;
  return p < text + len && *p == '{' && atk_fuzz_json_valid (text, len);
}
