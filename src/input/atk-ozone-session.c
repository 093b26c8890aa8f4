/* at-kafka: the Ozone input's session with the PDS (createSession, refreshSession), and how
 * it reads the reply of every call: ok, an expired token (refresh, else log in again),
 * refused credentials, forbidden (not a member of the labeler's team), or an error that
 * backs off; and resuming from an event id alone (the place kept in Kafka) with getEvent.
 * Part of AtkOzoneSource (atk-ozone-source-private.h).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include <json-glib/json-glib.h>

#include "atk-error.h"
#include "atk-log-text.h"
#include "atk-ozone-source-private.h"
#include "atk-tap-json.h" /* atk_json_depth_within */

#define MAX_REPLY_DEPTH 32

static const char *const call_names[]
    = { "com.atproto.server.createSession", "com.atproto.server.refreshSession",
        "tools.ozone.moderation.queryEvents", "tools.ozone.moderation.getEvent" };

void
atk_ozone_source_authorize (AtkOzoneSource *self, SoupMessage *message, const char *jwt)
{
  g_autofree char *value = g_strconcat ("Bearer ", jwt, NULL);

  soup_message_headers_replace (soup_message_get_request_headers (message), "Authorization", value);
}

AtkOzoneCallData *
atk_ozone_call_data_new (AtkOzoneSource *self, SoupMessage *message)
{
  AtkOzoneCallData *data = g_new0 (AtkOzoneCallData, 1);

  data->self = g_object_ref (self);
  data->message = message;
  return data;
}

void
atk_ozone_call_data_free (AtkOzoneCallData *data)
{
  g_object_unref (data->self);
  g_object_unref (data->message);
  g_free (data);
}

gboolean
atk_ozone_source_finish_call (AtkOzoneCallData *data, AtkOzoneCall call, GObject *object,
                              GAsyncResult *result, GBytes **body, GError **error,
                              AtkOzoneReply *reply)
{
  AtkOzoneSource *self = data->self;
  g_autoptr (GError) local = NULL;

  *body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &local);
  if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return FALSE;
  self->in_call = FALSE;
  *reply = atk_ozone_source_classify (self, call, data->message, *body, local);
  if (local != NULL)
    g_propagate_error (error, g_steal_pointer (&local));
  return TRUE;
}

/* The object of a JSON reply, or NULL. */
static JsonObject *
reply_object (GBytes *body, JsonParser *parser)
{
  gsize len = 0;
  const char *data = body != NULL ? g_bytes_get_data (body, &len) : NULL;
  JsonNode *root;

  if (data == NULL || len == 0 || !atk_json_depth_within (data, len, MAX_REPLY_DEPTH)
      || !json_parser_load_from_data (parser, data, (gssize)len, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  return root != NULL && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
}

static const char *
member_string (JsonObject *object, const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_VALUE (node)
                 && json_node_get_value_type (node) == G_TYPE_STRING
             ? json_node_get_string (node)
             : NULL;
}

AtkOzoneReply
atk_ozone_source_classify (AtkOzoneSource *self, AtkOzoneCall call, SoupMessage *message,
                           GBytes *body, const GError *error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *object;
  const char *name, *text;
  g_autofree char *why = NULL;
  guint status;
  AtkOzoneReply reply;

  if (error != NULL)
    {
      why = atk_log_text (error->message, -1);
      self->counts[call][ATK_OZONE_REPLY_ERROR]++;
      if (!self->quiet)
        atk_ozone_source_log (self, G_LOG_LEVEL_MESSAGE, "%s failed: %s", call_names[call], why);
      return ATK_OZONE_REPLY_ERROR;
    }
  status = soup_message_get_status (message);
  if (status == SOUP_STATUS_OK)
    {
      self->counts[call][ATK_OZONE_REPLY_OK]++;
      return ATK_OZONE_REPLY_OK;
    }
  object = reply_object (body, parser);
  name = member_string (object, "error");
  text = member_string (object, "message");
  if (call == ATK_OZONE_CALL_CREATE_SESSION && (status == 401 || status == 400))
    reply = ATK_OZONE_REPLY_REFUSED;
  else if (status == 401 || g_strcmp0 (name, "ExpiredToken") == 0
           || g_strcmp0 (name, "InvalidToken") == 0)
    reply = ATK_OZONE_REPLY_EXPIRED;
  else if (status == 403)
    reply = ATK_OZONE_REPLY_FORBIDDEN;
  else
    reply = ATK_OZONE_REPLY_ERROR;
  self->counts[call][reply]++;
  why = atk_log_text (text != NULL ? text : "", -1);
  if (!self->quiet)
    atk_ozone_source_log (
        self, reply == ATK_OZONE_REPLY_EXPIRED ? G_LOG_LEVEL_INFO : G_LOG_LEVEL_WARNING,
        "%s: HTTP %u %s%s%s", call_names[call], status,
        name != NULL ? name : soup_status_get_phrase (status), *why != '\0' ? ": " : "", why);
  return reply;
}

/* ---- tokens ----------------------------------------------------------------------------- */

static gboolean
take_tokens (AtkOzoneSource *self, GBytes *body)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *object = reply_object (body, parser);
  const char *access = member_string (object, "accessJwt");
  const char *refresh = member_string (object, "refreshJwt");

  if (access == NULL || refresh == NULL)
    return FALSE;
  g_free (self->access_jwt);
  g_free (self->refresh_jwt);
  self->access_jwt = g_strdup (access);
  self->refresh_jwt = g_strdup (refresh);
  return TRUE;
}

static void
forget_tokens (AtkOzoneSource *self)
{
  g_clear_pointer (&self->access_jwt, g_free);
  g_clear_pointer (&self->refresh_jwt, g_free);
}

/* ---- createSession ------------------------------------------------------------------------ */

static char *
read_password (AtkOzoneSource *self, GError **error)
{
  const char *file = self->config->ozone_password_file;
  g_autofree char *text = NULL;

  if (file == NULL)
    return g_strdup (self->config->ozone_password);
  if (!g_file_get_contents (file, &text, NULL, error))
    return NULL;
  g_strchomp (text); /* a file written with echo ends with a newline */
  return g_steal_pointer (&text);
}

static SoupMessage *
login_message (AtkOzoneSource *self, GError **error)
{
  g_autofree char *url
      = g_strconcat (self->pds_host, "/xrpc/com.atproto.server.createSession", NULL);
  g_autofree char *password = read_password (self, error);
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GBytes) body = NULL;
  SoupMessage *message;
  char *text;

  if (password == NULL)
    return NULL;
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "identifier");
  json_builder_add_string_value (builder, self->config->ozone_identifier);
  json_builder_set_member_name (builder, "password");
  json_builder_add_string_value (builder, password);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, NULL);
  body = g_bytes_new_take (text, strlen (text));
  message = soup_message_new (SOUP_METHOD_POST, url);
  soup_message_set_request_body_from_bytes (message, "application/json", body);
  return message;
}

static void
refused_line (AtkOzoneSource *self)
{
  atk_ozone_source_log (self, G_LOG_LEVEL_WARNING,
                        "%s refused the login of %s: check --ozone-identifier and the password",
                        self->pds_host, self->config->ozone_identifier);
}

static void
on_login (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtkOzoneCallData) data = user_data;
  AtkOzoneSource *self = data->self;
  g_autoptr (GBytes) body = NULL;
  AtkOzoneReply reply;

  if (!atk_ozone_source_finish_call (data, ATK_OZONE_CALL_CREATE_SESSION, object, result, &body,
                                     NULL, &reply))
    return;
  if (reply == ATK_OZONE_REPLY_OK && take_tokens (self, body))
    {
      atk_ozone_source_log (self, G_LOG_LEVEL_MESSAGE, "logged in as %s",
                            self->config->ozone_identifier);
      atk_ozone_source_schedule_poll (self, 0);
      return;
    }
  if (reply == ATK_OZONE_REPLY_REFUSED)
    refused_line (self);
  atk_ozone_source_backoff (self);
}

void
atk_ozone_source_login (AtkOzoneSource *self)
{
  g_autoptr (GError) error = NULL;
  SoupMessage *message = login_message (self, &error);

  forget_tokens (self);
  if (message == NULL)
    {
      atk_ozone_source_log (self, G_LOG_LEVEL_WARNING, "no password: %s", error->message);
      atk_ozone_source_backoff (self);
      return;
    }
  self->in_call = TRUE;
  soup_session_send_and_read_async (self->session, message, G_PRIORITY_DEFAULT, self->cancellable,
                                    on_login, atk_ozone_call_data_new (self, message));
}

gboolean
atk_ozone_source_login_sync (AtkOzoneSource *self, GError **error)
{
  g_autoptr (SoupMessage) message = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (GError) local = NULL;
  AtkOzoneReply reply;

  g_return_val_if_fail (ATK_IS_OZONE_SOURCE (self), FALSE);
  message = login_message (self, &local);
  if (message == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "--ozone-password-file: %s",
                   local->message);
      return FALSE;
    }
  body = soup_session_send_and_read (self->session, message, NULL, &local);
  /* the caller reports the outcome: one line */
  self->quiet = TRUE;
  reply = atk_ozone_source_classify (self, ATK_OZONE_CALL_CREATE_SESSION, message, body, local);
  self->quiet = FALSE;
  if (reply == ATK_OZONE_REPLY_OK && take_tokens (self, body))
    return TRUE;
  if (reply == ATK_OZONE_REPLY_REFUSED)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   "Ozone mode: %s refused the login of %s (createSession: HTTP %u): check "
                   "--ozone-identifier and the password",
                   self->pds_host, self->config->ozone_identifier,
                   soup_message_get_status (message));
      return FALSE;
    }
  g_set_error (
      error, ATK_ERROR, ATK_ERROR_FAILED, "Ozone mode: cannot log in at %s: %s", self->pds_host,
      local != NULL ? local->message : soup_status_get_phrase (soup_message_get_status (message)));
  return FALSE;
}

/* ---- refreshSession ---------------------------------------------------------------------- */

static void
on_refresh (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtkOzoneCallData) data = user_data;
  AtkOzoneSource *self = data->self;
  g_autoptr (GBytes) body = NULL;
  AtkOzoneReply reply;

  if (!atk_ozone_source_finish_call (data, ATK_OZONE_CALL_REFRESH_SESSION, object, result, &body,
                                     NULL, &reply))
    return;
  if (reply == ATK_OZONE_REPLY_OK && take_tokens (self, body))
    {
      atk_ozone_source_log (self, G_LOG_LEVEL_MESSAGE, "session refreshed");
      atk_ozone_source_schedule_poll (self, 0);
      return;
    }
  if (reply == ATK_OZONE_REPLY_ERROR)
    {
      atk_ozone_source_backoff (self);
      return;
    }
  /* the refresh token is gone too: a new session */
  atk_ozone_source_login (self);
}

void
atk_ozone_source_refresh (AtkOzoneSource *self)
{
  g_autofree char *url
      = g_strconcat (self->pds_host, "/xrpc/com.atproto.server.refreshSession", NULL);
  SoupMessage *message;

  if (self->refresh_jwt == NULL)
    {
      atk_ozone_source_login (self);
      return;
    }
  message = soup_message_new (SOUP_METHOD_POST, url);
  atk_ozone_source_authorize (self, message, self->refresh_jwt);
  self->in_call = TRUE;
  soup_session_send_and_read_async (self->session, message, G_PRIORITY_DEFAULT, self->cancellable,
                                    on_refresh, atk_ozone_call_data_new (self, message));
}

/* ---- resuming from an id alone (the place in Kafka) ------------------------------------ */

gboolean
atk_ozone_source_get_durable_id (AtkOzoneSource *self, gint64 *id)
{
  g_return_val_if_fail (ATK_IS_OZONE_SOURCE (self), FALSE);
  if (self->has_durable && id != NULL)
    *id = self->durable.id;
  return self->has_durable;
}

void
atk_ozone_source_resume_after_id (AtkOzoneSource *self, gint64 id)
{
  g_return_if_fail (ATK_IS_OZONE_SOURCE (self));
  if (self->has_durable)
    return;
  self->has_resume_id = TRUE;
  self->resume_id = id;
}

void
atk_ozone_source_on_event (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AtkOzoneCallData) data = user_data;
  AtkOzoneSource *self = data->self;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (AtkOzoneEvent) event = NULL;
  AtkOzoneReply reply;

  if (!atk_ozone_source_finish_call (data, ATK_OZONE_CALL_GET_EVENT, object, result, &body, &error,
                                     &reply))
    return;
  if (reply == ATK_OZONE_REPLY_EXPIRED)
    {
      atk_ozone_source_refresh (self);
      return;
    }
  if (reply == ATK_OZONE_REPLY_OK)
    event = atk_ozone_event_parse (g_bytes_get_data (body, NULL), g_bytes_get_size (body), &error);
  /* 400: Ozone does not know the event (InvalidRequest); anything else is retried */
  if (event == NULL
      && (reply == ATK_OZONE_REPLY_OK || soup_message_get_status (data->message) == 400))
    {
      atk_ozone_source_log (self, G_LOG_LEVEL_WARNING,
                            "event %" G_GINT64_FORMAT " of the place in Kafka is unknown%s%s: "
                            "starting from the first event",
                            self->resume_id, error != NULL ? ": " : "",
                            error != NULL ? error->message : "");
      self->has_resume_id = FALSE;
      atk_ozone_source_schedule_poll (self, 0);
      return;
    }
  if (event == NULL)
    {
      atk_ozone_source_backoff (self);
      return;
    }
  self->has_resume_id = FALSE;
  atk_ozone_position_copy (&self->durable, &event->pos);
  self->has_durable = TRUE;
  atk_ozone_source_reset_window (self);
  atk_ozone_source_save_place (self);
  atk_ozone_source_log (self, G_LOG_LEVEL_MESSAGE, "resuming after event %" G_GINT64_FORMAT " (%s)",
                        event->pos.id, event->pos.created_at);
  atk_ozone_source_schedule_poll (self, 0);
}

SoupMessage *
atk_ozone_source_get_event_message (AtkOzoneSource *self)
{
  g_autofree char *url
      = g_strdup_printf ("%s/xrpc/tools.ozone.moderation.getEvent?id=%" G_GINT64_FORMAT,
                         self->pds_host, self->resume_id);

  return soup_message_new (SOUP_METHOD_GET, url);
}
