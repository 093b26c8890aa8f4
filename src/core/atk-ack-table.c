/* at-kafka: Tap mode's per-id delivery counts (see the header).
 * SPDX-License-Identifier: MIT */
#include "atk-ack-table.h"

typedef struct
{
  guint remaining;
  gboolean failed;
} Entry;

struct _AtkAckTable
{
  GHashTable *entries; /* guint64* id → Entry* */
};

AtkAckTable *
atk_ack_table_new (void)
{
  AtkAckTable *self = g_new0 (AtkAckTable, 1);

  self->entries = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  return self;
}

void
atk_ack_table_free (AtkAckTable *self)
{
  if (self == NULL)
    return;
  g_hash_table_destroy (self->entries);
  g_free (self);
}

gboolean
atk_ack_table_add (AtkAckTable *self, guint64 id, guint n_messages)
{
  Entry *entry = g_hash_table_lookup (self->entries, &id);

  if (entry == NULL && n_messages == 0)
    return TRUE;
  if (entry == NULL)
    {
      entry = g_new0 (Entry, 1);
      g_hash_table_insert (self->entries, g_memdup2 (&id, sizeof id), entry);
    }
  entry->remaining += n_messages;
  return FALSE;
}

gboolean
atk_ack_table_settle (AtkAckTable *self, guint64 id, gboolean ok)
{
  Entry *entry = g_hash_table_lookup (self->entries, &id);
  gboolean ack;

  if (entry == NULL)
    return FALSE;
  entry->failed |= !ok;
  if (entry->remaining > 1)
    {
      entry->remaining--;
      return FALSE;
    }
  ack = !entry->failed;
  g_hash_table_remove (self->entries, &id);
  return ack;
}

guint
atk_ack_table_get_pending (AtkAckTable *self)
{
  return g_hash_table_size (self->entries);
}
