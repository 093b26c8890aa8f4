/* at-kafka: the stream under a WebSocket client connection. libsoup 3.2 reads a connection in
 * a loop for as long as bytes arrive, assembles fragmented messages without a bound, and
 * answers every ping with a queued pong whether or not the peer reads. This GIOStream sits
 * between libsoup and the socket and:
 *  - meters the frames (AtkWsMeter): a message outgrowing max_message_bytes ends the
 *    connection with the same error as one big frame (1009, "message too big"); control
 *    frames beyond a rate end it as a flood;
 *  - hands libsoup at most SLICE bytes per main-loop turn, so a peer that never stops sending
 *    cannot starve the rest of the daemon (the metrics endpoint, Kafka's callbacks);
 *  - notices a peer that does not read: when our writes have been blocked while it kept
 *    pinging, the connection ends.
 * The bytes already read past the handshake (leftover) are served first.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ATK_TYPE_WS_GUARD (atk_ws_guard_get_type ())
G_DECLARE_FINAL_TYPE (AtkWsGuard, atk_ws_guard, ATK, WS_GUARD, GIOStream)

AtkWsGuard *atk_ws_guard_new (GIOStream *base, GBytes *leftover, guint64 max_message_bytes);

G_END_DECLS
