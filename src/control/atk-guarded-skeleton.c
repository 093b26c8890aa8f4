/* at-kafka: the bus object, with every caller checked (see atk-guarded-skeleton.h).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-dbus"

#include "atk-guarded-skeleton.h"

struct _AtkGuardedSkeleton
{
  AtkBusDaemon1Skeleton parent_instance;
  AtkGuardedSkeletonCheck check;
  AtkGuardedSkeletonWritten written;
  gpointer user_data; /* not a reference: its owner owns the skeleton */
};

G_DEFINE_FINAL_TYPE (AtkGuardedSkeleton, atk_guarded_skeleton, ATK_BUS_TYPE_DAEMON1_SKELETON)

static GDBusInterfaceVTable guarded_vtable;
static const GDBusInterfaceVTable *generated_vtable;

/* Every method call, and every Set (the vtable has no set_property, so GDBus sends Set here
 * as a call on org.freedesktop.DBus.Properties), waits for the caller's uid; nothing blocks. */
static void
guarded_method_call (GDBusConnection *connection, const char *sender, const char *object_path,
                     const char *interface_name, const char *method_name, GVariant *parameters,
                     GDBusMethodInvocation *invocation, gpointer user_data)
{
  AtkGuardedSkeleton *skeleton = user_data;

  skeleton->check (skeleton, invocation, skeleton->user_data);
}

/* The caller is allowed: what the generated code would have done. */
void
atk_guarded_skeleton_dispatch (AtkGuardedSkeleton *skeleton, GDBusMethodInvocation *invocation)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  const char *object_path = g_dbus_method_invocation_get_object_path (invocation);
  const char *interface_name = g_dbus_method_invocation_get_interface_name (invocation);
  const char *method_name = g_dbus_method_invocation_get_method_name (invocation);
  GVariant *parameters = g_dbus_method_invocation_get_parameters (invocation);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) value = NULL;
  const char *iface = NULL;
  const char *property_name = NULL;

  if (g_strcmp0 (interface_name, "org.freedesktop.DBus.Properties") != 0)
    {
      generated_vtable->method_call (connection, sender, object_path, interface_name, method_name,
                                     parameters, g_object_ref (invocation), skeleton);
      return;
    }
  /* GDBus checked the property exists, is writable and has the right type */
  g_variant_get (parameters, "(&s&sv)", &iface, &property_name, &value);
  if (!generated_vtable->set_property (connection, sender, object_path, iface, property_name, value,
                                       &error, skeleton))
    {
      g_dbus_method_invocation_return_gerror (g_object_ref (invocation), error);
      return;
    }
  skeleton->written (property_name, skeleton->user_data);
  g_dbus_method_invocation_return_value (g_object_ref (invocation), NULL);
}

static GDBusInterfaceVTable *
atk_guarded_skeleton_get_vtable (GDBusInterfaceSkeleton *skeleton)
{
  return &guarded_vtable;
}

static void
atk_guarded_skeleton_class_init (AtkGuardedSkeletonClass *klass)
{
  GDBusInterfaceSkeletonClass *skeleton_class = G_DBUS_INTERFACE_SKELETON_CLASS (klass);
  GDBusInterfaceSkeletonClass *parent_class
      = G_DBUS_INTERFACE_SKELETON_CLASS (atk_guarded_skeleton_parent_class);

  /* The generated vtable is a static table that ignores its argument. */
  generated_vtable = parent_class->get_vtable (NULL);
  guarded_vtable = *generated_vtable;
  guarded_vtable.method_call = guarded_method_call;
  guarded_vtable.set_property = NULL;
  skeleton_class->get_vtable = atk_guarded_skeleton_get_vtable;
}

static void
atk_guarded_skeleton_init (AtkGuardedSkeleton *self)
{
}

AtkGuardedSkeleton *
atk_guarded_skeleton_new (AtkGuardedSkeletonCheck check, AtkGuardedSkeletonWritten written,
                          gpointer user_data)
{
  AtkGuardedSkeleton *self = g_object_new (ATK_TYPE_GUARDED_SKELETON, NULL);

  self->check = check;
  self->written = written;
  self->user_data = user_data;
  return self;
}
