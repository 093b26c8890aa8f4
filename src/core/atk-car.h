/* at-kafka: a CAR v1 reader (the `blocks` of a commit). Pure: no I/O, no copies.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-cid.h"

G_BEGIN_DECLS

typedef struct
{
  AtkCid cid;
  const guint8 *data;
  gsize len;
} AtkCarBlock;

typedef struct
{
  const guint8 *pos;
  const guint8 *end;
  AtkCid root; /* first root of the header */
  gboolean has_root;
} AtkCarReader;

/* Parses the header ({version: 1, roots: [CID…]}) and positions at the first block. */
gboolean atk_car_reader_init (AtkCarReader *reader, const guint8 *data, gsize len, GError **error);

/* Reads the next block. Returns FALSE with *error unset at the clean end of the file. */
gboolean atk_car_reader_next (AtkCarReader *reader, AtkCarBlock *block, GError **error);

/* All blocks of a CAR, for lookups by CID. Fixed capacity so that decoding a commit needs
 * no allocation; a CAR with more blocks is ATK_ERROR_TOO_LARGE. */
#define ATK_CAR_MAX_BLOCKS 4096

typedef struct
{
  AtkCid root;
  gboolean has_root;
  guint n_blocks;
  AtkCarBlock blocks[ATK_CAR_MAX_BLOCKS];
} AtkCarIndex;

gboolean atk_car_index_build (AtkCarIndex *index, const guint8 *data, gsize len, GError **error);
const AtkCarBlock *atk_car_index_lookup (const AtkCarIndex *index, const AtkCid *cid);

G_END_DECLS
