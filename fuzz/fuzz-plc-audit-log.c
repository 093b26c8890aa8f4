/* libFuzzer target: one input = a PLC audit log as a PLC directory would serve it, through
 * atk_did_audit_log_parse(), and into the eventMetadata object it ends up in. The same bytes
 * also go through the readers of a handle's /.well-known/atproto-did body and TXT record.
 * Invariants: success and error agree; a result has a createdAt (maybe empty); the metadata
 * object is one valid JSON object (strict checker); an accepted DID is valid DID syntax; no
 * GLib critical (criticals are fatal here).
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-did-document.h"
#include "atk-did-syntax.h"
#include "atk-fuzz-json.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
check_metadata (const char *created_at, gboolean known, gint64 ms)
{
  AtkDidInfo info = { 0 };
  g_autoptr (GString) out = g_string_new (NULL);

  info.did = (char *)"did:plc:ewvi7nxzyoun6zhxrhs64oiz";
  info.document = (char *)"{\"id\":\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\"}";
  info.created_at = (char *)created_at;
  info.created_at_known = known;
  info.created_at_ms = ms;
  atk_did_metadata_append_json (&info, G_MAXINT64 / 2, out);
  /* the rendering it cached on the info (a borrowed one here: no atk_did_info_unref()) */
  g_free (info.metadata_head);
  g_free (info.metadata_tail);
  if (!atk_fuzz_json_object_valid (out->str, out->len))
    abort ();
}

static void
check_handle_answers (const char *text, gsize size)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *did = atk_handle_did_from_well_known (text, size, &error);
  const char *records[] = { text, NULL };
  g_autofree char *txt_did = NULL;

  if ((did == NULL) == (error == NULL))
    abort ();
  if (did != NULL && !atk_did_is_valid (did, strlen (did)))
    abort ();
  g_clear_error (&error);
  txt_did = atk_handle_did_from_txt (records, &error);
  if ((txt_did == NULL) == (error == NULL))
    abort ();
  if (txt_did != NULL
      && (!atk_did_is_valid (txt_did, strlen (txt_did)) || strcmp (txt_did, text + 4) != 0))
    abort ();
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  /* exact size (one byte for the empty input: g_memdup2 would give NULL) */
  g_autofree char *text = size > 0 ? g_memdup2 (data, size) : g_malloc0 (1);
  g_autofree char *terminated = g_strndup (text, size);
  g_autoptr (GError) error = NULL;
  g_autofree char *created_at = NULL;
  gboolean known = FALSE;
  gint64 ms = -1;
  gboolean ok;

  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL);
  ok = atk_did_audit_log_parse (text, (gssize)size, &created_at, &known, &ms, &error);
  if (ok == (error != NULL) || ok != (created_at != NULL) || (!known && ms != 0))
    abort ();
  if (ok)
    check_metadata (created_at, known, ms);
  check_handle_answers (terminated, strlen (terminated));
  return 0;
}
