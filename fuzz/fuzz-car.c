/* libFuzzer target: one input = one CAR file, indexed, every block looked up and hashed,
 * every CID taken through its string form and back.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-car.h"
#include "atk-frame.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* The meson test passes a corpus directory that may not exist yet: seed it from the
 * captured frames under ATK_VECTORS_DIR (make-corpus.py does the same for manual runs). */
static void
write_seed (const char *dir, const guint8 *data, gsize len)
{
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
  g_autofree char *path = NULL;

  sum[16] = '\0';
  path = g_build_filename (dir, sum, NULL);
  if (!g_file_set_contents (path, (const char *)data, (gssize)len, NULL))
    abort ();
}

/* A CAR seed is the blocks of a #commit or #sync. */
static void
seed_from_blocks (const char *dir, const AtkFrame *frame, AtkCarIndex *index)
{
  write_seed (dir, frame->blocks, frame->blocks_len);
}

static void
seed_corpus (const char *vectors, const char *dir)
{
  static const char *const captures[] = { "relay-capture/frames.bin", "pds-capture/frames.bin" };
  g_autofree AtkFrame *frame = g_new0 (AtkFrame, 1);
  g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);

  if (g_mkdir_with_parents (dir, 0755) != 0)
    abort ();
  for (gsize i = 0; i < G_N_ELEMENTS (captures); i++)
    {
      g_autofree char *path = g_build_filename (vectors, captures[i], NULL);
      g_autofree char *contents = NULL;
      gsize len;
      AtkFrameFileReader reader;
      const guint8 *data;
      gsize data_len;

      if (!g_file_get_contents (path, &contents, &len, NULL))
        continue;
      atk_frame_file_reader_init (&reader, (const guint8 *)contents, len);
      while (atk_frame_file_reader_next (&reader, &data, &data_len, NULL))
        {
          if (!atk_frame_decode (data, data_len, frame, NULL) || frame->blocks_len == 0)
            continue;
          seed_from_blocks (dir, frame, index);
        }
    }
}

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *vectors = g_getenv ("ATK_VECTORS_DIR");
  const char *dir = NULL;

  for (int i = 1; i < *argc; i++)
    if ((*argv)[i][0] != '-')
      dir = (*argv)[i];
  if (vectors != NULL && dir != NULL && !g_file_test (dir, G_FILE_TEST_EXISTS))
    seed_corpus (vectors, dir);
  return 0;
}

static void
check_block (const AtkCarIndex *index, const AtkCarBlock *block)
{
  const AtkCarBlock *found = atk_car_index_lookup (index, &block->cid);
  GError *error = NULL;
  char *s;
  GBytes *back;

  if (found == NULL || found > block || !atk_cid_equal (&found->cid, &block->cid))
    abort ();
  if (!atk_cid_verify (&block->cid, block->data, block->len, &error))
    g_clear_error (&error);

  /* Every CID the reader accepts must survive base32 and back unchanged. */
  s = atk_cid_to_string (&block->cid);
  back = atk_cid_bytes_from_string (s, NULL);
  if (back == NULL || g_bytes_get_size (back) != block->cid.len
      || memcmp (g_bytes_get_data (back, NULL), block->cid.bytes, block->cid.len) != 0)
    abort ();
  g_bytes_unref (back);
  g_free (s);
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  static AtkCarIndex *index;
  GError *error = NULL;

  if (index == NULL)
    index = g_new0 (AtkCarIndex, 1);

  if (!atk_car_index_build (index, data, size, &error))
    {
      if (error == NULL)
        abort ();
      g_error_free (error);
      return 0;
    }
  if (index->n_blocks > ATK_CAR_MAX_BLOCKS)
    abort ();
  for (guint i = 0; i < index->n_blocks; i++)
    {
      const AtkCarBlock *b = &index->blocks[i];
      if (b->data < data || b->data + b->len > data + size)
        abort ();
      check_block (index, b);
    }
  return 0;
}
