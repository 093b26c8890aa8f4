/* at-kafka: the ledger of what the input handed over and what Kafka settled, for the
 * pipeline. An input that resumes from a cursor (the relay) has each event's seq enter the
 * cursor tracker with its message count; the cursor passes the seq once all are settled. An
 * input that keeps its own place (Tap, ATK_INPUT_KEEPS_PLACE) has each event id enter the
 * ack table, and the id is acked to the input once all its messages are in Kafka — at once
 * when it produced none, never after a delivery error.
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-input.h"
#include "atk-seq-check.h"
#include "atk-stats.h"

G_BEGIN_DECLS

typedef struct _AtkLedger AtkLedger;

/* Borrows input and stats (they must outlive the ledger). max_seq_jump: --max-seq-jump. */
AtkLedger *atk_ledger_new (AtkInput *input, AtkStats *stats, gint64 max_seq_jump);
void atk_ledger_free (AtkLedger *self);

/* Whether the input resumes from a cursor (else it keeps its own place). */
gboolean atk_ledger_uses_cursor (AtkLedger *self);

/* Where the input resumes, and what counts as settled: the tracker starts over there. */
void atk_ledger_reset (AtkLedger *self, gboolean has_cursor, gint64 cursor);
/* A live start remembers its first seq, so that a rewind without a durable cursor goes
 * back to just before it (not to the live tip again). */
void atk_ledger_rewind_point (AtkLedger *self, gboolean *has_cursor, gint64 *cursor);

/* Whether to take the event: not a seq taken already (a reconnect replayed it; its
 * messages are in flight), nor one more than --max-seq-jump past the last (a hostile or
 * broken relay: taking it would move the cursor past everything in between; allowed once
 * after an OutdatedCursor). What is dropped is counted and logged (rate-limited). After an
 * OutdatedCursor, the first seq taken also logs how many events the relay no longer had. */
gboolean atk_ledger_accept (AtkLedger *self, const AtkInputEvent *event);
/* The input's notices about the stream: an OutdatedCursor (measure the gap at the next
 * seq), a FutureCursor (start over at the live tip), an error frame (counted). */
void atk_ledger_notice (AtkLedger *self, AtkInputNotice notice);
/* Its log lines held back by the rate limits. */
guint64 atk_ledger_get_held_lines (AtkLedger *self);
/* The event and its message count, before the messages are handed over. */
void atk_ledger_track (AtkLedger *self, const AtkInputEvent *event, guint n_messages);
/* One message of seq (or event id) settled: delivered (ok) or failed for good (!ok). */
void atk_ledger_settle (AtkLedger *self, gboolean has_seq, gint64 seq, gboolean ok);

gboolean atk_ledger_get_cursor (AtkLedger *self, gint64 *cursor);
gboolean atk_ledger_get_last_added (AtkLedger *self, gint64 *seq);

/* atkafka_tap_events_pending, for inputs that keep their place. */
void atk_ledger_render_prometheus (AtkLedger *self, GString *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkLedger, atk_ledger_free)

G_END_DECLS
