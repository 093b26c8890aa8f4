/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-ws-guard.h"

#include <libsoup/soup.h>
#include <string.h>

#include "atk-ws-meter.h"

/* Bytes handed to libsoup per main-loop turn. */
#define SLICE_BYTES (256 * 1024)
/* Bytes taken from the socket per read: libsoup 3.2 asks for 1 KiB at a time, which would
 * be one recvfrom() per KiB (two to six per firehose frame); the rest waits in `buffered`. */
#define READ_BYTES (64 * 1024)
/* Pings received while our writes stay blocked before the peer counts as not reading. */
#define UNANSWERED_PINGS 64

typedef struct _AtkWsGuardInput AtkWsGuardInput;
typedef struct _AtkWsGuardOutput AtkWsGuardOutput;

struct _AtkWsGuard
{
  GIOStream parent_instance;

  GIOStream *base;
  AtkWsGuardInput *input;
  AtkWsGuardOutput *output;
};

G_DEFINE_FINAL_TYPE (AtkWsGuard, atk_ws_guard, G_TYPE_IO_STREAM)

/* ---- output: a pass-through that remembers whether the peer takes our bytes ---- */

#define ATK_TYPE_WS_GUARD_OUTPUT (atk_ws_guard_output_get_type ())
G_DECLARE_FINAL_TYPE (AtkWsGuardOutput, atk_ws_guard_output, ATK, WS_GUARD_OUTPUT, GOutputStream)

struct _AtkWsGuardOutput
{
  GOutputStream parent_instance;

  GPollableOutputStream *base;
  gboolean blocked; /* the last write would have blocked, none went through since */
};

static void atk_ws_guard_output_pollable_iface_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (AtkWsGuardOutput, atk_ws_guard_output, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      atk_ws_guard_output_pollable_iface_init))

static gssize
note_write (AtkWsGuardOutput *self, gssize n, GError **error)
{
  if (n > 0)
    self->blocked = FALSE;
  else if (n < 0 && error != NULL && g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    self->blocked = TRUE;
  return n;
}

static gssize
atk_ws_guard_output_write (GOutputStream *stream, const void *buffer, gsize count,
                           GCancellable *cancellable, GError **error)
{
  AtkWsGuardOutput *self = ATK_WS_GUARD_OUTPUT (stream);

  return note_write (
      self, g_output_stream_write (G_OUTPUT_STREAM (self->base), buffer, count, cancellable, error),
      error);
}

static gssize
atk_ws_guard_output_write_nonblocking (GPollableOutputStream *stream, const void *buffer,
                                       gsize count, GError **error)
{
  AtkWsGuardOutput *self = ATK_WS_GUARD_OUTPUT (stream);
  GError *local = NULL;
  gssize n = g_pollable_output_stream_write_nonblocking (self->base, buffer, count, NULL, &local);

  note_write (self, n, &local);
  if (local != NULL)
    g_propagate_error (error, local);
  return n;
}

static gboolean
atk_ws_guard_output_flush (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  return g_output_stream_flush (G_OUTPUT_STREAM (ATK_WS_GUARD_OUTPUT (stream)->base), cancellable,
                                error);
}

static gboolean
atk_ws_guard_output_close (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE; /* the guard closes the base stream */
}

static gboolean
atk_ws_guard_output_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
atk_ws_guard_output_is_writable (GPollableOutputStream *stream)
{
  return g_pollable_output_stream_is_writable (ATK_WS_GUARD_OUTPUT (stream)->base);
}

static GSource *
atk_ws_guard_output_create_source (GPollableOutputStream *stream, GCancellable *cancellable)
{
  g_autoptr (GSource) base
      = g_pollable_output_stream_create_source (ATK_WS_GUARD_OUTPUT (stream)->base, NULL);

  return g_pollable_source_new_full (stream, base, cancellable);
}

static void
atk_ws_guard_output_pollable_iface_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = atk_ws_guard_output_can_poll;
  iface->is_writable = atk_ws_guard_output_is_writable;
  iface->create_source = atk_ws_guard_output_create_source;
  iface->write_nonblocking = atk_ws_guard_output_write_nonblocking;
}

static void
atk_ws_guard_output_class_init (AtkWsGuardOutputClass *klass)
{
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  stream_class->write_fn = atk_ws_guard_output_write;
  stream_class->flush = atk_ws_guard_output_flush;
  stream_class->close_fn = atk_ws_guard_output_close;
}

static void
atk_ws_guard_output_init (AtkWsGuardOutput *self)
{
}

/* ---- input: leftover first, then the socket, metered and sliced ---- */

#define ATK_TYPE_WS_GUARD_INPUT (atk_ws_guard_input_get_type ())
G_DECLARE_FINAL_TYPE (AtkWsGuardInput, atk_ws_guard_input, ATK, WS_GUARD_INPUT, GInputStream)

struct _AtkWsGuardInput
{
  GInputStream parent_instance;

  GPollableInputStream *base;
  AtkWsGuardOutput *output; /* not a reference: the guard holds both */
  GBytes *leftover;
  gsize leftover_pos;
  guint8 *buffered; /* READ_BYTES: checked bytes from the socket that libsoup has not read */
  gsize buffered_pos;
  gsize buffered_len;
  AtkWsMeter meter;
  gsize slice_left;      /* bytes libsoup may still have this turn */
  guint64 pings_blocked; /* meter.pings when our writes were first seen blocked */
  gboolean was_blocked;
};

static void atk_ws_guard_input_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (AtkWsGuardInput, atk_ws_guard_input, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      atk_ws_guard_input_pollable_iface_init))

/* TRUE when the bytes read (*len of them, fewer after control frames are cut) may go on to
 * libsoup; otherwise error says why the connection ends. */
static gboolean
check (AtkWsGuardInput *self, guint8 *data, gsize *len, GError **error)
{
  guint64 dropped = self->meter.dropped_control;
  AtkWsMeterVerdict verdict
      = atk_ws_meter_filter (&self->meter, data, len, g_get_monotonic_time ());

  if (verdict == ATK_WS_METER_TOO_BIG)
    {
      /* what libsoup says of one frame too big, so that the owner reports it the same way */
      g_set_error (error, SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_CLOSE_TOO_BIG,
                   "a fragmented message grew beyond %" G_GUINT64_FORMAT " bytes",
                   self->meter.max_message_bytes);
      return FALSE;
    }
  if (dropped == 0 && self->meter.dropped_control > 0)
    g_message ("The peer sends more than %d control frames a second: ignoring the excess on this "
               "connection",
               ATK_WS_METER_CONTROL_RATE);
  /* the peer keeps pinging but takes none of our pongs: it does not read */
  if (self->output->blocked && !self->was_blocked)
    self->pings_blocked = self->meter.pings;
  self->was_blocked = self->output->blocked;
  if (self->output->blocked && self->meter.pings - self->pings_blocked >= UNANSWERED_PINGS)
    {
      g_set_error (error, SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
                   "the peer does not read (%d pings while our writes were blocked)",
                   UNANSWERED_PINGS);
      return FALSE;
    }
  return TRUE;
}

/* Refills `buffered` from the leftover or the socket with checked bytes; <= 0 as a read. */
static gssize
refill (AtkWsGuardInput *self, gboolean blocking, GCancellable *cancellable, GError **error)
{
  gssize n;
  gsize kept;

  self->buffered_pos = self->buffered_len = 0;
  if (self->leftover != NULL)
    {
      gsize size;
      const guint8 *data = g_bytes_get_data (self->leftover, &size);

      n = MIN (READ_BYTES, size - self->leftover_pos);
      memcpy (self->buffered, data + self->leftover_pos, n);
      self->leftover_pos += n;
      if (self->leftover_pos == size)
        g_clear_pointer (&self->leftover, g_bytes_unref);
    }
  else if (blocking)
    n = g_input_stream_read (G_INPUT_STREAM (self->base), self->buffered, READ_BYTES, cancellable,
                             error);
  else
    n = g_pollable_input_stream_read_nonblocking (self->base, self->buffered, READ_BYTES,
                                                  cancellable, error);
  if (n <= 0)
    return n;
  kept = n;
  if (!check (self, self->buffered, &kept, error))
    return -1;
  if (kept == 0)
    {
      /* all of it was cut: nothing for libsoup yet (0 would read as the end) */
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "only control frames cut");
      return -1;
    }
  self->buffered_len = kept;
  return kept;
}

static gssize
guard_read (AtkWsGuardInput *self, void *buffer, gsize count, gboolean blocking,
            GCancellable *cancellable, GError **error)
{
  gssize n;

  if (self->slice_left == 0 && !blocking)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "slice used up");
      return -1;
    }
  count = MIN (count, MAX (self->slice_left, 1u));
  if (self->buffered_pos == self->buffered_len
      && (n = refill (self, blocking, cancellable, error)) <= 0)
    return n;
  n = MIN (count, self->buffered_len - self->buffered_pos);
  memcpy (buffer, self->buffered + self->buffered_pos, n);
  self->buffered_pos += n;
  self->slice_left -= MIN ((gsize)n, self->slice_left);
  return n;
}

static gssize
atk_ws_guard_input_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                         GError **error)
{
  return guard_read (ATK_WS_GUARD_INPUT (stream), buffer, count, TRUE, cancellable, error);
}

static gssize
atk_ws_guard_input_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count,
                                     GError **error)
{
  return guard_read (ATK_WS_GUARD_INPUT (stream), buffer, count, FALSE, NULL, error);
}

static gboolean
atk_ws_guard_input_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
atk_ws_guard_input_is_readable (GPollableInputStream *stream)
{
  AtkWsGuardInput *self = ATK_WS_GUARD_INPUT (stream);

  return self->buffered_pos < self->buffered_len || self->leftover != NULL || self->slice_left == 0
         || g_pollable_input_stream_is_readable (self->base);
}

/* libsoup waits for input: the next read is in a later main-loop turn, with a new slice.
 * Buffered or leftover bytes or a used-up slice make the source ready at once (at the next turn,
 * after whatever else is ready now); otherwise it waits for the socket. */
static GSource *
atk_ws_guard_input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  AtkWsGuardInput *self = ATK_WS_GUARD_INPUT (stream);
  g_autoptr (GSource) child = NULL;

  if (self->buffered_pos < self->buffered_len || self->leftover != NULL || self->slice_left == 0)
    child = g_timeout_source_new (0);
  else
    child = g_pollable_input_stream_create_source (self->base, NULL);
  self->slice_left = SLICE_BYTES;
  return g_pollable_source_new_full (stream, child, cancellable);
}

static gboolean
atk_ws_guard_input_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE; /* the guard closes the base stream */
}

static void
atk_ws_guard_input_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = atk_ws_guard_input_can_poll;
  iface->is_readable = atk_ws_guard_input_is_readable;
  iface->create_source = atk_ws_guard_input_create_source;
  iface->read_nonblocking = atk_ws_guard_input_read_nonblocking;
}

static void
atk_ws_guard_input_finalize (GObject *object)
{
  g_clear_pointer (&ATK_WS_GUARD_INPUT (object)->leftover, g_bytes_unref);
  g_free (ATK_WS_GUARD_INPUT (object)->buffered);
  G_OBJECT_CLASS (atk_ws_guard_input_parent_class)->finalize (object);
}

static void
atk_ws_guard_input_class_init (AtkWsGuardInputClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = atk_ws_guard_input_finalize;
  stream_class->read_fn = atk_ws_guard_input_read;
  stream_class->close_fn = atk_ws_guard_input_close;
}

static void
atk_ws_guard_input_init (AtkWsGuardInput *self)
{
  self->slice_left = SLICE_BYTES;
  self->buffered = g_malloc (READ_BYTES);
}

/* ---- the stream ---- */

static GInputStream *
atk_ws_guard_get_input_stream (GIOStream *stream)
{
  return G_INPUT_STREAM (ATK_WS_GUARD (stream)->input);
}

static GOutputStream *
atk_ws_guard_get_output_stream (GIOStream *stream)
{
  return G_OUTPUT_STREAM (ATK_WS_GUARD (stream)->output);
}

static gboolean
atk_ws_guard_close (GIOStream *stream, GCancellable *cancellable, GError **error)
{
  return g_io_stream_close (ATK_WS_GUARD (stream)->base, cancellable, error);
}

static void
atk_ws_guard_finalize (GObject *object)
{
  AtkWsGuard *self = ATK_WS_GUARD (object);

  g_clear_object (&self->input);
  g_clear_object (&self->output);
  g_clear_object (&self->base);
  G_OBJECT_CLASS (atk_ws_guard_parent_class)->finalize (object);
}

static void
atk_ws_guard_class_init (AtkWsGuardClass *klass)
{
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = atk_ws_guard_finalize;
  stream_class->get_input_stream = atk_ws_guard_get_input_stream;
  stream_class->get_output_stream = atk_ws_guard_get_output_stream;
  stream_class->close_fn = atk_ws_guard_close;
}

static void
atk_ws_guard_init (AtkWsGuard *self)
{
}

AtkWsGuard *
atk_ws_guard_new (GIOStream *base, GBytes *leftover, guint64 max_message_bytes)
{
  AtkWsGuard *self;

  g_return_val_if_fail (G_IS_IO_STREAM (base), NULL);

  self = g_object_new (ATK_TYPE_WS_GUARD, NULL);
  self->base = g_object_ref (base);
  self->output = g_object_new (ATK_TYPE_WS_GUARD_OUTPUT, NULL);
  self->output->base = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (base));
  self->input = g_object_new (ATK_TYPE_WS_GUARD_INPUT, NULL);
  self->input->base = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (base));
  self->input->output = self->output;
  if (leftover != NULL && g_bytes_get_size (leftover) > 0)
    self->input->leftover = g_bytes_ref (leftover);
  atk_ws_meter_init (&self->input->meter, max_message_bytes, g_get_monotonic_time ());
  return self;
}
