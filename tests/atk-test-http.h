/* Local HTTP and WebSocket servers for the tests: did:web documents, /.well-known/atproto-did,
 * the AppView, a PLC directory stand-in, a relay, Tap.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

/* A SoupServer on 127.0.0.1 at a free port (set in *port) whose every request goes to
 * callback; stop it with atk_test_http_server_stop(). */
SoupServer *atk_test_http_server_new (SoupServerCallback callback, gpointer user_data, guint *port);

/* The same for WebSocket connections at path (a relay's, Tap's /channel); *url is set to
 * "ws://127.0.0.1:PORT". */
SoupServer *atk_test_ws_server_new (const char *path, SoupServerWebsocketCallback callback,
                                    gpointer user_data, char **url);

/* Disconnects and unrefs *server, and clears it. */
void atk_test_http_server_stop (SoupServer **server);

G_END_DECLS
