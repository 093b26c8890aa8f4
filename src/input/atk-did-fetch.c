/* at-kafka: one lookup of one DID over HTTP (see atk-did-fetch.h).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-did"

#include "atk-did-fetch.h"

#include <string.h>

#include "atk-did-syntax.h"

#define MAX_BODY_BYTES (1024 * 1024) /* a DID document or profile is a few kB */

struct _AtkDidFetch
{
  char *did;
  const AtkDidFetchPeers *peers;
  AtkDidFetchDone done;
  gpointer done_data;
  AtkDidInfo *info;
  GError *error;
  guint requests_left;
  GCancellable *cancellable;
};

typedef void (*ResponseHandler) (AtkDidFetch *fetch, guint status, GBytes *body,
                                 const GError *error);

typedef struct
{
  AtkDidFetch *fetch;
  SoupMessage *msg;
  const char *service; /* static */
  const char *kind;    /* static */
  ResponseHandler handler;
} Request;

AtkDidFetch *
atk_did_fetch_new (const char *did)
{
  AtkDidFetch *fetch = g_new0 (AtkDidFetch, 1);

  fetch->did = g_strdup (did);
  fetch->cancellable = g_cancellable_new ();
  return fetch;
}

void
atk_did_fetch_free (AtkDidFetch *fetch)
{
  g_clear_pointer (&fetch->info, atk_did_info_unref);
  g_clear_error (&fetch->error);
  g_clear_object (&fetch->cancellable);
  g_free (fetch->did);
  g_free (fetch);
}

const char *
atk_did_fetch_get_did (AtkDidFetch *fetch)
{
  return fetch->did;
}

AtkDidInfo *
atk_did_fetch_get_info (AtkDidFetch *fetch)
{
  return fetch->info;
}

const GError *
atk_did_fetch_get_error (AtkDidFetch *fetch)
{
  return fetch->error;
}

const char *
atk_did_fetch_status (const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    return "not_found";
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return "timeout";
  return "error";
}

static void
request_done (AtkDidFetch *fetch)
{
  if (--fetch->requests_left == 0)
    fetch->done (fetch, fetch->done_data);
}

static void
on_response (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Request *request = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body
      = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  guint status = soup_message_get_status (request->msg);
  AtkDidFetch *fetch = request->fetch;
  const char *label;

  if (error == NULL && (status == SOUP_STATUS_NOT_FOUND || status == SOUP_STATUS_GONE))
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s: HTTP %u", fetch->did, status);
  else if (error == NULL && status != SOUP_STATUS_OK)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: HTTP %u %s", fetch->did, status,
                 soup_message_get_reason_phrase (request->msg));
  else if (error == NULL && g_bytes_get_size (body) > MAX_BODY_BYTES)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: answer too large", fetch->did);
  label = error == NULL ? "ok" : atk_did_fetch_status (error);
  fetch->peers->count (fetch->peers->count_data, request->service, request->kind, label);
  if (error != NULL)
    g_debug ("%s lookup of %s: %s", request->kind, fetch->did, error->message);

  request->handler (fetch, status, error == NULL ? body : NULL, error);
  g_object_unref (request->msg);
  g_free (request);
  request_done (fetch);
}

static void
send_get (AtkDidFetch *fetch, const char *url, const char *service, const char *kind,
          ResponseHandler handler)
{
  Request *request = g_new0 (Request, 1);

  request->fetch = fetch;
  request->service = service;
  request->kind = kind;
  request->handler = handler;
  request->msg = soup_message_new (SOUP_METHOD_GET, url);
  fetch->requests_left++;
  if (request->msg == NULL)
    {
      g_autoptr (GError) error
          = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Bad URL %s", url);

      fetch->peers->count (fetch->peers->count_data, service, kind, "error");
      handler (fetch, 0, NULL, error);
      g_free (request);
      request_done (fetch);
      return;
    }
  soup_message_headers_replace (soup_message_get_request_headers (request->msg), "Accept",
                                "application/json");
  soup_session_send_and_read_async (fetch->peers->session, request->msg, G_PRIORITY_DEFAULT,
                                    fetch->cancellable, on_response, request);
}

static void
on_audit_log (AtkDidFetch *fetch, guint status, GBytes *body, const GError *error)
{
  g_autoptr (GError) local_error = NULL;
  AtkDidInfo *info = fetch->info;

  if (body == NULL || info == NULL)
    return;
  if (!atk_did_audit_log_parse (g_bytes_get_data (body, NULL), (gssize)g_bytes_get_size (body),
                                &info->created_at, &info->created_at_known, &info->created_at_ms,
                                &local_error))
    g_debug ("Audit log of %s: %s", fetch->did, local_error->message);
}

static void
on_profile (AtkDidFetch *fetch, guint status, GBytes *body, const GError *error)
{
  g_autoptr (GError) local_error = NULL;

  if (body == NULL || fetch->info == NULL)
    return;
  fetch->info->profile = atk_did_profile_parse (g_bytes_get_data (body, NULL),
                                                (gssize)g_bytes_get_size (body), &local_error);
  if (fetch->info->profile == NULL)
    g_debug ("Profile of %s: %s", fetch->did, local_error->message);
}

static void
fetch_details (AtkDidFetch *fetch)
{
  const AtkDidFetchPeers *peers = fetch->peers;
  g_autofree char *escaped = g_uri_escape_string (fetch->did, ":", FALSE);

  if (g_str_has_prefix (fetch->did, "did:plc:"))
    {
      g_autofree char *url = g_strdup_printf ("%s/%s/log/audit", peers->plc_url, escaped);
      send_get (fetch, url, "plc", "audit_log", on_audit_log);
    }
  if (peers->api_url != NULL)
    {
      g_autofree char *actor = g_uri_escape_string (fetch->did, NULL, FALSE);
      g_autofree char *url
          = g_strdup_printf ("%s/xrpc/app.bsky.actor.getProfile?actor=%s", peers->api_url, actor);
      send_get (fetch, url, "api", "profile", on_profile);
    }
}

/* The declared handle resolved (or not): it is the account's only if it names this DID. */
static void
on_handle (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AtkDidFetch *fetch = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *did
      = atk_handle_resolver_resolve_finish (ATK_HANDLE_RESOLVER (source), result, &error);
  AtkDidInfo *info = fetch->info;

  if (error != NULL)
    g_debug ("Handle %s of %s: %s", info->declared_handle, fetch->did, error->message);
  else if (strcmp (did, fetch->did) != 0)
    g_debug ("Handle %s of %s names %s", info->declared_handle, fetch->did, did);
  info->handle
      = g_strdup (g_strcmp0 (did, fetch->did) == 0 ? info->declared_handle : ATK_HANDLE_INVALID);
  request_done (fetch);
}

static void
on_document (AtkDidFetch *fetch, guint status, GBytes *body, const GError *error)
{
  g_autoptr (GError) local_error = NULL;
  const char *declared;
  AtkDidInfo *info;

  if (body == NULL)
    {
      fetch->error = g_error_copy (error);
      return;
    }
  info = atk_did_info_new_from_document (fetch->did, g_bytes_get_data (body, NULL),
                                         (gssize)g_bytes_get_size (body), &local_error);
  if (info == NULL)
    {
      fetch->error = g_steal_pointer (&local_error);
      return;
    }
  declared = info->declared_handle;
  if (declared != NULL
      && (strcmp (declared, ATK_HANDLE_INVALID) == 0 || !atk_handle_tld_allowed (declared)))
    {
      /* What the reference's identity directory refuses as a whole. */
      fetch->error = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                  "%s declares the handle “%s”, which no one may have", fetch->did,
                                  declared);
      atk_did_info_unref (info);
      return;
    }
  fetch->info = info;
  if (!fetch->peers->fetch_details)
    return;
  fetch_details (fetch);
  if (declared == NULL)
    {
      info->handle = g_strdup (ATK_HANDLE_INVALID);
      return;
    }
  fetch->requests_left++;
  atk_handle_resolver_resolve_async (fetch->peers->handles, declared, on_handle, fetch);
}

static void
on_unsupported_idle (gpointer user_data)
{
  request_done (user_data);
}

void
atk_did_fetch_start (AtkDidFetch *fetch, const AtkDidFetchPeers *peers, AtkDidFetchDone done,
                     gpointer user_data)
{
  g_autofree char *url = NULL;

  fetch->peers = peers;
  fetch->done = done;
  fetch->done_data = user_data;
  if (g_str_has_prefix (fetch->did, "did:plc:"))
    url = g_strdup_printf ("%s/%s", peers->plc_url, fetch->did);
  else if (g_str_has_prefix (fetch->did, "did:web:"))
    url = atk_did_web_url (fetch->did, peers->did_web_scheme);

  if (url == NULL)
    {
      /* Nothing was asked of anyone: answer from an idle callback like every other path. */
      fetch->error
          = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                         "Cannot resolve “%s”: only did:plc and did:web are supported", fetch->did);
      fetch->requests_left = 1;
      g_idle_add_once (on_unsupported_idle, fetch);
      return;
    }
  send_get (fetch, url, "plc", "did_doc", on_document);
}
