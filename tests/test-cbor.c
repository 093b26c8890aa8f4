/* Tests for the strict DAG-CBOR reader, on hand-built byte strings.
 * SPDX-License-Identifier: MIT */
#include "atk-cbor.h"
#include "atk-error.h"
#include "atk-test-util.h"

/* Skips the whole input and expects either success with nothing left, or the given error. */
static void
check_skip (const char *input, int expected_code)
{
  g_autoptr (GByteArray) bytes = atk_test_hex (input);
  g_autoptr (GError) error = NULL;
  AtkCborReader reader;
  gboolean ok;

  atk_cbor_reader_init (&reader, bytes->data, bytes->len);
  ok = atk_cbor_skip (&reader, &error);
  if (expected_code < 0)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_cmpuint (atk_cbor_reader_remaining (&reader), ==, 0);
    }
  else
    {
      g_assert_false (ok);
      g_assert_error (error, ATK_ERROR, expected_code);
    }
}

static void
test_ints (void)
{
  struct
  {
    const char *input;
    gint64 value;
  } good[] = {
    { "00", 0 },
    { "17", 23 },
    { "18 18", 24 },
    { "18 ff", 255 },
    { "19 01 00", 256 },
    { "1a 00 01 00 00", 65536 },
    { "1b 00 00 00 01 00 00 00 00", G_GINT64_CONSTANT (4294967296) },
    { "1b 00 1f ff ff ff ff ff ff", G_GINT64_CONSTANT (9007199254740991) },
    { "1b 7f ff ff ff ff ff ff ff", G_MAXINT64 },
    { "20", -1 },
    { "37", -24 },
    { "38 18", -25 },
    { "3b 7f ff ff ff ff ff ff ff", G_MININT64 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr (GByteArray) bytes = atk_test_hex (good[i].input);
      g_autoptr (GError) error = NULL;
      AtkCborReader reader;
      gint64 v = 12345;

      atk_cbor_reader_init (&reader, bytes->data, bytes->len);
      g_assert_true (atk_cbor_read_int (&reader, &v, &error));
      g_assert_no_error (error);
      g_assert_cmpint (v, ==, good[i].value);
      g_assert_cmpuint (atk_cbor_reader_remaining (&reader), ==, 0);
    }

  const char *bad[] = {
    "18 17",                      /* 23 in a one-byte argument */
    "19 00 ff",                   /* 255 in two bytes */
    "1a 00 00 ff ff",             /* 65535 in four bytes */
    "1b 00 00 00 00 ff ff ff ff", /* 2^32-1 in eight bytes */
    "38 00",                      /* -1 in a one-byte argument */
    "1b 80 00 00 00 00 00 00 00", /* 2^63: outside int64 */
    "3b 80 00 00 00 00 00 00 00", /* -2^63-1 */
    "3b ff ff ff ff ff ff ff ff", /* -2^64 */
    "1c",                         /* reserved additional information */
    "61 61",                      /* text is not an int */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GByteArray) bytes = atk_test_hex (bad[i]);
      g_autoptr (GError) error = NULL;
      AtkCborReader reader;
      gint64 v;

      atk_cbor_reader_init (&reader, bytes->data, bytes->len);
      g_assert_false (atk_cbor_read_int (&reader, &v, &error));
      g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CBOR);
    }
}

static void
test_truncated (void)
{
  /* Each of these ends inside a head or a length: TRUNCATED, not a read past the end. */
  const char *cases[] = {
    "",
    "18",
    "19 01",
    "1b 00 00 00 01 00 00 00",
    "62 61",                      /* text of 2, 1 present */
    "5a 00 01 00 00 00",          /* bytes of 65536 */
    "7b 7f ff ff ff ff ff ff ff", /* enormous text length */
    "83 01 02",                   /* array of 3, 2 present */
    "9b 00 00 00 01 00 00 00 00", /* enormous array */
    "a2 61 61 01",                /* map of 2 pairs, 1 present */
    "bb 40 00 00 00 00 00 00 00", /* map whose pair count overflows when doubled */
    "d8 2a",                      /* tag without content */
    "d8",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    check_skip (cases[i], ATK_ERROR_TRUNCATED);
}

static void
test_rejects (void)
{
  const char *cases[] = {
    "5f 41 00 ff",                /* indefinite byte string */
    "7f 61 61 ff",                /* indefinite text */
    "9f 01 ff",                   /* indefinite array */
    "bf 61 61 01 ff",             /* indefinite map */
    "f9 3c 00",                   /* half float 1.0 */
    "fa 3f 80 00 00",             /* single float */
    "fb 3f f0 00 00 00 00 00 00", /* double */
    "f7",                         /* undefined */
    "f0",                         /* simple value 16 */
    "f8 20",                      /* simple value 32 */
    "f8 14",                      /* false, non-minimal */
    "c0 60",                      /* tag 0 */
    "c1 00",                      /* tag 1 */
    "d8 2b 41 00",                /* tag 43 */
    "d8 2a 41 00",                /* tag 42 without a CID after the 0x00 */
    "d8 2a 42 01 01",             /* tag 42 without the 0x00 prefix */
    "d8 2a 61 61",                /* tag 42 over text */
    "62 c3 28",                   /* invalid UTF-8 */
    "62 c0 80",                   /* overlong NUL */
    "63 ed a0 80",                /* surrogate */
    "64 f4 90 80 80",             /* above U+10FFFF */
    "a1 01 01",                   /* integer key */
    "a2 61 62 01 61 61 01",       /* keys out of order */
    "a2 62 61 61 01 61 62 01",    /* longer key before shorter */
    "a2 61 61 01 61 61 02",       /* duplicate key */
    "a1 41 61 01",                /* byte-string key */
    "1c",
    "1f",
    "5c",
    "dc",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    check_skip (cases[i], ATK_ERROR_BAD_CBOR);
}

static void
test_accepts (void)
{
  const char *cases[] = {
    "f4",
    "f5",
    "f6",
    "60",
    "40",
    "80",
    "a0",
    "61 00",                   /* U+0000 is valid text */
    "64 f0 9f 98 80",          /* emoji */
    "63 e2 82 ac",             /* euro sign */
    "a2 61 62 01 62 61 61 02", /* shorter key first */
    "a3 61 61 01 61 62 80 62 61 61 a1 61 7a f6",
    /* A link: tag 42 over 0x00 + a 36-byte CIDv1. */
    ("d8 2a 58 25 00 01 71 12 20 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f"
     " 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f"),
    "82 82 01 82 02 80 a1 61 61 82 f5 f4",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    check_skip (cases[i], -1);
}

static void
test_depth (void)
{
  g_autoptr (GByteArray) ok = g_byte_array_new ();
  g_autoptr (GByteArray) deep = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  AtkCborReader reader;
  guint8 one_array = 0x81, zero = 0x00, a_map[] = { 0xa1, 0x61, 0x6b };

  /* ATK_CBOR_MAX_DEPTH nested containers are fine… */
  for (guint i = 0; i < ATK_CBOR_MAX_DEPTH; i++)
    {
      if (i % 2)
        g_byte_array_append (ok, a_map, sizeof a_map);
      else
        g_byte_array_append (ok, &one_array, 1);
    }
  g_byte_array_append (ok, &zero, 1);
  atk_cbor_reader_init (&reader, ok->data, ok->len);
  g_assert_true (atk_cbor_skip (&reader, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (atk_cbor_reader_remaining (&reader), ==, 0);

  /* …one more is TOO_LARGE, and a million is too, without exhausting the stack. */
  g_byte_array_prepend (ok, &one_array, 1);
  atk_cbor_reader_init (&reader, ok->data, ok->len);
  g_assert_false (atk_cbor_skip (&reader, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);
  g_clear_error (&error);

  for (guint i = 0; i < 1000000; i++)
    g_byte_array_append (deep, &one_array, 1);
  g_byte_array_append (deep, &zero, 1);
  atk_cbor_reader_init (&reader, deep->data, deep->len);
  g_assert_false (atk_cbor_skip (&reader, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);
}

static void
test_typed_reads (void)
{
  /* A sequence of items: "#commit", h'0102', true, false, 42(h'00 01 71 12 01 aa'), null,
   * then an array of 4 items. */
  g_autoptr (GByteArray) bytes = atk_test_hex (
      "67 23 63 6f 6d 6d 69 74  42 01 02  f5  f4  d8 2a 46 00 01 71 12 01 aa  f6  84 01 02 03 04");
  g_autoptr (GError) error = NULL;
  AtkCborReader reader;
  AtkStr text;
  const guint8 *data;
  gsize len;
  gboolean b;
  guint64 n;
  gint64 v;

  atk_cbor_reader_init (&reader, bytes->data, bytes->len);
  g_assert_true (atk_cbor_read_text (&reader, &text, &error));
  g_assert_true (atk_str_equal (text, "#commit"));
  g_assert_false (atk_str_equal (text, "#commi"));

  /* Wrong type: error, and the reader has not moved. */
  g_assert_false (atk_cbor_read_text (&reader, &text, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CBOR);
  g_clear_error (&error);
  g_assert_false (atk_cbor_read_int (&reader, &v, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CBOR);
  g_clear_error (&error);

  g_assert_true (atk_cbor_read_bytes (&reader, &data, &len, &error));
  g_assert_cmpuint (len, ==, 2);
  g_assert_cmpuint (data[0], ==, 1);
  g_assert_cmpuint (data[1], ==, 2);

  g_assert_false (atk_cbor_try_null (&reader));
  g_assert_true (atk_cbor_read_bool (&reader, &b, &error));
  g_assert_true (b);
  g_assert_true (atk_cbor_read_bool (&reader, &b, &error));
  g_assert_false (b);

  g_assert_true (atk_cbor_read_link (&reader, &data, &len, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (len, ==, 5);
  g_assert_cmpuint (data[0], ==, 0x01);
  g_assert_cmpuint (data[4], ==, 0xaa);

  g_assert_false (atk_cbor_read_bool (&reader, &b, &error)); /* null is not a bool */
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CBOR);
  g_clear_error (&error);
  g_assert_true (atk_cbor_try_null (&reader));

  AtkCborMajor major;
  g_assert_true (atk_cbor_peek_major (&reader, &major, &error));
  g_assert_cmpint (major, ==, ATK_CBOR_ARRAY);
  g_assert_false (atk_cbor_read_map_len (&reader, &n, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CBOR);
  g_clear_error (&error);
  g_assert_true (atk_cbor_read_array_len (&reader, &n, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpuint (atk_cbor_reader_remaining (&reader), ==, 4);

  atk_cbor_reader_init (&reader, bytes->data, 0);
  g_assert_false (atk_cbor_peek_major (&reader, &major, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TRUNCATED);
}

static void
test_head (void)
{
  g_autoptr (GByteArray) bytes = atk_test_hex ("b9 01 00");
  g_autoptr (GError) error = NULL;
  AtkCborReader reader;
  AtkCborMajor major;
  guint64 arg;

  /* A map of 256 pairs with no pairs present: truncated, and the reader has not moved. */
  atk_cbor_reader_init (&reader, bytes->data, bytes->len);
  g_assert_false (atk_cbor_read_head (&reader, &major, &arg, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TRUNCATED);
  g_assert_true (reader.pos == bytes->data);
  g_clear_error (&error);

  g_autoptr (GByteArray) sv = atk_test_hex ("f6");
  atk_cbor_reader_init (&reader, sv->data, sv->len);
  g_assert_true (atk_cbor_read_head (&reader, &major, &arg, &error));
  g_assert_cmpint (major, ==, ATK_CBOR_SIMPLE);
  g_assert_cmpuint (arg, ==, 22);
}

static void
test_utf8 (void)
{
  g_assert_true (atk_utf8_validate ("", 0));
  g_assert_true (atk_utf8_validate ("abcdefghijklmnopqrstuvwxyz", 26));
  g_assert_true (atk_utf8_validate ("a\0b", 3));
  g_assert_true (atk_utf8_validate ("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
  g_assert_true (atk_utf8_validate ("abcdefgh\xc3\xa9", 10)); /* after the 8-byte path */
  g_assert_false (atk_utf8_validate ("abcdefgh\xc3", 9));     /* cut sequence */
  g_assert_false (atk_utf8_validate ("\xe0\x80\xaf", 3));     /* overlong '/' */
  g_assert_false (atk_utf8_validate ("\xf0\x8f\xbf\xbf", 4)); /* overlong */
  g_assert_false (atk_utf8_validate ("\xff", 1));
  g_assert_false (atk_utf8_validate ("\x80", 1));
  g_assert_false (atk_utf8_validate ("\xc3\xa9\xc3", 3));

  g_assert_cmpint (atk_cbor_key_compare ("b", 1, "aa", 2), <, 0);
  g_assert_cmpint (atk_cbor_key_compare ("ab", 2, "aa", 2), >, 0);
  g_assert_cmpint (atk_cbor_key_compare ("ab", 2, "ab", 2), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cbor/ints", test_ints);
  g_test_add_func ("/cbor/truncated", test_truncated);
  g_test_add_func ("/cbor/rejects", test_rejects);
  g_test_add_func ("/cbor/accepts", test_accepts);
  g_test_add_func ("/cbor/depth", test_depth);
  g_test_add_func ("/cbor/typed-reads", test_typed_reads);
  g_test_add_func ("/cbor/head", test_head);
  g_test_add_func ("/cbor/utf8", test_utf8);
  return g_test_run ();
}
