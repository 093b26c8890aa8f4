/* at-kafka: the syntax of DIDs and handles, the answers a handle resolves through, and the
 * URL of a did:web document. Pure: strings in, values out.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-did-syntax.h"

#include <gio/gio.h>
#include <string.h>

#define MAX_HANDLE_LEN 253
#define MAX_DID_LEN 2048

/* ---- syntax ---- */

static gboolean
is_label_char (char c)
{
  return g_ascii_isalnum (c) || c == '-';
}

gboolean
atk_handle_is_valid (const char *handle)
{
  gsize len = strlen (handle);
  const char *label = handle;
  guint labels = 0;

  if (len == 0 || len > MAX_HANDLE_LEN)
    return FALSE;
  for (;;)
    {
      const char *end = strchr (label, '.');
      gsize n = end != NULL ? (gsize)(end - label) : strlen (label);

      if (n == 0 || n > 63 || !g_ascii_isalnum (label[0]) || !g_ascii_isalnum (label[n - 1]))
        return FALSE;
      for (gsize i = 0; i < n; i++)
        if (!is_label_char (label[i]))
          return FALSE;
      labels++;
      if (end == NULL)
        return labels >= 2 && g_ascii_isalpha (label[0]);
      label = end + 1;
    }
}

gboolean
atk_handle_tld_allowed (const char *handle)
{
  static const char *const reserved[]
      = { "local", "arpa", "invalid", "localhost", "internal", "example", "onion", "alt" };
  const char *dot = strrchr (handle, '.');
  const char *tld = dot != NULL ? dot + 1 : handle;

  for (guint i = 0; i < G_N_ELEMENTS (reserved); i++)
    if (g_ascii_strcasecmp (tld, reserved[i]) == 0)
      return FALSE;
  return TRUE;
}

gboolean
atk_did_is_valid (const char *did, gsize len)
{
  gsize i = 4;

  if (len > MAX_DID_LEN || len < 6 || memcmp (did, "did:", 4) != 0)
    return FALSE;
  while (i < len && g_ascii_islower (did[i]))
    i++;
  if (i == 4 || i >= len || did[i] != ':')
    return FALSE;
  i++;
  if (i >= len)
    return FALSE;
  for (; i < len; i++)
    if (!g_ascii_isalnum (did[i]) && strchr ("._:%-", did[i]) == NULL)
      return FALSE;
  return did[len - 1] != ':' && did[len - 1] != '%';
}

/* ---- handle answers ---- */

char *
atk_handle_did_from_txt (const char *const *records, GError **error)
{
  for (guint i = 0; records != NULL && records[i] != NULL; i++)
    {
      const char *did = records[i] + 4;

      if (!g_str_has_prefix (records[i], "did="))
        continue;
      if (!atk_did_is_valid (did, strlen (did)))
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "Invalid DID in handle DNS record");
          return NULL;
        }
      return g_strdup (did);
    }
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "No did= TXT record");
  return NULL;
}

char *
atk_handle_did_from_well_known (const char *body, gsize len, GError **error)
{
  gsize start = 0, end = len;

  while (start < end && g_ascii_isspace (body[start]))
    start++;
  while (end > start && g_ascii_isspace (body[end - 1]))
    end--;
  if (!atk_did_is_valid (body + start, end - start))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "Invalid DID in /.well-known/atproto-did");
      return NULL;
    }
  return g_strndup (body + start, end - start);
}

/* ---- did:web ---- */

/* did:web:example.com → https://example.com/.well-known/did.json;
 * did:web:example.com%3A8080:u:alice → https://example.com:8080/u/alice/did.json */
char *
atk_did_web_url (const char *did, const char *scheme)
{
  g_auto (GStrv) parts = NULL;
  g_autofree char *host = NULL;
  GString *url;

  if (!g_str_has_prefix (did, "did:web:"))
    return NULL;
  parts = g_strsplit (did + strlen ("did:web:"), ":", -1);
  host = g_uri_unescape_string (parts[0], "/?#@");
  if (host == NULL || *host == '\0')
    return NULL;
  for (const char *p = host; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("-.:[]", *p) == NULL)
      return NULL;
  url = g_string_new (scheme);
  g_string_append_printf (url, "://%s", host);
  if (parts[1] == NULL)
    g_string_append (url, "/.well-known");
  for (guint i = 1; parts[i] != NULL; i++)
    {
      g_autofree char *segment = g_uri_unescape_string (parts[i], "/?#");

      if (segment == NULL || *segment == '\0')
        {
          g_string_free (url, TRUE);
          return NULL;
        }
      g_string_append_c (url, '/');
      g_string_append_uri_escaped (url, segment, NULL, FALSE);
    }
  g_string_append (url, "/did.json");
  return g_string_free (url, FALSE);
}

gboolean
atk_did_is_plausible (const char *did)
{
  gsize len = strlen (did);

  if (len > MAX_DID_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (did[i]) && strchr (":._-%", did[i]) == NULL)
      return FALSE;
  return TRUE;
}
