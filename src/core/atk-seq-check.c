/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-seq-check.h"

AtkSeqVerdict
atk_seq_check (gboolean has_last, gint64 last, gint64 seq, gint64 max_jump, gboolean jump_ok)
{
  if (!has_last)
    return ATK_SEQ_NEW;
  if (seq <= last)
    return ATK_SEQ_SEEN;
  /* seq > last, and both are frame seqs (0..2^53): the difference cannot overflow. */
  if (max_jump > 0 && !jump_ok && seq - last > max_jump)
    return ATK_SEQ_TOO_FAR;
  return ATK_SEQ_NEW;
}

gboolean
atk_log_limit_allow (AtkLogLimit *limit, gint64 now_us, gint64 interval_us, guint64 *held)
{
  if (now_us < limit->next_us)
    {
      limit->held++;
      return FALSE;
    }
  *held = limit->held;
  limit->held = 0;
  limit->next_us = now_us + interval_us;
  return TRUE;
}
