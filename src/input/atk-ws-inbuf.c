/* at-kafka: the read buffer of a client WebSocket connection; see atk-ws-inbuf.h.
 * SPDX-License-Identifier: MIT */
#include "atk-ws-inbuf.h"

#include <string.h>

void
atk_ws_inbuf_init (AtkWsInbuf *self, gsize min_cap, GBytes *leftover)
{
  gsize size = leftover != NULL ? g_bytes_get_size (leftover) : 0;

  memset (self, 0, sizeof *self);
  self->min_cap = min_cap;
  self->fragments = g_byte_array_new ();
  atk_ws_inbuf_make_room (self, MAX (size, 1u));
  if (size > 0)
    memcpy (self->buf, g_bytes_get_data (leftover, NULL), size);
  self->end = size;
}

void
atk_ws_inbuf_clear (AtkWsInbuf *self)
{
  g_clear_pointer (&self->chunk, g_bytes_unref);
  g_clear_pointer (&self->fragments, g_byte_array_unref);
  self->buf = NULL;
  self->cap = self->start = self->end = 0;
}

void
atk_ws_inbuf_make_room (AtkWsInbuf *self, gsize needed)
{
  gsize pending = self->end - self->start;
  gsize cap;
  guint8 *buf;

  if (self->buf != NULL && !self->sliced && needed <= self->cap)
    {
      memmove (self->buf, self->buf + self->start, pending);
      self->start = 0;
      self->end = pending;
      return;
    }
  cap = MAX (self->min_cap, needed);
  buf = g_malloc (cap);
  if (pending > 0)
    memcpy (buf, self->buf + self->start, pending);
  g_clear_pointer (&self->chunk, g_bytes_unref);
  self->chunk = g_bytes_new_take (buf, cap);
  self->buf = buf;
  self->cap = cap;
  self->start = 0;
  self->end = pending;
  self->sliced = FALSE;
}

GBytes *
atk_ws_inbuf_take_message (AtkWsInbuf *self, const AtkWsFrame *frame)
{
  GBytes *message;

  if (frame->first && frame->fin)
    {
      self->sliced = TRUE;
      return g_bytes_new_from_bytes (self->chunk, frame->payload - self->buf, frame->payload_len);
    }
  if (frame->first)
    g_byte_array_set_size (self->fragments, 0);
  g_byte_array_append (self->fragments, frame->payload, (guint)frame->payload_len);
  if (!frame->fin)
    return NULL;
  message = g_byte_array_free_to_bytes (g_steal_pointer (&self->fragments));
  self->fragments = g_byte_array_new ();
  return message;
}
