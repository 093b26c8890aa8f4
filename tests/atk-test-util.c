#include "atk-test-util.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

char *
atk_test_vector_path (const char *relative)
{
  const char *dir = g_getenv ("ATK_VECTORS_DIR");
  g_assert_nonnull (dir);
  return g_build_filename (dir, relative, NULL);
}

GBytes *
atk_test_load_vector (const char *relative)
{
  g_autofree char *path = atk_test_vector_path (relative);
  g_autoptr (GError) error = NULL;
  char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, &error))
    g_error ("cannot read test vector %s: %s", path, error->message);
  return g_bytes_new_take (contents, len);
}

GPtrArray *
atk_test_load_frames (const char *relative)
{
  g_autoptr (GBytes) bytes = atk_test_load_vector (relative);
  GPtrArray *frames = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  gsize pos = 0;

  while (pos < len)
    {
      guint32 n;
      g_assert_cmpuint (len - pos, >=, 4);
      n = (guint32)data[pos] | (guint32)data[pos + 1] << 8 | (guint32)data[pos + 2] << 16
          | (guint32)data[pos + 3] << 24;
      pos += 4;
      g_assert_cmpuint (len - pos, >=, n);
      g_ptr_array_add (frames, g_bytes_new_from_bytes (bytes, pos, n));
      pos += n;
    }
  g_assert_cmpuint (frames->len, >, 0);
  return frames;
}

GPtrArray *
atk_test_load_jsonl (const char *relative)
{
  g_autoptr (GBytes) bytes = atk_test_load_vector (relative);
  g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_auto (GStrv) lines = NULL;
  GPtrArray *nodes = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);

  if (g_str_has_suffix (text, "\n"))
    text[strlen (text) - 1] = '\0';
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (GError) error = NULL;
      JsonNode *node = json_from_string (lines[i], &error);

      if (node == NULL)
        g_error ("%s line %u is not JSON: %s", relative, i + 1,
                 error != NULL ? error->message : "empty line");
      g_ptr_array_add (nodes, node);
    }
  return nodes;
}

GByteArray *
atk_test_hex (const char *text)
{
  GByteArray *out = g_byte_array_new ();

  for (const char *p = text; *p != '\0';)
    {
      guint8 b;

      if (*p == ' ')
        {
          p++;
          continue;
        }
      g_assert_true (g_ascii_isxdigit (p[0]) && g_ascii_isxdigit (p[1]));
      b = (guint8)(g_ascii_xdigit_value (p[0]) << 4 | g_ascii_xdigit_value (p[1]));
      g_byte_array_append (out, &b, 1);
      p += 2;
    }
  return out;
}

/* ---- JSON values ---- */

static gboolean
is_number (GType type)
{
  return type == G_TYPE_INT64 || type == G_TYPE_DOUBLE;
}

static gboolean
values_equal (JsonNode *a, JsonNode *b, AtkTestJsonNumbers numbers)
{
  GType ta = json_node_get_value_type (a), tb = json_node_get_value_type (b);

  if (is_number (ta) && is_number (tb) && (ta == tb || numbers == ATK_TEST_JSON_NUMBERS_BY_VALUE))
    {
      /* Two integers compare as integers: a double cannot hold every int64. */
      if (ta == G_TYPE_INT64 && tb == G_TYPE_INT64)
        return json_node_get_int (a) == json_node_get_int (b);
      return json_node_get_double (a) == json_node_get_double (b);
    }
  if (ta != tb)
    return FALSE;
  if (ta == G_TYPE_STRING)
    return g_strcmp0 (json_node_get_string (a), json_node_get_string (b)) == 0;
  if (ta == G_TYPE_BOOLEAN)
    return json_node_get_boolean (a) == json_node_get_boolean (b);
  return FALSE;
}

static gboolean
arrays_equal (JsonArray *x, JsonArray *y, AtkTestJsonNumbers numbers, GString *where)
{
  guint n = json_array_get_length (x);

  if (n != json_array_get_length (y))
    {
      if (where != NULL)
        g_string_append (where, " (length differs)");
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    if (!atk_test_json_equal (json_array_get_element (x, i), json_array_get_element (y, i), numbers,
                              where))
      {
        if (where != NULL)
          {
            g_autofree char *index = g_strdup_printf ("[%u]", i);
            g_string_prepend (where, index);
          }
        return FALSE;
      }
  return TRUE;
}

static gboolean
objects_equal (JsonObject *x, JsonObject *y, AtkTestJsonNumbers numbers, GString *where)
{
  g_autoptr (GList) members = json_object_get_members (x);

  if (json_object_get_size (x) != json_object_get_size (y))
    {
      if (where != NULL)
        g_string_append (where, " (member count differs)");
      return FALSE;
    }
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;

      if (!json_object_has_member (y, name)
          || !atk_test_json_equal (json_object_get_member (x, name),
                                   json_object_get_member (y, name), numbers, where))
        {
          if (where != NULL)
            {
              g_string_prepend (where, name);
              g_string_prepend_c (where, '.');
            }
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
atk_test_json_equal (JsonNode *a, JsonNode *b, AtkTestJsonNumbers numbers, GString *where)
{
  if (JSON_NODE_TYPE (a) != JSON_NODE_TYPE (b))
    return FALSE;
  switch (JSON_NODE_TYPE (a))
    {
    case JSON_NODE_NULL:
      return TRUE;
    case JSON_NODE_VALUE:
      return values_equal (a, b, numbers);
    case JSON_NODE_ARRAY:
      return arrays_equal (json_node_get_array (a), json_node_get_array (b), numbers, where);
    case JSON_NODE_OBJECT:
      return objects_equal (json_node_get_object (a), json_node_get_object (b), numbers, where);
    default:
      return FALSE;
    }
}

void
atk_test_assert_json_equal (JsonNode *got, JsonNode *want, AtkTestJsonNumbers numbers,
                            const char *context)
{
  g_autoptr (GString) where = g_string_new (NULL);

  if (!atk_test_json_equal (got, want, numbers, where))
    {
      g_autofree char *a = json_to_string (got, FALSE);
      g_autofree char *b = json_to_string (want, FALSE);
      g_error ("%s: JSON differs at %s\n got: %.2000s\nwant: %.2000s", context, where->str, a, b);
    }
}

/* ---- waiting ---- */

/* Wakes the context now and then, so that the deadline, and a condition that another
 * thread changes without waking the context, are noticed. */
#define TICK_MS 10

static gboolean
tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

gboolean
atk_test_wait_until (GMainContext *context, AtkTestCondition cond, gpointer user_data,
                     guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;
  GSource *ticker = g_timeout_source_new (TICK_MS);

  g_source_set_callback (ticker, tick, NULL, NULL);
  g_source_attach (ticker, context);
  while (!cond (user_data) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (ticker);
  g_source_unref (ticker);
  return cond (user_data);
}

static gboolean
flag_is_set (gpointer user_data)
{
  return *(const gboolean *)user_data;
}

gboolean
atk_test_wait_for_flag (GMainContext *context, const gboolean *flag, guint timeout_ms)
{
  return atk_test_wait_until (context, flag_is_set, (gpointer)flag, timeout_ms);
}

typedef struct
{
  const guint *count;
  guint at_least;
} CountWait;

static gboolean
count_reached (gpointer user_data)
{
  const CountWait *wait = user_data;

  return *wait->count >= wait->at_least;
}

gboolean
atk_test_wait_for_count (GMainContext *context, const guint *count, guint at_least,
                         guint timeout_ms)
{
  CountWait wait = { count, at_least };

  return atk_test_wait_until (context, count_reached, &wait, timeout_ms);
}

static gboolean
never (gpointer user_data)
{
  return FALSE;
}

void
atk_test_run_for (GMainContext *context, guint ms)
{
  atk_test_wait_until (context, never, NULL, ms);
}

/* ---- files ---- */

char *
atk_test_make_tmp_dir (const char *tmpl)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp (tmpl, &error);

  g_assert_no_error (error);
  return dir;
}

void
atk_test_rm_rf (const char *path)
{
  GStatBuf st;

  g_assert_no_errno (g_lstat (path, &st));
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr (GError) error = NULL;
      GDir *dir = g_dir_open (path, 0, &error);
      const char *name;

      g_assert_no_error (error);
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          atk_test_rm_rf (child);
        }
      g_dir_close (dir);
      g_assert_no_errno (g_rmdir (path));
    }
  else
    g_assert_no_errno (g_unlink (path));
}

GPtrArray *
atk_test_load_tap_fixture (const char *name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "tap", name, NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) lines = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (gsize i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      g_ptr_array_add (out, g_strdup (lines[i]));
  g_assert_cmpuint (out->len, >, 0);
  return out;
}

guint16
atk_test_refusing_port (GSocket **holder)
{
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  *holder
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (*holder, any, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (*holder, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* Adds the local ports of the listening sockets in /proc/net/tcp or tcp6 to listening. */
static void
add_listening_ports (const char *table, GHashTable *listening)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (table, &text, NULL, NULL))
    return; /* no IPv6 */
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      g_auto (GStrv) fields = g_strsplit_set (g_strstrip (lines[i]), " ", -1);
      guint n = 0;
      const char *local = NULL, *state = NULL;

      for (guint j = 0; fields[j] != NULL; j++)
        if (fields[j][0] != '\0')
          {
            if (n == 1)
              local = fields[j];
            else if (n == 3)
              state = fields[j];
            n++;
          }
      if (local != NULL && state != NULL && g_str_equal (state, "0A") /* LISTEN */)
        {
          const char *colon = strrchr (local, ':');
          g_assert_nonnull (colon);
          g_hash_table_add (listening, GUINT_TO_POINTER (g_ascii_strtoull (colon + 1, NULL, 16)));
        }
    }
}

guint16
atk_test_unused_port_pair (void)
{
  g_autofree char *range = NULL;
  guint64 low = 32768;

  if (g_file_get_contents ("/proc/sys/net/ipv4/ip_local_port_range", &range, NULL, NULL))
    low = g_ascii_strtoull (range, NULL, 10);
  g_assert_cmpuint (low, >, 4096);
  for (guint attempt = 0; attempt < 100; attempt++)
    {
      g_autoptr (GHashTable) listening = g_hash_table_new (NULL, NULL);
      guint port = (guint)g_random_int_range ((gint32)MAX (1024, low - 12000), (gint32)low - 2);

      add_listening_ports ("/proc/net/tcp", listening);
      add_listening_ports ("/proc/net/tcp6", listening);
      if (!g_hash_table_contains (listening, GUINT_TO_POINTER (port))
          && !g_hash_table_contains (listening, GUINT_TO_POINTER (port + 1)))
        return (guint16)port;
    }
  g_error ("no unused port pair below %" G_GUINT64_FORMAT, low);
}

gsize
atk_test_status_kib (const char *field)
{
  g_autofree char *status = NULL;
  g_autofree char *key = g_strdup_printf ("\n%s:", field);
  const char *line;

  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  line = strstr (status, key);
  g_assert_nonnull (line);
  return (gsize)g_ascii_strtoull (line + strlen (key), NULL, 10);
}
