/* at-kafka: one parser per kind of option value (the parse column of the option table).
 * Each names its option in a one-line ATK_ERROR_BAD_CONFIG message when the text is bad.
 * SPDX-License-Identifier: MIT */
#include "atk-config-private.h"

#include <glib/gi18n.h>
#include <string.h>

#include "atk-error.h"

gboolean
atk_config_parse_bool (const char *option, const char *text, gboolean *out, GError **error)
{
  if (g_ascii_strcasecmp (text, "true") == 0 || g_strcmp0 (text, "1") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (text, "false") == 0 || g_strcmp0 (text, "0") == 0)
    *out = FALSE;
  else
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("%s: expected true or false, got “%s”"), option, text);
      return FALSE;
    }
  return TRUE;
}

gboolean
atk_config_parse_uint (const char *option, const char *text, guint64 min, guint64 max, guint64 *out,
                       GError **error)
{
  guint64 value = 0;

  if (!g_ascii_string_to_unsigned (text, 10, min, max, &value, NULL))
    {
      /* Numbers as strings first: a format macro inside _() cannot be extracted. */
      g_autofree char *low = g_strdup_printf ("%" G_GUINT64_FORMAT, min);
      g_autofree char *high = g_strdup_printf ("%" G_GUINT64_FORMAT, max);
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("%s: expected a whole number from %s to %s, got “%s”"), option, low, high,
                   text);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

/* Splits "a, b,c" into a NULL-terminated list; each item must be an NSID or "prefix.*". */
static gboolean
parse_nsid_list (const char *option, const char *text, char ***out, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      char *item = g_strstrip (parts[i]);
      if (*item == '\0')
        continue;
      for (const char *c = item; *c; c++)
        if (!g_ascii_isalnum (*c) && *c != '.' && *c != '-' && !(*c == '*' && c[1] == '\0'))
          {
            g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                         _ ("%s: “%s” is not a collection NSID (like app.bsky.feed.post or "
                            "app.bsky.*)"),
                         option, item);
            return FALSE;
          }
      g_ptr_array_add (items, g_strdup (item));
    }
  g_ptr_array_add (items, NULL);
  *out = (char **)g_ptr_array_free (g_steal_pointer (&items), FALSE);
  return TRUE;
}

gboolean
atk_option_parse_nsid_list (const AtkOption *option, const char *flag, const char *text,
                            gpointer field, AtkConfig *config, GError **error)
{
  return parse_nsid_list (flag, text, field, error);
}

char *
atk_config_normalise_relay_url (const char *url, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  const char *scheme;
  const char *ws_scheme;
  g_autofree char *path = NULL;
  g_autoptr (GError) local_error = NULL;

  uri = g_uri_parse (url, G_URI_FLAGS_NONE, &local_error);
  if (uri == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--relay-host: “%s” is not a URL: %s"), url, local_error->message);
      return NULL;
    }
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "ws") == 0 || g_ascii_strcasecmp (scheme, "http") == 0)
    ws_scheme = "ws";
  else if (g_ascii_strcasecmp (scheme, "wss") == 0 || g_ascii_strcasecmp (scheme, "https") == 0)
    ws_scheme = "wss";
  else
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--relay-host: “%s” must start with ws://, wss://, http:// or https://"),
                   url);
      return NULL;
    }
  if (g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, _ ("--relay-host: “%s” has no host"),
                   url);
      return NULL;
    }
  if (g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--relay-host: “%s” must not have a query or fragment"), url);
      return NULL;
    }
  path = g_strdup (g_uri_get_path (uri));
  while (*path != '\0' && path[strlen (path) - 1] == '/')
    path[strlen (path) - 1] = '\0';
  {
    g_autoptr (GUri) normalised
        = g_uri_build (G_URI_FLAGS_NONE, ws_scheme, NULL, g_uri_get_host (uri),
                       g_uri_get_port (uri), path, NULL, NULL);
    return g_uri_to_string (normalised);
  }
}

/* host:port[,host:port…], as librdkafka would accept it; caught here to fail at start. */
static gboolean
validate_bootstrap_servers (const char *text, GError **error)
{
  g_auto (GStrv) servers = g_strsplit (text, ",", -1);
  guint n = 0;

  for (guint i = 0; servers[i] != NULL; i++)
    {
      const char *server = g_strstrip (servers[i]);
      const char *colon = strrchr (server, ':');
      guint64 port = 0;

      if (*server == '\0')
        continue;
      /* "PLAINTEXT://host:port" and friends are fine too. */
      if (strstr (server, "://") != NULL)
        server = strstr (server, "://") + 3;
      colon = strrchr (server, ':');
      if (colon == NULL || colon == server
          || !g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                       _ ("--bootstrap-servers: “%s” is not host:port"), servers[i]);
          return FALSE;
        }
      for (const char *c = server; c < colon; c++)
        if (!g_ascii_isalnum (*c) && !strchr (".-_[]:", *c))
          {
            g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                         _ ("--bootstrap-servers: “%s” is not host:port"), servers[i]);
            return FALSE;
          }
      n++;
    }
  if (n == 0)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--bootstrap-servers: no server given"));
      return FALSE;
    }
  return TRUE;
}

gboolean
atk_option_parse_servers (const AtkOption *option, const char *flag, const char *text,
                          gpointer field, AtkConfig *config, GError **error)
{
  if (!validate_bootstrap_servers (text, error))
    return FALSE;
  *(char **)field = g_strdup (text);
  return TRUE;
}

gboolean
atk_option_parse_topic (const AtkOption *option, const char *flag, const char *text, gpointer field,
                        AtkConfig *config, GError **error)
{
  for (const char *c = text; *c; c++)
    if ((!g_ascii_isalnum (*c) && !strchr ("._-", *c)) || strlen (text) > 249)
      {
        g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                     _ ("--output-topic: “%s” is not a valid Kafka topic name"), text);
        return FALSE;
      }
  *(char **)field = g_strdup (text);
  return TRUE;
}

/* The relay (or Tap) base URL, normalised to ws:// or wss://. */
gboolean
atk_option_parse_ws_url (const AtkOption *option, const char *flag, const char *text,
                         gpointer field, AtkConfig *config, GError **error)
{
  char *url = atk_config_normalise_relay_url (text, error);

  if (url == NULL)
    {
      /* The URL check names --relay-host; say which option it was. */
      if (g_strcmp0 (flag, "--relay-host") != 0)
        g_prefix_error (error, "%s: ", flag);
      return FALSE;
    }
  *(char **)field = url;
  return TRUE;
}

/* "" (or unset) is the stored cursor, "live" the live tip, else a seq; sets .cursor too. */
gboolean
atk_option_parse_cursor (const AtkOption *option, const char *flag, const char *text,
                         gpointer field, AtkConfig *config, GError **error)
{
  guint64 seq = 0;

  if (*text == '\0')
    config->cursor_mode = ATK_CURSOR_STORED;
  else if (g_ascii_strcasecmp (text, "live") == 0)
    config->cursor_mode = ATK_CURSOR_LIVE;
  else if (atk_config_parse_uint (flag, text, 0, G_MAXINT64, &seq, error))
    {
      config->cursor_mode = ATK_CURSOR_SEQ;
      config->cursor = (gint64)seq;
    }
  else
    return FALSE;
  return TRUE;
}

gboolean
atk_option_parse_bus (const AtkOption *option, const char *flag, const char *text, gpointer field,
                      AtkConfig *config, GError **error)
{
  AtkBusType *bus = field;

  if (*text == '\0' || g_strcmp0 (text, "auto") == 0)
    *bus = ATK_BUS_AUTO;
  else if (g_strcmp0 (text, "system") == 0)
    *bus = ATK_BUS_SYSTEM;
  else if (g_strcmp0 (text, "session") == 0)
    *bus = ATK_BUS_SESSION;
  else if (g_strcmp0 (text, "none") == 0)
    *bus = ATK_BUS_NONE;
  else
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--bus: expected system, session or none, got “%s”"), text);
      return FALSE;
    }
  return TRUE;
}

gboolean
atk_option_parse_payload_format (const AtkOption *option, const char *flag, const char *text,
                                 gpointer field, AtkConfig *config, GError **error)
{
  if (!atk_payload_format_from_string (text, field))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--payload-format: expected standard or jetstream, got “%s”"), text);
      return FALSE;
    }
  return TRUE;
}

gboolean
atk_option_parse_compression (const AtkOption *option, const char *flag, const char *text,
                              gpointer field, AtkConfig *config, GError **error)
{
  const char *const codecs[] = { "none", "gzip", "snappy", "lz4", "zstd", NULL };

  if (!g_strv_contains (codecs, text))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--compression: expected none, gzip, snappy, lz4 or zstd, got “%s”"), text);
      return FALSE;
    }
  *(char **)field = g_strdup (text);
  return TRUE;
}

/* "https://plc.directory" and friends: an http(s) URL with a host, kept without a trailing '/'. */
gboolean
atk_option_parse_http_url (const AtkOption *option, const char *flag, const char *text,
                           gpointer field, AtkConfig *config, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (text, G_URI_FLAGS_NONE, NULL);
  const char *scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  gsize len = strlen (text);

  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("%s: “%s” is not an http:// or https:// URL"), flag, text);
      return FALSE;
    }
  while (len > 0 && text[len - 1] == '/')
    len--;
  *(char **)field = g_strndup (text, len);
  return TRUE;
}

/* PDS host patterns: "pds.example.com" or "*.example.com". */
gboolean
atk_option_parse_host_list (const AtkOption *option, const char *flag, const char *text,
                            gpointer field, AtkConfig *config, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      char *item = g_strstrip (parts[i]);
      const char *host = g_str_has_prefix (item, "*.") ? item + 2 : item;

      if (*item == '\0')
        continue;
      for (const char *c = host; *c; c++)
        if (!g_ascii_isalnum (*c) && *c != '.' && *c != '-' && *c != ':')
          {
            g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                         _ ("%s: “%s” is not a host name (like pds.example.com or "
                            "*.example.com)"),
                         flag, item);
            return FALSE;
          }
      g_ptr_array_add (items, g_ascii_strdown (item, -1));
    }
  g_ptr_array_add (items, NULL);
  *(char ***)field = (char **)g_ptr_array_free (g_steal_pointer (&items), FALSE);
  return TRUE;
}

/* systemd may pass several colon-separated directories ($STATE_DIRECTORY); the first is ours. */
gboolean
atk_option_parse_directory (const AtkOption *option, const char *flag, const char *text,
                            gpointer field, AtkConfig *config, GError **error)
{
  *(char **)field = g_strndup (text, strcspn (text, ":"));
  return TRUE;
}
