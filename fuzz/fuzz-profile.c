/* libFuzzer target: one input = an AppView app.bsky.actor.getProfile answer, through
 * atk_did_profile_parse(), and into the eventMetadata object it ends up in.
 * Invariants: success and error agree; a result is one valid JSON object (strict checker),
 * and so is the metadata object holding it; no GLib critical (criticals are fatal here).
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-did-document.h"
#include "atk-fuzz-json.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  /* exact size (one byte for the empty input: g_memdup2 would give NULL) */
  g_autofree char *text = size > 0 ? g_memdup2 (data, size) : g_malloc0 (1);
  g_autoptr (GError) error = NULL;
  g_autofree char *profile = NULL;
  AtkDidInfo info = { 0 };
  g_autoptr (GString) out = g_string_new (NULL);

  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL);
  profile = atk_did_profile_parse (text, (gssize)size, &error);
  if ((profile == NULL) == (error == NULL))
    abort ();
  if (profile == NULL)
    return 0;
  if (!atk_fuzz_json_object_valid (profile, strlen (profile)))
    abort ();
  info.did = (char *)"did:plc:ewvi7nxzyoun6zhxrhs64oiz";
  info.document = (char *)"{\"id\":\"did:plc:ewvi7nxzyoun6zhxrhs64oiz\"}";
  info.handle = (char *)"handle.invalid";
  info.profile = profile;
  atk_did_metadata_append_json (&info, 0, out);
  /* the rendering it cached on the info (a borrowed one here: no atk_did_info_unref()) */
  g_free (info.metadata_head);
  g_free (info.metadata_tail);
  if (!atk_fuzz_json_object_valid (out->str, out->len))
    abort ();
  return 0;
}
