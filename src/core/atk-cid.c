/* CIDs: binary parsing (v1; v0 for record links), the base32 multibase form of v1, the
 * base58btc form of v0, SHA-256 verification.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-cid.h"

#include "atk-error.h"
#include "atk-json-out.h"

#include <openssl/evp.h>

#define VARINT_MAX_BYTES 9

static const char base32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char base58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

gboolean
atk_varint_read_full (const guint8 *data, gsize len, guint64 *value, gsize *consumed,
                      GError **error)
{
  guint64 v = 0;

  for (gsize i = 0; i < VARINT_MAX_BYTES; i++)
    {
      if (i >= len)
        {
          g_set_error_literal (error, ATK_ERROR, ATK_ERROR_TRUNCATED, "input ends inside a varint");
          return FALSE;
        }
      v |= (guint64)(data[i] & 0x7f) << (7 * i);
      if ((data[i] & 0x80) == 0)
        {
          /* A final zero byte after the first adds nothing: an overlong encoding. */
          if (i > 0 && data[i] == 0)
            {
              g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CID,
                                   "varint is not minimally encoded");
              return FALSE;
            }
          *value = v;
          *consumed = i + 1;
          return TRUE;
        }
    }
  g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CID, "varint longer than 9 bytes");
  return FALSE;
}

gboolean
atk_cid_parse_prefix (const guint8 *data, gsize len, AtkCid *cid, gsize *consumed, GError **error)
{
  guint64 version, codec, hash_code, digest_len;
  gsize pos = 0, n;

  /* Nearly every CID on the network: v1, a one-byte codec (dag-cbor, raw, …), sha2-256
   * with its 32-byte digest. Each of those bytes is a complete minimal varint, so this
   * is what the general path below would conclude. */
  if (G_LIKELY (len >= 36 && data[0] == 1 && data[1] < 0x80 && data[2] == ATK_MULTIHASH_SHA2_256
                && data[3] == 32))
    {
      cid->bytes = data;
      cid->len = 36;
      cid->v0 = FALSE;
      cid->codec = data[1];
      cid->hash_code = ATK_MULTIHASH_SHA2_256;
      cid->digest = data + 4;
      cid->digest_len = 32;
      *consumed = 36;
      return TRUE;
    }

  if (!atk_varint_read (data, len, &version, &n, error))
    return FALSE;
  pos += n;
  if (version != 1)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CID,
                   "unsupported CID version %" G_GUINT64_FORMAT, version);
      return FALSE;
    }
  if (!atk_varint_read (data + pos, len - pos, &codec, &n, error))
    return FALSE;
  pos += n;
  if (!atk_varint_read (data + pos, len - pos, &hash_code, &n, error))
    return FALSE;
  pos += n;
  if (!atk_varint_read (data + pos, len - pos, &digest_len, &n, error))
    return FALSE;
  pos += n;
  if (digest_len > len - pos)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_TRUNCATED, "CID digest is cut short");
      return FALSE;
    }
  if (digest_len == 0)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CID, "CID with an empty digest");
      return FALSE;
    }

  cid->bytes = data;
  cid->v0 = FALSE;
  cid->codec = codec;
  cid->hash_code = hash_code;
  cid->digest = data + pos;
  cid->digest_len = digest_len;
  cid->len = pos + digest_len;
  *consumed = cid->len;
  return TRUE;
}

gboolean
atk_cid_parse (const guint8 *data, gsize len, AtkCid *cid, GError **error)
{
  gsize consumed;

  if (!atk_cid_parse_prefix (data, len, cid, &consumed, error))
    return FALSE;
  if (consumed != len)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CID, "trailing bytes after a CID");
      return FALSE;
    }
  return TRUE;
}

/* CIDv0 is a bare multihash: 0x12 (sha2-256), digest length, digest. multiformats takes a
 * first byte of 0x12 to mean v0 and reads the rest as a multihash, whatever its length. */
static gboolean
parse_v0 (const guint8 *data, gsize len, AtkCid *cid, GError **error)
{
  guint64 hash_code, digest_len;
  gsize pos = 0, n;

  if (!atk_varint_read (data, len, &hash_code, &n, error))
    return FALSE;
  pos += n;
  if (!atk_varint_read (data + pos, len - pos, &digest_len, &n, error))
    return FALSE;
  pos += n;
  if (digest_len == 0 || digest_len != len - pos)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CID,
                           "CIDv0 digest length does not match its bytes");
      return FALSE;
    }
  if (len > ATK_CID_V0_MAX_LEN)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CID, "CIDv0 multihash too long");
      return FALSE;
    }
  cid->bytes = data;
  cid->len = len;
  cid->v0 = TRUE;
  cid->codec = ATK_CID_CODEC_DAG_PB;
  cid->hash_code = hash_code;
  cid->digest = data + pos;
  cid->digest_len = digest_len;
  return TRUE;
}

gboolean
atk_cid_parse_link (const guint8 *data, gsize len, AtkCid *cid, GError **error)
{
  if (len > 0 && data[0] == ATK_MULTIHASH_SHA2_256)
    return parse_v0 (data, len, cid, error);
  return atk_cid_parse (data, len, cid, error);
}

gboolean
atk_cid_equal (const AtkCid *a, const AtkCid *b)
{
  return a->len == b->len && memcmp (a->bytes, b->bytes, a->len) == 0;
}

/* Plain base58btc (no multibase prefix), as multiformats prints a CIDv0. Quadratic, which
 * is why v0 multihashes are capped at ATK_CID_V0_MAX_LEN bytes. */
static void
append_base58 (const guint8 *p, gsize len, GString *out)
{
  /* log(256)/log(58) < 1.37: 138 digits per 100 bytes. */
  guint8 digits[ATK_CID_V0_MAX_LEN * 138 / 100 + 1];
  gsize n_digits = 0, zeros = 0;

  g_assert (len <= ATK_CID_V0_MAX_LEN);
  while (zeros < len && p[zeros] == 0)
    zeros++;
  for (gsize i = zeros; i < len; i++)
    {
      guint carry = p[i];
      for (gsize j = 0; j < n_digits; j++)
        {
          carry += (guint)digits[j] << 8;
          digits[j] = (guint8)(carry % 58);
          carry /= 58;
        }
      while (carry > 0)
        {
          digits[n_digits++] = (guint8)(carry % 58);
          carry /= 58;
        }
    }
  for (gsize i = 0; i < zeros; i++)
    g_string_append_c (out, base58_alphabet[0]);
  while (n_digits > 0)
    g_string_append_c (out, base58_alphabet[digits[--n_digits]]);
}

void
atk_cid_append_string (const AtkCid *cid, GString *out)
{
  const guint8 *p = cid->bytes;
  gsize len = cid->len;
  gsize old_len = out->len;
  gsize n_chars = 1 + (len * 8 + 4) / 5;
  char *w;
  guint64 acc = 0;
  guint bits = 0;

  if (G_UNLIKELY (cid->v0))
    {
      append_base58 (p, len, out);
      return;
    }
  /* Grow once, then write in place: this runs for every link of every record. */
  w = atk_out_reserve (out, n_chars);
  *w++ = 'b';
  /* Five bytes make eight characters exactly; the bit loop below does the rest. */
  for (; len >= 5; p += 5, len -= 5)
    {
      guint64 v = (guint64)p[0] << 32 | (guint64)p[1] << 24 | (guint64)p[2] << 16
                  | (guint64)p[3] << 8 | p[4];
      for (int k = 7; k >= 0; k--)
        *w++ = base32_alphabet[(v >> (5 * k)) & 0x1f];
    }
  for (gsize i = 0; i < len; i++)
    {
      acc = (acc << 8) | p[i];
      bits += 8;
      while (bits >= 5)
        {
          bits -= 5;
          *w++ = base32_alphabet[(acc >> bits) & 0x1f];
        }
    }
  if (bits > 0)
    *w++ = base32_alphabet[(acc << (5 - bits)) & 0x1f];
  g_assert (w == out->str + old_len + n_chars);
  atk_out_commit (out, w);
  atk_out_terminate (out);
}

char *
atk_cid_to_string (const AtkCid *cid)
{
  GString *s = g_string_sized_new (1 + (cid->len * 8 + 4) / 5 + 1);
  atk_cid_append_string (cid, s);
  return g_string_free (s, FALSE);
}

static int
base32_value (char c)
{
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= '2' && c <= '7')
    return c - '2' + 26;
  return -1;
}

GBytes *
atk_cid_bytes_from_string (const char *str, GError **error)
{
  g_autoptr (GByteArray) out = NULL;
  guint32 acc = 0;
  guint bits = 0;
  gsize n;
  AtkCid cid;

  if (str[0] != 'b')
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CID,
                   "not a base32-lower multibase CID (prefix must be 'b'): %s", str);
      return NULL;
    }
  n = strlen (str + 1);
  /* 8 characters carry 5 bytes; 1, 3 or 6 leftover characters cannot end a byte string. */
  if (n % 8 == 1 || n % 8 == 3 || n % 8 == 6)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CID, "impossible base32 length in CID: %s", str);
      return NULL;
    }

  out = g_byte_array_sized_new (n * 5 / 8);
  for (const char *p = str + 1; *p != '\0'; p++)
    {
      int v = base32_value (*p);
      if (v < 0)
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CID, "invalid base32 character in CID: %s",
                       str);
          return NULL;
        }
      acc = (acc << 5) | (guint32)v;
      bits += 5;
      if (bits >= 8)
        {
          guint8 b = (guint8)(acc >> (bits - 8));
          bits -= 8;
          g_byte_array_append (out, &b, 1);
        }
      acc &= (1u << bits) - 1;
    }
  if (acc != 0)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CID, "non-canonical base32 padding bits: %s",
                   str);
      return NULL;
    }
  if (!atk_cid_parse (out->data, out->len, &cid, error))
    {
      g_prefix_error (error, "%s: ", str);
      return NULL;
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

/* SHA-256 through libcrypto (which librdkafka links anyway): it uses the CPU's SHA
 * instructions where there are some, several times faster than GChecksum. The digest is
 * fetched from the default provider once. */
static const EVP_MD *
sha256 (void)
{
  static gsize md;

  if (g_once_init_enter (&md))
    g_once_init_leave (&md, (gsize)EVP_MD_fetch (NULL, "SHA256", NULL));
  return (const EVP_MD *)md;
}

struct _AtkCidHasher
{
  EVP_MD_CTX *ctx;
};

AtkCidHasher *
atk_cid_hasher_new (void)
{
  AtkCidHasher *hasher = g_new0 (AtkCidHasher, 1);
  hasher->ctx = EVP_MD_CTX_new ();
  return hasher;
}

void
atk_cid_hasher_free (AtkCidHasher *hasher)
{
  if (hasher == NULL)
    return;
  EVP_MD_CTX_free (hasher->ctx);
  g_free (hasher);
}

static gboolean
sha256_digest (AtkCidHasher *hasher, const guint8 *data, gsize len, guint8 *digest)
{
  unsigned int digest_len = 0;

  if (sha256 () == NULL)
    return FALSE;
  if (hasher == NULL || hasher->ctx == NULL)
    return EVP_Digest (data, len, digest, &digest_len, sha256 (), NULL) && digest_len == 32;
  /* Re-initialising a context for the digest it already has keeps its provider state. */
  return EVP_DigestInit_ex2 (hasher->ctx, sha256 (), NULL)
         && EVP_DigestUpdate (hasher->ctx, data, len)
         && EVP_DigestFinal_ex (hasher->ctx, digest, &digest_len) && digest_len == 32;
}

gboolean
atk_cid_verify_with (AtkCidHasher *hasher, const AtkCid *cid, const guint8 *data, gsize len,
                     GError **error)
{
  guint8 digest[EVP_MAX_MD_SIZE];

  if (cid->hash_code != ATK_MULTIHASH_SHA2_256 || cid->digest_len != 32)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_UNSUPPORTED,
                   "unsupported multihash 0x%" G_GINT64_MODIFIER "x (length %" G_GSIZE_FORMAT ")",
                   cid->hash_code, cid->digest_len);
      return FALSE;
    }
  if (!sha256_digest (hasher, data, len, digest))
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_UNSUPPORTED,
                           "libcrypto cannot compute SHA-256");
      return FALSE;
    }
  if (memcmp (digest, cid->digest, 32) != 0)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_CID_MISMATCH,
                           "block data does not hash to its CID");
      return FALSE;
    }
  return TRUE;
}

gboolean
atk_cid_verify (const AtkCid *cid, const guint8 *data, gsize len, GError **error)
{
  return atk_cid_verify_with (NULL, cid, data, len, error);
}
