/* Tests for CIDs: varints, binary parsing, base32 strings, SHA-256 verification.
 * SPDX-License-Identifier: MIT */
#include "atk-cid.h"
#include "atk-error.h"
#include "atk-test-util.h"

static void
test_varint (void)
{
  struct
  {
    const guint8 bytes[10];
    gsize len;
    guint64 value;
    gsize consumed;
  } good[] = {
    { { 0x00 }, 1, 0, 1 },
    { { 0x01, 0xff }, 2, 1, 1 }, /* trailing bytes are not consumed */
    { { 0x7f }, 1, 127, 1 },
    { { 0x80, 0x01 }, 2, 128, 2 },
    { { 0xe0, 0x01 }, 2, 224, 2 },
    { { 0xff, 0xff, 0x03 }, 3, 65535, 3 },
    { { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f }, 9, G_MAXINT64, 9 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr (GError) error = NULL;
      guint64 v = 0;
      gsize consumed = 0;
      g_assert_true (atk_varint_read (good[i].bytes, good[i].len, &v, &consumed, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (v, ==, good[i].value);
      g_assert_cmpuint (consumed, ==, good[i].consumed);
    }

  struct
  {
    const guint8 bytes[10];
    gsize len;
    int code;
  } bad[] = {
    { { 0 }, 0, ATK_ERROR_TRUNCATED },
    { { 0x80 }, 1, ATK_ERROR_TRUNCATED },
    { { 0xff, 0xff }, 2, ATK_ERROR_TRUNCATED },
    { { 0x80, 0x00 }, 2, ATK_ERROR_BAD_CID },       /* overlong zero */
    { { 0x81, 0x80, 0x00 }, 3, ATK_ERROR_BAD_CID }, /* overlong one */
    { { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10, ATK_ERROR_BAD_CID },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      guint64 v;
      gsize consumed;
      g_assert_false (atk_varint_read (bad[i].bytes, bad[i].len, &v, &consumed, &error));
      g_assert_error (error, ATK_ERROR, bad[i].code);
    }
}

/* A CIDv1 dag-cbor sha2-256 over 32 bytes 0..31, built by hand. */
static const guint8 cid_bytes[] = {
  0x01, 0x71, 0x12, 0x20, 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
  14,   15,   16,   17,   18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

static void
test_parse (void)
{
  g_autoptr (GError) error = NULL;
  guint8 buf[sizeof cid_bytes + 3];
  AtkCid cid, other;
  gsize consumed;

  g_assert_true (atk_cid_parse (cid_bytes, sizeof cid_bytes, &cid, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (cid.codec, ==, ATK_CID_CODEC_DAG_CBOR);
  g_assert_cmpuint (cid.hash_code, ==, ATK_MULTIHASH_SHA2_256);
  g_assert_cmpuint (cid.digest_len, ==, 32);
  g_assert_true (cid.digest == cid_bytes + 4);
  g_assert_cmpuint (cid.len, ==, sizeof cid_bytes);

  /* A prefix parse leaves the block data after it alone; a whole parse rejects it. */
  memcpy (buf, cid_bytes, sizeof cid_bytes);
  memset (buf + sizeof cid_bytes, 0xa5, 3);
  g_assert_true (atk_cid_parse_prefix (buf, sizeof buf, &other, &consumed, &error));
  g_assert_cmpuint (consumed, ==, sizeof cid_bytes);
  g_assert_true (atk_cid_equal (&cid, &other));
  g_assert_false (atk_cid_parse (buf, sizeof buf, &other, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CID);
  g_clear_error (&error);

  buf[10] ^= 1;
  g_assert_true (atk_cid_parse_prefix (buf, sizeof buf, &other, &consumed, &error));
  g_assert_false (atk_cid_equal (&cid, &other));

  /* Every truncation fails cleanly. */
  for (gsize n = 0; n < sizeof cid_bytes; n++)
    {
      g_assert_false (atk_cid_parse (cid_bytes, n, &other, &error));
      g_assert_nonnull (error);
      g_clear_error (&error);
    }

  /* CIDv0 (a bare multihash) and version 2 are not CIDv1. */
  g_assert_false (atk_cid_parse (cid_bytes + 2, sizeof cid_bytes - 2, &other, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CID);
  g_clear_error (&error);
  memcpy (buf, cid_bytes, sizeof cid_bytes);
  buf[0] = 2;
  g_assert_false (atk_cid_parse (buf, sizeof cid_bytes, &other, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CID);
  g_clear_error (&error);

  /* A digest length longer than the input. */
  buf[0] = 1;
  buf[3] = 0x21;
  g_assert_false (atk_cid_parse (buf, sizeof cid_bytes, &other, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TRUNCATED);
}

static void
test_string_known (void)
{
  /* 01 71 12 20 is "afyrei" in base32, and the string must decode back to the bytes. */
  g_autoptr (GError) error = NULL;
  AtkCid cid;
  g_autofree char *s = NULL;
  g_autoptr (GBytes) back = NULL;

  g_assert_true (atk_cid_parse (cid_bytes, sizeof cid_bytes, &cid, &error));
  s = atk_cid_to_string (&cid);
  g_assert_true (g_str_has_prefix (s, "bafyreia"));
  g_assert_cmpuint (strlen (s), ==, 1 + (36 * 8 + 4) / 5);
  back = atk_cid_bytes_from_string (s, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (back, NULL), g_bytes_get_size (back), cid_bytes,
                   sizeof cid_bytes);

  {
    /* An identity-multihash raw CID round-trips too. */
    static const guint8 ident[] = { 0x01, 0x55, 0x00, 0x06, 'f', 'o', 'o', 'b', 'a', 'r' };
    g_autofree char *t = NULL;
    g_autoptr (GBytes) b = NULL;
    g_assert_true (atk_cid_parse (ident, sizeof ident, &cid, &error));
    t = atk_cid_to_string (&cid);
    b = atk_cid_bytes_from_string (t, &error);
    g_assert_no_error (error);
    g_assert_cmpmem (g_bytes_get_data (b, NULL), g_bytes_get_size (b), ident, sizeof ident);
  }
  {
    /* Known base32: the bytes "foobar" alone encode to "mzxw6ytboi" (RFC 4648 §10). */
    static const guint8 foobar[] = { 'f', 'o', 'o', 'b', 'a', 'r' };
    GString *out = g_string_new (NULL);
    AtkCid fake = { .bytes = foobar, .len = sizeof foobar };
    atk_cid_append_string (&fake, out);
    g_assert_cmpstr (out->str, ==, "bmzxw6ytboi");
    g_string_truncate (out, 0);
    fake.len = 1;
    atk_cid_append_string (&fake, out);
    g_assert_cmpstr (out->str, ==, "bmy");
    g_string_truncate (out, 0);
    fake.len = 5;
    atk_cid_append_string (&fake, out);
    g_assert_cmpstr (out->str, ==, "bmzxw6ytb");
    g_string_free (out, TRUE);
  }
}

static char **
read_lines (const char *relative)
{
  g_autoptr (GBytes) bytes = atk_test_load_vector (relative);
  g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  return g_strsplit (text, "\n", -1);
}

/* A line is base32-CIDv1-shaped if it starts with "bafy"/"bafk" etc: multibase 'b' followed
 * by base32 for version 1 ("a" = 0b00000 then "f"…), allowing for stray spaces. */
static gboolean
looks_base32_cid (const char *line)
{
  g_autofree char *stripped = g_strstrip (g_strdup (line));
  return g_str_has_prefix (stripped, "ba");
}

static void
test_syntax_vectors (void)
{
  g_auto (GStrv) valid = read_lines ("interop/syntax/cid_syntax_valid.txt");
  g_auto (GStrv) invalid = read_lines ("interop/syntax/cid_syntax_invalid.txt");
  guint n_valid = 0, n_invalid = 0;

  for (guint i = 0; valid[i] != NULL; i++)
    {
      const char *line = valid[i];
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) bytes = NULL;
      g_autofree char *again = NULL;
      AtkCid cid;

      if (line[0] != 'b')
        continue;
      bytes = atk_cid_bytes_from_string (line, &error);
      g_assert_no_error (error);
      g_assert_true (
          atk_cid_parse (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), &cid, &error));
      again = atk_cid_to_string (&cid);
      g_assert_cmpstr (again, ==, line);
      n_valid++;
    }
  g_assert_cmpuint (n_valid, >=, 2);

  for (guint i = 0; invalid[i] != NULL; i++)
    {
      const char *line = invalid[i];
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) bytes = NULL;

      if (line[0] == '#' || line[0] == '\0' || !looks_base32_cid (line))
        continue;
      bytes = atk_cid_bytes_from_string (line, &error);
      g_assert_null (bytes);
      g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CID);
      n_invalid++;
    }
  g_assert_cmpuint (n_invalid, >=, 3);

  /* Other string rejects: upper case, padding, non-canonical tail bits, bad lengths. */
  const char *bad[] = {
    "",
    "b",
    "BAFYREIA",
    "bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=",
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdj", /* tail bits set */
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzd",  /* cut digest */
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdiaa",
    "bciqbed3k6ya5i3qqwljochwxdrk5exzqilbckapedujenz5b5hj5r3a", /* base32 CIDv0-like bytes */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) bytes = atk_cid_bytes_from_string (bad[i], &error);
      g_assert_null (bytes);
      g_assert_nonnull (error);
      g_assert_true (error->code == ATK_ERROR_BAD_CID || error->code == ATK_ERROR_TRUNCATED);
    }
}

static void
test_verify (void)
{
  static const char data[] = "hello world";
  /* SHA-256("hello world") from FIPS 180-2-style tools (sha256sum). */
  static const guint8 sha[32] = { 0xb9, 0x4d, 0x27, 0xb9, 0x93, 0x4d, 0x3e, 0x08, 0xa5, 0x2e, 0x52,
                                  0xd7, 0xda, 0x7d, 0xab, 0xfa, 0xc4, 0x84, 0xef, 0xe3, 0x7a, 0x53,
                                  0x80, 0xee, 0x90, 0x88, 0xf7, 0xac, 0xe2, 0xef, 0xcd, 0xe9 };
  guint8 buf[36] = { 0x01, 0x55, 0x12, 0x20 };
  g_autoptr (GError) error = NULL;
  AtkCid cid;

  memcpy (buf + 4, sha, 32);
  g_assert_true (atk_cid_parse (buf, sizeof buf, &cid, &error));
  g_assert_true (atk_cid_verify (&cid, (const guint8 *)data, strlen (data), &error));
  g_assert_no_error (error);

  g_assert_false (atk_cid_verify (&cid, (const guint8 *)data, strlen (data) - 1, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_CID_MISMATCH);
  g_clear_error (&error);

  buf[2] = 0x13; /* sha2-512 code: not supported */
  g_assert_true (atk_cid_parse (buf, sizeof buf, &cid, &error));
  g_assert_false (atk_cid_verify (&cid, (const guint8 *)data, strlen (data), &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_UNSUPPORTED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cid/varint", test_varint);
  g_test_add_func ("/cid/parse", test_parse);
  g_test_add_func ("/cid/string", test_string_known);
  g_test_add_func ("/cid/syntax-vectors", test_syntax_vectors);
  g_test_add_func ("/cid/verify", test_verify);
  return g_test_run ();
}
