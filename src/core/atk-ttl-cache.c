/* at-kafka: bounded LRU map with expiry.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-ttl-cache.h"

typedef struct
{
  char *key;
  gpointer value;
  GError *error;
  gint64 expires_us;
  GList link; /* in cache->lru, most recent first; link.data = the entry */
} Entry;

struct _AtkTtlCache
{
  GHashTable *entries; /* key → Entry* (owned) */
  GQueue lru;
  guint max;
  GDestroyNotify value_free;
};

static void
entry_free (gpointer data, gpointer user_data)
{
  Entry *entry = data;
  GDestroyNotify value_free = user_data;

  if (entry->value != NULL && value_free != NULL)
    value_free (entry->value);
  g_clear_error (&entry->error);
  g_free (entry->key);
  g_free (entry);
}

AtkTtlCache *
atk_ttl_cache_new (GDestroyNotify value_free)
{
  AtkTtlCache *cache = g_new0 (AtkTtlCache, 1);

  cache->entries = g_hash_table_new (g_str_hash, g_str_equal);
  g_queue_init (&cache->lru);
  cache->max = 100000;
  cache->value_free = value_free;
  return cache;
}

void
atk_ttl_cache_free (AtkTtlCache *cache)
{
  g_queue_foreach (&cache->lru, entry_free, cache->value_free);
  g_hash_table_destroy (cache->entries);
  g_free (cache);
}

static void
drop (AtkTtlCache *cache, Entry *entry)
{
  g_queue_unlink (&cache->lru, &entry->link);
  g_hash_table_remove (cache->entries, entry->key);
  entry_free (entry, cache->value_free);
}

void
atk_ttl_cache_set_max (AtkTtlCache *cache, guint max)
{
  cache->max = max;
  while (cache->lru.length > max)
    drop (cache, g_queue_peek_tail (&cache->lru));
}

gboolean
atk_ttl_cache_lookup (AtkTtlCache *cache, const char *key, gint64 now_us, gpointer *value,
                      const GError **error)
{
  Entry *entry = g_hash_table_lookup (cache->entries, key);

  if (entry == NULL)
    return FALSE;
  if (now_us >= entry->expires_us)
    {
      drop (cache, entry);
      return FALSE;
    }
  g_queue_unlink (&cache->lru, &entry->link);
  g_queue_push_head_link (&cache->lru, &entry->link);
  *value = entry->value;
  *error = entry->error;
  return TRUE;
}

gpointer
atk_ttl_cache_peek (AtkTtlCache *cache, const char *key)
{
  Entry *entry = g_hash_table_lookup (cache->entries, key);

  return entry != NULL ? entry->value : NULL;
}

void
atk_ttl_cache_put (AtkTtlCache *cache, const char *key, gpointer value, const GError *error,
                   gint64 expires_us)
{
  Entry *entry = g_new0 (Entry, 1);

  atk_ttl_cache_remove (cache, key);
  entry->key = g_strdup (key);
  entry->value = value;
  entry->error = error != NULL ? g_error_copy (error) : NULL;
  entry->expires_us = expires_us;
  entry->link.data = entry;
  g_hash_table_insert (cache->entries, entry->key, entry);
  g_queue_push_head_link (&cache->lru, &entry->link);
  atk_ttl_cache_set_max (cache, cache->max);
}

void
atk_ttl_cache_remove (AtkTtlCache *cache, const char *key)
{
  Entry *entry = g_hash_table_lookup (cache->entries, key);

  if (entry != NULL)
    drop (cache, entry);
}

guint
atk_ttl_cache_size (AtkTtlCache *cache)
{
  return cache->lru.length;
}
