/* libFuzzer target: one input = a CID string ("bafy…"), as links in atproto JSON carry
 * them, through the base32 CID string parser. Invariants: success and error agree; what it
 * accepts is a whole binary CIDv1 that prints back as the same string.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-cid.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *)data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = NULL;
  AtkCid cid;
  gsize len;
  const guint8 *raw;

  if (strlen (text) != size)
    return 0; /* a C string cannot hold a NUL */
  bytes = atk_cid_bytes_from_string (text, &error);
  if ((bytes == NULL) == (error == NULL))
    abort ();
  if (bytes == NULL)
    return 0;
  raw = g_bytes_get_data (bytes, &len);
  if (!atk_cid_parse (raw, len, &cid, NULL))
    abort ();
  {
    g_autofree char *again = atk_cid_to_string (&cid);
    if (strcmp (again, text) != 0)
      abort ();
  }
  return 0;
}
