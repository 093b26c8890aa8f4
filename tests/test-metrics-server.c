/* Tests for AtkMetricsServer: real HTTP over loopback, with a SoupSession as the client.
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>
#include <string.h>

#include "atk-error.h"
#include "atk-metrics-server.h"
#include "atk-test-util.h"

#define DEADLINE_S 10

typedef struct
{
  guint renders;
  char *last_rendered; /* what render() wrote last */
  gboolean healthy;
} ServerState;

static void
render (GString *out, gpointer user_data)
{
  ServerState *state = user_data;

  state->renders++;
  g_string_append_printf (out,
                          "# TYPE test_renders counter\ntest_renders %u\n"
                          "test_label{v=\"a\\\"b\"} 1\n",
                          state->renders);
  g_free (state->last_rendered);
  state->last_rendered = g_strdup (out->str);
}

static gboolean
healthy (gpointer user_data)
{
  ServerState *state = user_data;
  return state->healthy;
}

typedef struct
{
  guint status;
  char *content_type;
  char *allow;
  char *body;
} Response;

static void
response_clear (Response *response)
{
  g_free (response->content_type);
  g_free (response->allow);
  g_free (response->body);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Response, response_clear)

static void
on_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GBytes **bytes = user_data;
  g_autoptr (GError) error = NULL;

  *bytes = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  g_assert_no_error (error);
}

static gboolean
answered (gpointer user_data)
{
  return *(GBytes **)user_data != NULL;
}

/* One request; the main context runs (server and client both) until the answer or
 * the deadline. */
static void
fetch_from (const char *host, const char *method, guint port, const char *path, Response *response)
{
  /* a proxy from the environment must not get between us and loopback */
  g_autoptr (GProxyResolver) no_proxy = g_simple_proxy_resolver_new (NULL, NULL);
  g_autoptr (SoupSession) session
      = soup_session_new_with_options ("proxy-resolver", no_proxy, NULL);
  g_autofree char *url = g_strdup_printf ("http://%s:%u%s", host, port, path);
  g_autoptr (SoupMessage) msg = soup_message_new (method, url);
  g_autoptr (GBytes) bytes = NULL;
  SoupMessageHeaders *headers;

  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, on_sent, &bytes);
  g_assert_true (atk_test_wait_until (NULL, answered, &bytes, DEADLINE_S * 1000));

  headers = soup_message_get_response_headers (msg);
  response->status = soup_message_get_status (msg);
  response->content_type = g_strdup (soup_message_headers_get_one (headers, "Content-Type"));
  response->allow = g_strdup (soup_message_headers_get_one (headers, "Allow"));
  response->body = g_bytes_get_size (bytes) > 0
                       ? g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes))
                       : g_strdup ("");
}

static void
fetch (const char *method, guint port, const char *path, Response *response)
{
  fetch_from ("127.0.0.1", method, port, path, response);
}

static AtkMetricsServer *
start_server (const char *address, ServerState *state)
{
  g_autoptr (GError) error = NULL;
  AtkMetricsServer *server = atk_metrics_server_new (address, render, healthy, state, &error);

  g_assert_no_error (error);
  g_assert_nonnull (server);
  g_assert_cmpuint (atk_metrics_server_get_port (server), >, 0);
  return server;
}

static void
test_metrics (void)
{
  ServerState state = { 0, NULL, TRUE };
  g_autoptr (AtkMetricsServer) server = start_server ("127.0.0.1:0", &state);
  guint port = atk_metrics_server_get_port (server);

  for (guint i = 1; i <= 2; i++)
    {
      g_auto (Response) r = { 0 };

      fetch ("GET", port, "/metrics", &r);
      g_assert_cmpuint (r.status, ==, 200);
      g_assert_cmpstr (r.content_type, ==, "text/plain; version=0.0.4; charset=utf-8");
      /* rendered afresh for each scrape */
      g_assert_cmpuint (state.renders, ==, i);
      g_assert_cmpstr (r.body, ==, state.last_rendered);
    }

  {
    /* HEAD: the same status, no body */
    g_auto (Response) r = { 0 };
    fetch ("HEAD", port, "/metrics", &r);
    g_assert_cmpuint (r.status, ==, 200);
    g_assert_cmpstr (r.body, ==, "");
  }
  g_free (state.last_rendered);
}

static void
test_healthz (void)
{
  ServerState state = { 0, NULL, TRUE };
  g_autoptr (AtkMetricsServer) server = start_server ("127.0.0.1:0", &state);
  guint port = atk_metrics_server_get_port (server);
  g_auto (Response) up = { 0 };
  g_auto (Response) down = { 0 };

  fetch ("GET", port, "/healthz", &up);
  g_assert_cmpuint (up.status, ==, 200);
  g_assert_cmpstr (up.body, ==, "ok");

  state.healthy = FALSE;
  fetch ("GET", port, "/healthz", &down);
  g_assert_cmpuint (down.status, ==, 503);
  g_assert_cmpuint (state.renders, ==, 0);
}

static void
test_not_found_and_method (void)
{
  ServerState state = { 0, NULL, TRUE };
  g_autoptr (AtkMetricsServer) server = start_server ("127.0.0.1:0", &state);
  guint port = atk_metrics_server_get_port (server);
  static const char *const missing[] = { "/", "/metric", "/metrics/extra", "/healthz2" };

  for (guint i = 0; i < G_N_ELEMENTS (missing); i++)
    {
      g_auto (Response) r = { 0 };
      fetch ("GET", port, missing[i], &r);
      g_assert_cmpuint (r.status, ==, 404);
    }
  for (guint i = 0; i < 2; i++)
    {
      g_auto (Response) r = { 0 };
      fetch (i == 0 ? "POST" : "DELETE", port, i == 0 ? "/metrics" : "/healthz", &r);
      g_assert_cmpuint (r.status, ==, 405);
      g_assert_cmpstr (r.allow, ==, "GET, HEAD");
    }
  g_assert_cmpuint (state.renders, ==, 0);
}

/* ":PORT" listens on every interface and "localhost:PORT" on loopback, so 127.0.0.1
 * answers for both. */
static void
test_all_interfaces (void)
{
  static const char *const addresses[] = { ":0", "localhost:0" };

  for (guint i = 0; i < G_N_ELEMENTS (addresses); i++)
    {
      ServerState state = { 0, NULL, TRUE };
      g_autoptr (AtkMetricsServer) server = start_server (addresses[i], &state);
      g_auto (Response) r = { 0 };

      fetch ("GET", atk_metrics_server_get_port (server), "/metrics", &r);
      g_assert_cmpuint (r.status, ==, 200);
      g_assert_cmpstr (r.body, ==, state.last_rendered);
      g_free (state.last_rendered);
    }
}

static void
test_ipv6 (void)
{
  ServerState state = { 0, NULL, TRUE };
  g_autoptr (AtkMetricsServer) server = start_server ("[::1]:0", &state);
  g_auto (Response) r = { 0 };

  fetch_from ("[::1]", "GET", atk_metrics_server_get_port (server), "/metrics", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (r.body, ==, state.last_rendered);
  g_free (state.last_rendered);
}

static void
test_port_in_use (void)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkMetricsServer) server = NULL;
  g_autofree char *address = NULL;
  ServerState state = { 0, NULL, TRUE };

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, any_port, FALSE, &error));
  g_assert_true (g_socket_listen (socket, &error));
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  address = g_strdup_printf ("127.0.0.1:%u",
                             g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  server = atk_metrics_server_new (address, render, healthy, &state, &error);
  g_assert_null (server);
  g_assert_error (error, ATK_ERROR, ATK_ERROR_FAILED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, address));
  g_assert_nonnull (strstr (error->message, "in use"));
}

static void
test_bad_addresses (void)
{
  static const char *const bad[] = {
    "",
    "2112",
    "localhost",
    "127.0.0.1",
    "127.0.0.1:",
    ":",
    "127.0.0.1:65536",
    ":99999",
    "127.0.0.1:-1",
    "127.0.0.1:+80",
    "127.0.0.1:abc",
    "127.0.0.1:80x",
    "::1:2112",
    "[::1",
    "[::1]2112",
    "[]:2112",
    "[127.0.0.1]:2112",
    "1.2.3.4.5:80",
    "example.invalid:2112",
    "127.0.0.1 :2112",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (AtkMetricsServer) server
          = atk_metrics_server_new (bad[i], render, healthy, NULL, &error);

      g_test_message ("“%s”: %s", bad[i], error != NULL ? error->message : "accepted");
      g_assert_null (server);
      g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
      g_assert_nonnull (strstr (error->message, bad[i]));
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics-server/metrics", test_metrics);
  g_test_add_func ("/metrics-server/healthz", test_healthz);
  g_test_add_func ("/metrics-server/not-found-and-method", test_not_found_and_method);
  g_test_add_func ("/metrics-server/all-interfaces", test_all_interfaces);
  g_test_add_func ("/metrics-server/ipv6", test_ipv6);
  g_test_add_func ("/metrics-server/port-in-use", test_port_in_use);
  g_test_add_func ("/metrics-server/bad-addresses", test_bad_addresses);
  return g_test_run ();
}
