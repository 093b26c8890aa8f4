/* at-kafka: the data path of a client WebSocket connection. A read buffer (AtkWsInbuf,
 * atk-ws-inbuf.c: messages are slices of it), a frame reader, and an output queue for pongs,
 * pings, closes and text (AtkWsOutput, atk-ws-output.c). Reads may come in batches (see
 * rest_after()).
 *
 * Re-entrancy: the message handler may close the connection (and drop the owner's reference):
 * every dispatch holds a reference and stops once the state is no longer OPEN.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include "atk-ws-conn.h"

#include <string.h>

#include "atk-read-pacer.h"
#include "atk-ws-frame.h"
#include "atk-ws-inbuf.h"
#include "atk-ws-output.h"

/* Bytes asked of the socket (or TLS) per read. */
#define READ_BYTES (64 * 1024)
/* Bytes read per main-loop turn: a peer that never stops sending cannot starve the loop. */
#define TURN_BYTES (256 * 1024)
/* After our close frame: how long we wait for the peer's before closing the stream. */
#define LINGER_MS 2000

typedef enum
{
  CONN_NEW,
  CONN_OPEN,
  CONN_CLOSING, /* our close frame is queued: draining, then the stream closes */
  CONN_CLOSED,
} ConnState;

struct _AtkWsConn
{
  GObject parent_instance;

  GIOStream *stream;
  GPollableInputStream *in;
  GPollableOutputStream *out;
  ConnState state;
  guint keepalive_s;

  AtkWsConnMessageFunc on_message;
  AtkWsConnEndFunc on_end;
  gpointer user_data;

  AtkWsFrameReader reader;
  AtkWsInbuf in_buf;

  AtkWsOutput output;

  GSource *read_source;
  GSource *pending_source; /* parses the leftover of the handshake */
  GSource *rest_source;    /* the pause between batched reads (read_source is NULL meanwhile) */
  guint batch_ms;
  guint64 reads; /* main-loop turns that read data */
  /* Monotonic µs: the start of the read pause that just ended (0: none), and when the messages
   * delivered now could first have been read (that pause's start, else the read's). */
  gint64 rest_since_us;
  gint64 received_us;
  AtkReadPacer pacer; /* when to pause */
  guint keepalive_id;
  guint linger_id;
  guint end_later_id;
  char *end_later_message;
  GCancellable *close_cancellable;
};

G_DEFINE_FINAL_TYPE (AtkWsConn, atk_ws_conn, G_TYPE_OBJECT)

static void shut_down (AtkWsConn *self);
static void arm_read (AtkWsConn *self);
static gboolean on_readable (GObject *stream, gpointer user_data);
static gboolean on_rested (gpointer user_data);

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* The end of an open connection, told to the owner once. */
static void
end (AtkWsConn *self, const AtkWsConnEnd *how)
{
  AtkWsConnEndFunc on_end = self->on_end;

  if (self->state != CONN_OPEN)
    return;
  self->on_end = NULL;
  self->on_message = NULL;
  shut_down (self);
  if (on_end != NULL)
    on_end (self->user_data, how);
}

static void
end_with_error (AtkWsConn *self, const char *error)
{
  AtkWsConnEnd how = { .error = error, .code = ATK_WS_CLOSE_NO_STATUS, .reason = "" };

  end (self, &how);
}

/* A failure found while the owner may be in the middle of something (a write from
 * send_text()): told from the main loop. */
static gboolean
on_end_later (gpointer user_data)
{
  AtkWsConn *self = user_data;

  self->end_later_id = 0;
  end_with_error (self, self->end_later_message);
  return G_SOURCE_REMOVE;
}

static void
end_later (AtkWsConn *self, const char *message)
{
  if (self->end_later_id != 0 || self->state != CONN_OPEN)
    return;
  g_free (self->end_later_message);
  self->end_later_message = g_strdup (message);
  self->end_later_id = g_idle_add (on_end_later, self);
}

/* ---- output ---- */

static void
on_output_drained (GObject *object)
{
  AtkWsConn *self = ATK_WS_CONN (object);

  if (self->state == CONN_CLOSING && self->read_source == NULL)
    shut_down (self); /* the peer's side already ended */
}

static void
on_output_failed (GObject *object, const char *message)
{
  end_later (ATK_WS_CONN (object), message);
}

/* ---- closing ---- */

static void
on_stream_closed (GObject *object, GAsyncResult *result, gpointer user_data)
{
  AtkWsConn *self = user_data;

  g_io_stream_close_finish (G_IO_STREAM (object), result, NULL);
  g_object_unref (self); /* the reference shut_down() took */
}

static gboolean
on_linger_done (gpointer user_data)
{
  AtkWsConn *self = user_data;

  self->linger_id = 0;
  if (self->close_cancellable != NULL)
    g_cancellable_cancel (self->close_cancellable); /* a TLS close that cannot leave */
  else
    shut_down (self);
  return G_SOURCE_REMOVE;
}

/* Stop reading frames; send our close frame if not yet sent, drain what the peer still
 * sends for a short while, then close the stream. Keeps a reference until closed. */
static void
shut_down (AtkWsConn *self)
{
  clear_source (&self->pending_source);
  g_clear_handle_id (&self->keepalive_id, g_source_remove);
  if (self->state == CONN_OPEN || self->state == CONN_NEW)
    {
      if (self->state == CONN_OPEN && self->read_source == NULL)
        {
          /* resting, or in the turn at a rest's end: drain the peer's close without waiting */
          clear_source (&self->rest_source);
          arm_read (self);
        }
      self->state = CONN_CLOSING;
      g_object_ref (self);
      self->linger_id = g_timeout_add (LINGER_MS, on_linger_done, self);
      return; /* the close frame is queued by the caller; reading goes on (draining) */
    }
  if (self->state != CONN_CLOSING || self->close_cancellable != NULL)
    return;
  /* drained (EOF), written out, or out of time */
  clear_source (&self->read_source);
  atk_ws_output_stop (&self->output);
  self->close_cancellable = g_cancellable_new ();
  if (self->linger_id == 0)
    self->linger_id = g_timeout_add (LINGER_MS, on_linger_done, self);
  self->state = CONN_CLOSED;
  g_io_stream_close_async (self->stream, G_PRIORITY_DEFAULT, self->close_cancellable,
                           on_stream_closed, self);
}

static void
fail_protocol (AtkWsConn *self, guint16 code, const char *why)
{
  g_autofree char *message = NULL;
  AtkWsConnEnd how
      = { .too_big = code == ATK_WS_CLOSE_TOO_BIG, .code = ATK_WS_CLOSE_NO_STATUS, .reason = "" };

  if (!how.too_big)
    how.error = message = g_strdup_printf ("%s (closed with %u)", why, code);
  if (self->state != CONN_OPEN)
    return;
  atk_ws_output_queue_close (&self->output, code);
  end (self, &how);
}

void
atk_ws_conn_close (AtkWsConn *self, guint16 code)
{
  g_return_if_fail (ATK_IS_WS_CONN (self));

  self->on_message = NULL;
  self->on_end = NULL;
  if (self->state == CONN_NEW)
    {
      shut_down (self); /* to CLOSING */
      shut_down (self); /* nothing to drain: close the stream */
      return;
    }
  if (self->state != CONN_OPEN)
    return;
  atk_ws_output_queue_close (&self->output, code);
  shut_down (self);
}

/* ---- input ---- */

static void
deliver (AtkWsConn *self, const AtkWsFrame *frame)
{
  g_autoptr (GBytes) payload = atk_ws_inbuf_take_message (&self->in_buf, frame);
  gboolean binary = frame->opcode == ATK_WS_OPCODE_BINARY;

  if (payload == NULL)
    return; /* more fragments to come */
  if (!binary)
    {
      gsize len;
      const char *text = g_bytes_get_data (payload, &len);

      if (!g_utf8_validate_len (text, len, NULL))
        {
          fail_protocol (self, ATK_WS_CLOSE_BAD_DATA, "a text message that is not UTF-8");
          return;
        }
    }
  if (self->on_message != NULL)
    self->on_message (self->user_data, payload, binary);
}

static void
on_control (AtkWsConn *self, const AtkWsFrame *frame)
{
  if (frame->opcode == ATK_WS_OPCODE_PING)
    {
      if (atk_ws_output_peer_not_reading (&self->output))
        {
          g_autofree char *message
              = g_strdup_printf ("the peer does not read (%d pings while our writes were blocked)",
                                 ATK_WS_OUTPUT_UNANSWERED_PINGS);
          end_with_error (self, message);
        }
      else if (!self->output.blocked)
        atk_ws_output_queue_frame (&self->output, ATK_WS_OPCODE_PONG, frame->payload,
                                   frame->payload_len);
      /* while blocked, a pong would only queue: the peer gets the next one */
    }
  else if (frame->opcode == ATK_WS_OPCODE_CLOSE)
    {
      AtkWsConnEnd how = { .code = ATK_WS_CLOSE_NO_STATUS, .reason = "" };
      g_autofree char *reason = NULL;

      if (frame->payload_len >= 2)
        {
          how.code = (guint16)(frame->payload[0] << 8 | frame->payload[1]);
          reason = g_utf8_make_valid ((const char *)frame->payload + 2,
                                      (gssize)frame->payload_len - 2);
          how.reason = reason;
        }
      atk_ws_output_queue_close (&self->output, how.code);
      end (self, &how);
    }
}

/* Every whole frame in the buffer, in this turn. */
static void
parse (AtkWsConn *self)
{
  while (self->state == CONN_OPEN)
    {
      AtkWsFrame frame;
      gsize consumed, needed;
      AtkWsInbuf *in = &self->in_buf;
      AtkWsFrameResult result
          = atk_ws_frame_reader_next (&self->reader, in->buf + in->start, in->end - in->start,
                                      g_get_monotonic_time (), &frame, &consumed, &needed);

      in->start += consumed;
      switch (result)
        {
        case ATK_WS_FRAME_NEED_MORE:
          in->needed = needed;
          if (needed > in->cap - in->start)
            atk_ws_inbuf_make_room (in, needed);
          return;
        case ATK_WS_FRAME_DATA:
          deliver (self, &frame);
          break;
        case ATK_WS_FRAME_CONTROL:
          on_control (self, &frame);
          break;
        case ATK_WS_FRAME_SKIPPED:
          if (self->reader.skipped_control == 1)
            g_message ("The peer sends more than %d control frames a second: ignoring the "
                       "excess on this connection",
                       ATK_WS_FRAME_CONTROL_RATE);
          break;
        case ATK_WS_FRAME_ERROR:
        default:
          fail_protocol (self, frame.close_code, frame.error);
          return;
        }
    }
}

static void
arm_read (AtkWsConn *self)
{
  self->read_source = g_pollable_input_stream_create_source (self->in, NULL);
  g_source_set_callback (self->read_source, G_SOURCE_FUNC (on_readable), self, NULL);
  /* GLib takes a source's descriptors out of the poll set while it dispatches (unless it
   * may recurse) and puts them back after, and each change wakes the loop once more for
   * nothing. Nothing here iterates the loop from inside a callback. */
  g_source_set_can_recurse (self->read_source, TRUE);
  g_source_attach (self->read_source, NULL);
}

/* Batching (atk-read-pacer.h): a pause after a turn that read data, so that one wake-up takes
 * the frames of batch_ms instead of one wake-up per frame. */
static void
rest_after (AtkWsConn *self, gsize got)
{
  gint64 now = g_get_monotonic_time ();

  if (self->batch_ms == 0 || self->state != CONN_OPEN
      || !atk_read_pacer_should_rest (&self->pacer, got, now))
    return;
  clear_source (&self->read_source);
  self->rest_since_us = now;
  self->rest_source = g_timeout_source_new (self->batch_ms);
  g_source_set_callback (self->rest_source, on_rested, self, NULL);
  g_source_attach (self->rest_source, NULL);
}

/* One main-loop turn of reading: at most TURN_BYTES, then maybe a rest. */
static void
read_turn (AtkWsConn *self)
{
  AtkWsInbuf *in = &self->in_buf;
  gsize budget = TURN_BYTES;
  gsize got = 0;
  guint8 scratch[4096];

  /* Frames that came during a pause count from its start: the pause is ours, and so is
   * everything read until the socket is empty again (what did not fit in one turn, and what
   * the peer held back while the receive window was full). Frames that wait in the socket
   * while we read flat out with no pause (the peer is ahead) count from the read. */
  self->received_us = self->rest_since_us != 0 ? self->rest_since_us : g_get_monotonic_time ();
  while (budget > 0 && (self->state == CONN_OPEN || self->state == CONN_CLOSING))
    {
      g_autoptr (GError) error = NULL;
      gboolean draining = self->state == CONN_CLOSING;
      gssize n;

      if (!draining && in->end == in->cap)
        atk_ws_inbuf_make_room (in, MAX (in->needed, in->end - in->start + 1));
      /* draining: what the peer still sends is dropped */
      n = g_pollable_input_stream_read_nonblocking (
          self->in, draining ? scratch : in->buf + in->end,
          draining ? sizeof scratch : in->cap - in->end, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          self->rest_since_us = 0; /* caught up */
          break;
        }
      if (n <= 0 && draining)
        {
          clear_source (&self->read_source);
          if (atk_ws_output_is_empty (&self->output))
            shut_down (self);
          break;
        }
      if (n < 0)
        {
          g_autofree char *message = g_strdup_printf ("read failed: %s", error->message);
          end_with_error (self, message);
          break;
        }
      if (n == 0)
        {
          AtkWsConnEnd how = { .code = 1006, .reason = "" };

          end (self, &how);
          break;
        }
      if (draining)
        {
          budget -= MIN ((gsize)n, budget);
          continue;
        }
      if (got == 0)
        self->reads++;
      in->end += n;
      got += n;
      budget -= MIN ((gsize)n, budget);
      parse (self);
    }
  rest_after (self, got);
}

static gboolean
on_readable (GObject *stream, gpointer user_data)
{
  g_autoptr (AtkWsConn) self = g_object_ref (user_data);

  read_turn (self);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_rested (gpointer user_data)
{
  g_autoptr (AtkWsConn) self = g_object_ref (user_data);

  g_clear_pointer (&self->rest_source, g_source_unref);
  if (self->state != CONN_OPEN)
    return G_SOURCE_REMOVE;
  /* Read at once: what came during the rest is there, and counts from the rest's start. When
   * nothing came, watch the socket (then a wake-up is an arrival). */
  read_turn (self);
  if (self->state == CONN_OPEN && self->read_source == NULL && self->rest_source == NULL)
    arm_read (self);
  return G_SOURCE_REMOVE;
}

static gboolean
on_pending (gpointer user_data)
{
  AtkWsConn *self = g_object_ref (user_data);

  g_clear_pointer (&self->pending_source, g_source_unref);
  parse (self);
  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

static gboolean
on_keepalive (gpointer user_data)
{
  AtkWsConn *self = user_data;

  if (!self->output.blocked)
    atk_ws_output_queue_frame (&self->output, ATK_WS_OPCODE_PING, NULL, 0);
  return G_SOURCE_CONTINUE;
}

void
atk_ws_conn_start (AtkWsConn *self, AtkWsConnMessageFunc on_message, AtkWsConnEndFunc on_end,
                   gpointer user_data)
{
  g_return_if_fail (ATK_IS_WS_CONN (self));
  g_return_if_fail (self->state == CONN_NEW);

  self->on_message = on_message;
  self->on_end = on_end;
  self->user_data = user_data;
  self->state = CONN_OPEN;
  atk_read_pacer_init (&self->pacer, g_get_monotonic_time ());
  arm_read (self);
  if (self->in_buf.end > self->in_buf.start)
    {
      self->pending_source = g_idle_source_new ();
      g_source_set_callback (self->pending_source, on_pending, self, NULL);
      g_source_attach (self->pending_source, NULL);
    }
  if (self->keepalive_s > 0)
    self->keepalive_id = g_timeout_add_seconds (self->keepalive_s, on_keepalive, self);
}

void
atk_ws_conn_set_read_batch (AtkWsConn *self, guint batch_ms)
{
  g_return_if_fail (ATK_IS_WS_CONN (self));

  self->batch_ms = batch_ms;
}

guint64
atk_ws_conn_get_reads (AtkWsConn *self)
{
  g_return_val_if_fail (ATK_IS_WS_CONN (self), 0);

  return self->reads;
}

gint64
atk_ws_conn_get_received_us (AtkWsConn *self)
{
  g_return_val_if_fail (ATK_IS_WS_CONN (self), 0);

  return self->received_us;
}

gboolean
atk_ws_conn_is_open (AtkWsConn *self)
{
  g_return_val_if_fail (ATK_IS_WS_CONN (self), FALSE);
  return self->state == CONN_OPEN;
}

gboolean
atk_ws_conn_send_text (AtkWsConn *self, const char *text)
{
  g_return_val_if_fail (ATK_IS_WS_CONN (self), FALSE);

  if (self->state != CONN_OPEN)
    return FALSE;
  if (atk_ws_output_is_full (&self->output))
    {
      end_later (self, "the peer does not read (our output queue is full)");
      return FALSE;
    }
  atk_ws_output_queue_frame (&self->output, ATK_WS_OPCODE_TEXT, text, strlen (text));
  return self->state == CONN_OPEN;
}

AtkWsConn *
atk_ws_conn_new (GIOStream *stream, GBytes *leftover, guint64 max_message_bytes, guint keepalive_s)
{
  AtkWsConn *self;

  g_return_val_if_fail (G_IS_IO_STREAM (stream), NULL);

  self = g_object_new (ATK_TYPE_WS_CONN, NULL);
  self->stream = g_object_ref (stream);
  self->in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (stream));
  self->out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (stream));
  self->keepalive_s = keepalive_s;
  atk_ws_output_init (&self->output, G_OBJECT (self), self->out, &self->reader.pings,
                      on_output_drained, on_output_failed);
  self->received_us = g_get_monotonic_time (); /* for the leftover of the handshake */
  atk_ws_frame_reader_init (&self->reader, max_message_bytes, self->received_us);
  atk_ws_inbuf_init (&self->in_buf, READ_BYTES, leftover);
  return self;
}

static void
atk_ws_conn_dispose (GObject *object)
{
  AtkWsConn *self = ATK_WS_CONN (object);

  clear_source (&self->read_source);
  atk_ws_output_stop (&self->output);
  clear_source (&self->pending_source);
  clear_source (&self->rest_source);
  g_clear_handle_id (&self->keepalive_id, g_source_remove);
  g_clear_handle_id (&self->linger_id, g_source_remove);
  g_clear_handle_id (&self->end_later_id, g_source_remove);
  G_OBJECT_CLASS (atk_ws_conn_parent_class)->dispose (object);
}

static void
atk_ws_conn_finalize (GObject *object)
{
  AtkWsConn *self = ATK_WS_CONN (object);

  g_clear_object (&self->stream);
  g_clear_object (&self->close_cancellable);
  g_free (self->end_later_message);
  atk_ws_inbuf_clear (&self->in_buf);
  atk_ws_output_clear (&self->output);
  G_OBJECT_CLASS (atk_ws_conn_parent_class)->finalize (object);
}

static void
atk_ws_conn_class_init (AtkWsConnClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = atk_ws_conn_dispose;
  G_OBJECT_CLASS (klass)->finalize = atk_ws_conn_finalize;
}

static void
atk_ws_conn_init (AtkWsConn *self)
{
}
