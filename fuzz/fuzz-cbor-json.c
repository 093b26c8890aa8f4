/* libFuzzer target: one input = one record's DAG-CBOR, through the JSON writer.
 * Invariants: failure leaves the output as it was; success means the strict reader accepts
 * the same bytes whole, and the output is UTF-8 with no raw control characters or NULs.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-car.h"
#include "atk-cbor-json.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
check_output (const GString *out, gsize start)
{
  const char *json = out->str + start;
  gsize len = out->len - start;

  if (strlen (out->str) != out->len || !g_utf8_validate (json, (gssize)len, NULL))
    abort ();
  if (len < 2 || json[0] != '{' || json[len - 1] != '}')
    abort ();
  for (gsize i = 0; i < len; i++)
    if ((guchar)json[i] < 0x20)
      abort ();
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  static GString *out;
  GError *error = NULL;
  AtkCborReader reader;

  if (out == NULL)
    out = g_string_new (NULL);
  g_string_assign (out, "x");

  if (atk_cbor_json_write_record (data, size, out, &error))
    {
      check_output (out, 1);
      atk_cbor_reader_init (&reader, data, size);
      if (!atk_cbor_skip (&reader, NULL) || atk_cbor_reader_remaining (&reader) != 0)
        abort ();
    }
  else
    {
      if (error == NULL || out->len != 1 || strcmp (out->str, "x") != 0)
        abort ();
      g_error_free (error);
    }
  return 0;
}
