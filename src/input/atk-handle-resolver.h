/* at-kafka: handle → DID, as the AT Protocol resolves handles: the DNS TXT record
 * _atproto.<handle> first, then https://<handle>/.well-known/atproto-did.
 *
 * Asynchronous on the caller's main context (GResolver, libsoup); lookups of one handle are
 * shared; answers are cached in a bounded LRU cache (successes for the positive TTL, failures
 * for the negative one); each step has a timeout.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define ATK_TYPE_HANDLE_RESOLVER (atk_handle_resolver_get_type ())
G_DECLARE_FINAL_TYPE (AtkHandleResolver, atk_handle_resolver, ATK, HANDLE_RESOLVER, GObject)

typedef gint64 (*AtkHandleResolverClock) (gpointer user_data);

/* HTTP requests go through `session` (its timeout applies). */
AtkHandleResolver *atk_handle_resolver_new (SoupSession *session);

/* Defaults: 100000 entries, 1 h, 60 s. */
void atk_handle_resolver_set_cache (AtkHandleResolver *self, guint max_entries, guint ttl_s,
                                    guint negative_ttl_s);
/* Seconds a DNS lookup may take (default 5). */
void atk_handle_resolver_set_dns_timeout (AtkHandleResolver *self, guint seconds);
/* For tests only: fetch http(s)://<handle>:<port>/.well-known/atproto-did instead of
 * https://<handle>/… (port 0: the scheme's). */
void atk_handle_resolver_set_well_known (AtkHandleResolver *self, const char *scheme, guint port);
void atk_handle_resolver_set_clock (AtkHandleResolver *self, AtkHandleResolverClock clock,
                                    gpointer user_data);

/* The DID `handle` (lower case) resolves to. G_IO_ERROR_NOT_FOUND when neither way names
 * one, another G_IO_ERROR when a lookup failed. */
void atk_handle_resolver_resolve_async (AtkHandleResolver *self, const char *handle,
                                        GAsyncReadyCallback callback, gpointer user_data);
char *atk_handle_resolver_resolve_finish (AtkHandleResolver *self, GAsyncResult *result,
                                          GError **error);

/* Drops the cached answer for `handle` (an #identity event of its account). */
void atk_handle_resolver_forget (AtkHandleResolver *self, const char *handle);

guint atk_handle_resolver_get_cache_size (AtkHandleResolver *self);

/* kind: "dns" or "well_known"; status: "ok", "not_found", "timeout", "error"; cached: also
 * "cached" as kind, for answers from the cache. */
guint64 atk_handle_resolver_get_request_count (AtkHandleResolver *self, const char *kind,
                                               const char *status);

/* atkafka_handle_requests{kind,status}. */
void atk_handle_resolver_render_prometheus (AtkHandleResolver *self, GString *out);

G_END_DECLS
