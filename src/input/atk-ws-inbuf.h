/* at-kafka: the read buffer of a client WebSocket connection (AtkWsConn). Bytes from the
 * socket go in at end; whole frames are taken from start. A message that fits one frame is
 * handed on as a slice of the buffer (no copy): the buffer is then never moved, and the next
 * read that needs room takes a new one. Fragmented messages are put together in a byte array.
 * A plain struct embedded in its owner, not an object of its own.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-ws-frame.h"

G_BEGIN_DECLS

typedef struct
{
  gsize min_cap; /* a new buffer holds at least this much */
  GBytes *chunk; /* owns buf: messages are slices of it */
  guint8 *buf;
  gsize cap, start, end;
  gboolean sliced; /* a slice of chunk was handed out: never move its bytes */
  gsize needed;    /* bytes the frame at start takes in all, as far as known */
  GByteArray *fragments;
} AtkWsInbuf;

/* min_cap: the least a new buffer holds (the size of a read). leftover: bytes read past the
 * handshake (or NULL), the first in the buffer. */
void atk_ws_inbuf_init (AtkWsInbuf *self, gsize min_cap, GBytes *leftover);
void atk_ws_inbuf_clear (AtkWsInbuf *self);
/* Room for `needed` bytes from start on (the unread bytes move to the front, or to a new
 * buffer when the old one was sliced or is too small). */
void atk_ws_inbuf_make_room (AtkWsInbuf *self, gsize needed);
/* The whole message a data frame ends, or NULL while a fragmented one is not complete. */
GBytes *atk_ws_inbuf_take_message (AtkWsInbuf *self, const AtkWsFrame *frame);

G_END_DECLS
