/* libFuzzer target: one input = a DID document as a PLC directory or a did:web host would
 * serve it, through the DID document reader (atk_did_info_new_from_document), and the
 * timestamp parser the PLC audit log's createdAt goes through. The DID the document must
 * name is the input's first line when it starts with "did:", else a fixed one.
 * Invariants: success and error agree; a result names the DID asked for; its document and
 * the eventMetadata object made of it are valid JSON objects (strict checker); a declared
 * handle is valid handle syntax; its PDS host is lower case; no GLib critical
 * (criticals are fatal here).
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-did-resolver.h"
#include "atk-did-syntax.h"
#include "atk-fuzz-json.h"
#include "atk-time.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
check_document (const char *did, const char *json, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidInfo) info = atk_did_info_new_from_document (did, json, (gssize)len, &error);

  if ((info == NULL) == (error == NULL))
    abort ();
  if (info == NULL)
    return;
  if (g_strcmp0 (info->did, did) != 0 || info->document == NULL
      || !atk_fuzz_json_object_valid (info->document, strlen (info->document)))
    abort ();
  /* the eventMetadata object it makes, with a handle as verification leaves it */
  {
    g_autoptr (GString) out = g_string_new (NULL);

    info->handle
        = g_strdup (info->declared_handle != NULL ? info->declared_handle : ATK_HANDLE_INVALID);
    atk_did_metadata_append_json (info, 0, out);
    if (!atk_fuzz_json_object_valid (out->str, out->len)
        || (info->declared_handle != NULL && !atk_handle_is_valid (info->declared_handle)))
      abort ();
  }
  if (info->pds_host != NULL)
    {
      g_autofree char *lower = g_ascii_strdown (info->pds_host, -1);
      if (strcmp (lower, info->pds_host) != 0 || info->pds_endpoint == NULL)
        abort ();
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  /* exact size (one byte for the empty input: g_memdup2 would give NULL) */
  char *text = size > 0 ? g_memdup2 (data, size) : g_malloc0 (1);
  const char *newline = memchr (text, '\n', size);
  g_autofree char *did = NULL;
  const char *json = text;
  gint64 ms = 0;

  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL);
  if (newline != NULL && size >= 4 && memcmp (text, "did:", 4) == 0)
    {
      did = g_strndup (text, newline - text);
      json = newline + 1;
    }
  else
    did = g_strdup ("did:plc:ewvi7nxzyoun6zhxrhs64oiz");
  check_document (did, json, size - (json - text));
  /* createdAt of the audit log's first entry */
  (void)atk_parse_datetime_ms (text, size, &ms);
  g_free (text);
  return 0;
}
