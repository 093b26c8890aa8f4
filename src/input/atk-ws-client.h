/* at-kafka: one reconnecting WebSocket client (our own handshake and framing, AtkWsConn),
 * shared by the relay and the Tap connections. Connects, reconnects with exponential backoff
 * and full jitter, enforces a handshake timeout and (optionally) an idle timeout, and hands
 * each message of the expected kind to its owner. Knows nothing about what the messages mean.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  ATK_SOURCE_STOPPED,
  ATK_SOURCE_CONNECTING,
  ATK_SOURCE_CONNECTED,
  ATK_SOURCE_BACKOFF, /* waiting before the next attempt */
} AtkSourceState;

const char *atk_source_state_name (AtkSourceState state);

#define ATK_TYPE_SOURCE_STATE (atk_source_state_get_type ())
GType atk_source_state_get_type (void);

#define ATK_TYPE_WS_CLIENT (atk_ws_client_get_type ())
G_DECLARE_FINAL_TYPE (AtkWsClient, atk_ws_client, ATK, WS_CLIENT, GObject)

/* url: the full ws:// or wss:// URL to connect to. binary: which messages to deliver
 * (binary or text); the other kind is ignored. max_payload_bytes: the largest message
 * accepted (a larger one ends the connection). idle_timeout_s: drop a connection that
 * delivers nothing for this long (0: never; the handshake timeout still applies). */
AtkWsClient *atk_ws_client_new (const char *url, gboolean binary, guint max_payload_bytes,
                                guint idle_timeout_s);

/* Asked for the URL (newly allocated) before each attempt, so that it carries the owner's
 * latest state (the relay's cursor) without being rebuilt for every change of it. */
typedef char *(*AtkWsClientUrlFunc) (gpointer user_data);
/* Each message of the expected kind, as it is read (one call per frame: no signal). The
 * message is a slice of the read buffer; take a reference to keep it. */
typedef void (*AtkWsClientMessageFunc) (gpointer user_data, GBytes *message);
void atk_ws_client_set_message_func (AtkWsClient *self, AtkWsClientMessageFunc func,
                                     gpointer user_data);
void atk_ws_client_set_url_func (AtkWsClient *self, AtkWsClientUrlFunc func, gpointer user_data);
const char *atk_ws_client_get_url (AtkWsClient *self);

/* A connection that lived 10 s, or delivered this many messages (0: no such rule), was
 * healthy: the next failure retries from the shortest delay. */
void atk_ws_client_set_healthy_messages (AtkWsClient *self, guint n_messages);

/* Words for the "connection-error" messages: who closes ("the relay"), what it sends
 * ("frame", made plural with an "s"), and the name of the max_payload_bytes setting
 * ("max_frame_bytes"). */
void atk_ws_client_set_labels (AtkWsClient *self, const char *peer, const char *noun,
                               const char *limit_name);

/* After a read that got data, wait this long before reading again (see atk_ws_conn_set_read_batch);
 * 0: read as data arrives. */
void atk_ws_client_set_read_batch (AtkWsClient *self, guint batch_ms);
/* Main-loop turns that read data, over all connections. */
guint64 atk_ws_client_get_reads (AtkWsClient *self);
/* In the message function: see atk_ws_conn_get_received_us(); 0 when there is no connection. */
gint64 atk_ws_client_get_received_us (AtkWsClient *self);

void atk_ws_client_start (AtkWsClient *self);
/* Closes the connection; nothing fires after this until start(). */
void atk_ws_client_stop (AtkWsClient *self);
/* Drops the current connection and connects again: at once, from the shortest delay, when the
 * connection was healthy or made progress; otherwise after the next backoff delay. */
void atk_ws_client_reconnect (AtkWsClient *self);
/* The current connection delivered something new (for the relay: a frame with a new seq). */
void atk_ws_client_note_progress (AtkWsClient *self);

/* Sends a text message on the open connection; FALSE (and nothing sent) when none is open. */
gboolean atk_ws_client_send_text (AtkWsClient *self, const char *text);
gboolean atk_ws_client_is_open (AtkWsClient *self);

AtkSourceState atk_ws_client_get_state (AtkWsClient *self);
guint64 atk_ws_client_get_reconnects (AtkWsClient *self);

/* The wait before the next attempt (valid in BACKOFF): delay_ms is drawn uniformly from
 * [0, bound_ms]; bound_ms doubles with each consecutive failed attempt, from 250 ms up to
 * 30 s, and falls back to 250 ms once a connection has been healthy. Either may be NULL. */
void atk_ws_client_get_backoff (AtkWsClient *self, guint *delay_ms, guint *bound_ms);

/* Signals:
 *  "state-changed" (AtkSourceState)
 *  "connection-error" (const char *)  a failed attempt or a dropped connection, for logs;
 *                                     emitted before the retry is scheduled, so a handler
 *                                     may stop() or reconnect()
 */

G_END_DECLS
