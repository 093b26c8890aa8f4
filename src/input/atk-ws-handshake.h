/* at-kafka: the client side of a WebSocket opening handshake (RFC 6455 §4.1), on a connection
 * of our own, which AtkWsConn then reads frames from. Connects (TLS for wss://), sends the
 * upgrade request, reads a bounded response head and checks it. No extensions and no
 * subprotocol are offered.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The largest response head accepted. */
#define ATK_WS_HANDSHAKE_HEAD_MAX (16 * 1024)

/* Sets up a client for handshakes (a small send buffer on its sockets). */
void atk_ws_handshake_client_init (GSocketClient *client);

void atk_ws_handshake_async (GSocketClient *client, const char *url, const char *user_agent,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);

/* The connection, ready for WebSocket frames, and the bytes that came after the response head
 * (*leftover, possibly empty). On failure, *http_status is the status the server answered with,
 * or 0 when there was no answer. */
GIOStream *atk_ws_handshake_finish (GAsyncResult *result, GBytes **leftover, guint *http_status,
                                    GError **error);

G_END_DECLS
