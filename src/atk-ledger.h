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

G_BEGIN_DECLS

typedef struct _AtkLedger AtkLedger;

/* Borrows input (it must outlive the ledger). */
AtkLedger *atk_ledger_new (AtkInput *input);
void atk_ledger_free (AtkLedger *self);

/* Whether the input resumes from a cursor (else it keeps its own place). */
gboolean atk_ledger_uses_cursor (AtkLedger *self);

/* Where the input resumes, and what counts as settled: the tracker starts over there. */
void atk_ledger_reset (AtkLedger *self, gboolean has_cursor, gint64 cursor);
/* A live start remembers its first seq, so that a rewind without a durable cursor goes
 * back to just before it (not to the live tip again); forget() drops it. */
void atk_ledger_forget_first (AtkLedger *self);
void atk_ledger_rewind_point (AtkLedger *self, gboolean *has_cursor, gint64 *cursor);

/* What the event's seq means next to the last one handed over (atk_seq_check()): SEEN, a
 * reconnect replayed it (its messages are in flight); TOO_FAR, more than max_jump past it
 * (unless jump_ok). *last is that seq (0 if none). Inputs that keep their place: NEW. */
AtkSeqVerdict atk_ledger_check_seq (AtkLedger *self, const AtkInputEvent *event, gint64 max_jump,
                                    gboolean jump_ok, gint64 *last);
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
