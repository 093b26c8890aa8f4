/* at-kafka: Ozone pages, positions and messages (see atk-ozone-page.h).
 * SPDX-License-Identifier: MIT */
#include "atk-ozone-page.h"

#include <string.h>

#include "atk-cbor-json.h" /* atk_json_append_string */
#include "atk-error.h"
#include "atk-tap-json.h"
#include "atk-time.h"

#define MAX_DEPTH ATK_TAP_JSON_MAX_DEPTH

void
atk_ozone_position_clear (AtkOzonePosition *pos)
{
  g_clear_pointer (&pos->created_at, g_free);
  pos->created_ms = 0;
  pos->id = 0;
}

void
atk_ozone_position_copy (AtkOzonePosition *dest, const AtkOzonePosition *src)
{
  char *created_at = g_strdup (src->created_at);

  atk_ozone_position_clear (dest);
  dest->created_ms = src->created_ms;
  dest->id = src->id;
  dest->created_at = created_at;
}

int
atk_ozone_position_compare (const AtkOzonePosition *a, const AtkOzonePosition *b)
{
  if (a->created_ms != b->created_ms)
    return a->created_ms < b->created_ms ? -1 : 1;
  if (a->id != b->id)
    return a->id < b->id ? -1 : 1;
  return 0;
}

void
atk_ozone_event_free (AtkOzoneEvent *event)
{
  if (event == NULL)
    return;
  atk_ozone_position_clear (&event->pos);
  g_free (event->type);
  g_free (event->json);
  g_free (event);
}

/* The reader's errors say "Tap event: …": say what this is instead. */
static gboolean
fail (GError **error, const GError *inner, const char *what)
{
  const char *detail = inner != NULL ? inner->message : what;

  if (g_str_has_prefix (detail, "Tap event: "))
    detail += strlen ("Tap event: ");
  g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME, "Ozone %s", detail);
  return FALSE;
}

/* ---- one ModEventView ---------------------------------------------------------------- */

typedef struct
{
  AtkOzoneEvent *event;
  gboolean has_id;
  GString *type;
} EventFields;

static gboolean
read_event_member (AtkTapJsonReader *r, const char *key, gpointer data)
{
  GString *type = data;

  if (strcmp (key, "$type") == 0)
    {
      g_string_truncate (type, 0);
      return atk_tap_json_read_string (r, type, NULL);
    }
  return atk_tap_json_copy_value (r, NULL, 2);
}

static gboolean
read_view_member (AtkTapJsonReader *r, const char *key, gpointer data)
{
  EventFields *f = data;

  if (strcmp (key, "id") == 0)
    {
      g_autoptr (GString) raw = g_string_new (NULL);
      char *end = NULL;
      gint64 id;

      if (!atk_tap_json_read_number (r, raw))
        return FALSE;
      id = g_ascii_strtoll (raw->str, &end, 10);
      if (*end != '\0' || id < 0 || raw->len > 18)
        return atk_tap_json_fail (r, "event: id is not a non-negative integer");
      f->event->pos.id = id;
      f->has_id = TRUE;
      return TRUE;
    }
  if (strcmp (key, "createdAt") == 0)
    {
      g_autoptr (GString) text = g_string_new (NULL);

      if (!atk_tap_json_read_string (r, text, NULL))
        return FALSE;
      if (!atk_parse_datetime_ms (text->str, text->len, &f->event->pos.created_ms))
        return atk_tap_json_fail (r, "event: createdAt is not an RFC 3339 datetime");
      g_free (f->event->pos.created_at);
      f->event->pos.created_at = g_string_free (g_steal_pointer (&text), FALSE);
      return TRUE;
    }
  if (strcmp (key, "event") == 0)
    {
      atk_tap_json_skip_ws (r);
      if (r->p < r->end && *r->p == '{')
        return atk_tap_json_read_object (r, read_event_member, f->type);
    }
  return atk_tap_json_copy_value (r, NULL, 1);
}

AtkOzoneEvent *
atk_ozone_event_parse (const char *json, gsize len, GError **error)
{
  g_autoptr (AtkOzoneEvent) event = g_new0 (AtkOzoneEvent, 1);
  g_autoptr (GString) type = g_string_new (NULL);
  g_autoptr (GString) copy = g_string_new (NULL);
  g_autoptr (GError) inner = NULL;
  EventFields f = { event, FALSE, type };
  AtkTapJsonReader r = { json, json + len, &inner };

  if (!atk_json_depth_within (json, len, MAX_DEPTH))
    {
      fail (error, NULL, "event: nested too deeply");
      return NULL;
    }
  /* the view as it came, compact (strings are copied as sent) */
  if (!atk_tap_json_copy_value (&r, copy, 0))
    {
      fail (error, inner, "event");
      return NULL;
    }
  atk_tap_json_skip_ws (&r);
  if (r.p != r.end || copy->str[0] != '{')
    {
      fail (error, NULL, "event: not one JSON object");
      return NULL;
    }
  r.p = copy->str;
  r.end = copy->str + copy->len;
  if (!atk_tap_json_read_object (&r, read_view_member, &f))
    {
      fail (error, inner, "event");
      return NULL;
    }
  if (!f.has_id || event->pos.created_at == NULL)
    {
      fail (error, NULL, "event: no integer id or no createdAt");
      return NULL;
    }
  event->type = type->len > 0 ? g_strdup (type->str) : NULL;
  event->json = g_string_free (g_steal_pointer (&copy), FALSE);
  return g_steal_pointer (&event);
}

/* ---- a page ------------------------------------------------------------------------ */

typedef struct
{
  GPtrArray *events;
  char *cursor;
  gboolean has_events;
  GError *error; /* an event's own error */
} Page;

static gboolean
read_events (AtkTapJsonReader *r, Page *page)
{
  if (!atk_tap_json_expect (r, '['))
    return atk_tap_json_fail (r, "page: events is not an array");
  if (atk_tap_json_expect (r, ']'))
    return TRUE;
  for (;;)
    {
      g_autoptr (GString) one = g_string_new (NULL);
      AtkOzoneEvent *event;

      if (!atk_tap_json_copy_value (r, one, 2))
        return FALSE;
      event = atk_ozone_event_parse (one->str, one->len, &page->error);
      if (event == NULL)
        return atk_tap_json_fail (r, "page: bad event");
      g_ptr_array_add (page->events, event);
      if (atk_tap_json_expect (r, ']'))
        return TRUE;
      if (!atk_tap_json_expect (r, ','))
        return atk_tap_json_fail (r, "page: expected , or ] in events");
    }
}

static gboolean
read_page_member (AtkTapJsonReader *r, const char *key, gpointer data)
{
  Page *page = data;

  if (strcmp (key, "events") == 0)
    {
      page->has_events = TRUE;
      return read_events (r, page);
    }
  if (strcmp (key, "cursor") == 0)
    {
      g_autoptr (GString) text = g_string_new (NULL);

      if (!atk_tap_json_read_string (r, text, NULL))
        return FALSE;
      g_free (page->cursor);
      page->cursor = g_string_free (g_steal_pointer (&text), FALSE);
      return TRUE;
    }
  return atk_tap_json_copy_value (r, NULL, 1);
}

gboolean
atk_ozone_page_parse (const char *body, gsize len, GPtrArray **events, char **cursor,
                      GError **error)
{
  Page page = { g_ptr_array_new_with_free_func ((GDestroyNotify)atk_ozone_event_free), NULL, FALSE,
                NULL };
  GError *inner = NULL;
  AtkTapJsonReader r = { body, body + len, &inner };
  gboolean ok;

  if (!atk_json_depth_within (body, len, MAX_DEPTH))
    ok = fail (error, NULL, "page: nested too deeply");
  else if (!atk_tap_json_read_object (&r, read_page_member, &page))
    ok = fail (error, page.error != NULL ? page.error : inner, "page");
  else if (!page.has_events)
    ok = fail (error, NULL, "page: no events member");
  else if ((atk_tap_json_skip_ws (&r), r.p != r.end))
    ok = fail (error, NULL, "page: data after the object");
  else
    ok = TRUE;
  g_clear_error (&inner);
  g_clear_error (&page.error);
  if (!ok)
    {
      g_ptr_array_unref (page.events);
      g_free (page.cursor);
      return FALSE;
    }
  *events = page.events;
  *cursor = page.cursor;
  return TRUE;
}

/* ---- the cursor file ------------------------------------------------------------------ */

char *
atk_ozone_position_to_text (const char *labeler_did, const AtkOzonePosition *pos)
{
  return g_strdup_printf ("%s %s %" G_GINT64_FORMAT "\n", labeler_did, pos->created_at, pos->id);
}

gboolean
atk_ozone_position_from_text (const char *text, char **labeler_did, AtkOzonePosition *pos,
                              GError **error)
{
  g_autofree char *line = g_strstrip (g_strdup (text));
  g_auto (GStrv) parts = g_strsplit (line, " ", -1);
  char *end = NULL;
  gint64 id, ms;

  if (g_strv_length (parts) != 3 || !g_str_has_prefix (parts[0], "did:"))
    goto bad;
  id = g_ascii_strtoll (parts[2], &end, 10);
  if (*parts[2] == '\0' || *end != '\0' || id < 0)
    goto bad;
  if (!atk_parse_datetime_ms (parts[1], strlen (parts[1]), &ms))
    goto bad;
  atk_ozone_position_clear (pos);
  pos->created_ms = ms;
  pos->id = id;
  pos->created_at = g_strdup (parts[1]);
  *labeler_did = g_strdup (parts[0]);
  return TRUE;

bad:
  g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
               "is not \"<labeler DID> <createdAt> <event id>\"");
  return FALSE;
}

/* ---- the message ------------------------------------------------------------------------ */

char *
atk_ozone_action_name (const char *type)
{
  const char *hash = type != NULL ? strrchr (type, '#') : NULL;
  const char *name = hash != NULL ? hash + 1 : type;

  if (name == NULL || *name == '\0')
    return g_strdup ("ozone");
  return g_strconcat ("ozone#", name, NULL);
}

AtkMessage *
atk_ozone_event_to_message (const AtkOzoneEvent *event, gboolean osprey, const char *send_time)
{
  AtkMessage *message = atk_message_new ();
  g_autofree char *action = NULL;

  message->key = g_strdup_printf ("%" G_GINT64_FORMAT, event->pos.id);
  message->has_seq = TRUE;
  message->seq = event->pos.id;
  message->kind = ATK_EVENT_UNKNOWN;
  message->action_name = "ozone";
  message->event_time_ms = event->pos.created_ms;
  message->action_id = atk_snowflake_for_event (event->pos.created_ms, event->pos.id, 0);
  if (!osprey)
    {
      g_string_append (message->value, event->json);
      return message;
    }
  action = atk_ozone_action_name (event->type);
  g_string_append (message->value, "{\"data\":{\"action_name\":");
  atk_json_append_string (message->value, action, strlen (action));
  g_string_append_printf (message->value,
                          ",\"action_id\":%" G_GINT64_FORMAT ",\"data\":", message->action_id);
  g_string_append (message->value, event->json);
  g_string_append (message->value, ",\"timestamp\":");
  atk_json_append_string (message->value, event->pos.created_at, strlen (event->pos.created_at));
  g_string_append (message->value, ",\"secret_data\":{},\"encoding\":\"UTF8\"},\"send_time\":");
  atk_json_append_string (message->value, send_time, strlen (send_time));
  g_string_append_c (message->value, '}');
  return message;
}
