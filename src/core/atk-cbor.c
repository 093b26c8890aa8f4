/* A strict DAG-CBOR reader. Every length is checked against the remaining input before
 * anything is read, so no caller can be led past the end of its buffer.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-cbor.h"

#include "atk-error.h"

static const char *const major_names[] = {
  "unsigned integer", "negative integer", "byte string", "text string", "array", "map", "tag",
  "simple value",
};

static gboolean
fail (GError **error, int code, const char *message)
{
  g_set_error_literal (error, ATK_ERROR, code, message);
  return FALSE;
}

static gboolean
wrong_type (GError **error, AtkCborMajor want, AtkCborMajor got)
{
  g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CBOR, "expected %s, found %s", major_names[want],
               major_names[got]);
  return FALSE;
}

static inline guint64
load_be (const guint8 *p, guint n)
{
  guint64 v = 0;
  for (guint i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. NUL is allowed
 * (it is valid text in the data model), which is why g_utf8_validate_len() does not fit. */
gboolean
atk_utf8_validate (const char *text, gsize len)
{
  const guint8 *p = (const guint8 *)text;
  const guint8 *end = p + len;

  while (p < end)
    {
      /* Fast path: eight ASCII bytes at a time. */
      while (end - p >= 8)
        {
          guint64 w;
          memcpy (&w, p, 8);
          if (w & G_GUINT64_CONSTANT (0x8080808080808080))
            break;
          p += 8;
        }
      if (p >= end)
        break;

      if (*p < 0x80)
        {
          p++;
          continue;
        }
      gsize n = atk_utf8_sequence_length (p, (gsize)(end - p));
      if (n == 0)
        return FALSE;
      p += n;
    }
  return TRUE;
}

gboolean
atk_cbor_read_head_full (AtkCborReader *reader, AtkCborMajor *major, guint64 *arg, GError **error)
{
  const guint8 *p = reader->pos;
  gsize avail = (gsize)(reader->end - p);
  guint8 ib;
  guint ai;
  guint64 value;
  gsize head_len;

  if (avail == 0)
    return fail (error, ATK_ERROR_TRUNCATED, "CBOR input ends before an item");

  ib = p[0];
  *major = (AtkCborMajor)(ib >> 5);
  ai = ib & 0x1f;

  if (ai < 24)
    {
      value = ai;
      head_len = 1;
    }
  else if (ai <= 27)
    {
      guint n = 1u << (ai - 24);
      /* Floats are the 2/4/8-byte forms of major 7; simple values ≥ 32 the 1-byte form. */
      if (*major == ATK_CBOR_SIMPLE)
        return fail (error, ATK_ERROR_BAD_CBOR,
                     ai == 24 ? "CBOR simple value not allowed in DAG-CBOR"
                              : "floats are not allowed here");
      if (avail < 1 + (gsize)n)
        return fail (error, ATK_ERROR_TRUNCATED, "CBOR input ends inside an item head");
      value = load_be (p + 1, n);
      /* Minimal encoding: each wider form must be needed. */
      if ((n == 1 && value < 24) || (n == 2 && value <= 0xff) || (n == 4 && value <= 0xffff)
          || (n == 8 && value <= 0xffffffffu))
        return fail (error, ATK_ERROR_BAD_CBOR, "CBOR integer or length not minimally encoded");
      head_len = 1 + n;
    }
  else if (ai == 31)
    return fail (error, ATK_ERROR_BAD_CBOR, "indefinite-length CBOR items are not allowed");
  else
    return fail (error, ATK_ERROR_BAD_CBOR, "reserved CBOR additional information");

  avail -= head_len;
  switch (*major)
    {
    case ATK_CBOR_BYTES:
    case ATK_CBOR_TEXT:
    case ATK_CBOR_ARRAY:
      /* An array item takes at least one byte, so the same bound holds. */
      if (value > avail)
        return fail (error, ATK_ERROR_TRUNCATED, "CBOR length exceeds the remaining input");
      break;
    case ATK_CBOR_MAP:
      if (value > avail / 2)
        return fail (error, ATK_ERROR_TRUNCATED, "CBOR map length exceeds the remaining input");
      break;
    case ATK_CBOR_TAG:
      if (value != 42)
        return fail (error, ATK_ERROR_BAD_CBOR, "CBOR tags other than 42 are not allowed");
      break;
    case ATK_CBOR_SIMPLE:
      if (value < 20 || value > 22)
        return fail (error, ATK_ERROR_BAD_CBOR, "CBOR simple value not allowed in DAG-CBOR");
      break;
    case ATK_CBOR_UINT:
    case ATK_CBOR_NEGINT:
    default:
      break;
    }

  reader->pos = p + head_len;
  *arg = value;
  return TRUE;
}

void
atk_cbor_peek_major_fail (GError **error)
{
  fail (error, ATK_ERROR_TRUNCATED, "CBOR input ends before an item");
}

/* Reads a head that must be of the given major type; the reader is untouched on error. */
static inline gboolean
read_typed_head (AtkCborReader *reader, AtkCborMajor want, guint64 *arg, GError **error)
{
  AtkCborReader save = *reader;
  AtkCborMajor major;

  if (!atk_cbor_read_head (reader, &major, arg, error))
    return FALSE;
  if (major != want)
    {
      *reader = save;
      return wrong_type (error, want, major);
    }
  return TRUE;
}

gboolean
atk_cbor_read_text_full (AtkCborReader *reader, AtkStr *out, GError **error)
{
  guint64 len;

  if (!read_typed_head (reader, ATK_CBOR_TEXT, &len, error))
    return FALSE;
  if (!atk_utf8_validate ((const char *)reader->pos, len))
    return fail (error, ATK_ERROR_BAD_CBOR, "CBOR text is not valid UTF-8");
  out->ptr = (const char *)reader->pos;
  out->len = len;
  reader->pos += len;
  return TRUE;
}

gboolean
atk_cbor_read_bytes (AtkCborReader *reader, const guint8 **data, gsize *len, GError **error)
{
  guint64 n;

  if (!read_typed_head (reader, ATK_CBOR_BYTES, &n, error))
    return FALSE;
  *data = reader->pos;
  *len = n;
  reader->pos += n;
  return TRUE;
}

gboolean
atk_cbor_read_int (AtkCborReader *reader, gint64 *out, GError **error)
{
  AtkCborReader save = *reader;
  AtkCborMajor major;
  guint64 arg;

  if (!atk_cbor_read_head (reader, &major, &arg, error))
    return FALSE;
  if (major != ATK_CBOR_UINT && major != ATK_CBOR_NEGINT)
    {
      *reader = save;
      return wrong_type (error, ATK_CBOR_UINT, major);
    }
  if (arg > (guint64)G_MAXINT64)
    return fail (error, ATK_ERROR_BAD_CBOR, "CBOR integer outside the 64-bit signed range");
  *out = major == ATK_CBOR_UINT ? (gint64)arg : -1 - (gint64)arg;
  return TRUE;
}

gboolean
atk_cbor_read_bool (AtkCborReader *reader, gboolean *out, GError **error)
{
  AtkCborReader save = *reader;
  guint64 arg;

  if (!read_typed_head (reader, ATK_CBOR_SIMPLE, &arg, error))
    return FALSE;
  if (arg == 22)
    {
      *reader = save;
      return fail (error, ATK_ERROR_BAD_CBOR, "expected a boolean, found null");
    }
  *out = arg == 21;
  return TRUE;
}

gboolean
atk_cbor_read_map_len (AtkCborReader *reader, guint64 *n_pairs, GError **error)
{
  return read_typed_head (reader, ATK_CBOR_MAP, n_pairs, error);
}

gboolean
atk_cbor_read_array_len (AtkCborReader *reader, guint64 *n_items, GError **error)
{
  return read_typed_head (reader, ATK_CBOR_ARRAY, n_items, error);
}

gboolean
atk_cbor_read_link (AtkCborReader *reader, const guint8 **cid, gsize *cid_len, GError **error)
{
  guint64 tag;
  const guint8 *data;
  gsize len;

  if (!read_typed_head (reader, ATK_CBOR_TAG, &tag, error))
    return FALSE;
  if (!atk_cbor_read_bytes (reader, &data, &len, error))
    return FALSE;
  /* The leading 0x00 is the multibase "identity" prefix DAG-CBOR puts before CIDs. */
  if (len < 2 || data[0] != 0x00)
    return fail (error, ATK_ERROR_BAD_CBOR, "CBOR tag 42 does not hold a CID");
  *cid = data + 1;
  *cid_len = len - 1;
  return TRUE;
}

gboolean
atk_cbor_try_null (AtkCborReader *reader)
{
  if (reader->pos < reader->end && reader->pos[0] == 0xf6)
    {
      reader->pos++;
      return TRUE;
    }
  return FALSE;
}

/* Canonical DAG-CBOR key order: shorter first, then bytewise. Equal is a duplicate. */
int
atk_cbor_key_compare (const char *a, gsize a_len, const char *b, gsize b_len)
{
  if (a_len != b_len)
    return a_len < b_len ? -1 : 1;
  return memcmp (a, b, a_len);
}

typedef struct
{
  guint64 left; /* items still to read at this level (keys and values for maps) */
  gboolean is_map;
  const char *prev_key;
  gsize prev_key_len;
} SkipLevel;

/* Levels on the C stack for ordinary input; deeper nesting moves to the heap, growing by
 * doubling up to ATK_CBOR_MAX_DEPTH + 1 levels. */
#define SKIP_INLINE_LEVELS 32

/* Makes room for stack[depth]. */
static void
skip_reserve (SkipLevel **stack, guint *capacity, SkipLevel *inline_levels, guint depth)
{
  if (G_UNLIKELY (depth == *capacity))
    {
      guint grown = MIN (*capacity * 2, (guint)ATK_CBOR_MAX_DEPTH + 1);
      if (*stack == inline_levels)
        {
          *stack = g_new (SkipLevel, grown);
          memcpy (*stack, inline_levels, sizeof (SkipLevel) * *capacity);
        }
      else
        *stack = g_renew (SkipLevel, *stack, grown);
      *capacity = grown;
    }
}

/* Iterative, so that hostile nesting cannot exhaust the C stack; depth is still capped. */
static gboolean
skip_item (AtkCborReader *reader, SkipLevel **stack_ptr, guint *capacity, SkipLevel *inline_levels,
           GError **error)
{
  SkipLevel *stack = *stack_ptr;
  guint depth = 0;

  stack[0] = (SkipLevel){ .left = 1, .is_map = FALSE };

  for (;;)
    {
      SkipLevel *level = &stack[depth];
      gboolean is_key = level->is_map && (level->left % 2) == 0;
      AtkCborMajor major;
      guint64 arg;

      if (!atk_cbor_read_head (reader, &major, &arg, error))
        return FALSE;
      level->left--;

      if (is_key && major != ATK_CBOR_TEXT)
        return fail (error, ATK_ERROR_BAD_CBOR, "DAG-CBOR map keys must be text");

      switch (major)
        {
        case ATK_CBOR_TEXT:
          if (!atk_utf8_validate ((const char *)reader->pos, arg))
            return fail (error, ATK_ERROR_BAD_CBOR, "CBOR text is not valid UTF-8");
          if (is_key)
            {
              if (level->prev_key != NULL
                  && atk_cbor_key_compare (level->prev_key, level->prev_key_len,
                                           (const char *)reader->pos, arg)
                         >= 0)
                return fail (error, ATK_ERROR_BAD_CBOR,
                             "DAG-CBOR map keys out of canonical order or duplicated");
              level->prev_key = (const char *)reader->pos;
              level->prev_key_len = arg;
            }
          reader->pos += arg;
          break;
        case ATK_CBOR_BYTES:
          reader->pos += arg;
          break;
        case ATK_CBOR_TAG:
          {
            const guint8 *data;
            gsize len;
            if (!atk_cbor_read_bytes (reader, &data, &len, error))
              return FALSE;
            if (len < 2 || data[0] != 0x00)
              return fail (error, ATK_ERROR_BAD_CBOR, "CBOR tag 42 does not hold a CID");
          }
          break;
        case ATK_CBOR_ARRAY:
        case ATK_CBOR_MAP:
          if (depth == ATK_CBOR_MAX_DEPTH)
            return fail (error, ATK_ERROR_TOO_LARGE, "CBOR nesting too deep");
          if (arg > 0)
            {
              depth++;
              skip_reserve (stack_ptr, capacity, inline_levels, depth);
              stack = *stack_ptr;
              stack[depth] = (SkipLevel){
                .left = major == ATK_CBOR_MAP ? arg * 2 : arg,
                .is_map = major == ATK_CBOR_MAP,
              };
              continue;
            }
          break;
        case ATK_CBOR_UINT:
        case ATK_CBOR_NEGINT:
        case ATK_CBOR_SIMPLE:
        default:
          break;
        }

      while (stack[depth].left == 0)
        {
          if (depth == 0)
            return TRUE;
          depth--;
        }
    }
}

gboolean
atk_cbor_skip (AtkCborReader *reader, GError **error)
{
  SkipLevel inline_levels[SKIP_INLINE_LEVELS];
  SkipLevel *stack = inline_levels;
  guint capacity = SKIP_INLINE_LEVELS;
  gboolean ok = skip_item (reader, &stack, &capacity, inline_levels, error);

  if (stack != inline_levels)
    g_free (stack);
  return ok;
}
