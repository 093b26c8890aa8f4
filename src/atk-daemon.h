/* at-kafka: the daemon object. Owns the pipeline (input side), transformer, sink, cursor
 * stores, transactions and metrics server, wires their signals on one GMainLoop, and keeps
 * the one statistics snapshot that /metrics and D-Bus read.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-config.h"
#include "atk-stats.h"

G_BEGIN_DECLS

#define ATK_TYPE_DAEMON (atk_daemon_get_type ())
G_DECLARE_FINAL_TYPE (AtkDaemon, atk_daemon, ATK, DAEMON, GObject)

/* Takes ownership of config. Fails on configuration the parts reject (bad Kafka property,
 * metrics port in use, …). */
AtkDaemon *atk_daemon_new (AtkConfig *config, GError **error);

/* Connects and starts producing. */
void atk_daemon_start (AtkDaemon *self);

/* Stops taking frames, commits the open transaction, flushes Kafka for at most timeout_ms,
 * saves the cursor. FALSE if messages remain undelivered or the producer failed ("fatal"). */
gboolean atk_daemon_shutdown (AtkDaemon *self, guint timeout_ms);

const AtkStats *atk_daemon_get_stats (AtkDaemon *self);
const char *atk_daemon_get_relay_host (AtkDaemon *self);

void atk_daemon_set_osprey_compatible (AtkDaemon *self, gboolean osprey);
gboolean atk_daemon_get_osprey_compatible (AtkDaemon *self);
void atk_daemon_pause (AtkDaemon *self);
void atk_daemon_resume (AtkDaemon *self);
void atk_daemon_reconnect (AtkDaemon *self);
/* Hands the group's leadership to another instance (--group-id): stops the input, waits
 * (bounded) for Kafka to acknowledge what is in flight, saves the cursor, leaves the group
 * and joins again as a standby. With transactions it stops the daemon ("quit") instead:
 * the last commit happens at shutdown. Fails when not in a group or not the leader. */
gboolean atk_daemon_resign (AtkDaemon *self, GError **error);

/* Signals:
 *  "ready" ()           first frame delivered to Kafka (for sd_notify READY=1)
 *  "stats-changed" ()   at most once a second, for D-Bus property change signals
 *  "fatal" (const char *reason)  the Kafka producer cannot go on (fenced by another
 *                       instance with the same transactional id, idempotence broken): the
 *                       daemon stopped taking frames; quit the loop and exit non-zero
 *  "quit" ()            the daemon is done (a transactional leader resigned): quit the
 *                       loop and shut down as for SIGTERM
 */

G_END_DECLS
