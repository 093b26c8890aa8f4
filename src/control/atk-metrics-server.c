/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-metrics"

#include "atk-metrics-server.h"

#include <libsoup/soup.h>
#include <string.h>
#include <sys/resource.h>

#include "atk-error.h"
#include "atk-http-guard.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Connections are accepted here and handed to the SoupServer with
 * soup_server_accept_iostream(), rather than with soup_server_listen(): libsoup 3.2's own
 * listener leaks the GSocket of every accepted connection, which for a daemon scraped
 * every few seconds for months adds up. Without listeners libsoup closes each connection
 * after its response, which suits a scrape endpoint.
 *
 * The endpoint is unauthenticated, so every connection is bounded: its request head must
 * arrive within HEAD_TIMEOUT_S and be small, it may not carry a body (AtkHttpGuard), and it
 * lives at most LIFETIME_S. At most max_connections are open; a new one beyond that takes the
 * place of the oldest that has not sent its head yet, or is closed. The cap leaves the
 * process's other file descriptors (the cursor file, Kafka's sockets) alone. Accepting is our
 * own loop: a failure (EMFILE) waits, growing from ACCEPT_BACKOFF_MIN_MS to
 * ACCEPT_BACKOFF_MAX_MS, and is logged once per ACCEPT_LOG_INTERVAL_S. */
#define HEAD_TIMEOUT_S 5
#define LIFETIME_S 15
#define MAX_CONNECTIONS 64
#define FD_RESERVE 256
#define ACCEPT_BACKOFF_MIN_MS 50
#define ACCEPT_BACKOFF_MAX_MS 2000
#define ACCEPT_LOG_INTERVAL_S 10

typedef struct
{
  AtkMetricsServer *server;
  AtkHttpGuard *guard;
  gint64 start_us;
  GList *link; /* in server->connections */
} Connection;

struct _AtkMetricsServer
{
  GObject parent_instance;

  GSocketListener *listener;
  GCancellable *cancellable;
  guint port;
  SoupServer *server;
  AtkMetricsRenderFunc render;
  AtkHealthFunc healthy;
  gpointer user_data;

  GQueue connections; /* Connection *, oldest first */
  guint max_connections;
  guint sweep_id;
  guint accept_retry_id;
  guint accept_backoff_ms;
  gint64 accept_logged_us;
  guint64 accept_errors;
  guint64 accept_errors_unlogged;
  guint64 refused;
};

G_DEFINE_FINAL_TYPE (AtkMetricsServer, atk_metrics_server, G_TYPE_OBJECT)

static void
connection_forget (Connection *connection)
{
  AtkMetricsServer *self = connection->server;

  g_signal_handlers_disconnect_by_data (connection->guard, connection);
  g_queue_delete_link (&self->connections, connection->link);
  g_object_unref (connection->guard);
  g_free (connection);
}

static void
on_guard_closed (AtkHttpGuard *guard, gpointer user_data)
{
  connection_forget (user_data);
}

static void
atk_metrics_server_dispose (GObject *object)
{
  AtkMetricsServer *self = ATK_METRICS_SERVER (object);

  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_handle_id (&self->sweep_id, g_source_remove);
  g_clear_handle_id (&self->accept_retry_id, g_source_remove);
  if (self->listener != NULL)
    g_socket_listener_close (self->listener);
  g_clear_object (&self->listener);
  while (!g_queue_is_empty (&self->connections))
    {
      Connection *connection = g_queue_peek_head (&self->connections);

      atk_http_guard_abort (connection->guard);
      connection_forget (connection);
    }
  if (self->server != NULL)
    soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  G_OBJECT_CLASS (atk_metrics_server_parent_class)->dispose (object);
}

static void
atk_metrics_server_class_init (AtkMetricsServerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = atk_metrics_server_dispose;
}

static void
atk_metrics_server_init (AtkMetricsServer *self)
{
  g_queue_init (&self->connections);
}

static void
respond_text (SoupServerMessage *msg, guint status, const char *content_type, char *body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_TAKE, body, strlen (body));
}

static void
handle_metrics (AtkMetricsServer *self, SoupServerMessage *msg)
{
  GString *out = g_string_new (NULL);

  if (self->render != NULL)
    self->render (out, self->user_data);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, METRICS_CONTENT_TYPE, SOUP_MEMORY_TAKE, out->str,
                                    out->len);
  g_string_free (out, FALSE);
}

static void
handle_healthz (AtkMetricsServer *self, SoupServerMessage *msg)
{
  gboolean healthy = self->healthy == NULL || self->healthy (self->user_data);

  if (healthy)
    respond_text (msg, SOUP_STATUS_OK, "text/plain; charset=utf-8", g_strdup ("ok"));
  else
    respond_text (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                  g_strdup ("unhealthy"));
}

static void
handle_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer user_data)
{
  AtkMetricsServer *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  gboolean is_metrics = g_strcmp0 (path, "/metrics") == 0;

  if (!is_metrics && g_strcmp0 (path, "/healthz") != 0)
    {
      respond_text (msg, SOUP_STATUS_NOT_FOUND, "text/plain; charset=utf-8",
                    g_strdup ("not found: try /metrics or /healthz\n"));
      return;
    }
  /* HEAD is GET without the body (libsoup drops it), as HTTP asks of every server */
  if (g_strcmp0 (method, SOUP_METHOD_GET) != 0 && g_strcmp0 (method, SOUP_METHOD_HEAD) != 0)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow",
                                    "GET, HEAD");
      respond_text (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                    g_strdup ("method not allowed\n"));
      return;
    }
  if (is_metrics)
    handle_metrics (self, msg);
  else
    handle_healthz (self, msg);
}

/* Splits "host:port", "[v6]:port" or ":port" (host "" = every interface). */
static gboolean
split_address (const char *address, char **host, guint16 *port)
{
  const char *colon = strrchr (address, ':');
  g_autofree char *host_part = NULL;
  guint64 value = 0;

  if (colon == NULL || colon[1] == '\0')
    return FALSE;
  if (!g_ascii_string_to_unsigned (colon + 1, 10, 0, G_MAXUINT16, &value, NULL))
    return FALSE;
  host_part = g_strndup (address, colon - address);
  if (host_part[0] == '[')
    {
      gsize len = strlen (host_part);

      if (len < 3 || host_part[len - 1] != ']')
        return FALSE;
      *host = g_strndup (host_part + 1, len - 2);
      /* only IPv6 literals go in brackets */
      if (strchr (*host, ':') == NULL)
        {
          g_clear_pointer (host, g_free);
          return FALSE;
        }
    }
  else if (strchr (host_part, ':') != NULL)
    return FALSE; /* an IPv6 literal without brackets: the port is ambiguous */
  else
    *host = g_steal_pointer (&host_part);
  *port = (guint16)value;
  return TRUE;
}

/* Closes connections past their deadline: the head within HEAD_TIMEOUT_S, all of it within
 * LIFETIME_S (a client that does not read its answer). */
static gboolean
on_sweep (gpointer user_data)
{
  AtkMetricsServer *self = user_data;
  gint64 now = g_get_monotonic_time ();

  for (GList *l = self->connections.head; l != NULL;)
    {
      Connection *connection = l->data;
      gint64 age = now - connection->start_us;

      l = l->next;
      if (age >= LIFETIME_S * G_USEC_PER_SEC
          || (age >= HEAD_TIMEOUT_S * G_USEC_PER_SEC
              && !atk_http_guard_head_done (connection->guard)))
        atk_http_guard_abort (connection->guard);
    }
  if (g_queue_is_empty (&self->connections))
    {
      self->sweep_id = 0;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* Room for one more: drops the oldest connection still waiting for its head, if any. */
static gboolean
make_room (AtkMetricsServer *self)
{
  if (self->connections.length < self->max_connections)
    return TRUE;
  for (GList *l = self->connections.head; l != NULL; l = l->next)
    {
      Connection *connection = l->data;

      if (!atk_http_guard_head_done (connection->guard))
        {
          atk_http_guard_abort (connection->guard);
          connection_forget (connection);
          return TRUE;
        }
    }
  return FALSE;
}

static void
serve (AtkMetricsServer *self, GSocketConnection *socket_connection)
{
  g_autoptr (GSocketAddress) local = NULL;
  g_autoptr (GSocketAddress) remote = NULL;
  g_autoptr (GError) error = NULL;
  Connection *connection;

  if (!make_room (self))
    {
      self->refused++;
      g_io_stream_close (G_IO_STREAM (socket_connection), NULL, NULL);
      return;
    }
  local = g_socket_connection_get_local_address (socket_connection, &error);
  if (local != NULL)
    remote = g_socket_connection_get_remote_address (socket_connection, &error);
  if (remote == NULL)
    {
      /* the peer is already gone; nothing to answer */
      g_debug ("dropping metrics connection: %s", error->message);
      g_io_stream_close (G_IO_STREAM (socket_connection), NULL, NULL);
      return;
    }
  connection = g_new0 (Connection, 1);
  connection->server = self;
  connection->guard = atk_http_guard_new (socket_connection);
  connection->start_us = g_get_monotonic_time ();
  g_queue_push_tail (&self->connections, connection);
  connection->link = self->connections.tail;
  g_signal_connect (connection->guard, "closed", G_CALLBACK (on_guard_closed), connection);
  if (self->sweep_id == 0)
    self->sweep_id = g_timeout_add_seconds (1, on_sweep, self);
  if (!soup_server_accept_iostream (self->server, G_IO_STREAM (connection->guard), local, remote,
                                    &error))
    {
      g_debug ("dropping metrics connection: %s", error->message);
      g_io_stream_close (G_IO_STREAM (connection->guard), NULL, NULL);
    }
}

static void accept_next (AtkMetricsServer *self);

static gboolean
on_accept_retry (gpointer user_data)
{
  AtkMetricsServer *self = user_data;

  self->accept_retry_id = 0;
  accept_next (self);
  return G_SOURCE_REMOVE;
}

/* A failed accept (out of file descriptors, most likely): wait, and say so once in a while. */
static void
accept_failed (AtkMetricsServer *self, const GError *error)
{
  gint64 now = g_get_monotonic_time ();

  self->accept_errors++;
  self->accept_errors_unlogged++;
  self->accept_backoff_ms = self->accept_backoff_ms == 0
                                ? ACCEPT_BACKOFF_MIN_MS
                                : MIN (self->accept_backoff_ms * 2, ACCEPT_BACKOFF_MAX_MS);
  if (self->accept_logged_us == 0
      || now - self->accept_logged_us >= ACCEPT_LOG_INTERVAL_S * G_USEC_PER_SEC)
    {
      g_warning ("Cannot accept metrics connections: %s (%" G_GUINT64_FORMAT
                 " failure(s) since the last such message); retrying in %u ms",
                 error->message, self->accept_errors_unlogged, self->accept_backoff_ms);
      self->accept_logged_us = now;
      self->accept_errors_unlogged = 0;
    }
  self->accept_retry_id = g_timeout_add (self->accept_backoff_ms, on_accept_retry, self);
}

static void
on_accepted (GObject *object, GAsyncResult *result, gpointer user_data)
{
  AtkMetricsServer *self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) connection
      = g_socket_listener_accept_finish (G_SOCKET_LISTENER (object), result, NULL, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
      || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED))
    return; /* disposed: self may be gone */
  if (connection == NULL)
    {
      accept_failed (self, error);
      return;
    }
  self->accept_backoff_ms = 0;
  serve (self, connection);
  accept_next (self);
}

static void
accept_next (AtkMetricsServer *self)
{
  g_socket_listener_accept_async (self->listener, self->cancellable, on_accepted, self);
}

/* As many connections as the descriptors allow after FD_RESERVE for everything else. */
static guint
connection_cap (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return MAX_CONNECTIONS;
  if (limit.rlim_cur <= FD_RESERVE + 8)
    return 4;
  return (guint)MIN ((rlim_t)MAX_CONNECTIONS, (limit.rlim_cur - FD_RESERVE) / 2);
}

/* Binds the listener; host "" is every interface (IPv6 and IPv4), "localhost" is
 * 127.0.0.1. Sets self->port to the port bound. */
static gboolean
listen_on (AtkMetricsServer *self, const char *host, guint16 port, GError **error)
{
  GSocketListener *listener = self->listener;
  g_autoptr (GInetAddress) inet = NULL;
  g_autoptr (GSocketAddress) socket_address = NULL;
  g_autoptr (GSocketAddress) effective = NULL;

  if (host[0] == '\0' && port == 0)
    {
      self->port = g_socket_listener_add_any_inet_port (listener, NULL, error);
      return self->port != 0;
    }
  if (host[0] == '\0')
    {
      self->port = port;
      return g_socket_listener_add_inet_port (listener, port, NULL, error);
    }
  if (g_ascii_strcasecmp (host, "localhost") == 0)
    inet = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  else
    inet = g_inet_address_new_from_string (host);
  if (inet == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   "“%s” is not an IP address (give an IPv4 or [IPv6] literal, localhost, or "
                   "no host for every interface)",
                   host);
      return FALSE;
    }
  socket_address = g_inet_socket_address_new (inet, port);
  if (!g_socket_listener_add_address (listener, socket_address, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &effective, error))
    return FALSE;
  self->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  return TRUE;
}

AtkMetricsServer *
atk_metrics_server_new (const char *listen_address, AtkMetricsRenderFunc render,
                        AtkHealthFunc healthy, gpointer user_data, GError **error)
{
  g_autoptr (AtkMetricsServer) self = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autofree char *host = NULL;
  guint16 port = 0;

  g_return_val_if_fail (listen_address != NULL, NULL);

  if (!split_address (listen_address, &host, &port))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   "Invalid metrics listen address “%s”: expected HOST:PORT, :PORT or "
                   "[IPv6]:PORT with a port from 0 to 65535",
                   listen_address);
      return NULL;
    }

  self = g_object_new (ATK_TYPE_METRICS_SERVER, NULL);
  self->render = render;
  self->healthy = healthy;
  self->user_data = user_data;
  self->server = soup_server_new ("server-header", "at-kafka/" ATK_VERSION, NULL);
  soup_server_add_handler (self->server, NULL, handle_request, self, NULL);
  self->listener = g_socket_listener_new ();
  /* a burst of connections waits in the kernel rather than in SYN retries */
  g_socket_listener_set_backlog (self->listener, 128);
  self->cancellable = g_cancellable_new ();
  self->max_connections = connection_cap ();

  if (!listen_on (self, host, port, &local_error))
    {
      /* a bad host is the operator's to fix; anything else (port in use) is the system's */
      gint code = g_error_matches (local_error, ATK_ERROR, ATK_ERROR_BAD_CONFIG)
                      ? ATK_ERROR_BAD_CONFIG
                      : ATK_ERROR_FAILED;
      g_set_error (error, ATK_ERROR, code, "Cannot listen on metrics address “%s”: %s",
                   listen_address, local_error->message);
      return NULL;
    }
  accept_next (self);
  /* With port 0 the kernel picks one: say which, for whoever started us. */
  g_message ("Serving /metrics and /healthz on %s%s%s:%u", strchr (host, ':') != NULL ? "[" : "",
             host[0] != '\0' ? host : "*", strchr (host, ':') != NULL ? "]" : "", self->port);
  return g_steal_pointer (&self);
}

guint
atk_metrics_server_get_port (AtkMetricsServer *self)
{
  g_return_val_if_fail (ATK_IS_METRICS_SERVER (self), 0);

  return self->port;
}

guint
atk_metrics_server_get_n_connections (AtkMetricsServer *self)
{
  g_return_val_if_fail (ATK_IS_METRICS_SERVER (self), 0);

  return self->connections.length;
}

guint
atk_metrics_server_get_max_connections (AtkMetricsServer *self)
{
  g_return_val_if_fail (ATK_IS_METRICS_SERVER (self), 0);

  return self->max_connections;
}

guint64
atk_metrics_server_get_accept_errors (AtkMetricsServer *self)
{
  g_return_val_if_fail (ATK_IS_METRICS_SERVER (self), 0);

  return self->accept_errors;
}
