/* at-kafka: the output side of a client WebSocket connection: the queue of frames we send and
 * its non-blocking writes.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include "atk-ws-output.h"

/* Bytes queued for a peer that does not take them before the connection ends. */
#define OUTPUT_MAX (1024 * 1024)

void
atk_ws_output_init (AtkWsOutput *self, GObject *owner, GPollableOutputStream *out,
                    const guint64 *pings, AtkWsOutputDrainedFunc on_drained,
                    AtkWsOutputFailedFunc on_failed)
{
  *self = (AtkWsOutput){
    .owner = owner,
    .out = out,
    .pings = pings,
    .on_drained = on_drained,
    .on_failed = on_failed,
    .queue = g_byte_array_new (),
  };
}

void
atk_ws_output_stop (AtkWsOutput *self)
{
  if (self->write_source != NULL)
    {
      g_source_destroy (self->write_source);
      g_clear_pointer (&self->write_source, g_source_unref);
    }
}

void
atk_ws_output_clear (AtkWsOutput *self)
{
  atk_ws_output_stop (self);
  g_clear_pointer (&self->queue, g_byte_array_unref);
}

static gboolean on_writable (GObject *stream, gpointer user_data);

static void
flush (AtkWsOutput *self)
{
  while (self->queue->len > 0)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_pollable_output_stream_write_nonblocking (self->out, self->queue->data,
                                                             self->queue->len, NULL, &error);

      if (n > 0)
        {
          g_byte_array_remove_range (self->queue, 0, (guint)n);
          self->blocked = FALSE;
          continue;
        }
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (!self->blocked)
            self->pings_blocked = *self->pings;
          self->blocked = TRUE;
          if (self->write_source == NULL)
            {
              self->write_source = g_pollable_output_stream_create_source (self->out, NULL);
              g_source_set_callback (self->write_source, G_SOURCE_FUNC (on_writable), self, NULL);
              g_source_attach (self->write_source, NULL);
            }
          return;
        }
      g_byte_array_set_size (self->queue, 0);
      {
        g_autofree char *message
            = g_strdup_printf ("write failed: %s", error != NULL ? error->message : "?");
        self->on_failed (self->owner, message);
      }
      return;
    }
  self->blocked = FALSE;
  atk_ws_output_stop (self);
  self->on_drained (self->owner);
}

static gboolean
on_writable (GObject *stream, gpointer user_data)
{
  AtkWsOutput *self = user_data;
  GObject *owner = g_object_ref (self->owner);

  g_clear_pointer (&self->write_source, g_source_unref); /* destroyed by returning REMOVE */
  flush (self);
  g_object_unref (owner);
  return G_SOURCE_REMOVE;
}

void
atk_ws_output_queue_frame (AtkWsOutput *self, AtkWsOpcode opcode, const void *payload, gsize len)
{
  guint8 header[ATK_WS_FRAME_HEADER_MAX];
  guint32 key = g_random_int ();
  gsize header_len = atk_ws_frame_write_header (header, opcode, len, (const guint8 *)&key);
  guint at;

  g_byte_array_append (self->queue, header, (guint)header_len);
  at = self->queue->len;
  g_byte_array_append (self->queue, payload, (guint)len);
  atk_ws_frame_mask (self->queue->data + at, len, (const guint8 *)&key);
  flush (self);
}

void
atk_ws_output_queue_close (AtkWsOutput *self, guint16 code)
{
  guint8 payload[2] = { code >> 8, code & 0xff };

  atk_ws_output_queue_frame (self, ATK_WS_OPCODE_CLOSE, payload,
                             code == ATK_WS_CLOSE_NO_STATUS ? 0 : 2);
}

gboolean
atk_ws_output_is_empty (AtkWsOutput *self)
{
  return self->queue->len == 0;
}

gboolean
atk_ws_output_is_full (AtkWsOutput *self)
{
  return self->queue->len > OUTPUT_MAX;
}

gboolean
atk_ws_output_peer_not_reading (AtkWsOutput *self)
{
  return self->blocked && *self->pings - self->pings_blocked >= ATK_WS_OUTPUT_UNANSWERED_PINGS;
}
