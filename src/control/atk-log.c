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

void
atk_log_event_full (const char *domain, GLogLevelFlags level, AtkLogLimit *limit, gboolean has_seq,
                    gint64 seq, const char *did, const char *format, ...)
{
  g_autofree char *message = NULL;
  guint64 held = 0;
  char seq_text[24];
  GLogField fields[5];
  gsize n = 0;
  va_list args;

  if (limit != NULL
      && !atk_log_limit_allow (limit, g_get_monotonic_time (),
                               (gint64)ATK_LOG_INTERVAL_S * G_USEC_PER_SEC, &held))
    return;
  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (held > 0)
    {
      char *longer
          = g_strdup_printf ("%s (%" G_GUINT64_FORMAT " more since the last line)", message, held);
      g_free (message);
      message = longer;
    }

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
