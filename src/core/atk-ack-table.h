/* at-kafka: Tap mode's acks. Tap redelivers an event until it is acked, so an event's id
 * may be acked only once every message it produced is in Kafka. The table counts each id's
 * messages still on their way and whether one of them failed. Pure: no I/O.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _AtkAckTable AtkAckTable;

AtkAckTable *atk_ack_table_new (void);
void atk_ack_table_free (AtkAckTable *self);

/* Event id produced n_messages messages (a redelivered id adds to what is pending). TRUE
 * when the id may be acked at once: no messages, and none of it pending. */
gboolean atk_ack_table_add (AtkAckTable *self, guint64 id, guint n_messages);

/* One message of id settled; ok FALSE when it did not reach Kafka (rejected, purged,
 * refused). TRUE when this was the id's last message and all of them were delivered: ack
 * it now. A failed id is never acked: Tap delivers it again. Unknown ids return FALSE. */
gboolean atk_ack_table_settle (AtkAckTable *self, guint64 id, gboolean ok);

/* Ids with messages on their way. */
guint atk_ack_table_get_pending (AtkAckTable *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkAckTable, atk_ack_table_free)

G_END_DECLS
