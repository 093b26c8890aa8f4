/* at-kafka: content identifiers in their binary and string forms: CIDv1 (base32 multibase)
 * everywhere, and CIDv0 (a bare sha2-256 multihash, base58btc) as a link inside a record.
 * Pure: no I/O, no globals.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ATK_CID_CODEC_DAG_CBOR 0x71
#define ATK_CID_CODEC_RAW 0x55
#define ATK_CID_CODEC_DAG_PB 0x70
#define ATK_MULTIHASH_SHA2_256 0x12

/* Longest CIDv0 multihash we render: v0 is sha2-256 (32-byte digest); base58 costs
 * quadratic time, so absurd lengths are refused rather than encoded. */
#define ATK_CID_V0_MAX_LEN 128

/* A parsed CID: a view of its bytes in some buffer plus the decoded fields. */
typedef struct
{
  const guint8 *bytes; /* the whole binary CID: version, codec, multihash (v0: multihash) */
  gsize len;
  gboolean v0; /* CIDv0 (only from atk_cid_parse_link()); FALSE: CIDv1 */
  guint64 codec;
  guint64 hash_code;
  const guint8 *digest;
  gsize digest_len;
} AtkCid;

/* Parses a binary CIDv1 at the start of data; *consumed is how many bytes it took.
 * Trailing bytes are allowed (CAR blocks follow the CID). CIDv0 and other versions are
 * ATK_ERROR_BAD_CID. */
gboolean atk_cid_parse_prefix (const guint8 *data, gsize len, AtkCid *cid, gsize *consumed,
                               GError **error);

/* Parses exactly len bytes as a CIDv1 (as inside a tag-42 link). */
gboolean atk_cid_parse (const guint8 *data, gsize len, AtkCid *cid, GError **error);

/* Parses exactly len bytes as the CID of a link inside a record (tag 42), as the
 * TypeScript libraries (multiformats CID.decode) do: any codec of CIDv1, or CIDv0 — a
 * bare multihash starting with 0x12 (sha2-256), codec dag-pb. */
gboolean atk_cid_parse_link (const guint8 *data, gsize len, AtkCid *cid, GError **error);

gboolean atk_cid_equal (const AtkCid *a, const AtkCid *b);

/* Appends the canonical string: base32-lower multibase ("bafy…") for v1, plain base58btc
 * ("Qm…") for v0. */
void atk_cid_append_string (const AtkCid *cid, GString *out);
char *atk_cid_to_string (const AtkCid *cid);

/* Parses a "b…" base32 CID string into freshly allocated bytes (for tests and tools). */
GBytes *atk_cid_bytes_from_string (const char *str, GError **error);

/* Checks that data hashes to the CID's digest (SHA-256 only; other hashes are
 * ATK_ERROR_UNSUPPORTED). A mismatch is ATK_ERROR_CID_MISMATCH. */
gboolean atk_cid_verify (const AtkCid *cid, const guint8 *data, gsize len, GError **error);

/* A SHA-256 context kept for many atk_cid_verify_with() calls: the one-shot form sets up
 * and frees a libcrypto context per block. Not thread-safe: one per thread. */
typedef struct _AtkCidHasher AtkCidHasher;

AtkCidHasher *atk_cid_hasher_new (void);
void atk_cid_hasher_free (AtkCidHasher *hasher);
/* atk_cid_verify() with the hasher's context; a NULL hasher is the one-shot form. */
gboolean atk_cid_verify_with (AtkCidHasher *hasher, const AtkCid *cid, const guint8 *data,
                              gsize len, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkCidHasher, atk_cid_hasher_free)

/* The general case of atk_varint_read(), with every check and error message. */
gboolean atk_varint_read_full (const guint8 *data, gsize len, guint64 *value, gsize *consumed,
                               GError **error);

/* Unsigned LEB128 varint, at most 9 bytes, minimally encoded; used by CIDs and CAR
 * framing. Inline for the one-byte form every CID field but the codec of a few takes. */
static inline gboolean
atk_varint_read (const guint8 *data, gsize len, guint64 *value, gsize *consumed, GError **error)
{
  if (G_LIKELY (len > 0 && data[0] < 0x80))
    {
      *value = data[0];
      *consumed = 1;
      return TRUE;
    }
  /* Two bytes (CAR block lengths): a final byte of zero would be overlong. */
  if (len > 1 && data[0] >= 0x80 && data[1] < 0x80 && data[1] != 0)
    {
      *value = (guint64)(data[0] & 0x7f) | (guint64)data[1] << 7;
      *consumed = 2;
      return TRUE;
    }
  return atk_varint_read_full (data, len, value, consumed, error);
}

G_END_DECLS
