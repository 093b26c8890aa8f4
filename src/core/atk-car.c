/* CAR v1: a varint-framed DAG-CBOR header, then varint-framed (CID, data) blocks.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-car.h"

#include "atk-cbor.h"
#include "atk-error.h"

static gboolean
bad_car (GError **error, const char *message)
{
  g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CAR, message);
  return FALSE;
}

/* roots: a non-empty array of links; the first one is kept. */
static gboolean
read_roots (AtkCborReader *r, AtkCarReader *reader, GError **error)
{
  guint64 n;

  if (!atk_cbor_read_array_len (r, &n, error))
    return FALSE;
  for (guint64 i = 0; i < n; i++)
    {
      const guint8 *cid_bytes;
      gsize cid_len;
      AtkCid cid;

      if (!atk_cbor_read_link (r, &cid_bytes, &cid_len, error)
          || !atk_cid_parse (cid_bytes, cid_len, &cid, error))
        return FALSE;
      if (i == 0)
        {
          reader->root = cid;
          reader->has_root = TRUE;
        }
    }
  return TRUE;
}

static gboolean
parse_header (const guint8 *data, gsize len, AtkCarReader *reader, GError **error)
{
  AtkCborReader r;
  guint64 n_pairs;
  gboolean have_version = FALSE, have_roots = FALSE;
  AtkStr prev = { NULL, 0 };

  atk_cbor_reader_init (&r, data, len);
  if (!atk_cbor_read_map_len (&r, &n_pairs, error))
    return FALSE;
  for (guint64 i = 0; i < n_pairs; i++)
    {
      AtkStr key;

      if (!atk_cbor_read_text (&r, &key, error))
        return FALSE;
      if (prev.ptr != NULL && atk_cbor_key_compare (prev.ptr, prev.len, key.ptr, key.len) >= 0)
        return bad_car (error, "CAR header keys out of order or duplicated");
      prev = key;
      if (atk_str_equal (key, "version"))
        {
          gint64 version;
          if (!atk_cbor_read_int (&r, &version, error))
            return FALSE;
          if (version != 1)
            return bad_car (error, "unsupported CAR version");
          have_version = TRUE;
        }
      else if (atk_str_equal (key, "roots"))
        {
          if (!read_roots (&r, reader, error))
            return FALSE;
          have_roots = TRUE;
        }
      else if (!atk_cbor_skip (&r, error))
        return FALSE;
    }
  if (atk_cbor_reader_remaining (&r) != 0)
    return bad_car (error, "trailing bytes in the CAR header");
  if (!have_version || !have_roots)
    return bad_car (error, "CAR header lacks version or roots");
  return TRUE;
}

gboolean
atk_car_reader_init (AtkCarReader *reader, const guint8 *data, gsize len, GError **error)
{
  guint64 header_len;
  gsize n;

  memset (reader, 0, sizeof *reader);
  if (!atk_varint_read (data, len, &header_len, &n, error))
    {
      g_prefix_error (error, "CAR header length: ");
      return FALSE;
    }
  if (header_len > len - n)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_TRUNCATED, "CAR header is cut short");
      return FALSE;
    }
  if (!parse_header (data + n, header_len, reader, error))
    {
      g_prefix_error (error, "CAR header: ");
      return FALSE;
    }
  reader->pos = data + n + header_len;
  reader->end = data + len;
  return TRUE;
}

gboolean
atk_car_reader_next (AtkCarReader *reader, AtkCarBlock *block, GError **error)
{
  gsize avail = (gsize)(reader->end - reader->pos);
  g_autoptr (GError) local_error = NULL;
  guint64 block_len;
  gsize n, cid_len;

  if (avail == 0)
    return FALSE;
  if (!atk_varint_read (reader->pos, avail, &block_len, &n, error))
    {
      g_prefix_error (error, "CAR block length: ");
      return FALSE;
    }
  if (block_len > avail - n)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_TRUNCATED, "CAR block is cut short");
      return FALSE;
    }
  /* The CID must fit inside the block's own length. */
  if (!atk_cid_parse_prefix (reader->pos + n, block_len, &block->cid, &cid_len, &local_error))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CAR, "CAR block CID: %s", local_error->message);
      return FALSE;
    }
  block->data = reader->pos + n + cid_len;
  block->len = block_len - cid_len;
  reader->pos += n + block_len;
  return TRUE;
}

gboolean
atk_car_index_build (AtkCarIndex *index, const guint8 *data, gsize len, GError **error)
{
  AtkCarReader reader;
  GError *local_error = NULL;

  index->n_blocks = 0;
  index->has_root = FALSE;
  if (!atk_car_reader_init (&reader, data, len, error))
    return FALSE;
  index->root = reader.root;
  index->has_root = reader.has_root;

  for (;;)
    {
      AtkCarBlock block;

      if (!atk_car_reader_next (&reader, &block, &local_error))
        {
          if (local_error == NULL)
            return TRUE;
          g_propagate_error (error, local_error);
          return FALSE;
        }
      if (index->n_blocks == ATK_CAR_MAX_BLOCKS)
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE, "CAR has more than %d blocks",
                       ATK_CAR_MAX_BLOCKS);
          return FALSE;
        }
      index->blocks[index->n_blocks++] = block;
    }
}

const AtkCarBlock *
atk_car_index_lookup (const AtkCarIndex *index, const AtkCid *cid)
{
  /* Commit CARs hold a handful of blocks, so a scan beats building a hash table. Comparing
   * the last digest byte first rejects almost every non-match without a memcmp. */
  guint8 last;

  if (cid->len == 0)
    return NULL;
  last = cid->bytes[cid->len - 1];
  for (guint i = 0; i < index->n_blocks; i++)
    {
      const AtkCid *c = &index->blocks[i].cid;
      if (c->len == cid->len && c->bytes[c->len - 1] == last
          && memcmp (c->bytes, cid->bytes, cid->len) == 0)
        return &index->blocks[i];
    }
  return NULL;
}
