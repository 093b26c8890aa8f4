/* at-kafka: DID documents (did:plc from a PLC directory, did:web from /.well-known/did.json),
 * with the account's creation time (PLC audit log) and AppView profile, cached.
 *
 * Asynchronous on the caller's main context (libsoup); one lookup per DID at a time
 * (concurrent callers share it), a bounded number of lookups in flight, a bounded LRU cache
 * with a TTL, failures cached briefly so that a dead directory is not hammered.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-did-document.h"
#include "atk-handle-resolver.h"

G_BEGIN_DECLS

#define ATK_TYPE_DID_RESOLVER (atk_did_resolver_get_type ())
G_DECLARE_FINAL_TYPE (AtkDidResolver, atk_did_resolver, ATK, DID_RESOLVER, GObject)

/* A clock in µs (monotonic); the tests drive the TTLs with their own. */
typedef gint64 (*AtkDidResolverClock) (gpointer user_data);

/* plc_url: http(s) URL of the PLC directory (required); api_url: http(s) URL of an AppView
 * for profiles, or NULL. ATK_ERROR_BAD_CONFIG for a malformed URL. */
AtkDidResolver *atk_did_resolver_new (const char *plc_url, const char *api_url, GError **error);

/* Also fetch the PLC audit log (creation time) and the AppView profile, and verify the
 * declared handle both ways (else info->handle is "handle.invalid"). Off by default:
 * service filters need the document only. */
void atk_did_resolver_set_fetch_details (AtkDidResolver *self, gboolean fetch_details);

/* Defaults: 100000 entries, 1 h for resolved DIDs, 60 s for failures. max_entries 0
 * disables the cache (concurrent lookups are still shared). */
void atk_did_resolver_set_cache (AtkDidResolver *self, guint max_entries, guint ttl_s,
                                 guint negative_ttl_s);

/* Seconds of silence before a request fails with G_IO_ERROR_TIMED_OUT (default 5). */
void atk_did_resolver_set_timeout (AtkDidResolver *self, guint seconds);

/* DIDs being looked up at once (default 32); the others wait their turn. */
void atk_did_resolver_set_max_concurrency (AtkDidResolver *self, guint max);

/* "https" (default, as did:web requires) or "http": for tests against a local server. */
void atk_did_resolver_set_did_web_scheme (AtkDidResolver *self, const char *scheme);

/* For tests only: handles' /.well-known/atproto-did from scheme://<handle>:port (default
 * https://<handle>). */
void atk_did_resolver_set_handle_well_known (AtkDidResolver *self, const char *scheme, guint port);

/* The handle resolver this resolver verifies handles with (its cache and counters). */
AtkHandleResolver *atk_did_resolver_get_handle_resolver (AtkDidResolver *self);

/* For tests; NULL restores g_get_monotonic_time(). */
void atk_did_resolver_set_clock (AtkDidResolver *self, AtkDidResolverClock clock,
                                 gpointer user_data);

/* A cache lookup without I/O: the info (a new reference) for a fresh positive entry; NULL
 * with `error` set for a fresh negative entry; NULL and no error when not cached. */
AtkDidInfo *atk_did_resolver_lookup_cached (AtkDidResolver *self, const char *did, GError **error);

/* Resolves `did` (from the cache when fresh). Errors: G_IO_ERROR_NOT_FOUND (the directory
 * does not know it), G_IO_ERROR_TIMED_OUT, G_IO_ERROR_INVALID_DATA (bad document),
 * G_IO_ERROR_NOT_SUPPORTED (not did:plc / did:web), or a transport error. The audit log and
 * profile are best effort: their failure leaves those fields NULL. */
void atk_did_resolver_resolve_async (AtkDidResolver *self, const char *did,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data);
AtkDidInfo *atk_did_resolver_resolve_finish (AtkDidResolver *self, GAsyncResult *result,
                                             GError **error);

/* Forgets the DID (an #identity event): the next resolve asks again, and a lookup already in
 * flight neither fills the cache nor serves later callers. */
void atk_did_resolver_invalidate (AtkDidResolver *self, const char *did);

guint atk_did_resolver_get_cache_size (AtkDidResolver *self);

/* Stores in the cache what a finished lookup of did stores: info (positive), or error (a
 * failure), evicting the least recently used entries beyond the bound. For tests (the bound
 * filled without 100,000 HTTP lookups) and for seeding the cache. */
void atk_did_resolver_cache_insert (AtkDidResolver *self, const char *did, AtkDidInfo *info,
                                    const GError *error);

/* Requests counted so far. service: "plc" or "api"; kind: "did_doc", "audit_log",
 * "profile"; status: "ok", "not_found", "timeout", "error"; cached: "true" (served from the
 * cache) or "false" (a network request). */
guint64 atk_did_resolver_get_request_count (AtkDidResolver *self, const char *service,
                                            const char *kind, const char *status,
                                            const char *cached);

/* Network requests sent so far, all services and kinds. */
guint64 atk_did_resolver_get_network_requests (AtkDidResolver *self);

/* Appends atkafka_plc_requests{kind,status,cached}, atkafka_api_requests{kind,status,cached}
 * and atkafka_cache_size{kind="did_doc"} in Prometheus text format 0.0.4. */
void atk_did_resolver_render_prometheus (AtkDidResolver *self, GString *out);

G_END_DECLS
