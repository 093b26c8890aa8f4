#include "atk-fake-daemon.h"

G_DEFINE_TYPE (AtkFakeDaemon, atk_fake_daemon, G_TYPE_OBJECT)

static void
atk_fake_daemon_finalize (GObject *object)
{
  atk_stats_clear (&ATK_FAKE_DAEMON (object)->stats);
  G_OBJECT_CLASS (atk_fake_daemon_parent_class)->finalize (object);
}

static void
atk_fake_daemon_class_init (AtkFakeDaemonClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = atk_fake_daemon_finalize;
  g_signal_new ("stats-changed", ATK_TYPE_FAKE_DAEMON, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                G_TYPE_NONE, 0);
  g_signal_new ("ready", ATK_TYPE_FAKE_DAEMON, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                0);
}

static void
atk_fake_daemon_init (AtkFakeDaemon *self)
{
  atk_stats_init (&self->stats);
}

AtkFakeDaemon *
atk_fake_daemon_new (void)
{
  return g_object_new (ATK_TYPE_FAKE_DAEMON, NULL);
}

const AtkStats *
atk_fake_daemon_get_stats (gpointer daemon)
{
  return &ATK_FAKE_DAEMON (daemon)->stats;
}
