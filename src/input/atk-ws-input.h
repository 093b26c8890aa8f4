/* at-kafka: what the WebSocket inputs (relay, Tap) share around their AtkWsClient: its
 * messages passed on as the input's payloads, its connection errors logged and passed on,
 * reconnects on request, and a quiet release when the input goes away.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-input.h"
#include "atk-ws-client.h"

G_BEGIN_DECLS

/* The input's own structured log line (its URL, cursor, state). */
typedef void (*AtkWsInputLogFunc) (gpointer input, GLogLevelFlags level, const char *message);

/* Connects client's "message" to input's "payload" and its "connection-error", logged with
 * log, to input's. The input connects "state-changed" itself, with itself as the data. */
void atk_ws_input_forward (AtkWsClient *client, AtkInput *input, AtkWsInputLogFunc log);
/* Drops the connection and connects again, unless the client is stopped. */
void atk_ws_input_reconnect (AtkWsClient *client, AtkInput *input, AtkWsInputLogFunc log);
/* For dispose: disconnects every handler of the input, stops the client and drops it. */
void atk_ws_input_release (AtkWsClient **client, AtkInput *input);

G_END_DECLS
