/* at-kafka: Prometheus text on /metrics and a liveness answer on /healthz (libsoup).
 * The server knows HTTP only: the text comes from a render callback.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ATK_TYPE_METRICS_SERVER (atk_metrics_server_get_type ())
G_DECLARE_FINAL_TYPE (AtkMetricsServer, atk_metrics_server, ATK, METRICS_SERVER, GObject)

typedef void (*AtkMetricsRenderFunc) (GString *out, gpointer user_data);
typedef gboolean (*AtkHealthFunc) (gpointer user_data);

/* listen_address: ":2112", "127.0.0.1:2112", "[::1]:2112". A bad address or a port in
 * use is an error naming the address. */
AtkMetricsServer *atk_metrics_server_new (const char *listen_address, AtkMetricsRenderFunc render,
                                          AtkHealthFunc healthy, gpointer user_data,
                                          GError **error);

/* The port actually bound (useful with port 0 in tests). */
guint atk_metrics_server_get_port (AtkMetricsServer *self);

/* Connections open now, the most allowed at once, and accept() failures so far. */
guint atk_metrics_server_get_n_connections (AtkMetricsServer *self);
guint atk_metrics_server_get_max_connections (AtkMetricsServer *self);
guint64 atk_metrics_server_get_accept_errors (AtkMetricsServer *self);

G_END_DECLS
