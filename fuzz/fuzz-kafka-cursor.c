/* libFuzzer target: one input = the value of one record of "<topic>.cursor", through the
 * cursor record parser. The empty input stands for a tombstone (a null value: how a
 * compacted topic deletes a key), which the parser must take as "no cursor", not crash on.
 * Invariants: success and error agree; a parsed seq is never negative; a record the
 * formatter wrote parses back to its seq.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-kafka-cursor.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  /* librdkafka hands a null value as (NULL, 0); anything else as an exact-size buffer. */
  char *value = size > 0 ? g_memdup2 (data, size) : NULL;
  gint64 seq = -1;
  g_autoptr (GError) error = NULL;
  gboolean ok = atk_kafka_cursor_parse (value, size, &seq, &error);

  if (ok != (error == NULL) || (ok && seq < 0))
    abort ();
  if (ok)
    {
      /* What we write for that seq must read back as it. */
      g_autofree char *record = atk_kafka_cursor_format (seq, G_GINT64_CONSTANT (1704110400000000));
      gint64 again = -1;
      if (!atk_kafka_cursor_parse (record, strlen (record), &again, NULL) || again != seq)
        abort ();
    }
  g_free (value);
  return 0;
}
