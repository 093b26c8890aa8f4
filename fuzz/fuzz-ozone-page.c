/* libFuzzer target: one input = one tools.ozone.moderation.queryEvents reply body (what the
 * PDS relays from Ozone), read as Ozone mode reads it; the same bytes also as one event and
 * as a cursor file. Invariants: success and error agree; every event read is one valid JSON
 * object (strict checker, not the parser's own code) that reads back to the same id and
 * createdAt; both messages of every event (as is, Osprey) are valid JSON objects keyed by
 * the id; a cursor file that reads writes back to the same text.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-fuzz-json.h"
#include "atk-ozone-page.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
check_event (const AtkOzoneEvent *event)
{
  g_autoptr (AtkOzoneEvent) again = NULL;
  g_autofree char *key = NULL;

  if (!atk_fuzz_json_object_valid (event->json, strlen (event->json)))
    abort ();
  again = atk_ozone_event_parse (event->json, strlen (event->json), NULL);
  if (again == NULL || atk_ozone_position_compare (&again->pos, &event->pos) != 0
      || g_strcmp0 (again->pos.created_at, event->pos.created_at) != 0
      || g_strcmp0 (again->type, event->type) != 0)
    abort ();
  key = g_strdup_printf ("%" G_GINT64_FORMAT, event->pos.id);
  for (int osprey = 0; osprey < 2; osprey++)
    {
      g_autoptr (AtkMessage) message
          = atk_ozone_event_to_message (event, osprey, "2026-01-01T00:00:00Z");

      if (g_strcmp0 (message->key, key) != 0
          || !atk_fuzz_json_object_valid (message->value->str, message->value->len)
          || (!osprey && strcmp (message->value->str, event->json) != 0))
        abort ();
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  const char *text = (const char *)data;
  g_autoptr (GPtrArray) events = NULL;
  g_autofree char *cursor = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) event_error = NULL;
  g_autoptr (AtkOzoneEvent) one = NULL;
  gboolean ok = atk_ozone_page_parse (text, size, &events, &cursor, &error);

  if (ok != (error == NULL))
    abort ();
  if (ok)
    for (guint i = 0; i < events->len; i++)
      check_event (events->pdata[i]);

  one = atk_ozone_event_parse (text, size, &event_error);
  if ((one != NULL) != (event_error == NULL))
    abort ();
  if (one != NULL)
    check_event (one);

  /* the cursor file: NUL-terminated text */
  {
    g_autofree char *line = g_strndup (text, size);
    g_autofree char *labeler = NULL;
    g_autofree char *written = NULL;
    g_autofree char *labeler2 = NULL;
    AtkOzonePosition pos = { 0 }, pos2 = { 0 };

    if (atk_ozone_position_from_text (line, &labeler, &pos, NULL))
      {
        written = atk_ozone_position_to_text (labeler, &pos);
        if (!atk_ozone_position_from_text (written, &labeler2, &pos2, NULL)
            || g_strcmp0 (labeler, labeler2) != 0 || atk_ozone_position_compare (&pos, &pos2) != 0)
          abort ();
      }
    atk_ozone_position_clear (&pos);
    atk_ozone_position_clear (&pos2);
  }
  return 0;
}
