/* at-kafka: the pipeline's cursor and its rewinds.
 *
 * A message that did not reach Kafka for a reason that says nothing about it (a full queue,
 * purged, timed out) is produced again: the pipeline asks the daemon ("need-rewind"), which
 * answers with the durable cursor (atk_pipeline_rewind()). Until then, payloads are dropped
 * (they would be produced out of order). What is still in librdkafka then is forgotten: its
 * late reports neither settle the new messages of a seq nor rewind again. An input that
 * keeps its place never rewinds: its peer redelivers what was not acked.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-pipeline-private.h"

gboolean
atk_pipeline_uses_cursor (AtkPipeline *self)
{
  g_return_val_if_fail (ATK_IS_PIPELINE (self), FALSE);
  return atk_ledger_uses_cursor (self->ledger);
}

void
atk_pipeline_reset_cursor (AtkPipeline *self, gboolean has_cursor, gint64 cursor)
{
  g_return_if_fail (ATK_IS_PIPELINE (self));
  atk_ledger_reset (self->ledger, has_cursor, cursor);
}

gboolean
atk_pipeline_get_acked_cursor (AtkPipeline *self, gint64 *cursor)
{
  g_return_val_if_fail (ATK_IS_PIPELINE (self), FALSE);
  return atk_ledger_get_cursor (self->ledger, cursor);
}

gboolean
atk_pipeline_get_last_handed (AtkPipeline *self, gint64 *seq)
{
  g_return_val_if_fail (ATK_IS_PIPELINE (self), FALSE);
  return atk_ledger_get_last_added (self->ledger, seq);
}

void
atk_pipeline_rewind (AtkPipeline *self, gboolean has_cursor, gint64 cursor, const char *why)
{
  g_return_if_fail (ATK_IS_PIPELINE (self));

  /* Started at the live tip and nothing durable yet: back to just before the first seq we
   * took, not to the live tip again (which would skip everything in between). */
  atk_ledger_rewind_point (self->ledger, &has_cursor, &cursor);
  g_warning ("%s: producing again from after seq %" G_GINT64_FORMAT, why, has_cursor ? cursor : -1);
  if (self->stage != NULL)
    atk_metadata_stage_clear (self->stage);
  atk_kafka_sink_forget_in_flight (self->sink);
  self->reports_since_rewind = 0;
  atk_pipeline_reset_cursor (self, has_cursor, cursor);
  atk_pipeline_reconnect (self);
  /* messages the sink held for want of room left the in-flight count without a report */
  atk_pipeline_recheck_backpressure (self);
}

static gboolean
on_rewind (gpointer user_data)
{
  AtkPipeline *self = user_data;

  self->rewind_id = 0;
  self->rewind_waits = FALSE;
  if (!self->halted)
    g_signal_emit_by_name (self, "need-rewind", "Messages did not reach Kafka");
  return G_SOURCE_REMOVE;
}

/* Failures come in bursts: one rewind for all of them, once the burst is handled. A rewind
 * right after another, before librdkafka reported on anything it still holds (a full queue
 * refusing the replayed messages again), would only spin: it waits for the next report, or
 * REWIND_WAIT_MS at most. */
#define REWIND_WAIT_MS 1000

void
atk_pipeline_schedule_rewind (AtkPipeline *self)
{
  if (self->rewind_id != 0)
    return;
  self->rewind_waits
      = self->reports_since_rewind == 0 && atk_kafka_sink_get_in_flight (self->sink) > 0;
  self->rewind_id = self->rewind_waits ? g_timeout_add (REWIND_WAIT_MS, on_rewind, self)
                                       : g_idle_add (on_rewind, self);
}

/* A message left librdkafka: a waiting rewind may go now. */
void
atk_pipeline_count_report (AtkPipeline *self)
{
  self->reports_since_rewind++;
  if (!self->rewind_waits)
    return;
  g_clear_handle_id (&self->rewind_id, g_source_remove);
  self->rewind_waits = FALSE;
  self->rewind_id = g_idle_add (on_rewind, self);
}
