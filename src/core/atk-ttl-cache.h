/* at-kafka: a bounded LRU map of string keys to answers — a value, or the error a lookup
 * ended with — each with its own expiry time. The caller gives the time: pure.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _AtkTtlCache AtkTtlCache;

/* value_free: frees the values put (NULL: they are not freed). */
AtkTtlCache *atk_ttl_cache_new (GDestroyNotify value_free);
void atk_ttl_cache_free (AtkTtlCache *cache);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkTtlCache, atk_ttl_cache_free)

/* At most max entries (default 100000), the least recently used leaving first; 0: none. */
void atk_ttl_cache_set_max (AtkTtlCache *cache, guint max);

/* TRUE for an entry still fresh at now_us: its value (NULL for a failure) and error (NULL for
 * a value), both the cache's; it becomes the most recent. An expired entry is dropped. */
gboolean atk_ttl_cache_lookup (AtkTtlCache *cache, const char *key, gint64 now_us, gpointer *value,
                               const GError **error);

/* The value of an entry, fresh or not, without touching it; or NULL. */
gpointer atk_ttl_cache_peek (AtkTtlCache *cache, const char *key);

/* Stores `value` (taken) or a copy of `error` until expires_us, replacing any entry. */
void atk_ttl_cache_put (AtkTtlCache *cache, const char *key, gpointer value, const GError *error,
                        gint64 expires_us);

void atk_ttl_cache_remove (AtkTtlCache *cache, const char *key);
guint atk_ttl_cache_size (AtkTtlCache *cache);

G_END_DECLS
