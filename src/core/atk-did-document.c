/* at-kafka: DID documents, PLC audit logs and profiles, read (the syntax of DIDs and handles,
 * and handle answers: atk-did-syntax.c).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-did-document.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "atk-did-syntax.h"
#include "atk-json-out.h"
#include "atk-tap-json.h"
#include "atk-time.h"

/* A DID document, audit log or profile is a few levels deep; their hosts are anyone's, and
 * json-glib recurses once per level. */
#define PEER_JSON_MAX_DEPTH 64

/* ---- AtkDidInfo ---- */

static void
did_info_clear (gpointer data)
{
  AtkDidInfo *info = data;

  g_free (info->did);
  g_free (info->declared_handle);
  g_free (info->handle);
  g_free (info->pds_endpoint);
  g_free (info->pds_host);
  g_free (info->document);
  g_free (info->created_at);
  g_free (info->profile);
  g_free (info->metadata_head);
  g_free (info->metadata_tail);
}

AtkDidInfo *
atk_did_info_ref (AtkDidInfo *info)
{
  return g_atomic_rc_box_acquire (info);
}

void
atk_did_info_unref (AtkDidInfo *info)
{
  g_atomic_rc_box_release_full (info, did_info_clear);
}

/* ---- JSON from peers ---- */

static JsonNode *
parse_json (const char *json, gssize len, const char *what, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local_error = NULL;
  gsize n = len < 0 ? strlen (json) : (gsize)len;

  /* json-glib takes raw control characters inside strings and writes them back raw: what
   * we re-serialize into Kafka messages would not be JSON. RFC 8259 forbids them. */
  for (gsize i = 0; i < n; i++)
    if ((guchar)json[i] < 0x20 && json[i] != '\t' && json[i] != '\n' && json[i] != '\r')
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "Not JSON: control character 0x%02x at byte %" G_GSIZE_FORMAT, (guchar)json[i],
                     i);
        return NULL;
      }
  if (!atk_json_depth_within (json, n, PEER_JSON_MAX_DEPTH))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "Not a %s: nested deeper than %u levels", what, PEER_JSON_MAX_DEPTH);
      return NULL;
    }
  /* json-glib also takes escapes JSON has not (\2) and writes them back as they came: a
   * strict reader first (RFC 8259), which json-glib then only has to build a tree from. */
  {
    AtkTapJsonReader reader = { json, json + n, &local_error };

    if (atk_tap_json_copy_value (&reader, NULL, 0))
      {
        atk_tap_json_skip_ws (&reader);
        if (reader.p != reader.end)
          g_set_error_literal (&local_error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "text after the value");
      }
    if (local_error != NULL)
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Not JSON: %s",
                     local_error->message);
        return NULL;
      }
  }
  if (!json_parser_load_from_data (parser, json, (gssize)n, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Not JSON: %s",
                   local_error->message);
      return NULL;
    }
  /* An empty body parses, to no value at all. */
  if (json_parser_get_root (parser) == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Not JSON: empty");
      return NULL;
    }
  return json_node_ref (json_parser_get_root (parser));
}

static gboolean
is_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

/* A member that is missing, null or a string, as a typed decoder accepts it for a string
 * field; *value is NULL unless it is a string. */
static gboolean
string_field (JsonObject *object, const char *name, const char **value)
{
  JsonNode *node = json_object_get_member (object, name);

  *value = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!is_string (node))
    return FALSE;
  *value = json_node_get_string (node);
  return TRUE;
}

/* A member that is missing, null or an array: its elements, or NULL. */
static gboolean
array_field (JsonObject *object, const char *name, JsonArray **value)
{
  JsonNode *node = json_object_get_member (object, name);

  *value = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return FALSE;
  *value = json_node_get_array (node);
  return TRUE;
}

/* ---- DID documents ---- */

/* "at://alice.example.com" → "alice.example.com": the first that is a handle */
static char *
find_handle (JsonArray *names)
{
  for (guint i = 0; names != NULL && i < json_array_get_length (names); i++)
    {
      JsonNode *name = json_array_get_element (names, i);
      const char *text = is_string (name) ? json_node_get_string (name) : NULL;

      if (text != NULL && g_str_has_prefix (text, "at://") && atk_handle_is_valid (text + 5))
        return g_ascii_strdown (text + 5, -1);
    }
  return NULL;
}

/* What a URL parser that accepts relative references still refuses. */
static gboolean
url_parses (const char *url)
{
  for (const char *p = url; *p != '\0'; p++)
    {
      if ((guchar)*p < 0x20 || *p == 0x7f)
        return FALSE;
      if (*p == '%' && (!g_ascii_isxdigit (p[1]) || !g_ascii_isxdigit (p[2])))
        return FALSE;
    }
  return TRUE;
}

static void
append_go_string (GString *out, const char *text)
{
  static const char hex[] = "0123456789abcdef";

  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0';)
    {
      gunichar c = g_utf8_get_char_validated (p, -1);

      if (c == (gunichar)-1 || c == (gunichar)-2)
        {
          g_string_append (out, "\\ufffd");
          p++;
          continue;
        }
      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\b':
          g_string_append (out, "\\b");
          break;
        case '\f':
          g_string_append (out, "\\f");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        case '<':
        case '>':
        case '&':
        case 0x2028:
        case 0x2029:
          g_string_append_printf (out, "\\u%04x", c);
          break;
        default:
          if (c < 0x20)
            g_string_append_printf (out, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
          else
            g_string_append_len (out, p, g_utf8_next_char (p) - p);
        }
      p = g_utf8_next_char (p);
    }
  g_string_append_c (out, '"');
}

static void
append_member (GString *out, const char *name, const char *value)
{
  g_string_append_printf (out, ",\"%s\":", name);
  append_go_string (out, value != NULL ? value : "");
}

/* One entry per id fragment (the first), as a map keyed by fragment keeps them. */
static gboolean
fragment_seen (GHashTable *seen, const char *id)
{
  const char *hash = strchr (id, '#');

  if (hash == NULL || g_hash_table_contains (seen, hash + 1))
    return TRUE;
  g_hash_table_add (seen, (gpointer)(hash + 1));
  return FALSE;
}

static gboolean
append_keys (GString *out, const char *did, JsonArray *methods)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean first = TRUE;

  for (guint i = 0; methods != NULL && i < json_array_get_length (methods); i++)
    {
      JsonNode *node = json_array_get_element (methods, i);
      JsonObject *method;
      const char *id, *type, *controller, *key;

      if (JSON_NODE_HOLDS_NULL (node))
        continue;
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return FALSE;
      method = json_node_get_object (node);
      if (!string_field (method, "id", &id) || !string_field (method, "type", &type)
          || !string_field (method, "controller", &controller)
          || !string_field (method, "publicKeyMultibase", &key))
        return FALSE;
      if (id == NULL || g_strcmp0 (controller, did) != 0 || fragment_seen (seen, id))
        continue;
      g_string_append (out, first ? ",\"verificationMethod\":[{\"id\":" : ",{\"id\":");
      first = FALSE;
      {
        g_autofree char *full = g_strconcat (did, strchr (id, '#'), NULL);
        append_go_string (out, full);
      }
      append_member (out, "type", type);
      append_member (out, "controller", did);
      append_member (out, "publicKeyMultibase", key);
      g_string_append_c (out, '}');
    }
  if (!first)
    g_string_append_c (out, ']');
  return TRUE;
}

static gboolean
append_services (GString *out, JsonArray *services, AtkDidInfo *info)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean first = TRUE;

  for (guint i = 0; services != NULL && i < json_array_get_length (services); i++)
    {
      JsonNode *node = json_array_get_element (services, i);
      JsonObject *service;
      const char *id, *type, *endpoint;

      if (JSON_NODE_HOLDS_NULL (node))
        continue;
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return FALSE;
      service = json_node_get_object (node);
      if (!string_field (service, "id", &id) || !string_field (service, "type", &type)
          || !string_field (service, "serviceEndpoint", &endpoint))
        return FALSE;
      if (id == NULL || fragment_seen (seen, id))
        continue;
      g_string_append (out, first ? ",\"service\":[{\"id\":" : ",{\"id\":");
      first = FALSE;
      append_go_string (out, strchr (id, '#'));
      append_member (out, "type", type);
      append_member (out, "serviceEndpoint", endpoint);
      g_string_append_c (out, '}');

      if (strcmp (strchr (id, '#'), "#atproto_pds") == 0 && endpoint != NULL && *endpoint != '\0'
          && url_parses (endpoint))
        {
          g_autoptr (GUri) uri = g_uri_parse (endpoint, G_URI_FLAGS_PARSE_RELAXED, NULL);

          info->pds_endpoint = g_strdup (endpoint);
          if (uri != NULL && g_uri_get_host (uri) != NULL && *g_uri_get_host (uri) != '\0')
            info->pds_host = g_ascii_strdown (g_uri_get_host (uri), -1);
        }
    }
  if (!first)
    g_string_append_c (out, ']');
  return TRUE;
}

/* json-glib writes a double as g_ascii_dtostr() gives it, with ".0" appended when that has no
 * '.': 1.0 comes back as "1.0", but 1E21 as "1e+21.0" and 1E400 as "inf.0", neither JSON. A profile
 * holding such a number is refused (no real one does); the depth was bounded before (recursion is
 * safe). */
static gboolean
numbers_writable (JsonNode *node)
{
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      JsonNode *member;

      json_object_iter_init (&iter, json_node_get_object (node));
      while (json_object_iter_next (&iter, NULL, &member))
        if (!numbers_writable (member))
          return FALSE;
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        if (!numbers_writable (json_array_get_element (array, i)))
          return FALSE;
    }
  else if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];

      g_ascii_dtostr (buf, sizeof buf, json_node_get_double (node));
      /* "1" becomes "1.0" (JSON), "1e+21" and "inf" do not */
      return strchr (buf, '.') != NULL || strspn (buf, "-0123456789") == strlen (buf);
    }
  return TRUE;
}

AtkDidInfo *
atk_did_info_new_from_document (const char *did, const char *json, gssize len, GError **error)
{
  g_autoptr (JsonNode) root = parse_json (json, len, "DID document", error);
  g_autoptr (AtkDidInfo) info = NULL;
  g_autoptr (GString) out = NULL;
  JsonObject *doc;
  JsonArray *names, *methods, *services;
  const char *id;

  if (root == NULL)
    return NULL;
  doc = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  if (doc == NULL || !string_field (doc, "id", &id) || g_strcmp0 (id, did) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Not a DID document for %s", did);
      return NULL;
    }
  if (!array_field (doc, "alsoKnownAs", &names)
      || !array_field (doc, "verificationMethod", &methods)
      || !array_field (doc, "service", &services))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "Not a DID document for %s: a member has the wrong type", did);
      return NULL;
    }
  info = g_atomic_rc_box_new0 (AtkDidInfo);
  info->did = g_strdup (did);
  out = g_string_new ("{\"id\":");
  append_go_string (out, did);
  for (guint i = 0; names != NULL && i < json_array_get_length (names); i++)
    {
      JsonNode *name = json_array_get_element (names, i);

      if (!JSON_NODE_HOLDS_NULL (name) && !is_string (name))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "Not a DID document for %s: alsoKnownAs holds a non-string", did);
          return NULL;
        }
      g_string_append (out, i == 0 ? ",\"alsoKnownAs\":[" : ",");
      append_go_string (out, is_string (name) ? json_node_get_string (name) : "");
      if (i + 1 == json_array_get_length (names))
        g_string_append_c (out, ']');
    }
  if (!append_keys (out, did, methods) || !append_services (out, services, info))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "Not a DID document for %s: a verification method or service is malformed", did);
      return NULL;
    }
  g_string_append_c (out, '}');
  info->declared_handle = find_handle (names);
  info->document = g_string_free (g_steal_pointer (&out), FALSE);
  return g_steal_pointer (&info);
}

/* ---- PLC audit log, profile ---- */

gboolean
atk_did_audit_log_parse (const char *json, gssize len, char **created_at, gboolean *ms_known,
                         gint64 *ms, GError **error)
{
  g_autoptr (JsonNode) root = parse_json (json, len, "PLC audit log", error);
  JsonArray *entries;
  JsonNode *first;
  const char *text;

  *created_at = NULL;
  *ms_known = FALSE;
  *ms = 0;
  if (root == NULL)
    return FALSE;
  entries = JSON_NODE_HOLDS_ARRAY (root) ? json_node_get_array (root) : NULL;
  first = entries != NULL && json_array_get_length (entries) > 0
              ? json_array_get_element (entries, 0)
              : NULL;
  if (first == NULL || !JSON_NODE_HOLDS_OBJECT (first)
      || !string_field (json_node_get_object (first), "createdAt", &text))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "Not a PLC audit log: no first entry");
      return FALSE;
    }
  if (text == NULL)
    text = "";
  *created_at = g_strdup (text);
  *ms_known = atk_parse_datetime_ms (text, strlen (text), ms);
  if (!*ms_known)
    *ms = 0;
  return TRUE;
}

char *
atk_did_profile_parse (const char *json, gssize len, GError **error)
{
  g_autoptr (JsonNode) root = parse_json (json, len, "profile", error);

  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "Not a profile: not an object");
      return NULL;
    }
  if (!numbers_writable (root))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "Not a profile: a number too large to write back as JSON");
      return NULL;
    }
  return json_to_string (root, FALSE);
}

/* ---- eventMetadata ---- */

/* Renders the parts of the object that do not change (once: the info is shared and otherwise
 * read-only, the cache is its only mutable part). */
static void
render_metadata_parts (const AtkDidInfo *info)
{
  AtkDidInfo *cache = (AtkDidInfo *)info;
  GString *head = g_string_new ("{\"didDocument\":");
  GString *tail = g_string_new (",\"profile\":");

  g_string_append (head, info->document);
  if (info->pds_endpoint != NULL && *info->pds_endpoint != '\0')
    append_member (head, "pdsHost", info->pds_endpoint);
  if (info->handle != NULL && *info->handle != '\0')
    append_member (head, "handle", info->handle);
  if (info->created_at != NULL && *info->created_at != '\0')
    append_member (head, "didCreatedAt", info->created_at);
  g_string_append (head, ",\"accountAge\":");
  g_string_append (tail, info->profile != NULL ? info->profile : "null");
  g_string_append_c (tail, '}');
  cache->metadata_head_len = head->len;
  cache->metadata_tail_len = tail->len;
  cache->metadata_tail = g_string_free (tail, FALSE);
  cache->metadata_head = g_string_free (head, FALSE);
}

#define UNRESOLVED_METADATA "{\"didDocument\":{\"id\":\"\"},\"accountAge\":-1,\"profile\":null}"

void
atk_did_metadata_splice (const AtkDidInfo *info, gint64 now_ms, GString *out, gsize at, gsize len)
{
  char age[ATK_OUT_INT_BYTES];
  const char *age_start = age + sizeof age;
  const char *head = UNRESOLVED_METADATA, *tail = "";
  gsize head_len = sizeof UNRESOLVED_METADATA - 1, tail_len = 0, age_len, total, rest;

  g_return_if_fail (at <= out->len && len <= out->len - at);

  if (info != NULL)
    {
      /* Every message of an account carries the same object but for accountAge. */
      if (info->metadata_head == NULL)
        render_metadata_parts (info);
      head = info->metadata_head;
      head_len = info->metadata_head_len;
      tail = info->metadata_tail;
      tail_len = info->metadata_tail_len;
      /* whole seconds, truncated toward zero; negative for a creation time ahead of the
       * clock */
      age_start = atk_out_format_int (
          info->created_at_known ? (now_ms - info->created_at_ms) / 1000 : -1, age + sizeof age);
    }
  age_len = (gsize)(age + sizeof age - age_start);
  total = head_len + age_len + tail_len;
  /* one move of what follows (room made first, or taken back after), then the parts
   * straight into their place */
  rest = out->len - at - len;
  if (total > len)
    g_string_set_size (out, out->len - len + total);
  memmove (out->str + at + total, out->str + at + len, rest);
  if (total < len)
    g_string_set_size (out, out->len - len + total);
  memcpy (out->str + at, head, head_len);
  memcpy (out->str + at + head_len, age_start, age_len);
  memcpy (out->str + at + head_len + age_len, tail, tail_len);
}

void
atk_did_metadata_append_json (const AtkDidInfo *info, gint64 now_ms, GString *out)
{
  atk_did_metadata_splice (info, now_ms, out, out->len, 0);
}
