/* at-kafka: tells systemd how the daemon is doing (sd_notify): READY=1 once the first
 * event reached Kafka, STATUS= every few seconds, WATCHDOG=1 at half WatchdogSec, and
 * STOPPING=1 on shutdown. Does nothing when not started by systemd (no NOTIFY_SOCKET).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib-object.h>

#include "atk-daemon.h"
#include "atk-stats.h"

G_BEGIN_DECLS

#define ATK_SYSTEMD_STATUS_INTERVAL_MS 5000

typedef const AtkStats *(*AtkStatsGetter) (gpointer daemon);

#define ATK_TYPE_SYSTEMD_NOTIFIER (atk_systemd_notifier_get_type ())
G_DECLARE_FINAL_TYPE (AtkSystemdNotifier, atk_systemd_notifier, ATK, SYSTEMD_NOTIFIER, GObject)

AtkSystemdNotifier *atk_systemd_notifier_new (AtkDaemon *daemon);

/* The same for any object that emits "ready", with its statistics read by get_stats;
 * STATUS= is sent every status_interval_ms. */
AtkSystemdNotifier *atk_systemd_notifier_new_full (gpointer daemon, AtkStatsGetter get_stats,
                                                   guint status_interval_ms);

/* Sends STOPPING=1 and stops the timers; call before the daemon's shutdown. */
void atk_systemd_notifier_stopping (AtkSystemdNotifier *self);

G_END_DECLS
