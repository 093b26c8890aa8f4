/* at-kafka: the Ozone input (see atk-ozone-source.h). The session calls (createSession,
 * refreshSession) are in atk-ozone-session.c; this file polls, keeps the place, and acks.
 *
 * Paging: each poll asks for createdAfter = the createdAt of the newest event taken less a
 * lookback (Ozone's createdAfter is inclusive), in ascending order, and takes what the
 * window (atk-ozone-window.h) has not taken yet: events that share a millisecond, or that
 * became visible a little late, are neither repeated nor skipped. After a full page the
 * next one follows the page's own cursor. One page is on its way at a time: the next poll waits
 * until Kafka acknowledged every event of the last one (at once when the page was full, after the
 * poll interval otherwise), so the place on disk is always "everything up to here is in Kafka".
 * Resuming from an event id alone (the place kept in Kafka) is in atk-ozone-session.c.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include "atk-ozone-source-private.h"

#include <glib/gstdio.h>

#include "atk-error.h"
#include "atk-log.h"
#include "atk-ozone-page.h"
#include "atk-time.h"

#define PAGE_LIMIT 100
#define CURSOR_FILE "ozone-cursor"
/* Events emitted but not acknowledged this long: Kafka refused one (the pipeline never
 * acks it), so the page is fetched again from the durable place. */
#define STALL_MS (120 * 1000)

static void atk_ozone_source_input_init (AtkInputInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (AtkOzoneSource, atk_ozone_source, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (ATK_TYPE_INPUT, atk_ozone_source_input_init))

typedef struct
{
  AtkOzonePosition pos;
  gboolean acked;
} Pending;

static void
pending_free (Pending *p)
{
  atk_ozone_position_clear (&p->pos);
  g_free (p);
}

void
atk_ozone_source_log (AtkOzoneSource *self, GLogLevelFlags level, const char *format, ...)
{
  va_list args;
  g_autofree char *text = NULL;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  g_log_structured (G_LOG_DOMAIN, level, ATK_LOG_INPUT_URL, self->pds_host, ATK_LOG_SOURCE_STATE,
                    atk_source_state_name (self->state), "MESSAGE", "Ozone %s: %s",
                    self->labeler_did, text);
}

void
atk_ozone_source_set_state (AtkOzoneSource *self, AtkSourceState state)
{
  if (self->state == state)
    return;
  self->state = state;
  atk_input_emit_state_changed (ATK_INPUT (self), state);
}

/* ---- the place ----------------------------------------------------------------------- */

static char *
cursor_path (const AtkConfig *config)
{
  return config->state_directory != NULL
             ? g_build_filename (config->state_directory, CURSOR_FILE, NULL)
             : NULL;
}

static gboolean
load_place (AtkOzoneSource *self, GError **error)
{
  g_autofree char *path = cursor_path (self->config);
  g_autofree char *text = NULL;
  g_autofree char *labeler = NULL;
  g_autoptr (GError) local = NULL;

  if (path == NULL || !g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  if (!g_file_get_contents (path, &text, NULL, &local))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Cannot read %s: %s", path,
                   local->message);
      return FALSE;
    }
  if (!atk_ozone_position_from_text (text, &labeler, &self->durable, &local))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   "%s %s; remove it to start from Ozone's first event", path, local->message);
      return FALSE;
    }
  if (g_strcmp0 (labeler, self->labeler_did) != 0)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   "%s is the place in labeler %s, not %s; remove it to start from the first "
                   "event of %s",
                   path, labeler, self->labeler_did, self->labeler_did);
      return FALSE;
    }
  self->has_durable = TRUE;
  atk_ozone_source_reset_window (self);
  return TRUE;
}

void
atk_ozone_source_save_place (AtkOzoneSource *self)
{
  g_autofree char *path = cursor_path (self->config);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;

  if (path == NULL || !self->has_durable)
    return;
  text = atk_ozone_position_to_text (self->labeler_did, &self->durable);
  if (g_mkdir_with_parents (self->config->state_directory, 0700) != 0
      || !g_file_set_contents_full (path, text, -1,
                                    G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                    0600, &error))
    atk_ozone_source_log (self, G_LOG_LEVEL_WARNING, "cannot save the place to %s: %s", path,
                          error != NULL ? error->message : g_strerror (errno));
}

/* ---- polling ------------------------------------------------------------------------- */

static void poll_now (AtkOzoneSource *self);

static gboolean
on_poll_timer (gpointer user_data)
{
  AtkOzoneSource *self = user_data;

  self->poll_id = 0;
  poll_now (self);
  return G_SOURCE_REMOVE;
}

void
atk_ozone_source_schedule_poll (AtkOzoneSource *self, guint delay_ms)
{
  g_clear_handle_id (&self->poll_id, g_source_remove);
  if (self->state == ATK_SOURCE_STOPPED)
    return;
  self->poll_id = g_timeout_add (delay_ms, on_poll_timer, self);
}

void
atk_ozone_source_backoff (AtkOzoneSource *self)
{
  guint delay;

  self->failures++;
  self->reconnects++;
  self->backoff_bound_ms = MIN (self->backoff_bound_ms * 2, ATK_OZONE_BACKOFF_MAX_MS);
  delay = (guint)g_random_int_range (ATK_OZONE_BACKOFF_MIN_MS, (gint32)self->backoff_bound_ms + 1);
  atk_ozone_source_set_state (self, ATK_SOURCE_BACKOFF);
  atk_ozone_source_schedule_poll (self, delay);
}

static gboolean
on_stall (gpointer user_data)
{
  AtkOzoneSource *self = user_data;

  self->stall_id = 0;
  atk_ozone_source_log (self, G_LOG_LEVEL_WARNING,
                        "%u event(s) not in Kafka after %d s: fetching them again",
                        g_queue_get_length (self->pending), STALL_MS / 1000);
  g_queue_clear_full (self->pending, (GDestroyNotify)pending_free);
  atk_ozone_source_reset_window (self);
  g_clear_pointer (&self->page_cursor, g_free);
  atk_ozone_source_schedule_poll (self, 0);
  return G_SOURCE_REMOVE;
}

void
atk_ozone_source_reset_window (AtkOzoneSource *self)
{
  atk_ozone_window_reset (self->window, self->has_durable ? &self->durable : NULL);
}

static void
restart_stall_timer (AtkOzoneSource *self)
{
  g_clear_handle_id (&self->stall_id, g_source_remove);
  if (!g_queue_is_empty (self->pending))
    self->stall_id = g_timeout_add (STALL_MS, on_stall, self);
}

/* The page's events after our place go out, in order. */
static void
take_page (AtkOzoneSource *self, GPtrArray *events, const char *cursor)
{

  for (guint i = 0; i < events->len; i++)
    {
      const AtkOzoneEvent *event = events->pdata[i];
      g_autoptr (GBytes) payload = NULL;
      Pending *p;

      /* the pipeline stopped us (Kafka is behind): the rest comes with the next poll */
      if (self->state == ATK_SOURCE_STOPPED)
        break;
      if (!atk_ozone_window_take (self->window, event))
        continue;
      p = g_new0 (Pending, 1);
      atk_ozone_position_copy (&p->pos, &event->pos);
      g_queue_push_tail (self->pending, p);
      payload = g_bytes_new (event->json, strlen (event->json));
      atk_input_emit_payload (ATK_INPUT (self), payload);
    }
  self->more = events->len >= PAGE_LIMIT;
  /* A full page: the next one follows Ozone's own cursor (keyset paging, whatever the
   * window holds); once caught up, the next poll asks createdAfter again (the lookback). */
  g_clear_pointer (&self->page_cursor, g_free);
  if (self->more && cursor != NULL)
    self->page_cursor = g_strdup (cursor);
  restart_stall_timer (self);
  if (g_queue_is_empty (self->pending))
    atk_ozone_source_schedule_poll (self, self->more ? 0 : self->config->ozone_poll_interval_ms);
}

static void
on_page (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtkOzoneCallData) data = user_data;
  AtkOzoneSource *self = data->self;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (GPtrArray) events = NULL;
  g_autofree char *cursor = NULL;
  AtkOzoneReply reply;

  if (!atk_ozone_source_finish_call (data, ATK_OZONE_CALL_QUERY, object, result, &body, &error,
                                     &reply))
    return;
  if (reply == ATK_OZONE_REPLY_EXPIRED)
    {
      atk_ozone_source_refresh (self);
      return;
    }
  if (reply != ATK_OZONE_REPLY_OK)
    {
      atk_ozone_source_backoff (self);
      return;
    }
  if (!atk_ozone_page_parse (g_bytes_get_data (body, NULL), g_bytes_get_size (body), &events,
                             &cursor, &error))
    {
      self->counts[ATK_OZONE_CALL_QUERY][ATK_OZONE_REPLY_ERROR]++;
      self->counts[ATK_OZONE_CALL_QUERY][ATK_OZONE_REPLY_OK]--;
      atk_ozone_source_log (self, G_LOG_LEVEL_WARNING, "unusable page: %s", error->message);
      atk_ozone_source_backoff (self);
      return;
    }
  self->failures = 0;
  self->backoff_bound_ms = ATK_OZONE_BACKOFF_MIN_MS;
  if (self->state != ATK_SOURCE_CONNECTED)
    atk_ozone_source_log (self, G_LOG_LEVEL_MESSAGE, "polling");
  atk_ozone_source_set_state (self, ATK_SOURCE_CONNECTED);
  take_page (self, events, cursor);
}

static char *
query_url (AtkOzoneSource *self)
{
  GString *url = g_string_new (self->pds_host);
  g_autofree char *after = atk_ozone_window_created_after (self->window);

  g_string_append_printf (url,
                          "/xrpc/tools.ozone.moderation.queryEvents?limit=%d&sortDirection=asc"
                          "&includeAllUserRecords=true",
                          PAGE_LIMIT);
  if (self->page_cursor != NULL)
    {
      g_string_append (url, "&cursor=");
      g_string_append_uri_escaped (url, self->page_cursor, NULL, FALSE);
    }
  else if (after != NULL)
    {
      g_string_append (url, "&createdAfter=");
      g_string_append_uri_escaped (url, after, NULL, FALSE);
    }
  return g_string_free (url, FALSE);
}

static void
poll_now (AtkOzoneSource *self)
{
  g_autofree char *url = NULL;
  SoupMessage *message;

  if (self->state == ATK_SOURCE_STOPPED || self->in_call)
    return;
  if (self->access_jwt == NULL)
    {
      atk_ozone_source_login (self);
      return;
    }
  /* the last page is not all in Kafka yet: ack() polls again */
  if (!g_queue_is_empty (self->pending))
    return;
  if (self->has_resume_id)
    message = atk_ozone_source_get_event_message (self);
  else
    {
      url = query_url (self);
      message = soup_message_new (SOUP_METHOD_GET, url);
    }
  atk_ozone_source_authorize (self, message, self->access_jwt);
  soup_message_headers_replace (soup_message_get_request_headers (message), "atproto-proxy",
                                self->proxy);
  self->in_call = TRUE;
  soup_session_send_and_read_async (self->session, message, G_PRIORITY_DEFAULT, self->cancellable,
                                    self->has_resume_id ? atk_ozone_source_on_event : on_page,
                                    atk_ozone_call_data_new (self, message));
}

/* ---- AtkInput --------------------------------------------------------------------------- */

static void
ozone_start (AtkInput *input)
{
  AtkOzoneSource *self = ATK_OZONE_SOURCE (input);

  if (self->state != ATK_SOURCE_STOPPED)
    return;
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->in_call = FALSE;
  atk_ozone_source_set_state (self, ATK_SOURCE_CONNECTING);
  atk_ozone_source_schedule_poll (self, 0);
}

static void
ozone_stop (AtkInput *input)
{
  AtkOzoneSource *self = ATK_OZONE_SOURCE (input);

  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  self->in_call = FALSE;
  g_clear_handle_id (&self->poll_id, g_source_remove);
  atk_ozone_source_set_state (self, ATK_SOURCE_STOPPED);
}

static void
ozone_reconnect (AtkInput *input)
{
  ozone_stop (input);
  ozone_start (input);
}

static AtkSourceState
ozone_get_state (AtkInput *input)
{
  return ATK_OZONE_SOURCE (input)->state;
}

static guint64
ozone_get_reconnects (AtkInput *input)
{
  return ATK_OZONE_SOURCE (input)->reconnects;
}

static const char *
ozone_get_name (AtkInput *input)
{
  return "Ozone";
}

static const char *
ozone_get_url (AtkInput *input)
{
  return ATK_OZONE_SOURCE (input)->pds_host;
}

static AtkInputFlags
ozone_get_flags (AtkInput *input)
{
  return ATK_INPUT_KEEPS_PLACE;
}

static gboolean
ozone_decode (AtkInput *input, GBytes *payload, AtkEventTransformer *transformer,
              GPtrArray *messages, AtkInputEvent *event, GError **error)
{
  AtkOzoneSource *self = ATK_OZONE_SOURCE (input);
  g_autoptr (AtkOzoneEvent) parsed = NULL;
  char send_time[32];
  gsize len = 0;
  const char *data = g_bytes_get_data (payload, &len);

  parsed = atk_ozone_event_parse (data, len, error);
  if (parsed == NULL)
    return FALSE;
  event->has_position = TRUE;
  event->position = parsed->pos.id;
  atk_format_rfc3339_utc (g_get_real_time () / G_USEC_PER_SEC, send_time, sizeof send_time);
  g_ptr_array_add (messages,
                   atk_ozone_event_to_message (parsed, self->config->osprey_compatible, send_time));
  return TRUE;
}

/* Every message of event id is in Kafka: the place moves past the acked head. */
static void
ozone_ack (AtkInput *input, guint64 id)
{
  AtkOzoneSource *self = ATK_OZONE_SOURCE (input);
  gboolean moved = FALSE;

  for (GList *l = self->pending->head; l != NULL; l = l->next)
    {
      Pending *p = l->data;

      if ((guint64)p->pos.id == id)
        {
          p->acked = TRUE;
          break;
        }
    }
  while (!g_queue_is_empty (self->pending) && ((Pending *)g_queue_peek_head (self->pending))->acked)
    {
      Pending *p = g_queue_pop_head (self->pending);

      /* an event that became visible late sits before the place: it does not move it back */
      if (!self->has_durable || atk_ozone_position_compare (&p->pos, &self->durable) > 0)
        atk_ozone_position_copy (&self->durable, &p->pos);
      self->has_durable = TRUE;
      pending_free (p);
      moved = TRUE;
    }
  if (!moved)
    return;
  atk_ozone_source_save_place (self);
  restart_stall_timer (self);
  if (g_queue_is_empty (self->pending))
    atk_ozone_source_schedule_poll (self, self->more ? 0 : self->config->ozone_poll_interval_ms);
}

static void
ozone_render_prometheus (AtkInput *input, GString *out)
{
  AtkOzoneSource *self = ATK_OZONE_SOURCE (input);
  static const char *const calls[]
      = { "createSession", "refreshSession", "queryEvents", "getEvent" };
  static const char *const statuses[] = { "ok", "expired", "refused", "forbidden", "error" };

  g_string_append (out, "# HELP atkafka_ozone_requests Ozone-mode XRPC calls by outcome.\n"
                        "# TYPE atkafka_ozone_requests counter\n");
  for (guint c = 0; c < ATK_OZONE_N_CALLS; c++)
    for (guint s = 0; s < ATK_OZONE_N_REPLIES; s++)
      g_string_append_printf (
          out, "atkafka_ozone_requests{call=\"%s\",status=\"%s\"} %" G_GUINT64_FORMAT "\n",
          calls[c], statuses[s], self->counts[c][s]);
  g_string_append_printf (out,
                          "# HELP atkafka_ozone_events_pending Ozone events on their way to "
                          "Kafka.\n# TYPE atkafka_ozone_events_pending gauge\n"
                          "atkafka_ozone_events_pending %u\n",
                          g_queue_get_length (self->pending));
  if (self->has_durable)
    g_string_append_printf (out,
                            "# HELP atkafka_ozone_cursor_event_id The last Ozone event in Kafka "
                            "(the durable place).\n# TYPE atkafka_ozone_cursor_event_id gauge\n"
                            "atkafka_ozone_cursor_event_id %" G_GINT64_FORMAT "\n",
                            self->durable.id);
}

static void
atk_ozone_source_input_init (AtkInputInterface *iface)
{
  iface->get_name = ozone_get_name;
  iface->get_url = ozone_get_url;
  iface->get_flags = ozone_get_flags;
  iface->start = ozone_start;
  iface->stop = ozone_stop;
  iface->reconnect = ozone_reconnect;
  iface->get_state = ozone_get_state;
  iface->get_reconnects = ozone_get_reconnects;
  iface->decode = ozone_decode;
  iface->ack = ozone_ack;
  iface->render_prometheus = ozone_render_prometheus;
}

/* ---- life cycle ------------------------------------------------------------------------- */

AtkOzoneSource *
atk_ozone_source_new (const AtkConfig *config, GError **error)
{
  g_autoptr (AtkOzoneSource) self = g_object_new (ATK_TYPE_OZONE_SOURCE, NULL);

  g_return_val_if_fail (config->ozone_pds_host != NULL, NULL);
  self->config = config;
  self->pds_host = g_strdup (config->ozone_pds_host);
  self->labeler_did = g_strdup (config->ozone_labeler_did);
  self->proxy = g_strconcat (config->ozone_labeler_did, "#atproto_labeler", NULL);
  if (!load_place (self, error))
    return NULL;
  if (self->has_durable)
    atk_ozone_source_log (self, G_LOG_LEVEL_MESSAGE,
                          "resuming after event %" G_GINT64_FORMAT " (%s)", self->durable.id,
                          self->durable.created_at);
  return g_steal_pointer (&self);
}

static void
atk_ozone_source_dispose (GObject *object)
{
  AtkOzoneSource *self = ATK_OZONE_SOURCE (object);

  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->poll_id, g_source_remove);
  g_clear_handle_id (&self->stall_id, g_source_remove);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->session);
  G_OBJECT_CLASS (atk_ozone_source_parent_class)->dispose (object);
}

static void
atk_ozone_source_finalize (GObject *object)
{
  AtkOzoneSource *self = ATK_OZONE_SOURCE (object);

  g_queue_free_full (self->pending, (GDestroyNotify)pending_free);
  atk_ozone_position_clear (&self->durable);
  g_clear_pointer (&self->window, atk_ozone_window_free);
  g_free (self->page_cursor);
  g_free (self->pds_host);
  g_free (self->labeler_did);
  g_free (self->proxy);
  g_free (self->access_jwt);
  g_free (self->refresh_jwt);
  G_OBJECT_CLASS (atk_ozone_source_parent_class)->finalize (object);
}

static void
atk_ozone_source_class_init (AtkOzoneSourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atk_ozone_source_dispose;
  object_class->finalize = atk_ozone_source_finalize;
}

static void
atk_ozone_source_init (AtkOzoneSource *self)
{
  self->state = ATK_SOURCE_STOPPED;
  self->pending = g_queue_new ();
  self->window = atk_ozone_window_new (ATK_OZONE_LOOKBACK_MS);
  self->backoff_bound_ms = ATK_OZONE_BACKOFF_MIN_MS;
  self->session = soup_session_new_with_options ("user-agent", "at-kafka (Ozone mode)", "timeout",
                                                 ATK_OZONE_TIMEOUT_S, NULL);
}
