/* at-kafka: watched/ignored lists of dotted names — collection NSIDs or PDS host names.
 * Pure: no I/O, no globals.
 *
 *  NSIDs:  "app.bsky.feed" and "app.bsky.feed.*" both match app.bsky.feed itself and anything
 *          under "app.bsky.feed." (as the reference does).
 *  hosts:  "pds.example.com" matches that host; "*.example.com" also any subdomain; case is
 *          ignored.
 * In both, a lone "*" matches everything and any other '*' is refused.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  ATK_NAME_FILTER_NSIDS,
  ATK_NAME_FILTER_HOSTS,
} AtkNameFilterKind;

typedef struct _AtkNameFilter AtkNameFilter;

/* Both lists may be NULL or empty (the filter then allows everything); both non-empty is
 * ATK_ERROR_BAD_CONFIG, and so is a malformed pattern. */
AtkNameFilter *atk_name_filter_new (AtkNameFilterKind kind, const char *const *watched,
                                    const char *const *ignored, GError **error);
void atk_name_filter_free (AtkNameFilter *filter);

/* TRUE if the filter has any pattern at all. */
gboolean atk_name_filter_is_active (const AtkNameFilter *filter);

/* Whether a name passes: in the watched list, or not in the ignored one. */
gboolean atk_name_filter_allows (const AtkNameFilter *filter, const char *name, gsize len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkNameFilter, atk_name_filter_free)

G_END_DECLS
