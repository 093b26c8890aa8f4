/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-metrics"

#include "atk-metrics-server.h"

#include <libsoup/soup.h>
#include <string.h>

#include "atk-error.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Connections are accepted by a GSocketService and handed to the SoupServer with
 * soup_server_accept_iostream(), rather than with soup_server_listen(): libsoup 3.2's own
 * listener leaks the GSocket of every accepted connection, which for a daemon scraped
 * every few seconds for months adds up. Without listeners libsoup closes each connection
 * after its response, which suits a scrape endpoint. */

struct _AtkMetricsServer
{
  GObject parent_instance;

  GSocketService *service;
  guint port;
  SoupServer *server;
  AtkMetricsRenderFunc render;
  AtkHealthFunc healthy;
  gpointer user_data;
};

G_DEFINE_FINAL_TYPE (AtkMetricsServer, atk_metrics_server, G_TYPE_OBJECT)

static void
atk_metrics_server_dispose (GObject *object)
{
  AtkMetricsServer *self = ATK_METRICS_SERVER (object);

  if (self->service != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->service, self);
      g_socket_service_stop (self->service);
      g_socket_listener_close (G_SOCKET_LISTENER (self->service));
    }
  g_clear_object (&self->service);
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

static gboolean
on_incoming (GSocketService *service, GSocketConnection *connection, GObject *source_object,
             gpointer user_data)
{
  AtkMetricsServer *self = user_data;
  g_autoptr (GSocketAddress) local = NULL;
  g_autoptr (GSocketAddress) remote = NULL;
  g_autoptr (GError) error = NULL;

  local = g_socket_connection_get_local_address (connection, &error);
  if (local != NULL)
    remote = g_socket_connection_get_remote_address (connection, &error);
  /* the peer may already be gone; nothing to answer then */
  if (remote == NULL
      || !soup_server_accept_iostream (self->server, G_IO_STREAM (connection), local, remote,
                                       &error))
    {
      g_debug ("dropping metrics connection: %s", error->message);
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
    }
  return TRUE;
}

/* Binds the service; host "" is every interface (IPv6 and IPv4), "localhost" is
 * 127.0.0.1. Sets self->port to the port bound. */
static gboolean
listen_on (AtkMetricsServer *self, const char *host, guint16 port, GError **error)
{
  GSocketListener *listener = G_SOCKET_LISTENER (self->service);
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
  self->service = g_socket_service_new ();
  g_signal_connect (self->service, "incoming", G_CALLBACK (on_incoming), self);

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
  g_socket_service_start (self->service);
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
