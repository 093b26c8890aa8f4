/* SPDX-License-Identifier: MIT */
#include "atk-test-http.h"

SoupServer *
atk_test_http_server_new (SoupServerCallback callback, gpointer user_data, guint *port)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSList) uris = NULL;
  SoupServer *server = soup_server_new (NULL, NULL);

  soup_server_add_handler (server, NULL, callback, user_data, NULL);
  soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  *port = (guint)g_uri_get_port (uris->data);
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify)g_uri_unref);
  return server;
}

SoupServer *
atk_test_ws_server_new (const char *path, SoupServerWebsocketCallback callback, gpointer user_data,
                        char **url)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSList) uris = NULL;
  SoupServer *server = soup_server_new (NULL, NULL);

  soup_server_add_websocket_handler (server, path, NULL, NULL, callback, user_data, NULL);
  soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  *url = g_strdup_printf ("ws://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify)g_uri_unref);
  return server;
}

void
atk_test_http_server_stop (SoupServer **server)
{
  soup_server_disconnect (*server);
  g_clear_object (server);
}
