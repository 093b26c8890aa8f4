/* at-kafka: a strict DAG-CBOR reader over a byte buffer.
 *
 * Pure: no I/O, no globals; only atk_cbor_skip() allocates, and only for input nested
 * deeper than 32 levels (its explicit stack). Every read checks bounds and reports
 * ATK_ERROR_TRUNCATED / ATK_ERROR_BAD_CBOR instead of reading past the end.
 * DAG-CBOR rules enforced here: no indefinite lengths, no floats or simple values other
 * than false/true/null, no tags other than 42, minimal-length integer encoding.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Deepest nesting of arrays/maps we accept; deeper input is ATK_ERROR_TOO_LARGE.
 * The official PDS (@atproto/pds 0.4.217 on Node 20) accepts records nested up to 5,000
 * array levels or 3,000 map levels (its JavaScript stack runs out soon after), and its
 * 150 KiB JSON body limit (two bytes per level at least) stops any record written through
 * it below 76,800 levels whatever its stack. 2^17 is beyond both; readers and the writer
 * keep their levels on explicit heap stacks, so this costs no C stack, and at most
 * 32 bytes per level of transient memory. */
#define ATK_CBOR_MAX_DEPTH 131072

typedef enum
{
  ATK_CBOR_UINT = 0,
  ATK_CBOR_NEGINT = 1,
  ATK_CBOR_BYTES = 2,
  ATK_CBOR_TEXT = 3,
  ATK_CBOR_ARRAY = 4,
  ATK_CBOR_MAP = 5,
  ATK_CBOR_TAG = 6,
  ATK_CBOR_SIMPLE = 7,
} AtkCborMajor;

typedef struct
{
  const guint8 *pos;
  const guint8 *end;
} AtkCborReader;

/* A string view into the input buffer; not NUL-terminated. */
typedef struct
{
  const char *ptr;
  gsize len;
} AtkStr;

static inline void
atk_cbor_reader_init (AtkCborReader *reader, const guint8 *data, gsize len)
{
  reader->pos = data;
  reader->end = data != NULL ? data + len : data; /* NULL + 0 is undefined behaviour */
}

static inline gsize
atk_cbor_reader_remaining (const AtkCborReader *reader)
{
  return (gsize)(reader->end - reader->pos);
}

static inline gboolean
atk_str_equal (AtkStr s, const char *literal)
{
  gsize n = strlen (literal);
  return s.len == n && memcmp (s.ptr, literal, n) == 0;
}

/* The general case of atk_cbor_read_head(), with every check and error message. */
gboolean atk_cbor_read_head_full (AtkCborReader *reader, AtkCborMajor *major, guint64 *arg,
                                  GError **error);

/* Reads one item head (major type and argument). For SIMPLE, arg is the simple value
 * (20 false, 21 true, 22 null); anything else there is an error.
 * Inline for the common one-byte head of an integer, string, array or map (the bounds
 * checks are the full version's); everything else goes to atk_cbor_read_head_full(). */
static inline gboolean
atk_cbor_read_head (AtkCborReader *reader, AtkCborMajor *major, guint64 *arg, GError **error)
{
  const guint8 *p = reader->pos;

  if (G_LIKELY (p < reader->end))
    {
      guint8 ib = p[0];
      guint ai = ib & 0x1f;
      guint m = ib >> 5;
      gsize avail = (gsize)(reader->end - p) - 1;
      gsize head = 1;

      /* The one-byte argument form, when minimal (24 and up). */
      if (ai == 24 && avail >= 1 && p[1] >= 24)
        {
          ai = p[1];
          head = 2;
          avail--;
        }
      /* A string's or array's length, or twice a map's, must fit in what is left; an
       * integer always fits. Failing any of these takes the full path for its error. */
      if ((ai < 24 || head == 2) && m <= ATK_CBOR_MAP
          && (m < ATK_CBOR_BYTES || (m == ATK_CBOR_MAP ? 2 * (gsize)ai : (gsize)ai) <= avail))
        {
          *major = (AtkCborMajor)m;
          *arg = ai;
          reader->pos = p + head;
          return TRUE;
        }
    }
  return atk_cbor_read_head_full (reader, major, arg, error);
}

void atk_cbor_peek_major_fail (GError **error);

/* Peeks the major type of the next item without consuming it. */
static inline gboolean
atk_cbor_peek_major (const AtkCborReader *reader, AtkCborMajor *major, GError **error)
{
  if (G_UNLIKELY (reader->pos >= reader->end))
    {
      *major = ATK_CBOR_UINT; /* unspecified on failure; set so no caller reads garbage */
      atk_cbor_peek_major_fail (error);
      return FALSE;
    }
  *major = (AtkCborMajor)(reader->pos[0] >> 5);
  return TRUE;
}

/* The general case of atk_cbor_read_text(), with every check and error message. */
gboolean atk_cbor_read_text_full (AtkCborReader *reader, AtkStr *out, GError **error);

/* Typed reads; a different type is ATK_ERROR_BAD_CBOR. Text is checked to be UTF-8.
 * Inline for short ASCII text (map keys, most fields of a frame). */
static inline gboolean
atk_cbor_read_text (AtkCborReader *reader, AtkStr *out, GError **error)
{
  const guint8 *p = reader->pos;

  if (G_LIKELY (p < reader->end))
    {
      guint8 ib = p[0];
      gsize avail = (gsize)(reader->end - p) - 1;
      gsize len = (gsize)(ib & 0x1f);
      gsize head = 1;
      guint8 high = 0;

      if ((ib >> 5) == ATK_CBOR_TEXT && len == 24 && avail >= 1 && p[1] >= 24)
        {
          len = p[1];
          head = 2;
          avail--;
        }
      if ((ib >> 5) == ATK_CBOR_TEXT && len < 24 + (head == 2 ? 256 : 0) && len <= avail)
        {
          for (gsize i = 0; i < len; i++)
            high |= p[head + i];
          if (high < 0x80)
            {
              out->ptr = (const char *)p + head;
              out->len = len;
              reader->pos = p + head + len;
              return TRUE;
            }
        }
    }
  return atk_cbor_read_text_full (reader, out, error);
}

gboolean atk_cbor_read_bytes (AtkCborReader *reader, const guint8 **data, gsize *len,
                              GError **error);
gboolean atk_cbor_read_int (AtkCborReader *reader, gint64 *out, GError **error);
gboolean atk_cbor_read_bool (AtkCborReader *reader, gboolean *out, GError **error);
gboolean atk_cbor_read_map_len (AtkCborReader *reader, guint64 *n_pairs, GError **error);
gboolean atk_cbor_read_array_len (AtkCborReader *reader, guint64 *n_items, GError **error);
/* Tag 42 link: returns the CID bytes after the leading 0x00 multibase-identity byte. */
gboolean atk_cbor_read_link (AtkCborReader *reader, const guint8 **cid, gsize *cid_len,
                             GError **error);
/* TRUE (and consumes it) if the next item is null. */
gboolean atk_cbor_try_null (AtkCborReader *reader);

/* Skips one complete item (validating it, including nesting depth and UTF-8). */
gboolean atk_cbor_skip (AtkCborReader *reader, GError **error);

/* Strict UTF-8 check (no overlongs, surrogates or code points above U+10FFFF). Unlike
 * g_utf8_validate_len(), U+0000 is accepted: it is valid text in the data model. */
gboolean atk_utf8_validate (const char *text, gsize len);

/* The length of the valid multi-byte UTF-8 sequence at p (p[0] >= 0x80, avail bytes
 * readable), or 0 if it is not one: the rules of atk_utf8_validate(). */
static inline gsize
atk_utf8_sequence_length (const guint8 *p, gsize avail)
{
  guint8 c = p[0];

  if (c >= 0xc2 && c <= 0xdf)
    return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef)
    {
      if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
        return 0;
      if (c == 0xe0 && p[1] < 0xa0) /* overlong */
        return 0;
      if (c == 0xed && p[1] >= 0xa0) /* surrogate */
        return 0;
      return 3;
    }
  if (c >= 0xf0 && c <= 0xf4)
    {
      if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
        return 0;
      if (c == 0xf0 && p[1] < 0x90) /* overlong */
        return 0;
      if (c == 0xf4 && p[1] >= 0x90) /* above U+10FFFF */
        return 0;
      return 4;
    }
  return 0;
}

/* DAG-CBOR canonical map key order: shorter first, then bytewise; 0 means duplicate. */
int atk_cbor_key_compare (const char *a, gsize a_len, const char *b, gsize b_len);

G_END_DECLS
