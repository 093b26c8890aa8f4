/* at-kafka: the pipeline's insides, shared by atk-pipeline.c (running the input, settling,
 * producing, payloads) and atk-pipeline-rewind.c (the cursor and rewinding). Not for
 * anything else.
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-ledger.h"
#include "atk-log.h"
#include "atk-metadata-stage.h"
#include "atk-pipeline.h"

G_BEGIN_DECLS

struct _AtkPipeline
{
  GObject parent_instance;

  const AtkConfig *config;
  AtkStats *stats;
  AtkKafkaSink *sink;
  AtkEventTransformer *transformer;
  AtkTransactionDriver *txn; /* borrowed; NULL: at-least-once */

  AtkInput *input;
  gboolean keeps_place;    /* the input's ATK_INPUT_KEEPS_PLACE */
  AtkLedger *ledger;       /* what is on its way */
  AtkMetadataStage *stage; /* NULL unless event metadata or a service filter is on */
  GPtrArray *messages;     /* scratch, reused for every payload */

  gboolean allowed;
  gboolean paused_by_operator;
  gboolean paused_by_backpressure;
  gboolean halted;
  guint rewind_id;       /* a rewind is due: idle, or a timeout while it waits */
  gboolean rewind_waits; /* rewind_id is the timeout */
  guint64 reports_since_rewind;

  AtkLogLimit skipped_lines; /* payloads skipped */
  AtkLogLimit op_lines;      /* operations skipped */
  AtkLogLimit refused_lines; /* messages Kafka refused */
};

/* atk-pipeline.c */
/* A message left librdkafka (also one "released" from before a rewind): the input may run
 * again once the sink is below half its bounds. */
void atk_pipeline_recheck_backpressure (AtkPipeline *self);

/* atk-pipeline-rewind.c */
/* Asks the daemon for a rewind ("need-rewind"), once for a burst of failures. */
void atk_pipeline_schedule_rewind (AtkPipeline *self);
/* A message left librdkafka: a waiting rewind may go now. */
void atk_pipeline_count_report (AtkPipeline *self);

G_END_DECLS
