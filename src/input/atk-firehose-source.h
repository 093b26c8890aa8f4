/* at-kafka: the relay input (libsoup-3 WebSocket), an AtkInput. Connects, reconnects with
 * exponential backoff and jitter, and emits each binary message as a "payload"; decode()
 * reads a frame with the core's transformer. Knows nothing about Kafka.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-input.h"

G_BEGIN_DECLS

#define ATK_TYPE_FIREHOSE_SOURCE (atk_firehose_source_get_type ())
G_DECLARE_FINAL_TYPE (AtkFirehoseSource, atk_firehose_source, ATK, FIREHOSE_SOURCE, GObject)

/* relay_url: normalised ws:// or wss:// base (see atk_config_normalise_relay_url). */
AtkFirehoseSource *atk_firehose_source_new (const char *relay_url, guint max_frame_bytes,
                                            guint idle_timeout_s);

/* The seq to resume after on the next (re)connect; has_cursor FALSE means live tip. */
void atk_firehose_source_set_cursor (AtkFirehoseSource *self, gboolean has_cursor, gint64 seq);

void atk_firehose_source_start (AtkFirehoseSource *self);
/* Closes the connection and stays stopped until start(). */
void atk_firehose_source_stop (AtkFirehoseSource *self);
/* Drops the current connection and connects again at once (from the cursor). */
void atk_firehose_source_reconnect (AtkFirehoseSource *self);

AtkSourceState atk_firehose_source_get_state (AtkFirehoseSource *self);
/* See atk_ws_client_set_read_batch(); the relay and Tap inputs take --read-batch-ms. */
void atk_firehose_source_set_read_batch (AtkFirehoseSource *self, guint batch_ms);
guint64 atk_firehose_source_get_reads (AtkFirehoseSource *self);
guint64 atk_firehose_source_get_reconnects (AtkFirehoseSource *self);

/* The wait before the next attempt (valid in BACKOFF): delay_ms is drawn uniformly from
 * [0, bound_ms] ("full jitter"); bound_ms doubles with each consecutive failed attempt,
 * from 250 ms up to 30 s, and falls back to 250 ms once a connection has been healthy.
 * Either pointer may be NULL. For logs and tests. */
void atk_firehose_source_get_backoff (AtkFirehoseSource *self, guint *delay_ms, guint *bound_ms);

/* Signals:
 *  AtkInput's "payload" (one binary WebSocket message), "state-changed" (also
 *  notify::state) and "connection-error"
 */

G_END_DECLS
