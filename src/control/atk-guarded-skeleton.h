/* at-kafka: the daemon's bus object, guarded. The generated skeleton dispatches methods and
 * property writes without asking who the caller is. This subclass wraps its vtable so that
 * every method call and every Set is checked against the caller first; Get and GetAll stay
 * open. Who may call is its owner's decision (AtkDbusService).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-bus-generated.h"

G_BEGIN_DECLS

#define ATK_TYPE_GUARDED_SKELETON (atk_guarded_skeleton_get_type ())
G_DECLARE_FINAL_TYPE (AtkGuardedSkeleton, atk_guarded_skeleton, ATK, GUARDED_SKELETON,
                      AtkBusDaemon1Skeleton)

/* A method call or a Set arrived: the invocation is the callee's (GDBus handed over its
 * reference). It answers it, or passes it to atk_guarded_skeleton_dispatch(), now or later. */
typedef void (*AtkGuardedSkeletonCheck) (AtkGuardedSkeleton *skeleton,
                                         GDBusMethodInvocation *invocation, gpointer user_data);
/* A property was set over the bus (after the generated code stored it). */
typedef void (*AtkGuardedSkeletonWritten) (const char *property_name, gpointer user_data);

AtkGuardedSkeleton *atk_guarded_skeleton_new (AtkGuardedSkeletonCheck check,
                                              AtkGuardedSkeletonWritten written,
                                              gpointer user_data);

/* The caller is allowed: what the generated code would have done (takes a new reference
 * to invocation for its answer). */
void atk_guarded_skeleton_dispatch (AtkGuardedSkeleton *skeleton,
                                    GDBusMethodInvocation *invocation);

G_END_DECLS
