/* at-kafka: what the pipeline counts and logs about a payload it could not produce whole: a
 * payload skipped, or operations skipped or produced with recordError. Each line is an
 * event line (atk-log.h), rate-limited by the caller's limit; every one is counted in stats.
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-input.h"
#include "atk-seq-check.h" /* AtkLogLimit */
#include "atk-stats.h"

G_BEGIN_DECLS

/* A payload of len bytes the input could not decode: an unknown event or a decode error by
 * its kind. An input that keeps its place acked it when its id was readable. */
void atk_payload_report_skipped (AtkStats *stats, AtkLogLimit *limit, const char *input_name,
                                 gboolean keeps_place, gsize len, const AtkInputEvent *event,
                                 const GError *error);

/* The operations of a decoded event that were not rendered (nothing when there were none). */
void atk_payload_report_op_errors (AtkStats *stats, AtkLogLimit *limit, const AtkInputEvent *event);

G_END_DECLS
