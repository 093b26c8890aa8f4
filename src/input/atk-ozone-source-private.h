/* at-kafka: the Ozone input's state, shared by its two files: atk-ozone-source.c (polling,
 * the place, acks) and atk-ozone-session.c (createSession, refreshSession, and reading the
 * replies of every call).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <libsoup/soup.h>

#include "atk-ozone-page.h"
#include "atk-ozone-source.h"
#include "atk-ozone-window.h"

G_BEGIN_DECLS

#define ATK_OZONE_TIMEOUT_S 30 /* one call, connect to last byte */
#define ATK_OZONE_BACKOFF_MIN_MS 250
#define ATK_OZONE_BACKOFF_MAX_MS 30000
/* How late an event may become visible in Ozone and still be taken (atk-ozone-window.h). */
#define ATK_OZONE_LOOKBACK_MS 5000

typedef enum
{
  ATK_OZONE_CALL_CREATE_SESSION,
  ATK_OZONE_CALL_REFRESH_SESSION,
  ATK_OZONE_CALL_QUERY,
  ATK_OZONE_CALL_GET_EVENT,
  ATK_OZONE_N_CALLS
} AtkOzoneCall;

typedef enum
{
  ATK_OZONE_REPLY_OK,
  ATK_OZONE_REPLY_EXPIRED,   /* the token expired or is no longer valid: refresh / log in */
  ATK_OZONE_REPLY_REFUSED,   /* the PDS refused the credentials */
  ATK_OZONE_REPLY_FORBIDDEN, /* 403: the account may not read this labeler's events */
  ATK_OZONE_REPLY_ERROR,     /* 5xx, other 4xx, timeouts, connection failures */
  ATK_OZONE_N_REPLIES
} AtkOzoneReply;

struct _AtkOzoneSource
{
  GObject parent_instance;

  const AtkConfig *config;
  char *pds_host;
  char *labeler_did;
  char *proxy; /* "<labeler DID>#atproto_labeler" */

  SoupSession *session;
  GCancellable *cancellable; /* cancelled by stop() */
  gboolean in_call;
  gboolean quiet; /* classify() logs nothing (the caller reports) */
  char *access_jwt;
  char *refresh_jwt;

  AtkSourceState state;
  guint poll_id;
  guint stall_id;
  guint backoff_bound_ms;
  guint failures;
  guint64 reconnects;

  /* the place: `durable` is the last event Kafka acknowledged with all emitted before it
   * (saved); `window` what was emitted lately; `pending` what was emitted and is not acked,
   * in order */
  AtkOzonePosition durable;
  gboolean has_durable;
  AtkOzoneWindow *window;
  GQueue *pending;
  gboolean more;          /* the last page was full: poll again at once */
  char *page_cursor;      /* follow Ozone's cursor (a full page inside one millisecond) */
  gboolean has_resume_id; /* learn this event's createdAt before the first poll */
  gint64 resume_id;

  guint64 counts[ATK_OZONE_N_CALLS][ATK_OZONE_N_REPLIES];
};

void atk_ozone_source_log (AtkOzoneSource *self, GLogLevelFlags level, const char *format, ...)
    G_GNUC_PRINTF (3, 4);
void atk_ozone_source_set_state (AtkOzoneSource *self, AtkSourceState state);
void atk_ozone_source_schedule_poll (AtkOzoneSource *self, guint delay_ms);
void atk_ozone_source_backoff (AtkOzoneSource *self);
/* The window starts over after the durable place (the start, a stall, a resume). */
void atk_ozone_source_reset_window (AtkOzoneSource *self);
/* Writes the durable place to <state-dir>/ozone-cursor (a failure is logged). */
void atk_ozone_source_save_place (AtkOzoneSource *self);

/* One call on its way: holds the source (its reply may come after the source was stopped
 * or dropped) and the message. */
typedef struct
{
  AtkOzoneSource *self;
  SoupMessage *message;
} AtkOzoneCallData;

AtkOzoneCallData *atk_ozone_call_data_new (AtkOzoneSource *self, SoupMessage *message);
void atk_ozone_call_data_free (AtkOzoneCallData *data);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkOzoneCallData, atk_ozone_call_data_free)

/* atk-ozone-session.c */
void atk_ozone_source_authorize (AtkOzoneSource *self, SoupMessage *message, const char *jwt);
/* Reads the outcome of a call (counted, and logged unless OK). */
AtkOzoneReply atk_ozone_source_classify (AtkOzoneSource *self, AtkOzoneCall call,
                                         SoupMessage *message, GBytes *body, const GError *error);
/* Ends an asynchronous call (the GAsyncReadyCallback's object and result): FALSE when it was
 * cancelled (the source is going: nothing more to do). Else the call is over, *body is its
 * body or NULL, error (may be NULL) gets a transport error, and the reply is classified. */
gboolean atk_ozone_source_finish_call (AtkOzoneCallData *data, AtkOzoneCall call, GObject *object,
                                       GAsyncResult *result, GBytes **body, GError **error,
                                       AtkOzoneReply *reply);
/* getEvent for resume_id, and its reply (then it polls). */
SoupMessage *atk_ozone_source_get_event_message (AtkOzoneSource *self);
void atk_ozone_source_on_event (GObject *object, GAsyncResult *result, gpointer user_data);
/* Asynchronous: on success they poll. */
void atk_ozone_source_login (AtkOzoneSource *self);
void atk_ozone_source_refresh (AtkOzoneSource *self);

G_END_DECLS
