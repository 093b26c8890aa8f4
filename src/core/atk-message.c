/* at-kafka: one output message; see atk-message.h.
 *
 * Messages are recycled. Flat out the daemon makes and frees about 100,000 a second, and the
 * value's buffer (1–2 KiB, past glibc's per-thread cache) cost a trip through malloc's large
 * bins, a consolidation of its fast bins and a shrinking realloc each time; since the sink
 * copies the value into librdkafka's own allocation (atk-kafka-sink.c), a message is free again
 * as soon as it is produced, and the next one is written into the same, still cached, bytes.
 * Each thread keeps its own few (GPrivate), so no lock; buffers grown past POOL_MAX_BYTES by a
 * huge value go back to malloc.
 * SPDX-License-Identifier: MIT */
#include "atk-message.h"

#include <string.h>

#define POOL_SIZE 64
#define POOL_MAX_BYTES (64 * 1024)

typedef struct
{
  guint len;
  AtkMessage *messages[POOL_SIZE];
} MessagePool;

static void
message_destroy (AtkMessage *message)
{
  if (message->value != NULL)
    g_string_free (message->value, TRUE);
  g_free (message);
}

static void
pool_free (gpointer data)
{
  MessagePool *pool = data;

  for (guint i = 0; i < pool->len; i++)
    message_destroy (pool->messages[i]);
  g_free (pool);
}

static GPrivate pool_key = G_PRIVATE_INIT (pool_free);

static MessagePool *
get_pool (void)
{
  MessagePool *pool = g_private_get (&pool_key);

  if (pool == NULL)
    {
      pool = g_new0 (MessagePool, 1);
      g_private_set (&pool_key, pool);
    }
  return pool;
}

AtkMessage *
atk_message_new_sized (gsize size)
{
  MessagePool *pool = get_pool ();
  AtkMessage *message;

  if (pool->len == 0)
    {
      message = g_new0 (AtkMessage, 1);
      message->value = g_string_sized_new (size);
      return message;
    }
  message = pool->messages[--pool->len];
  if (message->value->allocated_len <= size)
    {
      /* grow without copying: the string is empty */
      g_string_free (message->value, TRUE);
      message->value = g_string_sized_new (size);
    }
  return message;
}

AtkMessage *
atk_message_new (void)
{
  return atk_message_new_sized (512);
}

void
atk_message_free (AtkMessage *message)
{
  MessagePool *pool;
  GString *value;

  if (message == NULL)
    return;
  g_free (message->key);
  g_free (message->collection);
  value = message->value;
  pool = get_pool ();
  if (value == NULL || value->allocated_len > POOL_MAX_BYTES || pool->len == POOL_SIZE)
    {
      message_destroy (message);
      return;
    }
  g_string_truncate (value, 0);
  memset (message, 0, sizeof *message);
  message->value = value;
  pool->messages[pool->len++] = message;
}
