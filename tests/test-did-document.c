/* The pure identity readers of src/core: DID documents rebuilt as the reference rebuilds
 * them, PLC audit logs, handle and DID syntax, handle answers, the eventMetadata object; and
 * the TTL cache and counters the resolvers keep them in.
 * SPDX-License-Identifier: MIT */
#include <gio/gio.h>
#include <string.h>

#include "atk-counter-set.h"
#include "atk-did-document.h"
#include "atk-did-syntax.h"
#include "atk-ttl-cache.h"

/* The document and eventMetadata as the reference writes them, byte for byte: the document
 * rebuilt from id, alsoKnownAs, the DID's own keys and the services (the first per id
 * fragment), Go's JSON escaping (<, >, & as \u003c…), its field order. */
static void
test_document_rebuild (void)
{
  const char *did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
  g_autofree char *json = g_strdup_printf (
      "{\"@context\":[\"https://www.w3.org/ns/did/v1\"],\"id\":\"%1$s\",\"alsoKnownAs\":"
      "[\"at://-bad-\",\"at://Alice.Example.COM\"],\"verificationMethod\":[{\"id\":\"#atproto\","
      "\"type\":\"Multikey\",\"controller\":\"%1$s\",\"publicKeyMultibase\":\"zKEY\"},{\"id\":"
      "\"%1$s#other\",\"type\":\"Multikey\",\"controller\":\"did:plc:someoneelse\","
      "\"publicKeyMultibase\":\"zOTHER\"},{\"id\":\"%1$s#atproto\",\"type\":\"Multikey\","
      "\"controller\":\"%1$s\",\"publicKeyMultibase\":\"zSECOND\"},{\"id\":\"nofragment\","
      "\"controller\":\"%1$s\"}],\"service\":[{\"id\":\"%1$s#atproto_pds\",\"type\":"
      "\"AtprotoPersonalDataServer\",\"serviceEndpoint\":\"https://PDS.example.com/?a=1&b=<2>\"},"
      "{\"id\":\"#atproto_labeler\",\"type\":\"AtprotoLabeler\",\"serviceEndpoint\":"
      "\"https://labeler.example.com\"},{\"id\":\"#atproto_pds\",\"serviceEndpoint\":"
      "\"https://second.example.com\"}]}",
      did);
  g_autofree char *doc = g_strdup_printf (
      "{\"id\":\"%1$s\",\"alsoKnownAs\":[\"at://-bad-\",\"at://Alice.Example.COM\"],"
      "\"verificationMethod\":[{\"id\":\"%1$s#atproto\",\"type\":\"Multikey\",\"controller\":"
      "\"%1$s\",\"publicKeyMultibase\":\"zKEY\"}],\"service\":[{\"id\":\"#atproto_pds\","
      "\"type\":\"AtprotoPersonalDataServer\",\"serviceEndpoint\":"
      "\"https://PDS.example.com/?a=1\\u0026b=\\u003c2\\u003e\"},{\"id\":\"#atproto_labeler\","
      "\"type\":\"AtprotoLabeler\",\"serviceEndpoint\":\"https://labeler.example.com\"}]}",
      did);
  g_autofree char *metadata = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidInfo) info = atk_did_info_new_from_document (did, json, -1, &error);
  g_autoptr (GString) out = g_string_new (NULL);
  const char *log = "[{\"createdAt\":\"2023-05-01T10:00:00.000Z\"},{\"createdAt\":\"x\"}]";

  g_assert_no_error (error);
  g_assert_cmpstr (info->document, ==, doc);
  g_assert_cmpstr (info->declared_handle, ==, "alice.example.com");
  g_assert_cmpstr (info->pds_endpoint, ==, "https://PDS.example.com/?a=1&b=<2>");
  g_assert_cmpstr (info->pds_host, ==, "pds.example.com");
  g_assert_true (atk_did_audit_log_parse (log, -1, &info->created_at, &info->created_at_known,
                                          &info->created_at_ms, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info->created_at_ms, ==, G_GINT64_CONSTANT (1682935200000));
  info->handle = g_strdup ("alice.example.com");
  atk_did_metadata_append_json (info, info->created_at_ms + 90061999, out);
  metadata = g_strdup_printf ("{\"didDocument\":%s,\"pdsHost\":"
                              "\"https://PDS.example.com/?a=1\\u0026b=\\u003c2\\u003e\","
                              "\"handle\":\"alice.example.com\",\"didCreatedAt\":"
                              "\"2023-05-01T10:00:00.000Z\",\"accountAge\":90061,\"profile\":null}",
                              doc);
  g_assert_cmpstr (out->str, ==, metadata);
  /* Rendered again (from the info's cached rendering): only the age moves. */
  g_string_truncate (out, 0);
  atk_did_metadata_append_json (info, info->created_at_ms + 1090061999, out);
  g_assert_nonnull (strstr (out->str, ",\"accountAge\":1090061,\"profile\":null}"));
  g_assert_cmpuint (out->len, ==, strlen (metadata) + 2);
  g_assert_true (g_str_has_prefix (out->str, info->metadata_head));

  /* A creation time that does not parse is still given; the age is unknown. (The resolver
   * hands an info out complete; this one changes after it was rendered: forget that.) */
  g_clear_pointer (&info->metadata_head, g_free);
  g_clear_pointer (&info->metadata_tail, g_free);
  g_clear_pointer (&info->created_at, g_free);
  g_assert_true (atk_did_audit_log_parse ("[{\"createdAt\":\"yesterday\"}]", -1, &info->created_at,
                                          &info->created_at_known, &info->created_at_ms, &error));
  g_string_truncate (out, 0);
  atk_did_metadata_append_json (info, 0, out);
  g_assert_true (g_str_has_suffix (out->str, ",\"didCreatedAt\":\"yesterday\",\"accountAge\":-1,"
                                             "\"profile\":null}"));
  g_string_truncate (out, 0);
  atk_did_metadata_append_json (NULL, 0, out);
  g_assert_cmpstr (out->str, ==,
                   "{\"didDocument\":{\"id\":\"\"},\"accountAge\":-1,\"profile\":null}");

  /* In place of a message's slot: what came before and after it stays, around the same
   * object (growing the message, or shrinking it when the slot is longer). */
  {
    const char *unresolved = "{\"didDocument\":{\"id\":\"\"},\"accountAge\":-1,\"profile\":null}";
    g_autofree char *object = NULL;
    g_autofree char *expected = NULL;
    g_autofree char *long_slot = g_strnfill (3000, 'x');
    g_autoptr (GString) message = g_string_new ("{\"seq\":1,\"eventMetadata\":null,\"z\":[2]}");
    gsize at = strstr (message->str, "null") - message->str;

    g_string_truncate (out, 0);
    atk_did_metadata_append_json (info, 5000, out);
    object = g_strdup (out->str);
    atk_did_metadata_splice (info, 5000, message, at, 4);
    expected = g_strdup_printf ("{\"seq\":1,\"eventMetadata\":%s,\"z\":[2]}", object);
    g_assert_cmpstr (message->str, ==, expected);
    g_assert_cmpuint (message->len, ==, strlen (expected));

    g_string_printf (message, "[%s]", long_slot);
    atk_did_metadata_splice (info, 5000, message, 1, 3000);
    g_clear_pointer (&expected, g_free);
    expected = g_strdup_printf ("[%s]", object);
    g_assert_cmpstr (message->str, ==, expected);
    g_assert_cmpuint (message->len, ==, strlen (expected));

    g_string_assign (message, "ab");
    atk_did_metadata_splice (NULL, 0, message, 1, 0);
    g_clear_pointer (&expected, g_free);
    expected = g_strdup_printf ("a%sb", unresolved);
    g_assert_cmpstr (message->str, ==, expected);
  }

  /* What a typed decoder refuses, we refuse. */
  {
    const char *bad[]
        = { "{\"id\":\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\",\"alsoKnownAs\":\"at://x.com\"}",
            "{\"id\":\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\",\"alsoKnownAs\":[1]}",
            ("{\"id\":\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\",\"service\":[{\"id\":\"#atproto_pds\","
             "\"serviceEndpoint\":{\"uri\":\"https://x\"}}]}"),
            "{\"id\":\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\",\"verificationMethod\":[\"#atproto\"]}" };

    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        const char *text = bad[i];
        g_autoptr (GError) bad_error = NULL;

        g_assert_null (atk_did_info_new_from_document (did, text, -1, &bad_error));
        g_assert_error (bad_error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      }
  }
}

/* Numbers in a profile come back as JSON; those json-glib cannot write back are refused. */
static void
test_profile_numbers (void)
{
  const char *refused[] = { "{\"a\":10E20 }", "{\"a\":[1,{\"b\":1E400}]}", "{\"a\":-1E22}" };
  g_autoptr (GError) error = NULL;
  g_autofree char *kept = atk_did_profile_parse (
      "{\"a\":1.0,\"b\":-0.0,\"c\":12,\"d\":0.5,\"e\":2.5e-3}", -1, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (kept, ==,
                   "{\"a\":1.0,\"b\":-0.0,\"c\":12,\"d\":0.5,\"e\":0.0025000000000000001}");
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr (GError) local = NULL;
      g_autofree char *profile = atk_did_profile_parse (refused[i], -1, &local);

      g_assert_null (profile);
      g_assert_error (local, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_assert_nonnull (strstr (local->message, "number"));
    }
}

static void
test_syntax (void)
{
  const char *valid[] = { "alice.example.com", "a.b", "x-1.y2.dev", "XN--ls8h.la", NULL };
  const char *invalid[] = { "alice",  "-a.com", "a-.com",     "a..com", "a.1com",
                            "a.com.", "",       "al ice.com", "a.c_m",  NULL };
  const char *txt[] = { "v=spf1 -all", "did=did:plc:abc", "did=did:web:x.com", NULL };
  const char *bad_txt[] = { "did=did:plc:", NULL };
  const char *no_txt[] = { "v=spf1", NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *did = NULL;

  for (guint i = 0; valid[i] != NULL; i++)
    g_assert_true (atk_handle_is_valid (valid[i]));
  for (guint i = 0; invalid[i] != NULL; i++)
    g_assert_false (atk_handle_is_valid (invalid[i]));
  g_assert_false (atk_handle_tld_allowed ("alice.example"));
  g_assert_false (atk_handle_tld_allowed ("handle.invalid"));
  g_assert_false (atk_handle_tld_allowed ("a.ONION"));
  g_assert_true (atk_handle_tld_allowed ("alice.test"));
  g_assert_true (atk_did_is_valid ("did:plc:abc", 11));
  g_assert_true (atk_did_is_valid ("did:web:example.com%3A8080", 26));
  g_assert_false (atk_did_is_valid ("did:PLC:abc", 11));
  g_assert_false (atk_did_is_valid ("did:plc:abc:", 12));
  g_assert_false (atk_did_is_valid ("did:plc:a/b", 11));

  did = atk_handle_did_from_txt (txt, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (did, ==, "did:plc:abc"); /* the first did= record */
  g_clear_pointer (&did, g_free);
  g_assert_null (atk_handle_did_from_txt (bad_txt, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_null (atk_handle_did_from_txt (no_txt, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);
  did = atk_handle_did_from_well_known (" did:plc:abc\r\n", 14, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (did, ==, "did:plc:abc");
  g_assert_null (atk_handle_did_from_well_known ("<html>", 6, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

static void
test_ttl_cache (void)
{
  g_autoptr (AtkTtlCache) cache = atk_ttl_cache_new (g_free);
  g_autoptr (GError) failure = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "gone");
  const GError *error = NULL;
  gpointer value = NULL;

  atk_ttl_cache_put (cache, "a", g_strdup ("A"), NULL, 100);
  atk_ttl_cache_put (cache, "b", NULL, failure, 100);
  g_assert_true (atk_ttl_cache_lookup (cache, "a", 99, &value, &error));
  g_assert_cmpstr (value, ==, "A");
  g_assert_null (error);
  g_assert_true (atk_ttl_cache_lookup (cache, "b", 99, &value, &error));
  g_assert_null (value);
  g_assert_error ((GError *)error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  /* b is the most recent: a goes first */
  atk_ttl_cache_set_max (cache, 1);
  g_assert_cmpuint (atk_ttl_cache_size (cache), ==, 1);
  g_assert_null (atk_ttl_cache_peek (cache, "a"));
  atk_ttl_cache_set_max (cache, 10);
  atk_ttl_cache_put (cache, "a", g_strdup ("A2"), NULL, 200);
  g_assert_false (atk_ttl_cache_lookup (cache, "b", 100, &value, &error)); /* expired: dropped */
  g_assert_cmpuint (atk_ttl_cache_size (cache), ==, 1);
  g_assert_cmpstr (atk_ttl_cache_peek (cache, "a"), ==, "A2");
  atk_ttl_cache_remove (cache, "a");
  g_assert_cmpuint (atk_ttl_cache_size (cache), ==, 0);
  atk_ttl_cache_set_max (cache, 0);
  atk_ttl_cache_put (cache, "c", g_strdup ("C"), NULL, 200);
  g_assert_cmpuint (atk_ttl_cache_size (cache), ==, 0);
}

static void
test_counter_set (void)
{
  const char *labels[] = { "kind", "status", NULL };
  const char *ok[] = { "dns", "ok", NULL };
  const char *timeout[] = { "dns", "timeout", NULL };
  g_autoptr (AtkCounterSet) set = atk_counter_set_new (labels);
  g_autoptr (GString) out = g_string_new (NULL);

  guint64 *ok_count;

  atk_counter_set_add (set, timeout);
  ok_count = atk_counter_set_add (set, ok);
  g_assert_true (atk_counter_set_add (set, ok) == ok_count);
  g_assert_cmpuint (*ok_count, ==, 2);
  /* the count where add() said it is kept, as a frequent caller adds to it */
  (*ok_count)++;
  g_assert_cmpuint (atk_counter_set_get (set, ok), ==, 3);
  (*ok_count)--;
  g_assert_cmpuint (atk_counter_set_get (set, ok), ==, 2);
  atk_counter_set_render (set, out, "x_total", "Help.");
  g_assert_cmpstr (out->str, ==,
                   "# HELP x_total Help.\n# TYPE x_total counter\n"
                   "x_total{kind=\"dns\",status=\"ok\"} 2\n"
                   "x_total{kind=\"dns\",status=\"timeout\"} 1\n");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/did-document/rebuild", test_document_rebuild);
  g_test_add_func ("/did-document/profile-numbers", test_profile_numbers);
  g_test_add_func ("/did-document/syntax", test_syntax);
  g_test_add_func ("/did-document/ttl-cache", test_ttl_cache);
  g_test_add_func ("/did-document/counter-set", test_counter_set);
  return g_test_run ();
}
