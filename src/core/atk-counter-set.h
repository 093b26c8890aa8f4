/* at-kafka: a set of counters told apart by their label values, rendered as one Prometheus
 * counter family.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _AtkCounterSet AtkCounterSet;

/* labels: the label names, NULL-terminated; every call gives as many values. */
AtkCounterSet *atk_counter_set_new (const char *const *labels);
void atk_counter_set_free (AtkCounterSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkCounterSet, atk_counter_set_free)

/* Adds one to the counter of these values; returns where that count is kept, valid as long
 * as the set: a caller counting the same values often may add to it there. */
guint64 *atk_counter_set_add (AtkCounterSet *set, const char *const *values);
guint64 atk_counter_set_get (AtkCounterSet *set, const char *const *values);

/* # HELP, # TYPE and one sample per counter, sorted by label values. */
void atk_counter_set_render (AtkCounterSet *set, GString *out, const char *name, const char *help);

G_END_DECLS
