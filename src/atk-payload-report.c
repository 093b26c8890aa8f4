/* at-kafka: what the pipeline counts and logs about a payload it could not produce whole
 * (see atk-payload-report.h).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-payload-report.h"

#include "atk-error.h"
#include "atk-log-text.h"
#include "atk-log.h"

/* An input that keeps its place acked the event when its id was readable (else its peer
 * would send it forever). */
void
atk_payload_report_skipped (AtkStats *stats, AtkLogLimit *limit, const char *input_name,
                            gboolean keeps_place, gsize len, const AtkInputEvent *event,
                            const GError *error)
{
  g_autofree char *position = event->has_position
                                  ? g_strdup_printf ("%" G_GINT64_FORMAT, event->position)
                                  : g_strdup ("without a readable id ");

  g_autofree char *why = atk_log_text (error->message, -1);

  if (event->unknown)
    stats->unknown_events++;
  else
    atk_stats_count_decode_error (stats, atk_error_kind_name (error));
  atk_log_event (G_LOG_LEVEL_MESSAGE, limit, event->has_position, event->position, NULL,
                 "%s event %s(%" G_GSIZE_FORMAT " bytes) skipped%s: %s", input_name, position, len,
                 keeps_place && event->has_position ? " and acked" : "", why);
}

void
atk_payload_report_op_errors (AtkStats *stats, AtkLogLimit *limit, const AtkInputEvent *event)
{
  g_autofree char *did = NULL;
  g_autofree char *why = NULL;

  if (event->n_op_errors == 0)
    return;
  for (guint i = 0; i < event->n_op_error_kinds; i++)
    for (guint j = 0; j < event->op_error_kinds[i].count; j++)
      atk_stats_count_decode_error (stats, event->op_error_kinds[i].kind);
  /* both may come from the relay: capped for the log */
  did = atk_log_text (event->did, -1);
  why = atk_log_text (event->op_error->message, -1);
  atk_log_event (G_LOG_LEVEL_MESSAGE, limit, event->has_position, event->position, did,
                 "seq %" G_GINT64_FORMAT " (%s): %u record(s) not rendered (%s): %s",
                 event->position, did, event->n_op_errors,
                 event->ops_skipped ? "operations skipped" : "produced with recordError", why);
}
