/* at-kafka: the Tap input (libsoup-3 WebSocket to {tap}/channel), an AtkInput that keeps
 * its own place (ATK_INPUT_KEEPS_PLACE). Connects, reconnects with exponential backoff and
 * jitter, emits each text message as a "payload", decode()s it with the core's Tap event
 * reader, and sends Tap's acks. Knows nothing about Kafka.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-input.h"

G_BEGIN_DECLS

#define ATK_TYPE_TAP_SOURCE (atk_tap_source_get_type ())
G_DECLARE_FINAL_TYPE (AtkTapSource, atk_tap_source, ATK, TAP_SOURCE, GObject)

/* tap_url: ws:// or wss:// base of the Tap service ("ws://localhost:2480"); "/channel" is
 * appended unless the URL already ends with it. With disable_acks, ack() sends nothing:
 * Tap must then run in its fire-and-forget mode (TAP_DISABLE_ACKS=true), or it resends
 * every event after its retry timeout and stalls each repo at its first live event. */
AtkTapSource *atk_tap_source_new (const char *tap_url, guint max_message_bytes,
                                  gboolean disable_acks);

void atk_tap_source_start (AtkTapSource *self);
/* Closes the connection and stays stopped until start(). Queued acks are kept. */
void atk_tap_source_stop (AtkTapSource *self);
/* Drops the current connection and connects again at once. */
void atk_tap_source_reconnect (AtkTapSource *self);

/* Acknowledges Tap event `id`: call it only once every message of the event is stored.
 * Tap's acks name the event id, not the connection, so an event received on an earlier
 * connection can still be acked on the current one: while disconnected, acks wait (up to
 * a bound; beyond it the oldest are dropped and Tap redelivers those events after its
 * retry timeout) and go out first on the next connection. No-op with disable_acks. */
void atk_tap_source_ack (AtkTapSource *self, guint64 id);

AtkSourceState atk_tap_source_get_state (AtkTapSource *self);
/* See atk_ws_client_set_read_batch(); the relay and Tap inputs take --read-batch-ms. */
void atk_tap_source_set_read_batch (AtkTapSource *self, guint batch_ms);
guint64 atk_tap_source_get_reconnects (AtkTapSource *self);
gboolean atk_tap_source_get_disable_acks (AtkTapSource *self);

/* For atkafka_acks_sent{status}: "ok" handed to the connection, "dropped" given up
 * (queue full or source disposed with acks waiting). `queued` is waiting now. Any pointer
 * may be NULL. */
void atk_tap_source_get_ack_counts (AtkTapSource *self, guint64 *sent, guint64 *dropped,
                                    guint *queued);

/* Signals:
 *  AtkInput's "payload" (one text WebSocket message: a Tap event, JSON), "state-changed"
 *  and "connection-error"
 */

G_END_DECLS
