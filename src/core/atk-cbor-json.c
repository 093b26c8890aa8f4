/* DAG-CBOR → atproto JSON, streamed straight into a GString without building a tree.
 *
 * This runs for every record of every commit, so the output buffer is grown once per item
 * and written in place rather than through many small g_string_append() calls.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-cbor-json.h"

#include "atk-cid.h"
#include "atk-error.h"
#include "atk-json-out.h"

#define out_reserve atk_out_reserve
#define out_commit atk_out_commit
#define out_terminate atk_out_terminate
#define OUT_LITERAL ATK_OUT_LITERAL

/* ---- JSON strings ---------------------------------------------------------------------- */

/* 0: copy as is; 1: needs an escape ('"', '\\', control characters). */
static const guint8 needs_escape[256] = {
  [0x00 ... 0x1f] = 1,
  ['"'] = 1,
  ['\\'] = 1,
};

#define ONES G_GUINT64_CONSTANT (0x0101010101010101)
#define HIGHS G_GUINT64_CONSTANT (0x8080808080808080)

/* TRUE if any byte of w is < 0x20, '"' or '\\' (exact, no false positives for the set). */
static inline gboolean
word_needs_escape (guint64 w)
{
  guint64 ctl = (w - ONES * 0x20) & ~w;
  guint64 q = w ^ (ONES * '"');
  guint64 bs = w ^ (ONES * '\\');
  q = (q - ONES) & ~q;
  bs = (bs - ONES) & ~bs;
  return ((ctl | q | bs) & HIGHS) != 0;
}

static char *
write_escape (char *w, guint8 c)
{
  static const char hex[] = "0123456789abcdef";

  *w++ = '\\';
  switch (c)
    {
    case '"':
      *w++ = '"';
      break;
    case '\\':
      *w++ = '\\';
      break;
    case '\b':
      *w++ = 'b';
      break;
    case '\f':
      *w++ = 'f';
      break;
    case '\n':
      *w++ = 'n';
      break;
    case '\r':
      *w++ = 'r';
      break;
    case '\t':
      *w++ = 't';
      break;
    default:
      memcpy (w, "u00", 3);
      w[3] = hex[c >> 4];
      w[4] = hex[c & 0xf];
      w += 5;
      break;
    }
  return w;
}

void
atk_json_append_string (GString *out, const char *text, gsize len)
{
  const guint8 *s = (const guint8 *)text;
  gsize i = 0;
  /* Room for the unescaped text and both quotes; each escape reserves its own extra. */
  char *w = out_reserve (out, len + 2);

  *w++ = '"';
  while (i < len)
    {
      gsize start = i;

      while (len - i >= 8)
        {
          guint64 word;
          memcpy (&word, s + i, 8);
          if (word_needs_escape (word))
            break;
          i += 8;
        }
      while (i < len && !needs_escape[s[i]])
        i++;
      memcpy (w, s + start, i - start);
      w += i - start;
      if (i == len)
        break;

      out_commit (out, w);
      w = out_reserve (out, 6 + (len - i) + 1);
      w = write_escape (w, s[i]);
      i++;
    }
  *w++ = '"';
  out_commit (out, w);
  out_terminate (out);
}

/* atk_json_append_string() and atk_utf8_validate() in one pass, for text from the wire:
 * FALSE (out partly written; callers truncate) if the text is not strict UTF-8. */
static gboolean
append_checked_string (GString *out, const guint8 *s, gsize len)
{
  gsize i = 0;
  char *w = out_reserve (out, len + 2);

  *w++ = '"';
  while (i < len)
    {
      gsize start = i;
      guint8 c;

      while (len - i >= 8)
        {
          guint64 word;
          memcpy (&word, s + i, 8);
          if ((word & HIGHS) != 0 || word_needs_escape (word))
            break;
          i += 8;
        }
      while (i < len && s[i] < 0x80 && !needs_escape[s[i]])
        i++;
      memcpy (w, s + start, i - start);
      w += i - start;
      if (i == len)
        break;

      c = s[i];
      if (c >= 0x80)
        {
          gsize n = atk_utf8_sequence_length (s + i, len - i);
          if (n == 0)
            {
              out_commit (out, w);
              return FALSE;
            }
          memcpy (w, s + i, n);
          w += n;
          i += n;
          continue;
        }
      out_commit (out, w);
      w = out_reserve (out, 6 + (len - i) + 1);
      w = write_escape (w, c);
      i++;
    }
  *w++ = '"';
  out_commit (out, w);
  return TRUE;
}

/* ---- base64 ---------------------------------------------------------------------------- */

void
atk_base64_append_unpadded (GString *out, const guint8 *data, gsize len)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *w = out_reserve (out, (len + 2) / 3 * 4);
  gsize i = 0;

  for (; len - i >= 3; i += 3)
    {
      guint32 v = (guint32)data[i] << 16 | (guint32)data[i + 1] << 8 | data[i + 2];
      w[0] = alphabet[v >> 18];
      w[1] = alphabet[(v >> 12) & 0x3f];
      w[2] = alphabet[(v >> 6) & 0x3f];
      w[3] = alphabet[v & 0x3f];
      w += 4;
    }
  if (len - i == 1)
    {
      guint32 v = (guint32)data[i] << 16;
      *w++ = alphabet[v >> 18];
      *w++ = alphabet[(v >> 12) & 0x3f];
    }
  else if (len - i == 2)
    {
      guint32 v = (guint32)data[i] << 16 | (guint32)data[i + 1] << 8;
      *w++ = alphabet[v >> 18];
      *w++ = alphabet[(v >> 12) & 0x3f];
      *w++ = alphabet[(v >> 6) & 0x3f];
    }
  out_commit (out, w);
  out_terminate (out);
}

/* ---- values ---------------------------------------------------------------------------- */

static gboolean
fail (GError **error, int code, const char *message)
{
  g_set_error_literal (error, ATK_ERROR, code, message);
  return FALSE;
}

/* Writes a JSON integer: '-' then magnitude for negatives (magnitude ≤ 2^63 fits). */
static void
write_integer (GString *out, gboolean negative, guint64 magnitude)
{
  char buf[24];
  char *p = buf + sizeof buf;
  char *w;
  gsize n;

  do
    {
      *--p = (char)('0' + magnitude % 10);
      magnitude /= 10;
    }
  while (magnitude != 0);
  if (negative)
    *--p = '-';
  n = (gsize)(buf + sizeof buf - p);
  w = out_reserve (out, n);
  memcpy (w, p, n);
  out_commit (out, w + n);
}

static gboolean
write_link (AtkCborReader *reader, GString *out, GError **error)
{
  const guint8 *data;
  gsize len;
  AtkCid cid;

  if (!atk_cbor_read_bytes (reader, &data, &len, error))
    return FALSE;
  if (len < 2 || data[0] != 0x00)
    return fail (error, ATK_ERROR_BAD_CBOR, "CBOR tag 42 does not hold a CID");
  if (!atk_cid_parse_link (data + 1, len - 1, &cid, error))
    return FALSE;
  OUT_LITERAL (out, "{\"$link\":\"");
  atk_cid_append_string (&cid, out);
  OUT_LITERAL (out, "\"}");
  return TRUE;
}

/* What a map says about itself, for the blob rule (checked once the map is complete,
 * since canonical order puts "ref" and "size" before "$type"). */
enum
{
  FACT_IS_MAP = 1 << 0,
  FACT_FIRST = 1 << 1, /* nothing written inside yet */
  FACT_IS_BLOB = 1 << 2,
  FACT_REF_IS_LINK = 1 << 3,
  FACT_SIZE_IS_INT = 1 << 4,
  FACT_MIME_IS_TEXT = 1 << 5,
};
#define FACTS_BLOB_OK (FACT_REF_IS_LINK | FACT_SIZE_IS_INT | FACT_MIME_IS_TEXT)

static inline void
set_fact (guint *facts, guint fact, gboolean value)
{
  *facts = value ? (*facts | fact) : (*facts & ~fact);
}

/* Looks at a key and the head of its value before the value is written. */
static gboolean
check_key (AtkStr key, const AtkCborReader *reader, guint *facts, GError **error)
{
  AtkCborMajor major;

  if (key.len < 3 || key.len > 8)
    return TRUE;
  if (!atk_cbor_peek_major (reader, &major, error))
    return FALSE;
  switch (key.len)
    {
    case 3:
      if (memcmp (key.ptr, "ref", 3) == 0)
        set_fact (facts, FACT_REF_IS_LINK, major == ATK_CBOR_TAG);
      break;
    case 4:
      if (memcmp (key.ptr, "size", 4) == 0)
        set_fact (facts, FACT_SIZE_IS_INT, major == ATK_CBOR_UINT || major == ATK_CBOR_NEGINT);
      break;
    case 5:
      if (memcmp (key.ptr, "$link", 5) == 0)
        return fail (error, ATK_ERROR_BAD_DATA_MODEL, "\"$link\" is reserved as a map key");
      if (memcmp (key.ptr, "$type", 5) == 0)
        {
          AtkCborReader peek = *reader;
          AtkStr type;
          if (major != ATK_CBOR_TEXT)
            return fail (error, ATK_ERROR_BAD_DATA_MODEL, "\"$type\" must be a non-empty string");
          /* A cut-short or invalid string is that, not a data-model error. */
          if (!atk_cbor_read_text (&peek, &type, error))
            return FALSE;
          if (type.len == 0)
            return fail (error, ATK_ERROR_BAD_DATA_MODEL, "\"$type\" must be a non-empty string");
          set_fact (facts, FACT_IS_BLOB, atk_str_equal (type, "blob"));
        }
      break;
    case 6:
      if (memcmp (key.ptr, "$bytes", 6) == 0)
        return fail (error, ATK_ERROR_BAD_DATA_MODEL, "\"$bytes\" is reserved as a map key");
      break;
    case 8:
      if (memcmp (key.ptr, "mimeType", 8) == 0)
        set_fact (facts, FACT_MIME_IS_TEXT, major == ATK_CBOR_TEXT);
      break;
    default:
      break;
    }
  return TRUE;
}

/* One open array or map. The writer keeps these on an explicit stack instead of recursing,
 * so nesting is limited by ATK_CBOR_MAX_DEPTH, not by the C stack. */
typedef struct
{
  guint64 left; /* items (arrays) or pairs (maps) not yet written */
  AtkStr prev;  /* maps: the previous key, for canonical order */
  guint facts;  /* FACT_* */
} Level;

/* Levels live in a small array on the C stack; deeper nesting moves them to the heap,
 * growing by doubling up to ATK_CBOR_MAX_DEPTH levels. */
#define INLINE_LEVELS 32

typedef struct
{
  Level *levels;
  guint capacity;
  Level inline_levels[INLINE_LEVELS];
} LevelStack;

static Level *
level_push (LevelStack *stack, guint depth)
{
  if (G_UNLIKELY (depth == stack->capacity))
    {
      guint capacity = MIN (stack->capacity * 2, (guint)ATK_CBOR_MAX_DEPTH);
      if (stack->levels == stack->inline_levels)
        {
          stack->levels = g_new (Level, capacity);
          memcpy (stack->levels, stack->inline_levels, sizeof stack->inline_levels);
        }
      else
        stack->levels = g_renew (Level, stack->levels, capacity);
      stack->capacity = capacity;
    }
  return &stack->levels[depth];
}

/* Writes the key of the next pair of the map at `level`, with the comma before it. */
static gboolean
write_key (AtkCborReader *reader, GString *out, Level *level, GError **error)
{
  AtkCborMajor major;
  AtkStr key;

  if (!atk_cbor_peek_major (reader, &major, error))
    return FALSE;
  if (major != ATK_CBOR_TEXT)
    return fail (error, ATK_ERROR_BAD_CBOR, "DAG-CBOR map keys must be text");
  if (!atk_cbor_read_text (reader, &key, error))
    return FALSE;
  if (level->prev.ptr != NULL
      && atk_cbor_key_compare (level->prev.ptr, level->prev.len, key.ptr, key.len) >= 0)
    return fail (error, ATK_ERROR_BAD_CBOR,
                 "DAG-CBOR map keys out of canonical order or duplicated");
  level->prev = key;
  if (!check_key (key, reader, &level->facts, error))
    return FALSE;

  if (level->facts & FACT_FIRST)
    level->facts &= ~FACT_FIRST;
  else
    OUT_LITERAL (out, ",");
  atk_json_append_string (out, key.ptr, key.len);
  OUT_LITERAL (out, ":");
  return TRUE;
}

/* Writes one value that is not an array or map. */
static gboolean
write_scalar (AtkCborReader *reader, GString *out, AtkCborMajor major, guint64 arg, GError **error)
{
  switch (major)
    {
    case ATK_CBOR_UINT:
    case ATK_CBOR_NEGINT:
      if (arg > (guint64)G_MAXINT64)
        return fail (error, ATK_ERROR_BAD_CBOR, "CBOR integer outside the 64-bit signed range");
      if (major == ATK_CBOR_UINT)
        write_integer (out, FALSE, arg);
      else
        write_integer (out, TRUE, arg + 1);
      return TRUE;
    case ATK_CBOR_TEXT:
      if (!append_checked_string (out, reader->pos, arg))
        return fail (error, ATK_ERROR_BAD_CBOR, "CBOR text is not valid UTF-8");
      reader->pos += arg;
      return TRUE;
    case ATK_CBOR_BYTES:
      OUT_LITERAL (out, "{\"$bytes\":\"");
      atk_base64_append_unpadded (out, reader->pos, arg);
      OUT_LITERAL (out, "\"}");
      reader->pos += arg;
      return TRUE;
    case ATK_CBOR_TAG: /* the reader only lets tag 42 through */
      return write_link (reader, out, error);
    case ATK_CBOR_SIMPLE:
      if (arg == 20)
        OUT_LITERAL (out, "false");
      else if (arg == 21)
        OUT_LITERAL (out, "true");
      else
        OUT_LITERAL (out, "null");
      return TRUE;
    case ATK_CBOR_ARRAY:
    case ATK_CBOR_MAP:
    default:
      return fail (error, ATK_ERROR_BAD_CBOR, "unexpected CBOR item");
    }
}

/* Closes the array or map at `level`; FALSE if it is a malformed blob. */
static gboolean
close_level (GString *out, const Level *level, GError **error)
{
  if (!(level->facts & FACT_IS_MAP))
    {
      OUT_LITERAL (out, "]");
      return TRUE;
    }
  OUT_LITERAL (out, "}");
  if ((level->facts & FACT_IS_BLOB) && (level->facts & FACTS_BLOB_OK) != FACTS_BLOB_OK)
    return fail (error, ATK_ERROR_BAD_DATA_MODEL,
                 "blob needs a link \"ref\", a string \"mimeType\" and an integer \"size\"");
  return TRUE;
}

/* The writer proper: one value, any nesting up to ATK_CBOR_MAX_DEPTH, no recursion. */
static gboolean
write_value (AtkCborReader *reader, GString *out, LevelStack *stack, GError **error)
{
  guint depth = 0; /* open arrays/maps; stack->levels[depth - 1] is the innermost */

  for (;;)
    {
      AtkCborMajor major;
      guint64 arg;

      /* Before the next value: a key (maps) or a comma (arrays). */
      if (depth > 0)
        {
          Level *level = &stack->levels[depth - 1];
          if (level->facts & FACT_IS_MAP)
            {
              if (!write_key (reader, out, level, error))
                return FALSE;
            }
          else if (level->facts & FACT_FIRST)
            level->facts &= ~FACT_FIRST;
          else
            OUT_LITERAL (out, ",");
        }

      if (!atk_cbor_read_head (reader, &major, &arg, error))
        return FALSE;
      if (major == ATK_CBOR_ARRAY || major == ATK_CBOR_MAP)
        {
          if (depth >= ATK_CBOR_MAX_DEPTH)
            return fail (error, ATK_ERROR_TOO_LARGE, "CBOR nesting too deep");
          if (arg > 0)
            {
              Level *level = level_push (stack, depth++);
              level->left = arg;
              level->prev.ptr = NULL;
              level->prev.len = 0;
              level->facts = FACT_FIRST;
              if (major == ATK_CBOR_MAP)
                {
                  level->facts |= FACT_IS_MAP;
                  OUT_LITERAL (out, "{");
                }
              else
                OUT_LITERAL (out, "[");
              continue;
            }
          if (major == ATK_CBOR_MAP)
            OUT_LITERAL (out, "{}");
          else
            OUT_LITERAL (out, "[]");
        }
      else if (!write_scalar (reader, out, major, arg, error))
        return FALSE;

      /* A value is complete: close every container it completes. */
      for (;;)
        {
          Level *level;

          if (depth == 0)
            return TRUE;
          level = &stack->levels[depth - 1];
          if (--level->left > 0)
            break;
          if (!close_level (out, level, error))
            return FALSE;
          depth--;
        }
    }
}

gboolean
atk_cbor_json_write_item (AtkCborReader *reader, GString *out, GError **error)
{
  LevelStack stack;
  gboolean ok;

  stack.levels = stack.inline_levels;
  stack.capacity = INLINE_LEVELS;
  ok = write_value (reader, out, &stack, error);
  if (stack.levels != stack.inline_levels)
    g_free (stack.levels);
  out_terminate (out);
  return ok;
}

gboolean
atk_cbor_json_write_record (const guint8 *data, gsize len, GString *out, GError **error)
{
  gsize old_len = out->len;
  AtkCborReader reader;
  AtkCborMajor major;

  atk_cbor_reader_init (&reader, data, len);
  if (!atk_cbor_peek_major (&reader, &major, error))
    return FALSE;
  if (major != ATK_CBOR_MAP)
    return fail (error, ATK_ERROR_BAD_DATA_MODEL, "a record must be a map");
  if (!atk_cbor_json_write_item (&reader, out, error))
    {
      g_string_truncate (out, old_len);
      return FALSE;
    }
  if (atk_cbor_reader_remaining (&reader) != 0)
    {
      g_string_truncate (out, old_len);
      return fail (error, ATK_ERROR_BAD_CBOR, "trailing bytes after the record");
    }
  return TRUE;
}
