/* at-kafka: handle resolution (DNS TXT, then HTTPS well-known), shared and cached.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-did"

#include "atk-handle-resolver.h"

#include <string.h>

#include "atk-counter-set.h"
#include "atk-did-syntax.h"
#include "atk-ttl-cache.h"

#define WELL_KNOWN_MAX_BYTES 2048

typedef struct
{
  AtkHandleResolver *self; /* a reference */
  char *handle;
  GPtrArray *tasks;               /* GTask*, the callers */
  GCancellable *cancellable;      /* the DNS lookup's: its timeout cancels it */
  GCancellable *http_cancellable; /* the HTTPS request's: cancelled when we are done with it */
  guint timeout_id;
  SoupMessage *msg;
  guint8 body[WELL_KNOWN_MAX_BYTES];
} Lookup;

struct _AtkHandleResolver
{
  GObject parent_instance;

  SoupSession *session;
  GResolver *resolver;
  char *scheme;
  guint port;
  guint dns_timeout_s;
  guint max_entries;
  gint64 ttl_us;
  gint64 negative_ttl_us;
  AtkHandleResolverClock clock;
  gpointer clock_data;

  AtkTtlCache *cache;    /* handle → its DID or the error */
  GHashTable *lookups;   /* handle → Lookup* (not owned) */
  AtkCounterSet *counts; /* kind, status */
};

G_DEFINE_FINAL_TYPE (AtkHandleResolver, atk_handle_resolver, G_TYPE_OBJECT)

static void
atk_handle_resolver_finalize (GObject *object)
{
  AtkHandleResolver *self = ATK_HANDLE_RESOLVER (object);

  atk_ttl_cache_free (self->cache);
  g_hash_table_destroy (self->lookups);
  atk_counter_set_free (self->counts);
  g_clear_object (&self->session);
  g_clear_object (&self->resolver);
  g_free (self->scheme);
  G_OBJECT_CLASS (atk_handle_resolver_parent_class)->finalize (object);
}

static void
atk_handle_resolver_class_init (AtkHandleResolverClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = atk_handle_resolver_finalize;
}

static void
atk_handle_resolver_init (AtkHandleResolver *self)
{
  static const char *const labels[] = { "kind", "status", NULL };

  self->scheme = g_strdup ("https");
  self->dns_timeout_s = 5;
  self->max_entries = 100000;
  self->ttl_us = (gint64)3600 * G_USEC_PER_SEC;
  self->negative_ttl_us = (gint64)60 * G_USEC_PER_SEC;
  self->cache = atk_ttl_cache_new (g_free);
  self->lookups = g_hash_table_new (g_str_hash, g_str_equal);
  self->counts = atk_counter_set_new (labels);
}

AtkHandleResolver *
atk_handle_resolver_new (SoupSession *session)
{
  AtkHandleResolver *self = g_object_new (ATK_TYPE_HANDLE_RESOLVER, NULL);

  self->session = g_object_ref (session);
  self->resolver = g_resolver_get_default ();
  return self;
}

void
atk_handle_resolver_set_cache (AtkHandleResolver *self, guint max_entries, guint ttl_s,
                               guint negative_ttl_s)
{
  g_return_if_fail (ATK_IS_HANDLE_RESOLVER (self));
  self->max_entries = max_entries;
  self->ttl_us = (gint64)ttl_s * G_USEC_PER_SEC;
  self->negative_ttl_us = (gint64)negative_ttl_s * G_USEC_PER_SEC;
  atk_ttl_cache_set_max (self->cache, max_entries);
}

void
atk_handle_resolver_set_dns_timeout (AtkHandleResolver *self, guint seconds)
{
  g_return_if_fail (ATK_IS_HANDLE_RESOLVER (self));
  self->dns_timeout_s = MAX (seconds, 1u);
}

void
atk_handle_resolver_set_well_known (AtkHandleResolver *self, const char *scheme, guint port)
{
  g_return_if_fail (ATK_IS_HANDLE_RESOLVER (self));
  g_return_if_fail (g_strcmp0 (scheme, "http") == 0 || g_strcmp0 (scheme, "https") == 0);
  g_free (self->scheme);
  self->scheme = g_strdup (scheme);
  self->port = port;
}

void
atk_handle_resolver_set_clock (AtkHandleResolver *self, AtkHandleResolverClock clock,
                               gpointer user_data)
{
  g_return_if_fail (ATK_IS_HANDLE_RESOLVER (self));
  self->clock = clock;
  self->clock_data = user_data;
}

static gint64
now_us (AtkHandleResolver *self)
{
  return self->clock != NULL ? self->clock (self->clock_data) : g_get_monotonic_time ();
}

/* ---- counters ---- */

static void
count (AtkHandleResolver *self, const char *kind, const char *status)
{
  const char *values[] = { kind, status, NULL };

  atk_counter_set_add (self->counts, values);
}

guint64
atk_handle_resolver_get_request_count (AtkHandleResolver *self, const char *kind,
                                       const char *status)
{
  const char *values[] = { kind, status, NULL };

  g_return_val_if_fail (ATK_IS_HANDLE_RESOLVER (self), 0);
  return atk_counter_set_get (self->counts, values);
}

guint
atk_handle_resolver_get_cache_size (AtkHandleResolver *self)
{
  g_return_val_if_fail (ATK_IS_HANDLE_RESOLVER (self), 0);
  return atk_ttl_cache_size (self->cache);
}

void
atk_handle_resolver_render_prometheus (AtkHandleResolver *self, GString *out)
{
  g_return_if_fail (ATK_IS_HANDLE_RESOLVER (self));
  atk_counter_set_render (self->counts, out, "atkafka_handle_requests",
                          "Handle verification lookups (DNS TXT, HTTPS well-known, cache) by "
                          "status.");
}

static const char *
error_status (const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)
      || g_error_matches (error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND))
    return "not_found";
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return "timeout";
  return "error";
}

/* ---- the cache ---- */

static void
cache_put (AtkHandleResolver *self, const char *handle, const char *did, const GError *error)
{
  gint64 ttl = did != NULL ? self->ttl_us : self->negative_ttl_us;

  if (self->max_entries == 0 || ttl <= 0)
    return;
  atk_ttl_cache_put (self->cache, handle, g_strdup (did), error, now_us (self) + ttl);
}

void
atk_handle_resolver_forget (AtkHandleResolver *self, const char *handle)
{
  g_return_if_fail (ATK_IS_HANDLE_RESOLVER (self));
  atk_ttl_cache_remove (self->cache, handle);
}

/* ---- lookups ---- */

static void
finish (Lookup *lookup, const char *did, const GError *error)
{
  AtkHandleResolver *self = lookup->self;

  g_hash_table_remove (self->lookups, lookup->handle);
  cache_put (self, lookup->handle, did, error);
  for (guint i = 0; i < lookup->tasks->len; i++)
    {
      GTask *task = lookup->tasks->pdata[i];

      if (did != NULL)
        g_task_return_pointer (task, g_strdup (did), g_free);
      else
        g_task_return_error (task, g_error_copy (error));
    }
  g_clear_handle_id (&lookup->timeout_id, g_source_remove);
  g_clear_object (&lookup->msg);
  g_ptr_array_unref (lookup->tasks);
  g_object_unref (lookup->cancellable);
  g_object_unref (lookup->http_cancellable);
  g_free (lookup->handle);
  g_object_unref (lookup->self);
  g_free (lookup);
}

static void
on_stream_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
  g_object_unref (source);
}

/* Done with an answer's body, read or not: whatever the server still sends is not read (the
 * request is cancelled: the connection goes), and nothing here waits for it. */
static void
release_stream (Lookup *lookup, GInputStream *stream)
{
  g_cancellable_cancel (lookup->http_cancellable);
  g_input_stream_close_async (stream, G_PRIORITY_DEFAULT, NULL, on_stream_closed, NULL);
}

static void
on_body (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Lookup *lookup = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *did = NULL;
  gsize n = 0;

  if (g_input_stream_read_all_finish (G_INPUT_STREAM (source), result, &n, &error))
    did = atk_handle_did_from_well_known ((const char *)lookup->body, n, &error);
  release_stream (lookup, G_INPUT_STREAM (source));
  count (lookup->self, "well_known", did != NULL ? "ok" : error_status (error));
  finish (lookup, did, error);
}

static void
on_well_known (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Lookup *lookup = user_data;
  g_autoptr (GError) error = NULL;
  GInputStream *stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  guint status = soup_message_get_status (lookup->msg);
  goffset length
      = soup_message_headers_get_content_length (soup_message_get_response_headers (lookup->msg));

  if (stream != NULL && status != SOUP_STATUS_OK)
    g_set_error (&error, G_IO_ERROR,
                 status == SOUP_STATUS_NOT_FOUND ? G_IO_ERROR_NOT_FOUND : G_IO_ERROR_FAILED,
                 "%s: HTTP %u", lookup->handle, status);
  else if (stream != NULL && length > WELL_KNOWN_MAX_BYTES)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: answer too large",
                 lookup->handle);
  if (error != NULL)
    {
      if (stream != NULL)
        release_stream (lookup, stream);
      g_debug ("Well-known lookup of %s: %s", lookup->handle, error->message);
      count (lookup->self, "well_known", error_status (error));
      finish (lookup, NULL, error);
      return;
    }
  /* The first 2 kB; a longer body is cut there (and then is no DID). */
  g_input_stream_read_all_async (stream, lookup->body, sizeof lookup->body, G_PRIORITY_DEFAULT,
                                 NULL, on_body, lookup);
}

static void
lookup_well_known (Lookup *lookup)
{
  AtkHandleResolver *self = lookup->self;
  g_autofree char *url = NULL;

  if (self->port != 0)
    url = g_strdup_printf ("%s://%s:%u/.well-known/atproto-did", self->scheme, lookup->handle,
                           self->port);
  else
    url = g_strdup_printf ("%s://%s/.well-known/atproto-did", self->scheme, lookup->handle);
  lookup->msg = soup_message_new (SOUP_METHOD_GET, url);
  if (lookup->msg == NULL)
    {
      g_autoptr (GError) error
          = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Bad URL %s", url);
      count (self, "well_known", "error");
      finish (lookup, NULL, error);
      return;
    }
  soup_session_send_async (self->session, lookup->msg, G_PRIORITY_DEFAULT, lookup->http_cancellable,
                           on_well_known, lookup);
}

static void
on_txt (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Lookup *lookup = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *did = NULL;
  GList *records = g_resolver_lookup_records_finish (G_RESOLVER (source), result, &error);

  g_clear_handle_id (&lookup->timeout_id, g_source_remove);
  for (GList *l = records; l != NULL; l = l->next)
    {
      g_autofree const char **strings = NULL;
      g_autoptr (GString) text = g_string_new (NULL);

      g_variant_get (l->data, "(^a&s)", &strings);
      for (guint i = 0; strings[i] != NULL; i++)
        g_string_append (text, strings[i]);
      g_ptr_array_add (texts, g_string_free (g_steal_pointer (&text), FALSE));
    }
  g_list_free_full (records, (GDestroyNotify)g_variant_unref);
  g_ptr_array_add (texts, NULL);
  if (error == NULL)
    did = atk_handle_did_from_txt ((const char *const *)texts->pdata, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_clear_error (&error);
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "DNS lookup timed out");
    }
  count (lookup->self, "dns", did != NULL ? "ok" : error_status (error));
  if (did != NULL)
    {
      finish (lookup, did, NULL);
      return;
    }
  g_debug ("DNS lookup of _atproto.%s: %s", lookup->handle, error->message);
  lookup_well_known (lookup);
}

static gboolean
on_dns_timeout (gpointer user_data)
{
  Lookup *lookup = user_data;

  lookup->timeout_id = 0;
  g_cancellable_cancel (lookup->cancellable);
  return G_SOURCE_REMOVE;
}

/* As the reference is configured: no DNS for the big hosting providers' subdomains. */
static gboolean
skip_dns (const char *handle)
{
  return g_str_has_suffix (handle, ".bsky.social")
         || g_str_has_suffix (handle, ".staging.bsky.dev");
}

void
atk_handle_resolver_resolve_async (AtkHandleResolver *self, const char *handle,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  Lookup *lookup;
  gpointer did;
  const GError *error;

  g_return_if_fail (ATK_IS_HANDLE_RESOLVER (self));
  task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (task, atk_handle_resolver_resolve_async);

  if (atk_ttl_cache_lookup (self->cache, handle, now_us (self), &did, &error))
    {
      count (self, "cached", did != NULL ? "ok" : error_status (error));
      if (did != NULL)
        g_task_return_pointer (task, g_strdup (did), g_free);
      else
        g_task_return_error (task, g_error_copy (error));
      return;
    }
  lookup = g_hash_table_lookup (self->lookups, handle);
  if (lookup != NULL)
    {
      g_ptr_array_add (lookup->tasks, g_steal_pointer (&task));
      return;
    }
  lookup = g_new0 (Lookup, 1);
  lookup->self = g_object_ref (self);
  lookup->handle = g_strdup (handle);
  lookup->tasks = g_ptr_array_new_with_free_func (g_object_unref);
  lookup->cancellable = g_cancellable_new ();
  lookup->http_cancellable = g_cancellable_new ();
  g_ptr_array_add (lookup->tasks, g_steal_pointer (&task));
  g_hash_table_insert (self->lookups, lookup->handle, lookup);
  if (skip_dns (handle))
    {
      lookup_well_known (lookup);
      return;
    }
  {
    g_autofree char *name = g_strconcat ("_atproto.", handle, NULL);

    lookup->timeout_id = g_timeout_add_seconds (self->dns_timeout_s, on_dns_timeout, lookup);
    g_resolver_lookup_records_async (self->resolver, name, G_RESOLVER_RECORD_TXT,
                                     lookup->cancellable, on_txt, lookup);
  }
}

char *
atk_handle_resolver_resolve_finish (AtkHandleResolver *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
