/* AtkSystemdNotifier against a fake NOTIFY_SOCKET: a datagram socket this test binds, the
 * way the service manager does. Each message is split into its KEY=value lines. */
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "atk-fake-daemon.h"
#include "atk-systemd.h"
#include "atk-test-util.h"

typedef struct
{
  char *dir;
  char *path;
  GSocket *socket;
  GSource *source;
  GPtrArray *lines;      /* every KEY=value line received, in order */
  GArray *watchdogs;     /* time (µs) each WATCHDOG=1 was sent */
  gint64 stopping_sent;  /* time (µs) STOPPING=1 was sent, or 0 */
  AtkFakeDaemon *daemon; /* emits "ready", owns the stats the notifier reads */
} Fixture;

/* Each datagram carries the time the kernel queued it (SO_TIMESTAMPNS), that is when the
 * notifier sent it, however late this loop gets round to reading it. */
static gboolean
on_datagram (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  Fixture *fx = user_data;
  char buf[4096];
  union
  {
    char buf[CMSG_SPACE (sizeof (struct timespec))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { buf, sizeof buf };
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  gint64 sent = 0;
  gssize n;
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  n = recvmsg (g_socket_get_fd (socket), &msg, MSG_DONTWAIT);
  g_assert_cmpint (n, >=, 0);
  for (cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_TIMESTAMPNS)
      {
        struct timespec ts;
        memcpy (&ts, CMSG_DATA (cmsg), sizeof ts);
        sent = (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
      }
  g_assert_cmpint (sent, >, 0);
  text = g_strndup (buf, MAX (n, 0));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (*lines[i] == '\0')
        continue;
      if (g_str_equal (lines[i], "WATCHDOG=1"))
        g_array_append_val (fx->watchdogs, sent);
      if (g_str_equal (lines[i], "STOPPING=1"))
        fx->stopping_sent = sent;
      g_ptr_array_add (fx->lines, g_strdup (lines[i]));
    }
  return G_SOURCE_CONTINUE;
}

static void
fixture_set_up (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) address = NULL;
  g_autofree char *pid = g_strdup_printf ("%d", (int)getpid ());

  fx->dir = atk_test_make_tmp_dir ("atk-notify-XXXXXX");
  fx->path = g_build_filename (fx->dir, "notify", NULL);
  fx->socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM, 0, &error);
  g_assert_no_error (error);
  address = g_unix_socket_address_new (fx->path);
  g_socket_bind (fx->socket, address, FALSE, &error);
  g_assert_no_error (error);
  g_socket_set_option (fx->socket, SOL_SOCKET, SO_TIMESTAMPNS, 1, &error);
  g_assert_no_error (error);
  fx->source = g_socket_create_source (fx->socket, G_IO_IN, NULL);
  g_source_set_callback (fx->source, G_SOURCE_FUNC (on_datagram), fx, NULL);
  g_source_attach (fx->source, NULL);
  fx->lines = g_ptr_array_new_with_free_func (g_free);
  fx->watchdogs = g_array_new (FALSE, FALSE, sizeof (gint64));

  g_setenv ("NOTIFY_SOCKET", fx->path, TRUE);
  g_setenv ("WATCHDOG_USEC", "200000", TRUE);
  g_setenv ("WATCHDOG_PID", data != NULL ? data : pid, TRUE);
  fx->daemon = atk_fake_daemon_new ();
}

static void
fixture_tear_down (Fixture *fx, gconstpointer data)
{
  g_unsetenv ("NOTIFY_SOCKET");
  g_unsetenv ("WATCHDOG_USEC");
  g_unsetenv ("WATCHDOG_PID");
  g_source_destroy (fx->source);
  g_source_unref (fx->source);
  g_object_unref (fx->socket);
  atk_test_rm_rf (fx->dir);
  g_free (fx->path);
  g_free (fx->dir);
  g_ptr_array_unref (fx->lines);
  g_array_unref (fx->watchdogs);
  g_object_unref (fx->daemon);
}

/* Index of the first line at or after `from` that starts with prefix, or -1. */
static int
find_line (Fixture *fx, guint from, const char *prefix)
{
  for (guint i = from; i < fx->lines->len; i++)
    if (g_str_has_prefix (g_ptr_array_index (fx->lines, i), prefix))
      return i;
  return -1;
}

typedef struct
{
  Fixture *fx;
  guint from;
  const char *prefix;
} LineWait;

static gboolean
line_arrived (gpointer user_data)
{
  LineWait *w = user_data;
  return find_line (w->fx, w->from, w->prefix) >= 0;
}

/* Runs the main loop until a line starting with prefix arrives, or fails after timeout. */
static int
wait_for_line (Fixture *fx, guint from, const char *prefix, guint timeout_ms)
{
  LineWait w = { fx, from, prefix };

  if (!atk_test_wait_until (NULL, line_arrived, &w, timeout_ms))
    g_error ("No %s line within %u ms", prefix, timeout_ms);
  return find_line (fx, from, prefix);
}

static void
test_ready_status_stopping (Fixture *fx, gconstpointer data)
{
  g_autoptr (AtkSystemdNotifier) notifier = NULL;
  int ready, status;
  const char *line;

  fx->daemon->stats.source_state = "connected";
  fx->daemon->stats.has_cursor = TRUE;
  fx->daemon->stats.cursor = 424242;
  notifier = atk_systemd_notifier_new_full (fx->daemon, atk_fake_daemon_get_stats, 100);

  /* Periodic STATUS= before READY=1: it names the state and the cursor. */
  status = wait_for_line (fx, 0, "STATUS=connected", 2000);
  line = g_ptr_array_index (fx->lines, status);
  g_assert_nonnull (strstr (line, "cursor 424242"));
  g_assert_cmpint (find_line (fx, 0, "READY=1"), <, 0);

  g_signal_emit_by_name (fx->daemon, "ready");
  ready = wait_for_line (fx, 0, "READY=1", 2000);

  /* Events/s follows the produced counter: 1000 more messages make a non-zero rate. */
  fx->daemon->stats.produced_ok += 1000;
  for (int from = ready;; from++)
    {
      from = wait_for_line (fx, from, "STATUS=", 2000);
      line = g_ptr_array_index (fx->lines, from);
      if (strstr (line, " 0 events/s") == NULL)
        break;
    }
  g_assert_nonnull (strstr (line, "events/s"));

  atk_systemd_notifier_stopping (notifier);
  wait_for_line (fx, ready, "STOPPING=1", 2000);
}

static void
test_watchdog (Fixture *fx, gconstpointer data)
{
  g_autoptr (AtkSystemdNotifier) notifier = NULL;
  guint count;

  /* WATCHDOG_USEC=1 s: a ping about every 500 ms. */
  g_setenv ("WATCHDOG_USEC", "1000000", TRUE);
  notifier = atk_systemd_notifier_new_full (fx->daemon, atk_fake_daemon_get_stats, 60000);
  for (guint i = 0; i < 4; i++)
    {
      int n = wait_for_line (fx, 0, "WATCHDOG=1", 5000);
      g_ptr_array_remove_index (fx->lines, n);
    }
  /* By the times they were sent: never a gap as long as WATCHDOG_USEC (the service manager
   * would kill the service), never two pings closer than half the interval (a timer does
   * not fire early). Both hold however late this test reads them. */
  count = fx->watchdogs->len;
  g_assert_cmpuint (count, >=, 4);
  for (guint i = 1; i < count; i++)
    {
      gint64 gap
          = g_array_index (fx->watchdogs, gint64, i) - g_array_index (fx->watchdogs, gint64, i - 1);
      g_assert_cmpint (gap, <, G_USEC_PER_SEC);
      g_assert_cmpint (gap, >=, 250 * G_TIME_SPAN_MILLISECOND);
    }

  /* After STOPPING=1 the pings stop: none sent after it within the next two periods. */
  atk_systemd_notifier_stopping (notifier);
  wait_for_line (fx, 0, "STOPPING=1", 5000);
  atk_test_run_for (NULL, 1000);
  g_assert_cmpint (fx->stopping_sent, >, 0);
  for (guint i = 0; i < fx->watchdogs->len; i++)
    g_assert_cmpint (g_array_index (fx->watchdogs, gint64, i), <=, fx->stopping_sent);
}

static void
test_watchdog_other_pid (Fixture *fx, gconstpointer data)
{
  g_autoptr (AtkSystemdNotifier) notifier = NULL;

  /* WATCHDOG_PID names another process: the watchdog is not ours to feed. STATUS= still
   * goes out, and by the time three have arrived (≥ 300 ms) a 100 ms ping would have too. */
  notifier = atk_systemd_notifier_new_full (fx->daemon, atk_fake_daemon_get_stats, 100);
  for (int from = 0, i = 0; i < 3; i++)
    from = wait_for_line (fx, from, "STATUS=stopped", 2000) + 1;
  g_assert_cmpuint (fx->watchdogs->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/systemd/ready-status-stopping", Fixture, NULL, fixture_set_up,
              test_ready_status_stopping, fixture_tear_down);
  g_test_add ("/systemd/watchdog", Fixture, NULL, fixture_set_up, test_watchdog, fixture_tear_down);
  g_test_add ("/systemd/watchdog-other-pid", Fixture, "1", fixture_set_up, test_watchdog_other_pid,
              fixture_tear_down);
  return g_test_run ();
}
