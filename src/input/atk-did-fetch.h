/* at-kafka: one lookup of one DID over HTTP: its document, then (with details) its PLC audit
 * log, its AppView profile and its declared handle, side by side. AtkDidResolver runs these
 * (it caches their answers, joins callers asking for the same DID and bounds how many run);
 * a fetch only asks and reads.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <libsoup/soup.h>

#include "atk-did-document.h"
#include "atk-handle-resolver.h"

G_BEGIN_DECLS

typedef struct _AtkDidFetch AtkDidFetch;

/* One request answered: service "plc" or "api"; kind "did_doc", "audit_log" or "profile";
 * status "ok" or atk_did_fetch_status() of its error. */
typedef void (*AtkDidFetchCount) (gpointer user_data, const char *service, const char *kind,
                                  const char *status);
/* Every request of the fetch answered: its info or its error is final. */
typedef void (*AtkDidFetchDone) (AtkDidFetch *fetch, gpointer user_data);

/* Where fetches ask, owned by whoever runs them; each step reads it when it starts. */
typedef struct
{
  SoupSession *session;
  AtkHandleResolver *handles;
  char *plc_url; /* without a trailing '/' */
  char *api_url; /* or NULL */
  char *did_web_scheme;
  gboolean fetch_details; /* audit log, profile and handle too */
  AtkDidFetchCount count;
  gpointer count_data;
} AtkDidFetchPeers;

AtkDidFetch *atk_did_fetch_new (const char *did);
void atk_did_fetch_free (AtkDidFetch *fetch);
const char *atk_did_fetch_get_did (AtkDidFetch *fetch);

/* Asks the peers; `done` is called once, when every request is answered. peers must outlive
 * the fetch. */
void atk_did_fetch_start (AtkDidFetch *fetch, const AtkDidFetchPeers *peers, AtkDidFetchDone done,
                          gpointer user_data);

/* After `done`: what the DID resolved to (borrowed), or else the error. */
AtkDidInfo *atk_did_fetch_get_info (AtkDidFetch *fetch);
const GError *atk_did_fetch_get_error (AtkDidFetch *fetch);

/* The status label of a failed lookup: "not_found", "timeout" or "error". */
const char *atk_did_fetch_status (const GError *error);

G_END_DECLS
