/* at-kafka: what a DID resolves to, read from the answers of its peers — the DID document,
 * the PLC audit log, the AppView profile (a handle's answers: atk-did-syntax.h).
 *
 * Pure: bytes in, values out. Every JSON text comes from a peer: it is checked for control
 * characters and nesting depth before json-glib sees it.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The handle given to an account whose handle does not verify both ways. */
#define ATK_HANDLE_INVALID "handle.invalid"

/* What one DID resolved to. Immutable once its resolver publishes it; shared by reference. */
typedef struct
{
  char *did;
  /* The first "at://" name of alsoKnownAs that is a valid handle, lower case; or NULL. */
  char *declared_handle;
  /* The handle as eventMetadata gives it: declared_handle when it resolves back to did,
   * else ATK_HANDLE_INVALID. NULL until the resolver verified it. */
  char *handle;
  char *pds_endpoint; /* serviceEndpoint of the service whose id fragment is atproto_pds */
  char *pds_host;     /* its host name, lower case; or NULL */
  /* The document as the identity layer of the reference rebuilds it: id, alsoKnownAs,
   * verificationMethod (the DID's own keys), service; compact JSON. */
  char *document;
  char *created_at;          /* did:plc: createdAt of the audit log's first entry; or NULL */
  gboolean created_at_known; /* created_at parsed as a timestamp */
  gint64 created_at_ms;      /* ... in ms since the Unix epoch */
  char *profile;             /* app.bsky.actor.getProfile output, compact JSON; or NULL */
  /* eventMetadata before and after the accountAge number, rendered on first use (once the
   * fields above are complete: the resolver hands an info out only then). */
  char *metadata_head, *metadata_tail;
  gsize metadata_head_len, metadata_tail_len;
} AtkDidInfo;

AtkDidInfo *atk_did_info_ref (AtkDidInfo *info);
void atk_did_info_unref (AtkDidInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkDidInfo, atk_did_info_unref)

/* Reads a DID document (JSON text). Its "id" must be `did`; alsoKnownAs, verificationMethod
 * and service must have the shapes the DID core spec gives them (strings, objects of strings)
 * where present. The result has no handle, created_at or profile yet.
 * G_IO_ERROR_INVALID_DATA on anything else. */
AtkDidInfo *atk_did_info_new_from_document (const char *did, const char *json, gssize len,
                                            GError **error);

/* The createdAt of a PLC audit log's first entry (JSON text: an array of entries), as given
 * (may be empty), and its time when it parses (*ms_known). G_IO_ERROR_INVALID_DATA when the
 * log is not such an array or is empty. */
gboolean atk_did_audit_log_parse (const char *json, gssize len, char **created_at,
                                  gboolean *ms_known, gint64 *ms, GError **error);

/* A getProfile answer (a JSON object) as compact JSON; G_IO_ERROR_INVALID_DATA otherwise. */
char *atk_did_profile_parse (const char *json, gssize len, GError **error);

/* The eventMetadata object for `info` at `now_ms` (Unix ms), or for a DID that could not be
 * resolved (info NULL), in the reference's field order and JSON escaping. */
void atk_did_metadata_append_json (const AtkDidInfo *info, gint64 now_ms, GString *out);
/* The same object in place of the `len` bytes of `out` at `at` (a message's "null" slot), with
 * one move of what follows them and nothing rendered twice. */
void atk_did_metadata_splice (const AtkDidInfo *info, gint64 now_ms, GString *out, gsize at,
                              gsize len);

G_END_DECLS
