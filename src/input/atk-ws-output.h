/* at-kafka: the output side of an open client WebSocket connection (AtkWsConn): a queue of
 * masked frames (pongs, pings, closes, text) written without blocking, a watch for the stream
 * to become writable again, and the bounds that tell a peer that does not read our bytes.
 * A plain struct embedded in its owner, not an object of its own.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-ws-frame.h"

G_BEGIN_DECLS

/* The queue was written out (called after every flush that empties it). */
typedef void (*AtkWsOutputDrainedFunc) (GObject *owner);
/* A write failed; the queue is dropped. message: valid during the call. */
typedef void (*AtkWsOutputFailedFunc) (GObject *owner, const char *message);

typedef struct
{
  GObject *owner; /* not owned; held while a flush runs from the main loop */
  GPollableOutputStream *out;
  const guint64 *pings; /* pings received so far (the owner's frame reader) */
  AtkWsOutputDrainedFunc on_drained;
  AtkWsOutputFailedFunc on_failed;

  GByteArray *queue;
  gboolean blocked;      /* the last write would have blocked */
  guint64 pings_blocked; /* *pings when our writes were first seen blocked */
  GSource *write_source;
} AtkWsOutput;

void atk_ws_output_init (AtkWsOutput *self, GObject *owner, GPollableOutputStream *out,
                         const guint64 *pings, AtkWsOutputDrainedFunc on_drained,
                         AtkWsOutputFailedFunc on_failed);
/* Stops watching the stream; the queue stays. */
void atk_ws_output_stop (AtkWsOutput *self);
/* Stops and frees the queue. */
void atk_ws_output_clear (AtkWsOutput *self);

/* Masks and queues one frame, then writes what the stream takes now. */
void atk_ws_output_queue_frame (AtkWsOutput *self, AtkWsOpcode opcode, const void *payload,
                                gsize len);
/* A close frame with code (no payload for ATK_WS_CLOSE_NO_STATUS). */
void atk_ws_output_queue_close (AtkWsOutput *self, guint16 code);

gboolean atk_ws_output_is_empty (AtkWsOutput *self);
/* More bytes queued than a peer that reads would leave: the connection should end. */
gboolean atk_ws_output_is_full (AtkWsOutput *self);
/* Many pings came in while our writes stayed blocked: the peer does not read. */
gboolean atk_ws_output_peer_not_reading (AtkWsOutput *self);
/* The pings behind atk_ws_output_peer_not_reading(), for the message. */
#define ATK_WS_OUTPUT_UNANSWERED_PINGS 64

G_END_DECLS
