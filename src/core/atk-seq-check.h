/* at-kafka: what a relay frame's seq means next to the last seq taken, and a limiter for
 * the log lines about frames that are dropped for it.
 *
 * Pure: no I/O, no clock of its own (the caller passes "now").
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  ATK_SEQ_NEW,     /* take it */
  ATK_SEQ_SEEN,    /* at or before the last seq taken: a replay, drop it */
  ATK_SEQ_TOO_FAR, /* more than max_jump past the last seq: a bad frame, drop it */
} AtkSeqVerdict;

/* has_last/last: the last seq taken (or the start cursor); without one any seq is new.
 * max_jump <= 0 means no bound; jump_ok lifts it for this frame (e.g. the first frame after
 * an OutdatedCursor info, which resumes at the relay's oldest seq). */
AtkSeqVerdict atk_seq_check (gboolean has_last, gint64 last, gint64 seq, gint64 max_jump,
                             gboolean jump_ok);

/* At most one log line per interval for one kind of event. */
typedef struct
{
  gint64 next_us; /* no line before this */
  guint64 held;   /* events since the last line */
} AtkLogLimit;

/* Counts one event; TRUE when it may be logged now, with *held set to the events since the
 * last logged one (not counting this one) and the count restarted. */
gboolean atk_log_limit_allow (AtkLogLimit *limit, gint64 now_us, gint64 interval_us, guint64 *held);

G_END_DECLS
