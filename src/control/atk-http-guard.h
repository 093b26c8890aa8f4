/* at-kafka: one metrics connection as libsoup sees it. A GIOStream over the accepted socket
 * whose input passes the request head only (AtkHttpHead): a body or an oversized head is
 * answered (413, 431) and the connection shut before any of it is read into memory, and
 * nothing after the head reaches libsoup. Closing it closes the socket.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ATK_TYPE_HTTP_GUARD (atk_http_guard_get_type ())
G_DECLARE_FINAL_TYPE (AtkHttpGuard, atk_http_guard, ATK, HTTP_GUARD, GIOStream)

AtkHttpGuard *atk_http_guard_new (GSocketConnection *connection);

/* TRUE once the request head was read whole (the request is being answered). */
gboolean atk_http_guard_head_done (AtkHttpGuard *self);

/* Ends the connection now: shuts the socket down, so that libsoup sees the end at its next
 * read and lets go of it. */
void atk_http_guard_abort (AtkHttpGuard *self);

/* Signals:
 *  "closed" ()  libsoup closed the stream (the connection is over)
 */

G_END_DECLS
