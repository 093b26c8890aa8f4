/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-metrics"

#include "atk-http-guard.h"

#include <string.h>

#include "atk-http-head.h"

/* ---- the input side: a pollable stream that passes the head only ---- */

#define ATK_TYPE_HTTP_GUARD_INPUT (atk_http_guard_input_get_type ())
G_DECLARE_FINAL_TYPE (AtkHttpGuardInput, atk_http_guard_input, ATK, HTTP_GUARD_INPUT, GInputStream)

struct _AtkHttpGuardInput
{
  GInputStream parent_instance;

  GSocketConnection *connection; /* not a reference: the guard holds it */
  GPollableInputStream *base;
  AtkHttpHead head;
};

static void atk_http_guard_input_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (AtkHttpGuardInput, atk_http_guard_input, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      atk_http_guard_input_pollable_iface_init))

/* A short answer written straight to the socket (libsoup has not started one: it is still
 * reading the head), then the socket is shut down. */
static void
refuse (AtkHttpGuardInput *self, guint status)
{
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (self->connection));
  g_autofree char *answer
      = g_strdup_printf ("HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status,
                         status == 413 ? "Content Too Large" : "Request Header Fields Too Large");

  g_debug ("refusing a metrics request: %u", status);
  /* the socket buffer is empty here: the few bytes go out at once or not at all */
  g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (out), answer,
                                              strlen (answer), NULL, NULL);
  g_socket_shutdown (g_socket_connection_get_socket (self->connection), TRUE, TRUE, NULL);
}

static gssize
guard_read (AtkHttpGuardInput *self, void *buffer, gsize count, gboolean blocking,
            GCancellable *cancellable, GError **error)
{
  gssize n;
  gsize n_head = 0;
  AtkHttpHeadVerdict verdict;

  /* After the head: the request is answered and nothing else is read. */
  if (self->head.verdict != ATK_HTTP_HEAD_INCOMPLETE)
    return 0;
  count = MIN (count, (gsize)ATK_HTTP_HEAD_MAX);
  if (blocking)
    n = g_input_stream_read (G_INPUT_STREAM (self->base), buffer, count, cancellable, error);
  else
    n = g_pollable_input_stream_read_nonblocking (self->base, buffer, count, cancellable, error);
  if (n <= 0)
    return n;
  verdict = atk_http_head_feed (&self->head, buffer, n, &n_head);
  if (verdict == ATK_HTTP_HEAD_TOO_LARGE || verdict == ATK_HTTP_HEAD_HAS_BODY)
    {
      refuse (self, atk_http_head_refusal_status (verdict));
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                           "request refused before its body");
      return -1;
    }
  return n_head;
}

static gssize
atk_http_guard_input_read (GInputStream *stream, void *buffer, gsize count,
                           GCancellable *cancellable, GError **error)
{
  return guard_read (ATK_HTTP_GUARD_INPUT (stream), buffer, count, TRUE, cancellable, error);
}

static gssize
atk_http_guard_input_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count,
                                       GError **error)
{
  return guard_read (ATK_HTTP_GUARD_INPUT (stream), buffer, count, FALSE, NULL, error);
}

static gboolean
atk_http_guard_input_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
atk_http_guard_input_is_readable (GPollableInputStream *stream)
{
  AtkHttpGuardInput *self = ATK_HTTP_GUARD_INPUT (stream);

  return self->head.verdict != ATK_HTTP_HEAD_INCOMPLETE
         || g_pollable_input_stream_is_readable (self->base);
}

static GSource *
atk_http_guard_input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  AtkHttpGuardInput *self = ATK_HTTP_GUARD_INPUT (stream);
  g_autoptr (GSource) base_source = g_pollable_input_stream_create_source (self->base, NULL);

  return g_pollable_source_new_full (stream, base_source, cancellable);
}

static gboolean
atk_http_guard_input_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE; /* the guard closes the connection */
}

static void
atk_http_guard_input_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = atk_http_guard_input_can_poll;
  iface->is_readable = atk_http_guard_input_is_readable;
  iface->create_source = atk_http_guard_input_create_source;
  iface->read_nonblocking = atk_http_guard_input_read_nonblocking;
}

static void
atk_http_guard_input_class_init (AtkHttpGuardInputClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  stream_class->read_fn = atk_http_guard_input_read;
  stream_class->close_fn = atk_http_guard_input_close;
}

static void
atk_http_guard_input_init (AtkHttpGuardInput *self)
{
  atk_http_head_init (&self->head);
}

/* ---- the stream ---- */

struct _AtkHttpGuard
{
  GIOStream parent_instance;

  GSocketConnection *connection;
  AtkHttpGuardInput *input;
};

G_DEFINE_FINAL_TYPE (AtkHttpGuard, atk_http_guard, G_TYPE_IO_STREAM)

enum
{
  SIGNAL_CLOSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static GInputStream *
atk_http_guard_get_input_stream (GIOStream *stream)
{
  return G_INPUT_STREAM (ATK_HTTP_GUARD (stream)->input);
}

static GOutputStream *
atk_http_guard_get_output_stream (GIOStream *stream)
{
  return g_io_stream_get_output_stream (G_IO_STREAM (ATK_HTTP_GUARD (stream)->connection));
}

static gboolean
atk_http_guard_close (GIOStream *stream, GCancellable *cancellable, GError **error)
{
  AtkHttpGuard *self = ATK_HTTP_GUARD (stream);
  gboolean ok = g_io_stream_close (G_IO_STREAM (self->connection), cancellable, error);

  g_signal_emit (self, signals[SIGNAL_CLOSED], 0);
  return ok;
}

static void
atk_http_guard_finalize (GObject *object)
{
  AtkHttpGuard *self = ATK_HTTP_GUARD (object);

  g_clear_object (&self->input);
  g_clear_object (&self->connection);
  G_OBJECT_CLASS (atk_http_guard_parent_class)->finalize (object);
}

static void
atk_http_guard_class_init (AtkHttpGuardClass *klass)
{
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = atk_http_guard_finalize;
  stream_class->get_input_stream = atk_http_guard_get_input_stream;
  stream_class->get_output_stream = atk_http_guard_get_output_stream;
  stream_class->close_fn = atk_http_guard_close;
  signals[SIGNAL_CLOSED] = g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                         NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
atk_http_guard_init (AtkHttpGuard *self)
{
}

AtkHttpGuard *
atk_http_guard_new (GSocketConnection *connection)
{
  AtkHttpGuard *self;

  g_return_val_if_fail (G_IS_SOCKET_CONNECTION (connection), NULL);

  self = g_object_new (ATK_TYPE_HTTP_GUARD, NULL);
  self->connection = g_object_ref (connection);
  self->input = g_object_new (ATK_TYPE_HTTP_GUARD_INPUT, NULL);
  self->input->connection = connection;
  self->input->base
      = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  return self;
}

gboolean
atk_http_guard_head_done (AtkHttpGuard *self)
{
  g_return_val_if_fail (ATK_IS_HTTP_GUARD (self), FALSE);
  return self->input->head.verdict != ATK_HTTP_HEAD_INCOMPLETE;
}

void
atk_http_guard_abort (AtkHttpGuard *self)
{
  g_return_if_fail (ATK_IS_HTTP_GUARD (self));

  if (!g_io_stream_is_closed (G_IO_STREAM (self)))
    g_socket_shutdown (g_socket_connection_get_socket (self->connection), TRUE, TRUE, NULL);
}
