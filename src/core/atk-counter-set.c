/* at-kafka: labelled counters.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-counter-set.h"

#include <string.h>

struct _AtkCounterSet
{
  GStrv labels;
  GHashTable *counts; /* the values joined by '\n' → guint64* */
};

AtkCounterSet *
atk_counter_set_new (const char *const *labels)
{
  AtkCounterSet *set = g_new0 (AtkCounterSet, 1);

  set->labels = g_strdupv ((char **)labels);
  set->counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return set;
}

void
atk_counter_set_free (AtkCounterSet *set)
{
  g_strfreev (set->labels);
  g_hash_table_destroy (set->counts);
  g_free (set);
}

guint64 *
atk_counter_set_add (AtkCounterSet *set, const char *const *values)
{
  g_autofree char *key = g_strjoinv ("\n", (char **)values);
  guint64 *value = g_hash_table_lookup (set->counts, key);

  if (value == NULL)
    {
      value = g_new0 (guint64, 1);
      g_hash_table_insert (set->counts, g_steal_pointer (&key), value);
    }
  (*value)++;
  return value;
}

guint64
atk_counter_set_get (AtkCounterSet *set, const char *const *values)
{
  g_autofree char *key = g_strjoinv ("\n", (char **)values);
  guint64 *value = g_hash_table_lookup (set->counts, key);

  return value != NULL ? *value : 0;
}

static gint
compare_keys (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

void
atk_counter_set_render (AtkCounterSet *set, GString *out, const char *name, const char *help)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, set->counts);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_keys);
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
  for (guint i = 0; i < keys->len; i++)
    {
      g_auto (GStrv) values = g_strsplit (keys->pdata[i], "\n", -1);
      const guint64 *value = g_hash_table_lookup (set->counts, keys->pdata[i]);

      g_string_append (out, name);
      for (guint j = 0; set->labels[j] != NULL && values[j] != NULL; j++)
        g_string_append_printf (out, "%c%s=\"%s\"", j == 0 ? '{' : ',', set->labels[j], values[j]);
      g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n", *value);
    }
}
