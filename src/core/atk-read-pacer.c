/* SPDX-License-Identifier: MIT */
#include "atk-read-pacer.h"

void
atk_read_pacer_init (AtkReadPacer *pacer, gint64 now_us)
{
  pacer->bytes = 0;
  pacer->since_us = now_us;
}

static gboolean
catching_up (const AtkReadPacer *pacer, gint64 now_us)
{
  guint64 elapsed_us = (guint64)MAX (now_us - pacer->since_us, 1);

  return pacer->bytes >= ATK_READ_PACER_CATCH_UP_BYTES
         && pacer->bytes * G_USEC_PER_SEC >= (guint64)ATK_READ_PACER_CATCH_UP_RATE * elapsed_us;
}

gboolean
atk_read_pacer_should_rest (AtkReadPacer *pacer, gsize got, gint64 now_us)
{
  pacer->bytes += got;
  if (got == 0 || got >= ATK_READ_PACER_SKIP_BYTES || catching_up (pacer, now_us))
    return FALSE;
  atk_read_pacer_init (pacer, now_us);
  return TRUE;
}
