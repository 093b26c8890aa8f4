/* at-kafka: event-scoped log lines with one set of journal fields (see atk-log.h).
 * SPDX-License-Identifier: MIT */
#include "atk-log.h"

/* syslog priorities, as g_log_structured() writes them */
static const char *
priority (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "3";
  if (level & G_LOG_LEVEL_CRITICAL)
    return "4";
  if (level & G_LOG_LEVEL_WARNING)
    return "4";
  if (level & G_LOG_LEVEL_MESSAGE)
    return "5";
  if (level & G_LOG_LEVEL_INFO)
    return "6";
  return "7";
}

static gboolean
limit_allows (AtkLogLimit *limit)
{
  gint64 now = g_get_monotonic_time ();

  if (limit == NULL)
    return TRUE;
  if (limit->window_start_us == 0
      || now - limit->window_start_us >= ATK_LOG_WINDOW_S * G_USEC_PER_SEC)
    {
      limit->window_start_us = now;
      limit->lines = 0;
    }
  if (limit->lines >= ATK_LOG_BURST)
    {
      limit->suppressed++;
      return FALSE;
    }
  limit->lines++;
  return TRUE;
}

void
atk_log_event_full (const char *domain, GLogLevelFlags level, AtkLogLimit *limit, gboolean has_seq,
                    gint64 seq, const char *did, const char *format, ...)
{
  g_autofree char *message = NULL;
  char seq_text[24];
  GLogField fields[5];
  gsize n = 0;
  va_list args;

  if (!limit_allows (limit))
    return;
  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  fields[n++] = (GLogField){ "GLIB_DOMAIN", domain, -1 };
  fields[n++] = (GLogField){ "PRIORITY", priority (level), -1 };
  if (has_seq)
    {
      g_snprintf (seq_text, sizeof seq_text, "%" G_GINT64_FORMAT, seq);
      fields[n++] = (GLogField){ ATK_LOG_SEQ, seq_text, -1 };
    }
  if (did != NULL)
    fields[n++] = (GLogField){ ATK_LOG_DID, did, -1 };
  fields[n++] = (GLogField){ "MESSAGE", message, -1 };
  g_log_structured_array (level, fields, n);
}

guint64
atk_log_limit_take_suppressed (AtkLogLimit *limit)
{
  guint64 n = limit->suppressed;

  limit->suppressed = 0;
  return n;
}
