/* Abusive clients on the metrics endpoint (issue 9, items 4 and 5): bodies and oversized heads
 * refused before they are read, connections that send nothing closed, a cap on connections
 * that still lets a scrape through, and accept() failures that neither spin nor flood the log.
 * Real sockets over loopback; clients run in threads while the main thread runs the server.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "atk-metrics-server.h"
#include "atk-test-util.h"

static void
render (GString *out, gpointer user_data)
{
  g_string_append (out, "# TYPE test_up gauge\ntest_up 1\n");
}

static AtkMetricsServer *
new_server (void)
{
  g_autoptr (GError) error = NULL;
  AtkMetricsServer *server = atk_metrics_server_new ("127.0.0.1:0", render, NULL, NULL, &error);

  g_assert_no_error (error);
  return server;
}

static int
connect_to (guint port)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = { .tv_sec = 20 };

  g_assert_cmpint (fd, >=, 0);
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  g_assert_cmpint (connect (fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
  return fd;
}

/* ---- a client in a thread: sends a head, then up to body_bytes, then reads the answer ---- */

typedef struct
{
  guint port;
  char *head;
  gsize body_bytes;
  gsize body_sent;
  char answer[256];
  gboolean done;
} Client;

static gpointer
client_run (gpointer user_data)
{
  Client *client = user_data;
  int fd = connect_to (client->port);
  g_autofree char *chunk = g_malloc0 (64 * 1024);
  gssize n;

  if (send (fd, client->head, strlen (client->head), MSG_NOSIGNAL) < 0)
    goto answer;
  while (client->body_sent < client->body_bytes)
    {
      n = send (fd, chunk, MIN (64 * 1024, client->body_bytes - client->body_sent), MSG_NOSIGNAL);
      if (n <= 0)
        break; /* refused: the server shut the connection */
      client->body_sent += n;
    }
answer:
  n = recv (fd, client->answer, sizeof client->answer - 1, 0);
  if (n > 0)
    client->answer[n] = '\0';
  close (fd);
  g_atomic_int_set (&client->done, TRUE);
  return NULL;
}

static gboolean
client_done (gpointer user_data)
{
  return g_atomic_int_get (&((Client *)user_data)->done);
}

static void
run_client (Client *client)
{
  GThread *thread = g_thread_new ("client", client_run, client);

  g_assert_true (atk_test_wait_until (NULL, client_done, client, 60000));
  g_thread_join (thread);
}

/* POST with a 256 MiB body: answered 413 at once, the body is never read into memory. Before,
 * libsoup read all of it (then answered 405). */
static void
test_body_refused (void)
{
  g_autoptr (AtkMetricsServer) server = new_server ();
  long hwm_before = (long)atk_test_status_kib ("VmHWM");
  Client client = {
    .port = atk_metrics_server_get_port (server),
    .head = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 268435456\r\n\r\n",
    .body_bytes = 256u << 20,
  };

  run_client (&client);
  g_assert_true (g_str_has_prefix (client.answer, "HTTP/1.1 413"));
  g_assert_cmpuint (client.body_sent, <, 64u << 20);
  g_assert_cmpint ((long)atk_test_status_kib ("VmHWM") - hwm_before, <, 16 * 1024);
}

/* Chunked, without a length: refused the same way. */
static void
test_chunked_refused (void)
{
  g_autoptr (AtkMetricsServer) server = new_server ();
  Client client = {
    .port = atk_metrics_server_get_port (server),
    .head = "PUT /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    .body_bytes = 64u << 20,
  };

  run_client (&client);
  g_assert_true (g_str_has_prefix (client.answer, "HTTP/1.1 413"));
  g_assert_cmpuint (client.body_sent, <, 32u << 20);
}

/* A head of 1 MiB of headers: 431 after at most a few KiB. */
static void
test_big_head_refused (void)
{
  g_autoptr (AtkMetricsServer) server = new_server ();
  g_autoptr (GString) head = g_string_new ("GET /metrics HTTP/1.1\r\nHost: x\r\n");
  Client client = { .port = atk_metrics_server_get_port (server) };

  while (head->len < (1u << 20))
    g_string_append (head, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
  client.head = head->str;
  run_client (&client);
  g_assert_true (g_str_has_prefix (client.answer, "HTTP/1.1 431"));
}

/* An ordinary GET still works after all of that, and a GET with "Content-Length: 0" too. */
static void
test_get_still_served (void)
{
  g_autoptr (AtkMetricsServer) server = new_server ();
  Client plain = {
    .port = atk_metrics_server_get_port (server),
    .head = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  Client zero = {
    .port = atk_metrics_server_get_port (server),
    .head = "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
  };

  run_client (&plain);
  g_assert_true (g_str_has_prefix (plain.answer, "HTTP/1.1 200"));
  run_client (&zero);
  g_assert_true (g_str_has_prefix (zero.answer, "HTTP/1.1 200"));
}

/* ---- many connections that send nothing ---- */

#define N_IDLE 300

typedef struct
{
  guint port;
  int fds[N_IDLE];
  guint closed_by_server;
  gint64 scrape_us; /* how long the scrape in the middle of it took */
  char scrape_answer[64];
  gboolean done;
} Idlers;

static gpointer
idlers_run (gpointer user_data)
{
  Idlers *idlers = user_data;
  Client scrape = { .port = idlers->port, .head = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" };
  gint64 start;
  char byte;

  for (guint i = 0; i < N_IDLE; i++)
    {
      idlers->fds[i] = connect_to (idlers->port);
      if (i % 2 == 1) /* half of them send half a head, then nothing */
        send (idlers->fds[i], "GET /metr", 9, MSG_NOSIGNAL);
    }
  start = g_get_monotonic_time ();
  client_run (&scrape);
  idlers->scrape_us = g_get_monotonic_time () - start;
  g_strlcpy (idlers->scrape_answer, scrape.answer, sizeof idlers->scrape_answer);
  /* every idle connection is closed by the server: recv() sees the end (SO_RCVTIMEO 20 s) */
  for (guint i = 0; i < N_IDLE; i++)
    {
      if (recv (idlers->fds[i], &byte, 1, 0) <= 0)
        idlers->closed_by_server++;
      close (idlers->fds[i]);
    }
  g_atomic_int_set (&idlers->done, TRUE);
  return NULL;
}

static gboolean
idlers_done (gpointer user_data)
{
  return g_atomic_int_get (&((Idlers *)user_data)->done);
}

static gboolean
no_connections (gpointer user_data)
{
  return atk_metrics_server_get_n_connections (user_data) == 0;
}

static void
test_idle_connections_closed (void)
{
  g_autoptr (AtkMetricsServer) server = new_server ();
  Idlers *idlers = g_new0 (Idlers, 1);
  GThread *thread;
  gint64 start = g_get_monotonic_time ();
  guint max_seen = 0;

  idlers->port = atk_metrics_server_get_port (server);
  thread = g_thread_new ("idlers", idlers_run, idlers);
  while (!idlers_done (idlers) && g_get_monotonic_time () - start < 60 * G_USEC_PER_SEC)
    {
      g_main_context_iteration (NULL, TRUE);
      max_seen = MAX (max_seen, atk_metrics_server_get_n_connections (server));
    }
  g_thread_join (thread);
  g_assert_true (idlers->done);
  g_assert_cmpuint (idlers->closed_by_server, ==, N_IDLE);
  /* the cap held, and the scrape got through it in well under a second */
  g_assert_cmpuint (max_seen, <=, atk_metrics_server_get_max_connections (server));
  g_assert_true (g_str_has_prefix (idlers->scrape_answer, "HTTP/1.1 200"));
  g_assert_cmpint (idlers->scrape_us, <, G_USEC_PER_SEC);
  g_assert_true (atk_test_wait_until (NULL, no_connections, server, 10000));
  g_free (idlers);
}

/* ---- out of file descriptors ---- */

static guint accept_warnings;

/* Counts the server's warnings instead of printing them (a TAP "Bail out!" otherwise). */
static void
count_accept_warnings (const char *domain, GLogLevelFlags level, const char *message,
                       gpointer user_data)
{
  g_assert_nonnull (strstr (message, "Cannot accept metrics connections"));
  accept_warnings++;
}

static double
cpu_seconds (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec
         + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

typedef struct
{
  AtkMetricsServer *server;
  int fd;
  gboolean answered;
} Pending;

static gboolean
pending_accepted (gpointer user_data)
{
  Pending *pending = user_data;
  char buf[64];
  gssize n;

  if (!pending->answered)
    {
      n = recv (pending->fd, buf, sizeof buf, MSG_DONTWAIT);
      pending->answered = n >= 12 && memcmp (buf, "HTTP/1.1 200", 12) == 0;
    }
  return pending->answered;
}

/* Every descriptor in use: accept() fails with EMFILE. The server waits and retries with a
 * growing delay and one log line per interval, and recovers when descriptors come back. Before,
 * GSocketService retried at once: a busy loop and a warning per failure. */
static void
test_accept_failures_back_off (void)
{
  g_autoptr (AtkMetricsServer) server = new_server ();
  struct rlimit saved;
  struct rlimit low;
  g_autoptr (GArray) fillers = g_array_new (FALSE, FALSE, sizeof (int));
  Pending pending = { .server = server };
  const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  double cpu_before;
  int fd;

  g_log_set_always_fatal (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
  g_log_set_handler ("at-kafka-metrics", G_LOG_LEVEL_WARNING, count_accept_warnings, NULL);
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  /* fill every descriptor up to a low limit, but for the client's */
  low = saved;
  low.rlim_cur = 512;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &low), ==, 0);
  while ((fd = open ("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
    g_array_append_val (fillers, fd);
  g_assert_cmpint (errno, ==, EMFILE);
  close (g_array_index (fillers, int, fillers->len - 1));
  g_array_set_size (fillers, fillers->len - 1);
  pending.fd = connect_to (atk_metrics_server_get_port (server));
  g_assert_cmpint (send (pending.fd, get, strlen (get), MSG_NOSIGNAL), >, 0);

  cpu_before = cpu_seconds ();
  atk_test_run_for (NULL, 3000);
  g_assert_cmpuint (atk_metrics_server_get_accept_errors (server), >=, 1);
  g_assert_cmpuint (atk_metrics_server_get_accept_errors (server), <, 40);
  g_assert_cmpuint (accept_warnings, <=, 1);
  g_assert_cmpfloat (cpu_seconds () - cpu_before, <, 1.0);

  /* descriptors come back: the pending connection is served */
  for (guint i = 0; i < fillers->len; i++)
    close (g_array_index (fillers, int, i));
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  g_assert_true (atk_test_wait_until (NULL, pending_accepted, &pending, 10000));
  close (pending.fd);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics-abuse/body-refused", test_body_refused);
  g_test_add_func ("/metrics-abuse/chunked-refused", test_chunked_refused);
  g_test_add_func ("/metrics-abuse/big-head-refused", test_big_head_refused);
  g_test_add_func ("/metrics-abuse/get-still-served", test_get_still_served);
  g_test_add_func ("/metrics-abuse/idle-connections-closed", test_idle_connections_closed);
  g_test_add_func ("/metrics-abuse/accept-failures-back-off", test_accept_failures_back_off);
  return g_test_run ();
}
