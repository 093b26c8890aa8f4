/* at-kafka: one open client WebSocket connection (RFC 6455) over a GIOStream (TCP or TLS) whose
 * opening handshake is done (AtkWsHandshake). Reads 64 KiB at a time and parses every whole
 * frame in the same main-loop turn (AtkWsFrameReader); a message in one frame is handed on as
 * a slice of the read buffer, without a copy. Answers pings (at most the bucket's rate, and
 * not when the peer takes none of our bytes), sends keepalive pings, closes with a status code
 * (1009 for a message beyond the bound, also across fragments) and bounds each main-loop turn,
 * so that a peer that never stops sending cannot starve the rest of the daemon.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ATK_TYPE_WS_CONN (atk_ws_conn_get_type ())
G_DECLARE_FINAL_TYPE (AtkWsConn, atk_ws_conn, ATK, WS_CONN, GObject)

/* How a connection ended. */
typedef struct
{
  gboolean too_big;   /* a message beyond max_message_bytes: we closed with 1009 */
  const char *error;  /* a failure on our side or the peer's (protocol, I/O), or NULL */
  guint16 code;       /* the peer's close code (1005: none given, 1006: no close frame) */
  const char *reason; /* the peer's close reason, or "" */
} AtkWsConnEnd;

/* payload: one whole message (binary or text); valid during the call, ref it to keep it. */
typedef void (*AtkWsConnMessageFunc) (gpointer user_data, GBytes *payload, gboolean binary);
/* Called once, when the connection ends by itself (not after atk_ws_conn_close()). */
typedef void (*AtkWsConnEndFunc) (gpointer user_data, const AtkWsConnEnd *end);

/* leftover: bytes read past the handshake, parsed first. Nothing is read before start(). */
AtkWsConn *atk_ws_conn_new (GIOStream *stream, GBytes *leftover, guint64 max_message_bytes,
                            guint keepalive_s);
void atk_ws_conn_start (AtkWsConn *self, AtkWsConnMessageFunc on_message, AtkWsConnEndFunc on_end,
                        gpointer user_data);
/* Reads in batches: after a main-loop turn that read data, the next read waits batch_ms
 * (unless the peer is ahead or a backlog comes flat out: atk-read-pacer.h). 0: read as data
 * arrives. */
void atk_ws_conn_set_read_batch (AtkWsConn *self, guint batch_ms);
/* Main-loop turns that read data from the peer, for metrics and tests. */
guint64 atk_ws_conn_get_reads (AtkWsConn *self);
/* During the message callback: the monotonic time (µs) by which that message had reached us at
 * the latest (the start of the rest before this read, or the wake-up for it). */
gint64 atk_ws_conn_get_received_us (AtkWsConn *self);
gboolean atk_ws_conn_is_open (AtkWsConn *self);
/* Queues a text message; FALSE when the connection is not open. */
gboolean atk_ws_conn_send_text (AtkWsConn *self, const char *text);
/* Sends a close frame with code and closes the stream soon after; no callback runs after it.
 * The connection keeps itself alive until the stream is closed. */
void atk_ws_conn_close (AtkWsConn *self, guint16 code);

G_END_DECLS
