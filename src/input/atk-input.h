/* at-kafka: AtkInput, where events come from: the relay (AtkFirehoseSource), Tap
 * (AtkTapSource), and whatever comes next — each one implementation of this interface, as
 * power-profiles-daemon's drivers implement PpdDriver. The pipeline (atk-pipeline.c) runs
 * an input through it alone and never asks which one it is.
 *
 * An input is a connection that delivers payloads, and knows how to read them:
 *  - start()/stop()/reconnect(), get_state() and its "state-changed" signal;
 *  - "payload" (GBytes *) for each message from the peer, and decode() that turns one
 *    payload into messages for Kafka (with the help of the core's transformers);
 *  - its place in the stream. An input either resumes from a cursor the pipeline gives it
 *    (set_cursor(); the relay: a seq) or keeps its own place (ATK_INPUT_KEEPS_PLACE; Tap
 *    redelivers each event until the pipeline settles it with ack()).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-event-transformer.h"
#include "atk-ws-client.h" /* AtkSourceState */

G_BEGIN_DECLS

#define ATK_TYPE_INPUT (atk_input_get_type ())
G_DECLARE_INTERFACE (AtkInput, atk_input, ATK, INPUT, GObject)

typedef enum
{
  ATK_INPUT_NONE = 0,
  /* The peer keeps the input's place: it redelivers every event until ack() (Tap). The
   * pipeline settles events with ack() instead of a cursor, and never rewinds. */
  ATK_INPUT_KEEPS_PLACE = 1 << 0,
} AtkInputFlags;

/* What the stream told about itself besides events (the relay's #info and #error frames). */
typedef enum
{
  ATK_INPUT_NOTICE_NONE,
  ATK_INPUT_NOTICE_OUTDATED_CURSOR, /* events after our cursor are gone: measure the gap */
  ATK_INPUT_NOTICE_FUTURE_CURSOR,   /* our cursor is unknown: restart at the live tip */
  ATK_INPUT_NOTICE_ERROR,           /* another error frame (counted) */
} AtkInputNotice;

/* One payload read by decode(). */
typedef struct
{
  gboolean has_position;
  gint64 position;       /* the relay's seq, Tap's event id */
  gboolean unknown;      /* an event type we do not know (counted, skipped) */
  AtkInputNotice notice; /* for the pipeline to act on */
  guint n_filtered;      /* operations the collection filter dropped */
  guint n_op_errors;     /* operations whose record could not be rendered (AtkTransformResult) */
  gboolean ops_skipped;  /* … and were skipped (--skip-unrenderable-records) */
  AtkOpErrorCount op_error_kinds[ATK_TRANSFORM_MAX_OP_ERROR_KINDS]; /* n_op_errors by kind */
  guint n_op_error_kinds;
  GError *op_error; /* the first of them; owned (atk_input_event_clear()) */
  char *did;        /* the event's DID when known, for logs; owned */
} AtkInputEvent;

void atk_input_event_clear (AtkInputEvent *event);

struct _AtkInputInterface
{
  GTypeInterface parent_iface;

  const char *(*get_name) (AtkInput *self); /* "Relay", "Tap": for logs */
  const char *(*get_url) (AtkInput *self);
  AtkInputFlags (*get_flags) (AtkInput *self);
  void (*start) (AtkInput *self);
  void (*stop) (AtkInput *self);
  void (*reconnect) (AtkInput *self);
  AtkSourceState (*get_state) (AtkInput *self);
  guint64 (*get_reconnects) (AtkInput *self);
  /* Appends the payload's messages (in order) to messages. FALSE with error when the payload
   * is unusable as a whole (the input settles it itself if it must, e.g. Tap acks it). */
  gboolean (*decode) (AtkInput *self, GBytes *payload, AtkEventTransformer *transformer,
                      GPtrArray *messages, AtkInputEvent *event, GError **error);
  /* Optional. Where the next connection resumes (has_cursor FALSE: the live tip). */
  void (*set_cursor) (AtkInput *self, gboolean has_cursor, gint64 cursor);
  /* Optional. Every message of event id is stored: the peer may forget it. */
  void (*ack) (AtkInput *self, guint64 id);
  /* Optional. The input's own Prometheus metrics. */
  void (*render_prometheus) (AtkInput *self, GString *out);
  /* Optional. During "payload": the monotonic time (µs) by which that payload had reached us
   * at the latest (a connection read in batches sees a message only after it arrived), so
   * that the delivery latency counts from there; 0 (the default) = now. */
  gint64 (*get_received_us) (AtkInput *self);
};

const char *atk_input_get_name (AtkInput *self);
const char *atk_input_get_url (AtkInput *self);
AtkInputFlags atk_input_get_flags (AtkInput *self);
void atk_input_start (AtkInput *self);
void atk_input_stop (AtkInput *self);
void atk_input_reconnect (AtkInput *self);
AtkSourceState atk_input_get_state (AtkInput *self);
guint64 atk_input_get_reconnects (AtkInput *self);
gboolean atk_input_decode (AtkInput *self, GBytes *payload, AtkEventTransformer *transformer,
                           GPtrArray *messages, AtkInputEvent *event, GError **error);
void atk_input_set_cursor (AtkInput *self, gboolean has_cursor, gint64 cursor);
void atk_input_ack (AtkInput *self, guint64 id);
void atk_input_render_prometheus (AtkInput *self, GString *out);
gint64 atk_input_get_received_us (AtkInput *self);
/* The owner's function for each payload, called before "payload" is emitted (the pipeline's:
 * one call per frame, without a signal's cost). NULL removes it. */
typedef void (*AtkInputPayloadFunc) (gpointer user_data, GBytes *payload);
void atk_input_set_payload_func (AtkInput *self, AtkInputPayloadFunc func, gpointer user_data);

/* For implementations: emit the interface's signals. */
void atk_input_emit_payload (AtkInput *self, GBytes *payload);
void atk_input_emit_state_changed (AtkInput *self, AtkSourceState state);
void atk_input_emit_connection_error (AtkInput *self, const char *message);

/* Signals:
 *  "payload" (GBytes *payload)        one message from the peer (a relay frame, a Tap event)
 *  "state-changed" (AtkSourceState)   connection state
 *  "connection-error" (const char *)  a failed attempt or a dropped connection, for logs
 */

G_END_DECLS
