/* at-kafka: the AtkInput interface (see atk-input.h).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include "atk-input.h"

G_DEFINE_INTERFACE (AtkInput, atk_input, G_TYPE_OBJECT)

enum
{
  SIGNAL_PAYLOAD,
  SIGNAL_STATE_CHANGED,
  SIGNAL_CONNECTION_ERROR,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* The owner's payload function (atk_input_set_payload_func), kept on the instance. */
typedef struct
{
  AtkInputPayloadFunc func;
  gpointer user_data;
} PayloadHook;

static GQuark
payload_hook_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("atk-input-payload-hook");
  return quark;
}

static void
atk_input_default_init (AtkInputInterface *iface)
{
  signals[SIGNAL_PAYLOAD] = g_signal_new (
      "payload", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
      g_cclosure_marshal_VOID__BOXED, G_TYPE_NONE, 1, G_TYPE_BYTES | G_SIGNAL_TYPE_STATIC_SCOPE);
  g_signal_set_va_marshaller (signals[SIGNAL_PAYLOAD], G_TYPE_FROM_INTERFACE (iface),
                              g_cclosure_marshal_VOID__BOXEDv);
  signals[SIGNAL_STATE_CHANGED]
      = g_signal_new ("state-changed", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 1, ATK_TYPE_SOURCE_STATE);
  signals[SIGNAL_CONNECTION_ERROR]
      = g_signal_new ("connection-error", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

void
atk_input_event_clear (AtkInputEvent *event)
{
  g_clear_error (&event->op_error);
  g_clear_pointer (&event->did, g_free);
}

const char *
atk_input_get_name (AtkInput *self)
{
  g_return_val_if_fail (ATK_IS_INPUT (self), NULL);
  return ATK_INPUT_GET_IFACE (self)->get_name (self);
}

const char *
atk_input_get_url (AtkInput *self)
{
  g_return_val_if_fail (ATK_IS_INPUT (self), NULL);
  return ATK_INPUT_GET_IFACE (self)->get_url (self);
}

AtkInputFlags
atk_input_get_flags (AtkInput *self)
{
  AtkInputInterface *iface;

  g_return_val_if_fail (ATK_IS_INPUT (self), ATK_INPUT_NONE);
  iface = ATK_INPUT_GET_IFACE (self);
  return iface->get_flags != NULL ? iface->get_flags (self) : ATK_INPUT_NONE;
}

void
atk_input_start (AtkInput *self)
{
  g_return_if_fail (ATK_IS_INPUT (self));
  ATK_INPUT_GET_IFACE (self)->start (self);
}

void
atk_input_stop (AtkInput *self)
{
  g_return_if_fail (ATK_IS_INPUT (self));
  ATK_INPUT_GET_IFACE (self)->stop (self);
}

void
atk_input_reconnect (AtkInput *self)
{
  g_return_if_fail (ATK_IS_INPUT (self));
  ATK_INPUT_GET_IFACE (self)->reconnect (self);
}

AtkSourceState
atk_input_get_state (AtkInput *self)
{
  g_return_val_if_fail (ATK_IS_INPUT (self), ATK_SOURCE_STOPPED);
  return ATK_INPUT_GET_IFACE (self)->get_state (self);
}

guint64
atk_input_get_reconnects (AtkInput *self)
{
  g_return_val_if_fail (ATK_IS_INPUT (self), 0);
  return ATK_INPUT_GET_IFACE (self)->get_reconnects (self);
}

gboolean
atk_input_decode (AtkInput *self, GBytes *payload, AtkEventTransformer *transformer,
                  GPtrArray *messages, AtkInputEvent *event, GError **error)
{
  g_return_val_if_fail (ATK_IS_INPUT (self), FALSE);
  return ATK_INPUT_GET_IFACE (self)->decode (self, payload, transformer, messages, event, error);
}

void
atk_input_set_cursor (AtkInput *self, gboolean has_cursor, gint64 cursor)
{
  AtkInputInterface *iface;

  g_return_if_fail (ATK_IS_INPUT (self));
  iface = ATK_INPUT_GET_IFACE (self);
  if (iface->set_cursor != NULL)
    iface->set_cursor (self, has_cursor, cursor);
}

void
atk_input_ack (AtkInput *self, guint64 id)
{
  AtkInputInterface *iface;

  g_return_if_fail (ATK_IS_INPUT (self));
  iface = ATK_INPUT_GET_IFACE (self);
  if (iface->ack != NULL)
    iface->ack (self, id);
}

void
atk_input_render_prometheus (AtkInput *self, GString *out)
{
  AtkInputInterface *iface;

  g_return_if_fail (ATK_IS_INPUT (self));
  iface = ATK_INPUT_GET_IFACE (self);
  if (iface->render_prometheus != NULL)
    iface->render_prometheus (self, out);
}

gint64
atk_input_get_received_us (AtkInput *self)
{
  AtkInputInterface *iface;

  g_return_val_if_fail (ATK_IS_INPUT (self), 0);
  iface = ATK_INPUT_GET_IFACE (self);
  return iface->get_received_us != NULL ? iface->get_received_us (self) : 0;
}

void
atk_input_set_payload_func (AtkInput *self, AtkInputPayloadFunc func, gpointer user_data)
{
  PayloadHook *hook = NULL;

  g_return_if_fail (ATK_IS_INPUT (self));

  if (func != NULL)
    {
      hook = g_new (PayloadHook, 1);
      hook->func = func;
      hook->user_data = user_data;
    }
  g_object_set_qdata_full (G_OBJECT (self), payload_hook_quark (), hook, g_free);
}

void
atk_input_emit_payload (AtkInput *self, GBytes *payload)
{
  PayloadHook *hook = g_object_get_qdata (G_OBJECT (self), payload_hook_quark ());

  if (hook != NULL)
    hook->func (hook->user_data, payload);
  /* Once per frame: without handlers (the daemon has none) the signal's machinery is skipped. */
  if (g_signal_has_handler_pending (self, signals[SIGNAL_PAYLOAD], 0, TRUE))
    g_signal_emit (self, signals[SIGNAL_PAYLOAD], 0, payload);
}

void
atk_input_emit_state_changed (AtkInput *self, AtkSourceState state)
{
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, state);
}

void
atk_input_emit_connection_error (AtkInput *self, const char *message)
{
  g_signal_emit (self, signals[SIGNAL_CONNECTION_ERROR], 0, message);
}
