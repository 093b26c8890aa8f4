/* libFuzzer target: one input = one CAR file, indexed, every block looked up and hashed,
 * every CID taken through its string form and back.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-car.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

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
