/* The atproto data-model interop vectors, through the record writer.
 *
 * The vectors are JSON; each is turned into DAG-CBOR here with libcbor (an encoder
 * independent of ours), then rendered back with atk_cbor_json_write_record(). Valid values
 * must come back equal; every invalid one must be refused.
 * SPDX-License-Identifier: MIT */
#include <cbor.h>
#include <json-glib/json-glib.h>
#include <math.h>

#include "atk-cbor-json.h"
#include "atk-cid.h"
#include "atk-error.h"
#include "atk-test-util.h"

/* cbor_decref() takes a pointer to the pointer. */
static void
item_unref (cbor_item_t *item)
{
  cbor_decref (&item);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (cbor_item_t, item_unref)

static cbor_item_t *
build_uint (guint64 v)
{
  /* libcbor writes the width it is given; pick the smallest, as DAG-CBOR requires. */
  if (v <= G_MAXUINT8)
    return cbor_build_uint8 ((guint8)v);
  if (v <= G_MAXUINT16)
    return cbor_build_uint16 ((guint16)v);
  if (v <= G_MAXUINT32)
    return cbor_build_uint32 ((guint32)v);
  return cbor_build_uint64 (v);
}

static cbor_item_t *
build_int (gint64 v)
{
  cbor_item_t *item;
  guint64 m;

  if (v >= 0)
    return build_uint ((guint64)v);
  m = (guint64)(-(v + 1));
  if (m <= G_MAXUINT8)
    item = cbor_build_negint8 ((guint8)m);
  else if (m <= G_MAXUINT16)
    item = cbor_build_negint16 ((guint16)m);
  else if (m <= G_MAXUINT32)
    item = cbor_build_negint32 ((guint32)m);
  else
    item = cbor_build_negint64 (m);
  return item;
}

/* Strict unpadded standard base64: the alphabet only, and canonical (re-encodes equal). */
static guint8 *
decode_base64 (const char *text, gsize *len)
{
  gsize n = strlen (text);
  g_autoptr (GString) padded = NULL;
  g_autoptr (GString) again = g_string_new (NULL);
  guint8 *data;

  if (n % 4 == 1)
    return NULL;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isalnum (text[i]) && text[i] != '+' && text[i] != '/')
      return NULL;
  padded = g_string_new (text);
  while (padded->len % 4)
    g_string_append_c (padded, '=');
  data = g_base64_decode (padded->str, len);
  atk_base64_append_unpadded (again, data, *len);
  if (strcmp (again->str, text) != 0)
    {
      g_free (data);
      return NULL;
    }
  return data;
}

static gint
key_order (gconstpointer a, gconstpointer b)
{
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  return atk_cbor_key_compare (x, strlen (x), y, strlen (y));
}

static cbor_item_t *json_to_cbor (JsonNode *node);

/* {"$link": CID string} and {"$bytes": base64} become a link and bytes; anything else that
 * looks like them stays a plain map (which the writer must then refuse). */
static cbor_item_t *
special_object (JsonObject *o)
{
  JsonNode *v;

  if (json_object_get_size (o) != 1)
    return NULL;
  if ((v = json_object_get_member (o, "$link")) != NULL && JSON_NODE_HOLDS_VALUE (v)
      && json_node_get_value_type (v) == G_TYPE_STRING)
    {
      g_autoptr (GBytes) cid = atk_cid_bytes_from_string (json_node_get_string (v), NULL);
      g_autoptr (GByteArray) with_prefix = g_byte_array_new ();
      guint8 zero = 0;

      if (cid == NULL)
        return NULL;
      g_byte_array_append (with_prefix, &zero, 1);
      g_byte_array_append (with_prefix, g_bytes_get_data (cid, NULL), g_bytes_get_size (cid));
      g_autoptr (cbor_item_t) bytes = cbor_build_bytestring (with_prefix->data, with_prefix->len);
      return cbor_build_tag (42, bytes);
    }
  if ((v = json_object_get_member (o, "$bytes")) != NULL && JSON_NODE_HOLDS_VALUE (v)
      && json_node_get_value_type (v) == G_TYPE_STRING)
    {
      gsize len;
      g_autofree guint8 *data = decode_base64 (json_node_get_string (v), &len);
      if (data == NULL)
        return NULL;
      return cbor_build_bytestring (data, len);
    }
  return NULL;
}

static cbor_item_t *
object_to_cbor (JsonObject *o)
{
  cbor_item_t *special = special_object (o);
  g_autoptr (GList) members = NULL;
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();
  cbor_item_t *map;

  if (special != NULL)
    return special;
  members = json_object_get_members (o);
  for (GList *l = members; l != NULL; l = l->next)
    g_ptr_array_add (keys, l->data);
  g_ptr_array_sort (keys, key_order);
  map = cbor_new_definite_map (keys->len);
  for (guint i = 0; i < keys->len; i++)
    {
      const char *k = keys->pdata[i];
      g_autoptr (cbor_item_t) key = cbor_build_stringn (k, strlen (k));
      g_autoptr (cbor_item_t) value = json_to_cbor (json_object_get_member (o, k));
      g_assert_true (cbor_map_add (map, (struct cbor_pair){ .key = key, .value = value }));
    }
  return map;
}

static cbor_item_t *
json_to_cbor (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_NULL:
      return cbor_new_null ();
    case JSON_NODE_ARRAY:
      {
        JsonArray *a = json_node_get_array (node);
        cbor_item_t *array = cbor_new_definite_array (json_array_get_length (a));
        for (guint i = 0; i < json_array_get_length (a); i++)
          {
            g_autoptr (cbor_item_t) item = json_to_cbor (json_array_get_element (a, i));
            g_assert_true (cbor_array_push (array, item));
          }
        return array;
      }
    case JSON_NODE_OBJECT:
      return object_to_cbor (json_node_get_object (node));
    case JSON_NODE_VALUE:
      {
        GType t = json_node_get_value_type (node);
        if (t == G_TYPE_INT64)
          return build_int (json_node_get_int (node));
        if (t == G_TYPE_BOOLEAN)
          return cbor_build_bool (json_node_get_boolean (node));
        if (t == G_TYPE_STRING)
          {
            const char *s = json_node_get_string (node);
            return cbor_build_stringn (s, strlen (s));
          }
        if (t == G_TYPE_DOUBLE)
          {
            double d = json_node_get_double (node);
            if (d == floor (d) && fabs (d) < 9007199254740992.0)
              return build_int ((gint64)d);
            return cbor_build_float8 (d);
          }
        g_assert_not_reached ();
      }
    default:
      g_assert_not_reached ();
    }
}

static GBytes *
encode (JsonNode *node)
{
  g_autoptr (cbor_item_t) item = json_to_cbor (node);
  unsigned char *buf = NULL;
  size_t size = 0;
  size_t len = cbor_serialize_alloc (item, &buf, &size);

  g_assert_cmpuint (len, >, 0);
  return g_bytes_new_with_free_func (buf, len, free, buf);
}

static JsonArray *
load_cases (JsonParser *parser, const char *relative)
{
  g_autoptr (GBytes) bytes = atk_test_load_vector (relative);
  g_autoptr (GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (bytes, NULL),
                                             (gssize)g_bytes_get_size (bytes), &error));
  g_assert_no_error (error);
  return json_node_get_array (json_parser_get_root (parser));
}

static void
test_valid (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonArray *cases = load_cases (parser, "interop/data-model/data-model-valid.json");

  g_assert_cmpuint (json_array_get_length (cases), >, 0);
  for (guint i = 0; i < json_array_get_length (cases); i++)
    {
      JsonObject *c = json_array_get_object_element (cases, i);
      JsonNode *want = json_object_get_member (c, "json");
      g_autoptr (GBytes) cbor = encode (want);
      g_autoptr (GString) out = g_string_new (NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonParser) back = json_parser_new ();

      g_test_message ("valid: %s", json_object_get_string_member (c, "note"));
      g_assert_true (atk_cbor_json_write_record (g_bytes_get_data (cbor, NULL),
                                                 g_bytes_get_size (cbor), out, &error));
      g_assert_no_error (error);
      g_assert_true (json_parser_load_from_data (back, out->str, (gssize)out->len, &error));
      g_assert_no_error (error);
      g_assert_true (atk_test_json_equal (json_parser_get_root (back), want,
                                          ATK_TEST_JSON_NUMBERS_BY_VALUE, NULL));
    }
}

static void
test_invalid (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonArray *cases = load_cases (parser, "interop/data-model/data-model-invalid.json");

  g_assert_cmpuint (json_array_get_length (cases), >, 0);
  for (guint i = 0; i < json_array_get_length (cases); i++)
    {
      JsonObject *c = json_array_get_object_element (cases, i);
      g_autoptr (GBytes) cbor = encode (json_object_get_member (c, "json"));
      g_autoptr (GString) out = g_string_new ("unchanged");
      g_autoptr (GError) error = NULL;

      g_test_message ("invalid: %s", json_object_get_string_member (c, "note"));
      g_assert_false (atk_cbor_json_write_record (g_bytes_get_data (cbor, NULL),
                                                  g_bytes_get_size (cbor), out, &error));
      g_assert_nonnull (error);
      g_assert_true (error->code == ATK_ERROR_BAD_DATA_MODEL || error->code == ATK_ERROR_BAD_CBOR);
      g_assert_cmpstr (out->str, ==, "unchanged");
    }
}

/* The converter itself: the fixtures' JSON must encode to exactly their CBOR, so the
 * valid/invalid checks above exercise real DAG-CBOR. */
static void
test_converter_matches_fixtures (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonArray *cases = load_cases (parser, "interop/data-model/data-model-fixtures.json");

  for (guint i = 0; i < json_array_get_length (cases); i++)
    {
      JsonObject *c = json_array_get_object_element (cases, i);
      g_autoptr (GBytes) cbor = encode (json_object_get_member (c, "json"));
      gsize len;
      g_autofree guint8 *want
          = decode_base64 (json_object_get_string_member (c, "cbor_base64"), &len);

      g_assert_nonnull (want);
      g_assert_cmpmem (g_bytes_get_data (cbor, NULL), g_bytes_get_size (cbor), want, len);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/data-model/converter", test_converter_matches_fixtures);
  g_test_add_func ("/data-model/valid", test_valid);
  g_test_add_func ("/data-model/invalid", test_invalid);
  return g_test_run ();
}
