/* at-kafka: the input side of the daemon: an AtkInput (relay or Tap), the metadata stage
 * and the bookkeeping of what is on its way to Kafka (the cursor tracker for inputs that
 * resume from a cursor, the ack table for inputs that keep their own place).
 *
 * Payloads become messages, pass through the metadata stage when it is on, and go to the
 * sink in order; every message is settled once, when the sink reports it. The input runs
 * only while the daemon allows it (set_allowed()), the operator has not paused it and the
 * sink and the stage are below their bounds (backpressure).
 *
 * Calls go one way: the daemon calls the pipeline; the pipeline tells the daemon what
 * happened through its signals:
 *  "need-rewind" (const char *why)  messages did not reach Kafka: answer with
 *                                   atk_pipeline_rewind() from the durable cursor
 *  "anchor" (gint64 cursor) → gboolean  only if connected: a start at the live tip got its
 *                                   first seq; make cursor (the seq before it) durable
 *                                   before anything is produced. FALSE: it is not, the
 *                                   payload is dropped and "need-rewind" follows
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-config.h"
#include "atk-event-transformer.h"
#include "atk-input.h"
#include "atk-kafka-sink.h"
#include "atk-stats.h"
#include "atk-transaction-driver.h"

G_BEGIN_DECLS

#define ATK_TYPE_PIPELINE (atk_pipeline_get_type ())
G_DECLARE_FINAL_TYPE (AtkPipeline, atk_pipeline, ATK, PIPELINE, GObject)

/* Builds the input the configuration names and the metadata stage (when event metadata or
 * a service filter is on). Borrows config and stats (the daemon's; they must outlive the
 * pipeline), refs sink and transformer. */
AtkPipeline *atk_pipeline_new (const AtkConfig *config, AtkKafkaSink *sink,
                               AtkEventTransformer *transformer, AtkStats *stats, GError **error);

AtkInput *atk_pipeline_get_input (AtkPipeline *self);

/* Produce in transactions: each message is counted in txn, and a message that does not
 * reach Kafka is the commit's to report (no rewind). */
void atk_pipeline_set_transaction_driver (AtkPipeline *self, AtkTransactionDriver *txn);

/* Whether the input resumes from a cursor the daemon gives it (else it keeps its place). */
gboolean atk_pipeline_uses_cursor (AtkPipeline *self);

/* Where the input resumes, and what counts as settled: the tracker starts over there. */
void atk_pipeline_reset_cursor (AtkPipeline *self, gboolean has_cursor, gint64 cursor);
/* The acknowledged watermark; the last seq handed to the sink. FALSE when none. */
gboolean atk_pipeline_get_acked_cursor (AtkPipeline *self, gint64 *cursor);
gboolean atk_pipeline_get_last_handed (AtkPipeline *self, gint64 *seq);

/* The daemon's conditions (started, topic ready, transaction open, not failed). */
void atk_pipeline_set_allowed (AtkPipeline *self, gboolean allowed);
void atk_pipeline_set_paused (AtkPipeline *self, gboolean paused);
/* The producer failed for good: stop, and never rewind again. */
void atk_pipeline_halt (AtkPipeline *self);
/* Drops the connection and connects again (no-op while stopped). */
void atk_pipeline_reconnect (AtkPipeline *self);

/* Produces everything after cursor again: forgets what is pending and asks the input from
 * there (a live start with nothing durable yet goes back to just before its first seq). */
void atk_pipeline_rewind (AtkPipeline *self, gboolean has_cursor, gint64 cursor, const char *why);

/* The input's state and reconnects into the stats. */
void atk_pipeline_refresh_stats (AtkPipeline *self);
/* The input's, the stage's and the pipeline's own metrics. */
void atk_pipeline_render_prometheus (AtkPipeline *self, GString *out);
/* Per-event log lines the rate limits hold back now (the next line of each kind says). */
guint64 atk_pipeline_get_held_lines (AtkPipeline *self);

G_END_DECLS
