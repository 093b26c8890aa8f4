/* Tests for the CAR v1 reader: real repository CARs and hand-broken ones.
 * SPDX-License-Identifier: MIT */
#include "atk-car.h"
#include "atk-error.h"
#include "atk-test-util.h"

static const char *const car_files[] = {
  "indigo/testing-testdata/bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu.car",
  "indigo/testing-testdata/fakermaker.repo.car",
  "indigo/testing-testdata/greenground.repo.car",
  "indigo/testing-testdata/paul_staging.repo.car",
  "indigo/testing-testdata/repo_slice.car",
};

/* Walks block framing only (varint lengths), independently of CID parsing, to count blocks. */
static guint
count_blocks_by_framing (const guint8 *p, gsize len)
{
  gsize pos = 0;
  guint n = 0;
  gboolean header = TRUE;

  while (pos < len)
    {
      guint64 v = 0;
      guint shift = 0;
      while (p[pos] & 0x80)
        {
          v |= (guint64)(p[pos++] & 0x7f) << shift;
          shift += 7;
        }
      v |= (guint64)p[pos++] << shift;
      pos += v;
      if (!header)
        n++;
      header = FALSE;
    }
  g_assert_cmpuint (pos, ==, len);
  return n;
}

static void
test_real_cars (void)
{
  for (gsize f = 0; f < G_N_ELEMENTS (car_files); f++)
    {
      g_autoptr (GBytes) bytes = atk_test_load_vector (car_files[f]);
      g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);
      g_autoptr (GError) error = NULL;
      gsize len;
      const guint8 *data = g_bytes_get_data (bytes, &len);
      gsize total = 0;

      g_assert_true (atk_car_index_build (index, data, len, &error));
      g_assert_no_error (error);
      g_assert_true (index->has_root);
      g_assert_cmpuint (index->root.codec, ==, ATK_CID_CODEC_DAG_CBOR);
      g_assert_cmpuint (index->n_blocks, ==, count_blocks_by_framing (data, len));
      g_assert_cmpuint (index->n_blocks, >=, 4);

      for (guint i = 0; i < index->n_blocks; i++)
        {
          const AtkCarBlock *b = &index->blocks[i];
          g_assert_true (atk_cid_verify (&b->cid, b->data, b->len, &error));
          g_assert_no_error (error);
          /* Repository CARs may repeat a block; a lookup finds the first copy. */
          const AtkCarBlock *found = atk_car_index_lookup (index, &b->cid);
          g_assert_nonnull (found);
          g_assert_true (found <= b);
          g_assert_true (atk_cid_equal (&found->cid, &b->cid));
          g_assert_cmpmem (found->data, found->len, b->data, b->len);
          total += b->len + b->cid.len;
        }
      g_assert_cmpuint (total, <, len);
      /* The root (the signed commit) is one of the blocks. */
      g_assert_nonnull (atk_car_index_lookup (index, &index->root));
    }
}

static void
test_named_root (void)
{
  /* This file is named after its root CID. */
  g_autoptr (GBytes) bytes = atk_test_load_vector (car_files[0]);
  g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);
  g_autoptr (GError) error = NULL;
  g_autofree char *root = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  g_assert_true (atk_car_index_build (index, data, len, &error));
  root = atk_cid_to_string (&index->root);
  g_assert_cmpstr (root, ==, "bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu");
}

static void
test_slice_record (void)
{
  /* repo_slice_record.json names a record CID that must be in repo_slice.car. */
  g_autoptr (GBytes) bytes = atk_test_load_vector ("indigo/testing-testdata/repo_slice.car");
  g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) cid_bytes = NULL;
  AtkCid cid;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  const AtkCarBlock *block;

  g_assert_true (atk_car_index_build (index, data, len, &error));
  cid_bytes = atk_cid_bytes_from_string (
      "bafyreiapesxwibnujg44xphqq23ekkozgcmnenj2onnx4gkgy4uipziyc4", &error);
  g_assert_no_error (error);
  g_assert_true (atk_cid_parse (g_bytes_get_data (cid_bytes, NULL), g_bytes_get_size (cid_bytes),
                                &cid, &error));
  block = atk_car_index_lookup (index, &cid);
  g_assert_nonnull (block);
  g_assert_true (atk_cid_verify (&block->cid, block->data, block->len, &error));
  g_assert_no_error (error);

  /* A CID that is not there: flip one digest byte. */
  g_autofree guint8 *other = g_memdup2 (cid.bytes, cid.len);
  other[cid.len - 3] ^= 0x40;
  g_assert_true (atk_cid_parse (other, cid.len, &cid, &error));
  g_assert_null (atk_car_index_lookup (index, &cid));
}

static void
test_corrupted_block (void)
{
  g_autoptr (GBytes) bytes = atk_test_load_vector ("indigo/testing-testdata/greenground.repo.car");
  g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);
  gsize len;
  g_autofree guint8 *copy = g_memdup2 (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_autoptr (GError) error = NULL;
  guint n_checked = 0;

  len = g_bytes_get_size (bytes);
  g_assert_true (atk_car_index_build (index, copy, len, &error));

  /* Flip the last data byte of each block in turn: that block, and only it, fails. */
  for (guint i = 0; i < index->n_blocks; i++)
    {
      AtkCarBlock *b = &index->blocks[i];
      guint8 *last = (guint8 *)b->data + b->len - 1;

      *last ^= 0x01;
      for (guint j = 0; j < index->n_blocks; j++)
        {
          const AtkCarBlock *o = &index->blocks[j];
          gboolean ok = atk_cid_verify (&o->cid, o->data, o->len, &error);
          if (j == i)
            {
              g_assert_false (ok);
              g_assert_error (error, ATK_ERROR, ATK_ERROR_CID_MISMATCH);
              g_clear_error (&error);
            }
          else
            g_assert_true (ok);
        }
      *last ^= 0x01;
      n_checked++;
    }
  g_assert_cmpuint (n_checked, ==, 4);
}

static void
test_truncations (void)
{
  /* Every prefix of a real CAR either parses as a CAR with fewer blocks or fails with an
   * error; none crashes or reads past the end (the copy is exactly as long as the prefix,
   * so ASan would see an overread). */
  g_autoptr (GBytes) bytes = atk_test_load_vector ("indigo/testing-testdata/repo_slice.car");
  g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  guint n_ok = 0;

  for (gsize cut = 0; cut < len; cut++)
    {
      g_autofree guint8 *prefix = g_memdup2 (data, cut);
      g_autoptr (GError) error = NULL;

      if (atk_car_index_build (index, prefix, cut, &error))
        {
          g_assert_no_error (error);
          g_assert_cmpuint (index->n_blocks, <, 5);
          n_ok++;
        }
      else
        {
          g_assert_nonnull (error);
          g_assert_true (error->domain == ATK_ERROR);
        }
    }
  /* Only cuts exactly at block boundaries parse: after the header and after blocks 1–4. */
  g_assert_cmpuint (n_ok, ==, 5);
}

static void
test_bad_headers (void)
{
  struct
  {
    const char *name;
    guint8 bytes[64];
    gsize len;
    int code;
  } cases[] = {
    { "empty", { 0 }, 0, ATK_ERROR_TRUNCATED },
    { "header longer than input", { 0x10, 0xa0 }, 2, ATK_ERROR_TRUNCATED },
    { "header not a map", { 0x01, 0x80 }, 2, ATK_ERROR_BAD_CBOR },
    { "header without roots",
      { 0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01 },
      11,
      ATK_ERROR_BAD_CAR },
    { "version 2",
      { 0x11, 0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x80, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n',
        0x02 },
      18,
      ATK_ERROR_BAD_CAR },
    { "roots not links",
      { 0x12, 0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x81, 0x01, 0x67, 'v', 'e', 'r', 's', 'i', 'o',
        'n', 0x01 },
      19,
      ATK_ERROR_BAD_CBOR },
    { "keys out of order",
      { 0x11, 0xa2, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01, 0x65, 'r', 'o', 'o', 't', 's',
        0x80 },
      18,
      ATK_ERROR_BAD_CAR },
    { "trailing bytes in header",
      { 0x12, 0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x80, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n',
        0x01, 0x00 },
      19,
      ATK_ERROR_BAD_CAR },
    /* A valid empty-roots header, then a block whose length does not cover its CID. */
    { "block shorter than its CID",
      { 0x11, 0xa2, 0x65, 'r', 'o', 'o',  't',  's',  0x80, 0x67, 'v',  'e',
        'r',  's',  'i',  'o', 'n', 0x01, 0x03, 0x01, 0x71, 0x12, 0x20, 0x00 },
      24,
      ATK_ERROR_BAD_CAR },
    { "block longer than input",
      { 0x11, 0xa2, 0x65, 'r', 'o', 'o', 't',  's',  0x80, 0x67, 'v',
        'e',  'r',  's',  'i', 'o', 'n', 0x01, 0x30, 0x01, 0x71 },
      21,
      ATK_ERROR_TRUNCATED },
    { "block length varint cut",
      { 0x11, 0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x80, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n',
        0x01, 0x80 },
      19,
      ATK_ERROR_TRUNCATED },
    { "CIDv0 block",
      { 0x11, 0xa2, 0x65, 'r', 'o', 'o', 't',  's',  0x80, 0x67, 'v',
        'e',  'r',  's',  'i', 'o', 'n', 0x01, 0x03, 0x12, 0x01, 0x00 },
      22,
      ATK_ERROR_BAD_CAR },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);
      g_autoptr (GError) error = NULL;

      g_test_message ("case: %s", cases[i].name);
      g_assert_false (atk_car_index_build (index, cases[i].bytes, cases[i].len, &error));
      g_assert_error (error, ATK_ERROR, cases[i].code);
    }

  /* The same empty-roots header with no blocks is a valid, empty CAR. */
  {
    static const guint8 ok[] = { 0x11, 0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x80,
                                 0x67, 'v',  'e',  'r', 's', 'i', 'o', 'n', 0x01 };
    g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);
    g_autoptr (GError) error = NULL;
    g_assert_true (atk_car_index_build (index, ok, sizeof ok, &error));
    g_assert_no_error (error);
    g_assert_false (index->has_root);
    g_assert_cmpuint (index->n_blocks, ==, 0);
  }
}

static void
test_too_many_blocks (void)
{
  /* ATK_CAR_MAX_BLOCKS + 1 tiny identity-hash blocks. */
  static const guint8 header[] = { 0x11, 0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x80,
                                   0x67, 'v',  'e',  'r', 's', 'i', 'o', 'n', 0x01 };
  static const guint8 block[] = { 0x05, 0x01, 0x55, 0x00, 0x01, 0x61 };
  g_autoptr (GByteArray) car = g_byte_array_new ();
  g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);
  g_autoptr (GError) error = NULL;

  g_byte_array_append (car, header, sizeof header);
  for (guint i = 0; i < ATK_CAR_MAX_BLOCKS; i++)
    g_byte_array_append (car, block, sizeof block);
  g_assert_true (atk_car_index_build (index, car->data, car->len, &error));
  g_assert_cmpuint (index->n_blocks, ==, ATK_CAR_MAX_BLOCKS);
  g_assert_cmpuint (index->blocks[0].len, ==, 0);

  g_byte_array_append (car, block, sizeof block);
  g_assert_false (atk_car_index_build (index, car->data, car->len, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/car/real", test_real_cars);
  g_test_add_func ("/car/named-root", test_named_root);
  g_test_add_func ("/car/slice-record", test_slice_record);
  g_test_add_func ("/car/corrupted-block", test_corrupted_block);
  g_test_add_func ("/car/truncations", test_truncations);
  g_test_add_func ("/car/bad-headers", test_bad_headers);
  g_test_add_func ("/car/too-many-blocks", test_too_many_blocks);
  return g_test_run ();
}
