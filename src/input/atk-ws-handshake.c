/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-ws-handshake.h"

#include <libsoup/soup.h>
#include <string.h>
#include <sys/socket.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define READ_CHUNK 4096
/* What we send on a WebSocket connection is small (pongs, Tap's acks): a fixed, small send
 * buffer means that a peer that stops reading is noticed (our writes block) within seconds
 * rather than after megabytes of kernel buffer. */
#define SEND_BUFFER_BYTES (16 * 1024)

typedef struct
{
  GIOStream *connection;
  char *request;
  char *accept; /* the Sec-WebSocket-Accept we expect */
  GByteArray *head;
  guint http_status;
} Handshake;

static void
handshake_free (Handshake *handshake)
{
  g_clear_object (&handshake->connection);
  g_free (handshake->request);
  g_free (handshake->accept);
  g_byte_array_unref (handshake->head);
  g_free (handshake);
}

static char *
expected_accept (const char *key)
{
  g_autoptr (GChecksum) sha1 = g_checksum_new (G_CHECKSUM_SHA1);
  guint8 digest[20];
  gsize digest_len = sizeof digest;

  g_checksum_update (sha1, (const guchar *)key, -1);
  g_checksum_update (sha1, (const guchar *)WS_GUID, -1);
  g_checksum_get_digest (sha1, digest, &digest_len);
  return g_base64_encode (digest, digest_len);
}

static char *
build_request (GUri *uri, const char *key, const char *user_agent)
{
  const char *path = g_uri_get_path (uri);
  const char *query = g_uri_get_query (uri);
  gint port = g_uri_get_port (uri);
  g_autofree char *host = NULL;
  const char *raw_host = g_uri_get_host (uri);

  /* an IPv6 literal goes in brackets */
  host = strchr (raw_host, ':') != NULL ? g_strdup_printf ("[%s]", raw_host) : g_strdup (raw_host);
  return g_strdup_printf ("GET %s%s%s HTTP/1.1\r\n"
                          "Host: %s%s%.0d\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "User-Agent: %s\r\n"
                          "\r\n",
                          *path != '\0' ? path : "/", query != NULL ? "?" : "",
                          query != NULL ? query : "", host, port > 0 ? ":" : "",
                          port > 0 ? port : 0, key, user_agent);
}

/* Checks the response head (without its blank line). */
static gboolean
check_response (Handshake *handshake, const char *head, gsize len, GError **error)
{
  g_autoptr (SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autofree char *reason = NULL;
  guint status = 0;
  const char *accept;

  if (!soup_headers_parse_response (head, (int)len, headers, NULL, &status, &reason))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the server's answer is not HTTP");
      return FALSE;
    }
  handshake->http_status = status;
  if (status != SOUP_STATUS_SWITCHING_PROTOCOLS)
    {
      g_autofree char *shown = g_utf8_make_valid (reason != NULL ? reason : "", 200);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "HTTP %u %s: the server refused the WebSocket upgrade", status, shown);
      return FALSE;
    }
  if (!soup_message_headers_header_equals (headers, "Upgrade", "websocket")
      || !soup_message_headers_header_contains (headers, "Connection", "upgrade"))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the server did not upgrade the connection to WebSocket");
      return FALSE;
    }
  accept = soup_message_headers_get_one (headers, "Sec-WebSocket-Accept");
  if (g_strcmp0 (accept, handshake->accept) != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the server's Sec-WebSocket-Accept is wrong");
      return FALSE;
    }
  if (soup_message_headers_get_one (headers, "Sec-WebSocket-Extensions") != NULL
      || soup_message_headers_get_one (headers, "Sec-WebSocket-Protocol") != NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the server chose an extension or a subprotocol we did not offer");
      return FALSE;
    }
  return TRUE;
}

/* Where the head ends (past "\r\n\r\n"), or 0. */
static gsize
head_end (GByteArray *head)
{
  for (gsize i = 3; i < head->len; i++)
    if (memcmp (head->data + i - 3, "\r\n\r\n", 4) == 0)
      return i + 1;
  return 0;
}

static void read_more (GTask *task);

static void
on_read (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Handshake *handshake = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) chunk
      = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, &error);
  gsize end;

  if (chunk == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                               "the server closed the connection during the handshake");
      return;
    }
  g_byte_array_append (handshake->head, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
  end = head_end (handshake->head);
  if (end == 0)
    {
      if (handshake->head->len >= ATK_WS_HANDSHAKE_HEAD_MAX)
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                                 "the server's answer is longer than %d bytes",
                                 ATK_WS_HANDSHAKE_HEAD_MAX);
      else
        read_more (g_steal_pointer (&task));
      return;
    }
  if (!check_response (handshake, (const char *)handshake->head->data, end - 2, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_byte_array_remove_range (handshake->head, 0, end);
  g_task_return_boolean (task, TRUE);
}

static void
read_more (GTask *task)
{
  Handshake *handshake = g_task_get_task_data (task);
  GInputStream *in = g_io_stream_get_input_stream (handshake->connection);

  g_input_stream_read_bytes_async (in, MIN (READ_CHUNK, ATK_WS_HANDSHAKE_HEAD_MAX),
                                   G_PRIORITY_DEFAULT, g_task_get_cancellable (task), on_read,
                                   task);
}

static void
on_written (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  read_more (g_steal_pointer (&task));
}

static void
on_connected (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Handshake *handshake = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;
  GSocketConnection *connection
      = g_socket_client_connect_to_uri_finish (G_SOCKET_CLIENT (object), result, &error);

  if (connection == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  handshake->connection = G_IO_STREAM (connection);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (handshake->connection),
                                   handshake->request, strlen (handshake->request),
                                   G_PRIORITY_DEFAULT, cancellable, on_written,
                                   g_steal_pointer (&task));
}

static void
on_client_event (GSocketClient *client, GSocketClientEvent event, GSocketConnectable *connectable,
                 GIOStream *connection, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  if (event != G_SOCKET_CLIENT_CONNECTING || !G_IS_SOCKET_CONNECTION (connection))
    return;
  if (!g_socket_set_option (g_socket_connection_get_socket (G_SOCKET_CONNECTION (connection)),
                            SOL_SOCKET, SO_SNDBUF, SEND_BUFFER_BYTES, &error))
    g_debug ("cannot set SO_SNDBUF: %s", error->message);
}

void
atk_ws_handshake_client_init (GSocketClient *client)
{
  g_signal_connect (client, "event", G_CALLBACK (on_client_event), NULL);
}

void
atk_ws_handshake_async (GSocketClient *client, const char *url, const char *user_agent,
                        GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) error = NULL;
  Handshake *handshake;
  guint8 nonce[16];
  g_autofree char *key = NULL;
  gboolean tls;

  g_task_set_source_tag (task, atk_ws_handshake_async);
  uri = g_uri_parse (url, G_URI_FLAGS_ENCODED, &error);
  if (uri == NULL || g_uri_get_host (uri) == NULL
      || (g_strcmp0 (g_uri_get_scheme (uri), "ws") != 0
          && g_strcmp0 (g_uri_get_scheme (uri), "wss") != 0))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "not a ws:// or wss:// URL: %s", url);
      return;
    }
  tls = g_strcmp0 (g_uri_get_scheme (uri), "wss") == 0;
  for (guint i = 0; i < sizeof nonce; i++)
    nonce[i] = (guint8)g_random_int_range (0, 256);
  key = g_base64_encode (nonce, sizeof nonce);
  handshake = g_new0 (Handshake, 1);
  handshake->head = g_byte_array_new ();
  handshake->accept = expected_accept (key);
  handshake->request = build_request (uri, key, user_agent);
  g_task_set_task_data (task, handshake, (GDestroyNotify)handshake_free);
  g_socket_client_set_tls (client, tls);
  g_socket_client_connect_to_uri_async (client, url, tls ? 443 : 80, cancellable, on_connected,
                                        g_steal_pointer (&task));
}

GIOStream *
atk_ws_handshake_finish (GAsyncResult *result, GBytes **leftover, guint *http_status,
                         GError **error)
{
  GTask *task = G_TASK (result);
  Handshake *handshake = g_task_get_task_data (task);

  if (http_status != NULL)
    *http_status = handshake->http_status;
  if (!g_task_propagate_boolean (task, error))
    return NULL;
  if (leftover != NULL)
    *leftover = g_bytes_new (handshake->head->data, handshake->head->len);
  return g_steal_pointer (&handshake->connection);
}
