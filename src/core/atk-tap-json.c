/* at-kafka: the small JSON reader behind the Tap event parser: validates, decodes the
 * strings it is asked for, copies the rest compactly. No recursion deeper than
 * ATK_TAP_JSON_MAX_DEPTH, no allocation beyond the GStrings the caller passes.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-tap-json.h"

#include <string.h>

#include "atk-error.h"

gboolean
atk_tap_json_fail (AtkTapJsonReader *r, const char *what)
{
  g_set_error (r->error, ATK_ERROR, ATK_ERROR_BAD_FRAME, "Tap event: %s", what);
  return FALSE;
}

void
atk_tap_json_skip_ws (AtkTapJsonReader *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

gboolean
atk_tap_json_expect (AtkTapJsonReader *r, char c)
{
  atk_tap_json_skip_ws (r);
  if (r->p >= r->end || *r->p != c)
    return FALSE;
  r->p++;
  return TRUE;
}

static gint
hex4 (const char *p)
{
  gint v = 0;

  for (int i = 0; i < 4; i++)
    {
      gint d = g_ascii_xdigit_value (p[i]);
      if (d < 0)
        return -1;
      v = v << 4 | d;
    }
  return v;
}

/* Reads \uXXXX (and its low surrogate, if it starts a pair) at r->p, just after the 'u'. */
static gboolean
read_unicode_escape (AtkTapJsonReader *r, gunichar *out)
{
  gint hi, lo;

  if (r->end - r->p < 4 || (hi = hex4 (r->p)) < 0)
    return atk_tap_json_fail (r, "bad \\u escape");
  r->p += 4;
  if (hi < 0xd800 || hi > 0xdfff)
    {
      *out = (gunichar)hi;
      return TRUE;
    }
  if (hi > 0xdbff || r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u'
      || (lo = hex4 (r->p + 2)) < 0xdc00 || lo > 0xdfff)
    return atk_tap_json_fail (r, "unpaired surrogate in a string");
  r->p += 6;
  *out = 0x10000 + (((gunichar)hi - 0xd800) << 10) + ((gunichar)lo - 0xdc00);
  return TRUE;
}

/* Reads a string token. `decoded` (may be NULL) gets its UTF-8 value; `raw` (may be NULL)
 * gets the token itself, quotes included, which is already valid JSON. */
gboolean
atk_tap_json_read_string (AtkTapJsonReader *r, GString *decoded, GString *raw)
{
  static const char escapes[] = "\"\\/bfnrt";
  static const char escaped[] = "\"\\/\b\f\n\r\t";
  const char *start, *esc;

  atk_tap_json_skip_ws (r);
  start = r->p;
  if (r->p >= r->end || *r->p != '"')
    return atk_tap_json_fail (r, "expected a string");
  r->p++;
  for (;;)
    {
      const char *run = r->p;
      gunichar c = 0;

      while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (guchar)*r->p >= 0x20)
        r->p++;
      if (decoded != NULL)
        g_string_append_len (decoded, run, r->p - run);
      if (r->p >= r->end)
        return atk_tap_json_fail (r, "unterminated string");
      if (*r->p == '"')
        break;
      if (*r->p != '\\')
        return atk_tap_json_fail (r, "control character in a string");
      if (++r->p >= r->end)
        return atk_tap_json_fail (r, "unterminated string");
      if (*r->p == 'u')
        {
          r->p++;
          if (!read_unicode_escape (r, &c))
            return FALSE;
        }
      else if (*r->p != '\0' && (esc = strchr (escapes, *r->p)) != NULL)
        {
          c = (gunichar)escaped[esc - escapes];
          r->p++;
        }
      else
        return atk_tap_json_fail (r, "bad escape in a string");
      /* Decoded strings are event fields (did, rkey, …) used as C strings: no NUL. */
      if (decoded != NULL && c == 0)
        return atk_tap_json_fail (r, "NUL character in a field");
      if (decoded != NULL)
        g_string_append_unichar (decoded, c);
    }
  r->p++;
  if (!g_utf8_validate (start, r->p - start, NULL))
    return atk_tap_json_fail (r, "string is not UTF-8");
  if (raw != NULL)
    g_string_append_len (raw, start, r->p - start);
  return TRUE;
}

static gboolean
read_digits (AtkTapJsonReader *r)
{
  const char *start = r->p;

  while (r->p < r->end && g_ascii_isdigit (*r->p))
    r->p++;
  return r->p > start;
}

/* Validates a number token (JSON grammar) and copies it as sent. */
gboolean
atk_tap_json_read_number (AtkTapJsonReader *r, GString *raw)
{
  const char *start = r->p;

  if (r->p < r->end && *r->p == '-')
    r->p++;
  if (r->p < r->end && *r->p == '0')
    r->p++;
  else if (!read_digits (r))
    return atk_tap_json_fail (r, "bad number");
  if (r->p < r->end && *r->p == '.')
    {
      r->p++;
      if (!read_digits (r))
        return atk_tap_json_fail (r, "bad number");
    }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E'))
    {
      r->p++;
      if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
        r->p++;
      if (!read_digits (r))
        return atk_tap_json_fail (r, "bad number");
    }
  if (raw != NULL)
    g_string_append_len (raw, start, r->p - start);
  return TRUE;
}

gboolean
atk_tap_json_read_word (AtkTapJsonReader *r, const char *word, GString *raw)
{
  gsize len = strlen (word);

  if ((gsize)(r->end - r->p) < len || memcmp (r->p, word, len) != 0)
    return atk_tap_json_fail (r, "unexpected token");
  r->p += len;
  if (raw != NULL)
    g_string_append_len (raw, word, len);
  return TRUE;
}

static gboolean
copy_member_key (AtkTapJsonReader *r, GString *out)
{
  if (!atk_tap_json_read_string (r, NULL, out))
    return FALSE;
  if (!atk_tap_json_expect (r, ':'))
    return atk_tap_json_fail (r, "expected ':'");
  if (out != NULL)
    g_string_append_c (out, ':');
  return TRUE;
}

/* Copies an array or object (r->p at its opening bracket) without whitespace. */
static gboolean
copy_container (AtkTapJsonReader *r, GString *out, guint depth)
{
  char close = *r->p == '{' ? '}' : ']';
  gboolean object = close == '}';

  if (depth >= ATK_TAP_JSON_MAX_DEPTH)
    return atk_tap_json_fail (r, "nested too deeply");
  if (out != NULL)
    g_string_append_c (out, *r->p);
  r->p++;
  if (!atk_tap_json_expect (r, close))
    {
      do
        {
          if (out != NULL && out->str[out->len - 1] != (object ? '{' : '['))
            g_string_append_c (out, ',');
          if (object && !copy_member_key (r, out))
            return FALSE;
          if (!atk_tap_json_copy_value (r, out, depth + 1))
            return FALSE;
        }
      while (atk_tap_json_expect (r, ','));
      if (!atk_tap_json_expect (r, close))
        return atk_tap_json_fail (r, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  if (out != NULL)
    g_string_append_c (out, close);
  return TRUE;
}

/* Validates any value; appends it compactly to `out` unless NULL (a skip). */
gboolean
atk_tap_json_copy_value (AtkTapJsonReader *r, GString *out, guint depth)
{
  atk_tap_json_skip_ws (r);
  if (r->p >= r->end)
    return atk_tap_json_fail (r, "truncated");
  switch (*r->p)
    {
    case '{':
    case '[':
      return copy_container (r, out, depth);
    case '"':
      return atk_tap_json_read_string (r, NULL, out);
    case 't':
      return atk_tap_json_read_word (r, "true", out);
    case 'f':
      return atk_tap_json_read_word (r, "false", out);
    case 'n':
      return atk_tap_json_read_word (r, "null", out);
    default:
      return atk_tap_json_read_number (r, out);
    }
}

gboolean
atk_tap_json_read_object (AtkTapJsonReader *r, AtkTapJsonMemberFunc member, gpointer data)
{
  g_autoptr (GString) key = g_string_sized_new (16);

  if (!atk_tap_json_expect (r, '{'))
    return atk_tap_json_fail (r, "expected an object");
  if (atk_tap_json_expect (r, '}'))
    return TRUE;
  do
    {
      g_string_truncate (key, 0);
      if (!atk_tap_json_read_string (r, key, NULL))
        return FALSE;
      if (!atk_tap_json_expect (r, ':'))
        return atk_tap_json_fail (r, "expected ':'");
      if (!member (r, key->str, data))
        return FALSE;
    }
  while (atk_tap_json_expect (r, ','));
  if (!atk_tap_json_expect (r, '}'))
    return atk_tap_json_fail (r, "expected ',' or '}'");
  return TRUE;
}

gboolean
atk_tap_json_read_bool (AtkTapJsonReader *r, gboolean *out)
{
  atk_tap_json_skip_ws (r);
  if (r->p < r->end && *r->p == 't')
    return (*out = TRUE, atk_tap_json_read_word (r, "true", NULL));
  if (r->p < r->end && *r->p == 'f')
    return (*out = FALSE, atk_tap_json_read_word (r, "false", NULL));
  return atk_tap_json_fail (r, "expected true or false");
}

/* ---- finding the id without reading the rest ------------------------------------------ */

/* Past the string starting at p (its opening quote); NULL if it does not end. Escapes are
 * skipped, not checked: this only has to find where the string ends. */
static const char *
skip_string (const char *p, const char *end)
{
  for (p++; p < end; p++)
    {
      if (*p == '\\')
        p++;
      else if (*p == '"')
        return p + 1;
    }
  return NULL;
}

static const char *
skip_blank (const char *p, const char *end)
{
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* A JSON integer token of digits only, in 0..G_MAXUINT64, ending where a member may end. */
static gboolean
read_uint_token (const char *p, const char *end, guint64 *out)
{
  guint64 value = 0;
  const char *start = p;

  for (; p < end && g_ascii_isdigit (*p); p++)
    {
      guint digit = (guint)(*p - '0');
      if (value > (G_MAXUINT64 - digit) / 10)
        return FALSE;
      value = value * 10 + digit;
    }
  if (p == start || (*start == '0' && p - start > 1))
    return FALSE;
  p = skip_blank (p, end);
  if (p >= end || (*p != ',' && *p != '}'))
    return FALSE;
  *out = value;
  return TRUE;
}

gboolean
atk_tap_json_peek_uint_member (const char *text, gsize len, const char *name, guint64 *out)
{
  const char *p = text, *end = text + len;
  gsize name_len = strlen (name);
  guint64 depth = 0;
  gboolean want_key = FALSE, found = FALSE;

  if (text == NULL)
    return FALSE;
  p = skip_blank (p, end);
  if (p >= end || *p != '{')
    return FALSE;
  /* A scan, not a parse: brackets are counted (no recursion, whatever the nesting), strings
   * are stepped over, and only the top-level object's keys are looked at. The last member
   * with the name wins, as in most JSON decoders; the text after the object is ignored. */
  while (p < end)
    {
      char c = *p;

      if (c == '"')
        {
          const char *start = p + 1;
          const char *after = skip_string (p, end);

          if (after == NULL)
            break;
          p = after;
          if (depth != 1 || !want_key)
            continue;
          want_key = FALSE;
          if ((gsize)(after - 1 - start) != name_len || memcmp (start, name, name_len) != 0)
            continue;
          p = skip_blank (p, end);
          if (p >= end || *p != ':')
            break;
          p = skip_blank (p + 1, end);
          found = read_uint_token (p, end, out);
          continue;
        }
      if (c == '{' || c == '[')
        {
          depth++;
          want_key = c == '{' && depth == 1;
        }
      else if (c == '}' || c == ']')
        {
          if (--depth == 0)
            break;
        }
      else if (c == ',' && depth == 1)
        want_key = TRUE;
      p++;
    }
  return found;
}

gboolean
atk_json_depth_within (const char *text, gsize len, guint max_depth)
{
  const char *p = text, *end = text + len;
  guint depth = 0;

  while (p < end)
    {
      char c = *p;

      if (c == '"')
        {
          p = skip_string (p, end);
          if (p == NULL)
            return TRUE; /* unterminated: the parser will refuse it */
          continue;
        }
      if (c == '{' || c == '[')
        {
          if (++depth > max_depth)
            return FALSE;
        }
      else if ((c == '}' || c == ']') && depth > 0)
        depth--;
      p++;
    }
  return TRUE;
}
