/* Tests for DAG-CBOR → atproto JSON: interop fixtures, real records against the oracle
 * renderings, escaping and the data-model rules.
 * SPDX-License-Identifier: MIT */
#include <json-glib/json-glib.h>

#include "atk-car.h"
#include "atk-cbor-json.h"
#include "atk-error.h"
#include "atk-frame.h"
#include "atk-test-util.h"

static JsonNode *
parse_json (const char *text, gssize len)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  if (!json_parser_load_from_data (parser, text, len, &error))
    g_error ("output is not JSON (%s): %.*s", error->message, (int)MIN (len, 400), text);
  return json_node_copy (json_parser_get_root (parser));
}

/* Renders a record and parses the output. */
static JsonNode *
render (const guint8 *data, gsize len)
{
  g_autoptr (GString) out = g_string_new ("prefix");
  g_autoptr (GError) error = NULL;

  if (!atk_cbor_json_write_record (data, len, out, &error))
    g_error ("record rejected: %s", error->message);
  g_assert_true (g_str_has_prefix (out->str, "prefix"));
  g_assert_cmpuint (strlen (out->str), ==, out->len);
  return parse_json (out->str + 6, (gssize)out->len - 6);
}

/* g_base64_decode() wants padding; the fixtures have none. */
static guint8 *
decode_base64_unpadded (const char *text, gsize *len)
{
  g_autoptr (GString) padded = g_string_new (text);
  while (padded->len % 4 != 0)
    g_string_append_c (padded, '=');
  return g_base64_decode (padded->str, len);
}

static void
test_fixtures (void)
{
  g_autoptr (GBytes) bytes = atk_test_load_vector ("interop/data-model/data-model-fixtures.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonArray *cases;

  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (bytes, NULL),
                                             (gssize)g_bytes_get_size (bytes), &error));
  cases = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (cases), ==, 3);

  for (guint i = 0; i < json_array_get_length (cases); i++)
    {
      JsonObject *c = json_array_get_object_element (cases, i);
      gsize cbor_len;
      g_autofree guint8 *cbor
          = decode_base64_unpadded (json_object_get_string_member (c, "cbor_base64"), &cbor_len);
      g_autoptr (JsonNode) got = render (cbor, cbor_len);
      AtkCid cid;
      guint8 cid_bytes[36] = { 0x01, ATK_CID_CODEC_DAG_CBOR, ATK_MULTIHASH_SHA2_256, 0x20 };
      gsize digest_len = 32;
      g_autoptr (GChecksum) sha = g_checksum_new (G_CHECKSUM_SHA256);
      g_autofree char *cid_string = NULL;

      atk_test_assert_json_equal (got, json_object_get_member (c, "json"),
                                  ATK_TEST_JSON_NUMBERS_BY_VALUE, "fixture");

      /* The CID of the CBOR: sha2-256 over it, as a dag-cbor CIDv1. */
      g_checksum_update (sha, cbor, (gssize)cbor_len);
      g_checksum_get_digest (sha, cid_bytes + 4, &digest_len);
      g_assert_true (atk_cid_parse (cid_bytes, sizeof cid_bytes, &cid, &error));
      cid_string = atk_cid_to_string (&cid);
      g_assert_cmpstr (cid_string, ==, json_object_get_string_member (c, "cid"));
      g_assert_true (atk_cid_verify (&cid, cbor, cbor_len, &error));
      g_assert_no_error (error);
    }
}

/* Every record of every #commit op in the captures, found with our own frame and CAR
 * decoders, must render to the same JSON value as the oracle's `records` map. */
static guint
check_capture_records (const char *name)
{
  g_autofree char *bin = g_strconcat (name, ".bin", NULL);
  g_autofree char *jsonl = g_strconcat (name, ".jsonl", NULL);
  g_autoptr (GBytes) frames = atk_test_load_vector (bin);
  g_autoptr (GPtrArray) oracle = atk_test_load_jsonl (jsonl);
  g_autofree AtkFrame *frame = g_new0 (AtkFrame, 1);
  g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);
  g_autoptr (GError) error = NULL;
  AtkFrameFileReader reader;
  const guint8 *data;
  gsize len;
  guint line = 0, n_records = 0;

  atk_frame_file_reader_init (&reader, g_bytes_get_data (frames, NULL), g_bytes_get_size (frames));
  while (atk_frame_file_reader_next (&reader, &data, &len, &error))
    {
      JsonNode *want_line;
      JsonObject *records;
      guint n_with_record = 0;

      g_assert_cmpuint (line, <, oracle->len);
      want_line = g_ptr_array_index (oracle, line++);
      g_assert_true (atk_frame_decode (data, len, frame, &error));
      g_assert_no_error (error);
      if (frame->kind != ATK_EVENT_COMMIT)
        continue;
      records = json_object_get_object_member (json_node_get_object (want_line), "records");
      g_assert_true (atk_car_index_build (index, frame->blocks, frame->blocks_len, &error));
      g_assert_no_error (error);

      for (guint i = 0; i < frame->n_ops; i++)
        {
          const AtkRepoOp *op = &frame->ops[i];
          g_autofree char *path = g_strndup (op->path.ptr, op->path.len);
          const AtkCarBlock *block;
          g_autoptr (JsonNode) got = NULL;

          if (!op->has_cid)
            {
              g_assert_false (json_object_has_member (records, path));
              continue;
            }
          block = atk_car_index_lookup (index, &op->cid);
          g_assert_nonnull (block);
          g_assert_true (atk_cid_verify (&block->cid, block->data, block->len, &error));
          g_assert_no_error (error);
          g_assert_true (json_object_has_member (records, path));
          got = render (block->data, block->len);
          atk_test_assert_json_equal (got, json_object_get_member (records, path),
                                      ATK_TEST_JSON_NUMBERS_BY_VALUE, path);
          n_with_record++;
        }
      /* The oracle has no record we did not check. */
      g_assert_cmpuint (json_object_get_size (records), ==, n_with_record);
      n_records += n_with_record;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (line, ==, oracle->len);
  return n_records;
}

static void
test_capture_records (void)
{
  guint relay = check_capture_records ("relay-capture/frames");
  guint pds = check_capture_records ("pds-capture/frames");
  guint replay = check_capture_records ("pds-capture/frames-replay-cursor0");

  /* relay: 144 creates + 2 updates (manifest); the PDS captures: the records their oracles
   * hold (14 and 11). */
  g_assert_cmpuint (relay, ==, 146);
  g_assert_cmpuint (pds, ==, 14);
  g_assert_cmpuint (replay, ==, 11);
}

/* Records of the test CBOR files (single records from the Go reference's testdata). */
static void
test_record_files (void)
{
  const char *files[] = {
    "indigo/testing-testdata/feedpost_record.cbor",
    "indigo/testing-testdata/post_richtext_link.cbor",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autoptr (GBytes) bytes = atk_test_load_vector (files[i]);
      g_autoptr (JsonNode) got = render (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      JsonObject *o = json_node_get_object (got);
      g_assert_cmpstr (json_object_get_string_member (o, "$type"), ==, "app.bsky.feed.post");
    }
}

/* ---- hand-built CBOR ------------------------------------------------------------------- */

/* Appends a CBOR text head + bytes. */
static void
cbor_text (GByteArray *a, const char *s, gsize len)
{
  guint8 head[3];
  gsize n;

  if (len < 24)
    {
      head[0] = (guint8)(0x60 | len);
      n = 1;
    }
  else if (len < 256)
    {
      head[0] = 0x78;
      head[1] = (guint8)len;
      n = 2;
    }
  else
    {
      g_assert_cmpuint (len, <, 65536);
      head[0] = 0x79;
      head[1] = (guint8)(len >> 8);
      head[2] = (guint8)len;
      n = 3;
    }
  g_byte_array_append (a, head, n);
  g_byte_array_append (a, (const guint8 *)s, len);
}

/* {"t": <text>} rendered, returns the JSON text of the value of "t" as written. */
static char *
render_text_value (const char *s, gsize len)
{
  g_autoptr (GByteArray) a = g_byte_array_new ();
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  static const guint8 head[] = { 0xa1, 0x61, 't' };

  g_byte_array_append (a, head, sizeof head);
  cbor_text (a, s, len);
  g_assert_true (atk_cbor_json_write_record (a->data, a->len, out, &error));
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (out->str, "{\"t\":"));
  g_assert_true (g_str_has_suffix (out->str, "}"));
  return g_strndup (out->str + 5, out->len - 6);
}

static void
test_escaping (void)
{
  struct
  {
    const char *in;
    gsize len;
    const char *want;
  } cases[] = {
    { "plain", 5, "\"plain\"" },
    { "", 0, "\"\"" },
    { "a\"b", 3, "\"a\\\"b\"" },
    { "a\\b", 3, "\"a\\\\b\"" },
    { "\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"" },
    { "\x01\x1f", 2, "\"\\u0001\\u001f\"" },
    { "a\0b", 3, "\"a\\u0000b\"" },
    { "\x7f", 1, "\"\x7f\"" }, /* DEL is not a JSON control character */
    { "caf\xc3\xa9 \xf0\x9f\x98\x80", 10, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"" }, /* as is */
    { "</script>&", 10, "\"</script>&\"" },
    /* Long runs, so the word-at-a-time path meets escapes at every offset. */
    { "0123456789abcdef\"0123456", 24, "\"0123456789abcdef\\\"0123456\"" },
    { "01234567\n", 9, "\"01234567\\n\"" },
    { "0123456\\", 8, "\"0123456\\\\\"" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *got = render_text_value (cases[i].in, cases[i].len);
      g_assert_cmpstr (got, ==, cases[i].want);
    }

  /* Every single byte below 0x80 at every offset of a 20-byte string round-trips through a
   * JSON parser. */
  for (guint c = 0; c < 0x80; c++)
    for (guint off = 0; off < 20; off++)
      {
        char buf[20];
        memset (buf, 'x', sizeof buf);
        buf[off] = (char)c;
        g_autofree char *got = render_text_value (buf, sizeof buf);
        g_autofree char *doc = g_strdup_printf ("[%s]", got);
        g_autoptr (JsonNode) node = parse_json (doc, -1);
        const char *back = json_array_get_string_element (json_node_get_array (node), 0);
        if (c == 0)
          {
            /* json-glib stops C strings at NUL: compare what it can hold. */
            g_assert_cmpuint (strlen (back), ==, off);
          }
        else
          g_assert_cmpmem (back, strlen (back), buf, sizeof buf);
      }

  /* atk_json_append_string on its own. */
  g_autoptr (GString) s = g_string_new ("x");
  atk_json_append_string (s, "q\"\x02", 3);
  g_assert_cmpstr (s->str, ==, "x\"q\\\"\\u0002\"");
}

static void
test_integers (void)
{
  struct
  {
    const char *cbor;
    const char *json;
  } cases[] = {
    { "a1 61 69 00", "{\"i\":0}" },
    { "a1 61 69 17", "{\"i\":23}" },
    { "a1 61 69 20", "{\"i\":-1}" },
    { "a1 61 69 1b 00 1f ff ff ff ff ff ff", "{\"i\":9007199254740991}" },
    { "a1 61 69 3b 00 1f ff ff ff ff ff fe", "{\"i\":-9007199254740991}" },
    { "a1 61 69 1b 7f ff ff ff ff ff ff ff", "{\"i\":9223372036854775807}" },
    { "a1 61 69 3b 7f ff ff ff ff ff ff ff", "{\"i\":-9223372036854775808}" },
    { "a1 61 69 19 03 e8", "{\"i\":1000}" },
    { "a1 61 6c 83 f4 f5 f6", "{\"l\":[false,true,null]}" },
    { "a1 61 62 43 01 02 03", "{\"b\":{\"$bytes\":\"AQID\"}}" },
    { "a1 61 62 42 01 02", "{\"b\":{\"$bytes\":\"AQI\"}}" },
    { "a1 61 62 41 ff", "{\"b\":{\"$bytes\":\"/w\"}}" },
    { "a1 61 62 40", "{\"b\":{\"$bytes\":\"\"}}" },
    { "a2 61 61 a0 61 62 80", "{\"a\":{},\"b\":[]}" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GByteArray) a = atk_test_hex (cases[i].cbor);
      g_autoptr (GString) out = g_string_new (NULL);
      g_autoptr (GError) error = NULL;
      g_assert_true (atk_cbor_json_write_record (a->data, a->len, out, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (out->str, ==, cases[i].json);
    }

  /* base64 on its own against RFC 4648 §10, without the padding. */
  const char *rfc[][2] = { { "f", "Zg" },        { "fo", "Zm8" },        { "foo", "Zm9v" },
                           { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" } };
  for (gsize i = 0; i < G_N_ELEMENTS (rfc); i++)
    {
      g_autoptr (GString) out = g_string_new (NULL);
      atk_base64_append_unpadded (out, (const guint8 *)rfc[i][0], strlen (rfc[i][0]));
      g_assert_cmpstr (out->str, ==, rfc[i][1]);
    }
}

static void
test_rejects (void)
{
  struct
  {
    const char *cbor;
    int code;
  } cases[] = {
    { "", ATK_ERROR_TRUNCATED },
    { "80", ATK_ERROR_BAD_DATA_MODEL }, /* not a map */
    { "61 61", ATK_ERROR_BAD_DATA_MODEL },
    { "a0 00", ATK_ERROR_BAD_CBOR },                                     /* trailing byte */
    { "a1 01 01", ATK_ERROR_BAD_CBOR },                                  /* int key */
    { "a2 61 62 01 61 61 01", ATK_ERROR_BAD_CBOR },                      /* order */
    { "a2 61 61 01 61 61 01", ATK_ERROR_BAD_CBOR },                      /* duplicate */
    { "a1 61 69 1b 80 00 00 00 00 00 00 00", ATK_ERROR_BAD_CBOR },       /* 2^63 */
    { "a1 61 69 3b 80 00 00 00 00 00 00 00", ATK_ERROR_BAD_CBOR },       /* -2^63-1 */
    { "a1 61 69 3b ff ff ff ff ff ff ff ff", ATK_ERROR_BAD_CBOR },       /* -2^64 */
    { "a1 61 66 fb 3f f0 00 00 00 00 00 00", ATK_ERROR_BAD_CBOR },       /* float */
    { "a1 61 74 62 c3 28", ATK_ERROR_BAD_CBOR },                         /* UTF-8 */
    { "a1 62 c3 28 01", ATK_ERROR_BAD_CBOR },                            /* key UTF-8 */
    { "a1 61 6c d8 2a 42 00 01", ATK_ERROR_TRUNCATED },                  /* bad CID */
    { "a1 61 6c d8 2a 43 01 01 71", ATK_ERROR_BAD_CBOR },                /* no 0x00 */
    { "a1 61 6c d8 2a 45 00 02 71 12 00", ATK_ERROR_BAD_CID },           /* CIDv2 */
    { "a1 65 24 6c 69 6e 6b 01", ATK_ERROR_BAD_DATA_MODEL },             /* "$link" */
    { "a1 66 24 62 79 74 65 73 01", ATK_ERROR_BAD_DATA_MODEL },          /* "$bytes" */
    { "a1 65 24 74 79 70 65 60", ATK_ERROR_BAD_DATA_MODEL },             /* "$type": "" */
    { "a1 65 24 74 79 70 65 f6", ATK_ERROR_BAD_DATA_MODEL },             /* "$type": null */
    { "a1 65 24 74 79 70 65 01", ATK_ERROR_BAD_DATA_MODEL },             /* "$type": 1 */
    { "a1 65 24 74 79 70 65 64 62 6c 6f 62", ATK_ERROR_BAD_DATA_MODEL }, /* blob, no ref */
    { "a1 61 78 a1 65 24 74 79 70 65 60", ATK_ERROR_BAD_DATA_MODEL },    /* nested */
    { "a1 61 78 9f ff", ATK_ERROR_BAD_CBOR },                            /* indefinite */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GByteArray) a = atk_test_hex (cases[i].cbor);
      g_autoptr (GString) out = g_string_new ("keep");
      g_autoptr (GError) error = NULL;

      g_test_message ("case %s", cases[i].cbor);
      g_assert_false (atk_cbor_json_write_record (a->data, a->len, out, &error));
      g_assert_error (error, ATK_ERROR, cases[i].code);
      /* The output is restored on failure. */
      g_assert_cmpstr (out->str, ==, "keep");
      g_assert_cmpuint (out->len, ==, 4);
    }
}

/* A blob is valid only with all three fields of the right types. */
static void
test_blob (void)
{
  /* {"ref": link, "size": 10, "$type": "blob", "mimeType": "image/png"}; the link is a
   * raw identity CID (01 55 00 01 61) to keep it short. */
  static const char *ok = "a4 63 72 65 66 d8 2a 46 00 01 55 00 01 61  64 73 69 7a 65 0a"
                          "  65 24 74 79 70 65 64 62 6c 6f 62  68 6d 69 6d 65 54 79 70 65 69 69 6d "
                          "61 67 65 2f 70 6e 67";
  static const char *bad_size = "a4 63 72 65 66 d8 2a 46 00 01 55 00 01 61  64 73 69 7a 65 61 30"
                                "  65 24 74 79 70 65 64 62 6c 6f 62  68 6d 69 6d 65 54 79 70 65 69 "
                                "69 6d 61 67 65 2f 70 6e 67";
  static const char *bad_ref = "a4 63 72 65 66 61 78  64 73 69 7a 65 0a"
                               "  65 24 74 79 70 65 64 62 6c 6f 62  68 6d 69 6d 65 54 79 70 65 69 "
                               "69 6d 61 67 65 2f 70 6e 67";
  static const char *bad_mime = "a4 63 72 65 66 d8 2a 46 00 01 55 00 01 61  64 73 69 7a 65 0a"
                                "  65 24 74 79 70 65 64 62 6c 6f 62  68 6d 69 6d 65 54 79 70 65 01";
  /* The same fields without "$type": "blob" are just a map. */
  static const char *not_blob = "a2 63 72 65 66 61 78  64 73 69 7a 65 61 30";

  const char *bad[] = { bad_size, bad_ref, bad_mime };
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GByteArray) a = atk_test_hex (ok);
  g_autoptr (GByteArray) b = atk_test_hex (not_blob);

  g_assert_true (atk_cbor_json_write_record (a->data, a->len, out, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (out->str, ==,
                   "{\"ref\":{\"$link\":\"bafkqaalb\"},\"size\":10,\"$type\":\"blob\","
                   "\"mimeType\":\"image/png\"}");
  g_assert_true (atk_cbor_json_write_record (b->data, b->len, out, &error));

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GByteArray) c = atk_test_hex (bad[i]);
      g_assert_false (atk_cbor_json_write_record (c->data, c->len, out, &error));
      g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_DATA_MODEL);
      g_clear_error (&error);
    }
}

static void
test_depth (void)
{
  g_autoptr (GByteArray) a = g_byte_array_new ();
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  static const guint8 level[] = { 0xa1, 0x61, 'k' };
  guint8 zero = 0;

  for (guint i = 0; i < ATK_CBOR_MAX_DEPTH; i++)
    g_byte_array_append (a, level, sizeof level);
  g_byte_array_append (a, &zero, 1);
  g_assert_true (atk_cbor_json_write_record (a->data, a->len, out, &error));
  g_assert_no_error (error);

  g_byte_array_prepend (a, level, sizeof level);
  g_assert_false (atk_cbor_json_write_record (a->data, a->len, out, &error));
  g_assert_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cbor-json/fixtures", test_fixtures);
  g_test_add_func ("/cbor-json/record-files", test_record_files);
  g_test_add_func ("/cbor-json/capture-records", test_capture_records);
  g_test_add_func ("/cbor-json/escaping", test_escaping);
  g_test_add_func ("/cbor-json/integers", test_integers);
  g_test_add_func ("/cbor-json/rejects", test_rejects);
  g_test_add_func ("/cbor-json/blob", test_blob);
  g_test_add_func ("/cbor-json/depth", test_depth);
  return g_test_run ();
}
