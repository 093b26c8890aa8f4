/* Records the network accepts come out rendered exactly as the TypeScript libraries render
 * them (CIDv0 and other non-DASL links, nesting up to 1,000 levels), and records that
 * truly cannot be rendered still yield their operation, with "recordError".
 *
 * The vectors (tests/vectors/records, written by tests/plc/make-record-vectors.mjs) carry
 * the JSON @atproto/lex-cbor + @atproto/lex-json produce for each record: the expectation
 * never comes from at-kafka's code.
 * SPDX-License-Identifier: MIT */
#include <json-glib/json-glib.h>
#include <string.h>

#include "atk-cbor-json.h"
#include "atk-error.h"
#include "atk-event-transformer.h"
#include "atk-test-util.h"

#define TEST_NOW_US G_GINT64_CONSTANT (1767225600000000)
#define TEST_DID "did:plc:fidelitytestaaaaaaaaaaaa"
#define TEST_TIME "2026-01-01T00:00:00.000Z"

/* Each record, alone, renders byte for byte as lexStringify(decode(cbor)). */
static void
test_cases (void)
{
  g_autoptr (GPtrArray) cases = atk_test_load_jsonl ("records/cases.jsonl");
  guint n_deep = 0;

  g_assert_cmpuint (cases->len, >=, 14);
  for (guint i = 0; i < cases->len; i++)
    {
      JsonObject *c = json_node_get_object (cases->pdata[i]);
      const char *name = json_object_get_string_member (c, "name");
      g_autoptr (GByteArray) cbor = atk_test_hex (json_object_get_string_member (c, "cbor"));
      g_autoptr (GString) out = g_string_new ("x");
      g_autoptr (GError) error = NULL;

      if (!atk_cbor_json_write_record (cbor->data, cbor->len, out, &error))
        g_error ("%s: %s", name, error->message);
      g_assert_cmpstr (out->str + 1, ==, json_object_get_string_member (c, "json"));
      if (g_str_has_suffix (name, "-1000"))
        n_deep++;
    }
  g_assert_cmpuint (n_deep, ==, 3);
}

/* The whole standard message of one op, as reference.md gives it, from the oracle line. */
static char *
expected_message (JsonObject *op)
{
  const char *path = json_object_get_string_member (op, "path");
  const char *slash = strchr (path, '/');
  g_autofree char *collection = g_strndup (path, (gsize)(slash - path));
  const char *record = json_object_get_null_member (op, "record")
                           ? "null"
                           : json_object_get_string_member (op, "record");
  const char *error = json_object_get_null_member (op, "recordError")
                          ? NULL
                          : json_object_get_string_member (op, "recordError");
  const char *cid = json_object_get_string_member (op, "cid");
  g_autofree char *tail
      = error != NULL ? g_strdup_printf (",\"recordError\":\"%s\"", error) : g_strdup ("");

  return g_strdup_printf ("{\"did\":\"" TEST_DID "\",\"timestamp\":\"" TEST_TIME "\","
                          "\"operation\":{\"action\":\"%s\",\"collection\":\"%s\",\"rkey\":\"%s\","
                          "\"uri\":\"at://" TEST_DID "/%s\",\"cid\":\"%s\",\"path\":\"%s\","
                          "\"record\":%s%s},\"eventMetadata\":null}",
                          g_str_equal (cid, "") ? "delete" : "create", collection, slash + 1, path,
                          cid, path, record, tail);
}

static guint
count_errors (JsonArray *ops, const char *kind)
{
  guint n = 0;

  for (guint j = 0; j < json_array_get_length (ops); j++)
    {
      JsonObject *op = json_array_get_object_element (ops, j);
      if (!json_object_get_null_member (op, "recordError")
          && (kind == NULL
              || g_str_equal (json_object_get_string_member (op, "recordError"), kind)))
        n++;
    }
  return n;
}

static guint
kind_count (const AtkTransformResult *result, const char *kind)
{
  for (guint i = 0; i < result->n_op_error_kinds; i++)
    if (g_str_equal (result->op_error_kinds[i].kind, kind))
      return result->op_error_kinds[i].count;
  return 0;
}

/* Every commit frame: each op comes out (by default) or the unrenderable ones are skipped
 * (skip_unrenderable_records), the others exactly as the oracle says. */
static void
check_frames (gboolean skip)
{
  static const char *const kinds[] = { "cid_mismatch", "truncated", "bad_cbor", "missing_block" };
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("records/frames.bin");
  g_autoptr (GPtrArray) oracle = atk_test_load_jsonl ("records/frames.jsonl");
  g_autoptr (AtkEventTransformer) t = atk_event_transformer_new ();
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  guint n_errors = 0;

  g_assert_cmpuint (frames->len, ==, oracle->len);
  atk_event_transformer_set_skip_unrenderable_records (t, skip);
  for (guint i = 0; i < frames->len; i++)
    {
      JsonArray *ops
          = json_object_get_array_member (json_node_get_object (oracle->pdata[i]), "ops");
      guint n_ops = json_array_get_length (ops);
      guint n_bad = count_errors (ops, NULL);
      AtkTransformResult result = { 0 };
      g_autoptr (GError) error = NULL;
      gsize len;
      const guint8 *data = g_bytes_get_data (frames->pdata[i], &len);

      g_ptr_array_set_size (messages, 0);
      g_assert_true (
          atk_event_transformer_transform (t, data, len, TEST_NOW_US, messages, &result, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (result.n_op_errors, ==, n_bad);
      g_assert_true (result.ops_skipped == (skip && n_bad > 0));
      for (guint k = 0; k < G_N_ELEMENTS (kinds); k++)
        g_assert_cmpuint (kind_count (&result, kinds[k]), ==, count_errors (ops, kinds[k]));
      g_assert_cmpuint (messages->len, ==, skip ? n_ops - n_bad : n_ops);
      if (n_bad > 0)
        g_assert_nonnull (result.op_error);

      for (guint j = 0, m = 0; j < n_ops; j++)
        {
          JsonObject *op = json_array_get_object_element (ops, j);
          g_autofree char *want = NULL;
          const AtkMessage *message;

          if (skip && !json_object_get_null_member (op, "recordError"))
            continue;
          want = expected_message (op);
          message = messages->pdata[m++];
          g_assert_cmpstr (message->value->str, ==, want);
        }
      n_errors += n_bad;
      atk_transform_result_clear (&result);
    }
  /* The vectors do hold each kind of unrenderable record. */
  g_assert_cmpuint (n_errors, ==, G_N_ELEMENTS (kinds));
}

static void
test_frames (void)
{
  check_frames (FALSE);
}

static void
test_frames_skip (void)
{
  check_frames (TRUE);
}

/* Nesting beyond ATK_CBOR_MAX_DEPTH is the one record no PDS accepts: it still yields its
 * op, with "too_large". Built by hand: n nested one-element arrays under a record map. */
static void
test_too_deep (void)
{
  for (guint extra = 0; extra < 2; extra++)
    {
      guint levels = ATK_CBOR_MAX_DEPTH + extra; /* the record map included */
      g_autoptr (GByteArray) cbor = g_byte_array_sized_new (levels + 8);
      g_autoptr (GString) out = g_string_new (NULL);
      g_autoptr (GError) error = NULL;
      static const guint8 head[] = { 0xa1, 0x61, 'v' }; /* {"v": */
      guint8 one = 0x81, zero = 0x00;
      gboolean ok;

      g_byte_array_append (cbor, head, sizeof head);
      for (guint i = 1; i < levels; i++)
        g_byte_array_append (cbor, &one, 1);
      g_byte_array_append (cbor, &zero, 1);
      ok = atk_cbor_json_write_record (cbor->data, cbor->len, out, &error);
      if (extra == 0)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
          g_assert_cmpuint (out->len, ==, 5 + 2 * (levels - 1) + 2);
          g_assert_true (g_str_has_prefix (out->str, "{\"v\":[[[["));
          g_assert_nonnull (strstr (out->str, "[[0]]"));
          g_assert_true (g_str_has_suffix (out->str, "]]]]}"));
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE);
          g_assert_cmpuint (out->len, ==, 0);
        }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/records/cases", test_cases);
  g_test_add_func ("/records/frames", test_frames);
  g_test_add_func ("/records/frames-skip", test_frames_skip);
  g_test_add_func ("/records/too-deep", test_too_deep);
  return g_test_run ();
}
