/* at-kafka: DID resolution with a bounded, expiring cache.
 *
 * A "job" is one lookup of one DID (an AtkDidFetch: the document, then with details the audit
 * log, the profile and the handle side by side) and its callers. Callers asking for a DID
 * whose job is running join it. A job that
 * invalidate() overtook is detached: it still answers its callers, but fills no cache and
 * takes no new callers, so an #identity event is always followed by a fresh lookup.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-did"

#include "atk-did-resolver.h"

#include <libsoup/soup.h>
#include <string.h>

#include "atk-counter-set.h"
#include "atk-did-fetch.h"
#include "atk-did-syntax.h"
#include "atk-error.h"
#include "atk-ttl-cache.h"

#define USER_AGENT "at-kafka/" ATK_VERSION

/* The callers of one DID's fetch. */
typedef struct
{
  AtkDidResolver *self;
  AtkDidFetch *fetch;
  GPtrArray *tasks;  /* GTask*, the callers */
  gboolean detached; /* invalidated while running: answer, but do not cache */
  gboolean started;
} Job;

struct _AtkDidResolver
{
  GObject parent_instance;

  AtkDidFetchPeers peers; /* session, handle resolver, URLs, fetch_details */
  guint max_entries;
  gint64 ttl_us;
  gint64 negative_ttl_us;
  guint max_concurrency;
  AtkDidResolverClock clock;
  gpointer clock_data;

  AtkTtlCache *cache; /* did → AtkDidInfo* or the error */
  GHashTable *jobs;   /* did → Job* (not owned): running or queued, not detached */
  GQueue queued;      /* Job* waiting for a free slot */
  guint running;

  AtkCounterSet *plc_counts; /* kind, status, cached */
  guint64 *cached_doc_hits;  /* its did_doc/ok/true count, once there is one */
  AtkCounterSet *api_counts;
  guint64 network_requests;
};

G_DEFINE_FINAL_TYPE (AtkDidResolver, atk_did_resolver, G_TYPE_OBJECT)

static void start_job (Job *job);
static void count_fetched (gpointer user_data, const char *service, const char *kind,
                           const char *status);

/* ---- construction ---- */

static void
atk_did_resolver_finalize (GObject *object)
{
  AtkDidResolver *self = ATK_DID_RESOLVER (object);

  /* Jobs hold their callers' tasks, which hold us: none can be left here. */
  g_hash_table_destroy (self->jobs);
  atk_ttl_cache_free (self->cache);
  atk_counter_set_free (self->plc_counts);
  atk_counter_set_free (self->api_counts);
  g_clear_object (&self->peers.handles);
  g_clear_object (&self->peers.session);
  g_free (self->peers.plc_url);
  g_free (self->peers.api_url);
  g_free (self->peers.did_web_scheme);
  G_OBJECT_CLASS (atk_did_resolver_parent_class)->finalize (object);
}

static void
atk_did_resolver_class_init (AtkDidResolverClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = atk_did_resolver_finalize;
}

static void
atk_did_resolver_init (AtkDidResolver *self)
{
  static const char *const labels[] = { "kind", "status", "cached", NULL };

  self->peers.did_web_scheme = g_strdup ("https");
  self->peers.count = count_fetched;
  self->peers.count_data = self;
  self->max_entries = 100000;
  self->ttl_us = (gint64)3600 * G_USEC_PER_SEC;
  self->negative_ttl_us = (gint64)60 * G_USEC_PER_SEC;
  self->max_concurrency = 32;
  self->cache = atk_ttl_cache_new ((GDestroyNotify)atk_did_info_unref);
  self->jobs = g_hash_table_new (g_str_hash, g_str_equal);
  self->plc_counts = atk_counter_set_new (labels);
  self->api_counts = atk_counter_set_new (labels);
  g_queue_init (&self->queued);
}

static char *
check_url (const char *url, const char *what, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  g_autofree char *text = NULL;
  const char *scheme;

  scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   "Invalid %s “%s”: expected an http or https URL", what, url);
      return NULL;
    }
  text = g_strdup (url);
  while (*text != '\0' && text[strlen (text) - 1] == '/')
    text[strlen (text) - 1] = '\0';
  return g_steal_pointer (&text);
}

AtkDidResolver *
atk_did_resolver_new (const char *plc_url, const char *api_url, GError **error)
{
  g_autoptr (AtkDidResolver) self = NULL;
  g_autofree char *plc = NULL;
  g_autofree char *api = NULL;

  g_return_val_if_fail (plc_url != NULL, NULL);

  if ((plc = check_url (plc_url, "PLC host", error)) == NULL)
    return NULL;
  if (api_url != NULL && *api_url != '\0' && (api = check_url (api_url, "API host", error)) == NULL)
    return NULL;

  self = g_object_new (ATK_TYPE_DID_RESOLVER, NULL);
  self->peers.plc_url = g_steal_pointer (&plc);
  self->peers.api_url = g_steal_pointer (&api);
  self->peers.session = soup_session_new_with_options (
      "user-agent", USER_AGENT, "timeout", 5, "max-conns", 64, "max-conns-per-host", 32, NULL);
  self->peers.handles = atk_handle_resolver_new (self->peers.session);
  return g_steal_pointer (&self);
}

void
atk_did_resolver_set_fetch_details (AtkDidResolver *self, gboolean fetch_details)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  self->peers.fetch_details = !!fetch_details;
}

void
atk_did_resolver_set_cache (AtkDidResolver *self, guint max_entries, guint ttl_s,
                            guint negative_ttl_s)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  self->max_entries = max_entries;
  self->ttl_us = (gint64)ttl_s * G_USEC_PER_SEC;
  self->negative_ttl_us = (gint64)negative_ttl_s * G_USEC_PER_SEC;
  atk_ttl_cache_set_max (self->cache, max_entries);
  atk_handle_resolver_set_cache (self->peers.handles, max_entries, ttl_s, negative_ttl_s);
}

void
atk_did_resolver_set_timeout (AtkDidResolver *self, guint seconds)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  g_object_set (self->peers.session, "timeout", MAX (seconds, 1u), NULL);
  atk_handle_resolver_set_dns_timeout (self->peers.handles, seconds);
}

void
atk_did_resolver_set_handle_well_known (AtkDidResolver *self, const char *scheme, guint port)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  atk_handle_resolver_set_well_known (self->peers.handles, scheme, port);
}

AtkHandleResolver *
atk_did_resolver_get_handle_resolver (AtkDidResolver *self)
{
  g_return_val_if_fail (ATK_IS_DID_RESOLVER (self), NULL);
  return self->peers.handles;
}

void
atk_did_resolver_set_max_concurrency (AtkDidResolver *self, guint max)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  self->max_concurrency = MAX (max, 1u);
}

void
atk_did_resolver_set_did_web_scheme (AtkDidResolver *self, const char *scheme)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  g_return_if_fail (g_strcmp0 (scheme, "http") == 0 || g_strcmp0 (scheme, "https") == 0);
  g_free (self->peers.did_web_scheme);
  self->peers.did_web_scheme = g_strdup (scheme);
}

void
atk_did_resolver_set_clock (AtkDidResolver *self, AtkDidResolverClock clock, gpointer user_data)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  self->clock = clock;
  self->clock_data = user_data;
  atk_handle_resolver_set_clock (self->peers.handles, clock, user_data);
}

static gint64
now_us (AtkDidResolver *self)
{
  return self->clock != NULL ? self->clock (self->clock_data) : g_get_monotonic_time ();
}

/* ---- counters ---- */

static guint64 *
count (AtkDidResolver *self, const char *service, const char *kind, const char *status,
       gboolean cached)
{
  const char *values[] = { kind, status, cached ? "true" : "false", NULL };

  if (!cached)
    self->network_requests++;
  return atk_counter_set_add (g_str_equal (service, "plc") ? self->plc_counts : self->api_counts,
                              values);
}

static void
count_fetched (gpointer user_data, const char *service, const char *kind, const char *status)
{
  count (user_data, service, kind, status, FALSE);
}

guint64
atk_did_resolver_get_request_count (AtkDidResolver *self, const char *service, const char *kind,
                                    const char *status, const char *cached)
{
  const char *values[] = { kind, status, cached, NULL };

  g_return_val_if_fail (ATK_IS_DID_RESOLVER (self), 0);
  return atk_counter_set_get (g_str_equal (service, "plc") ? self->plc_counts : self->api_counts,
                              values);
}

guint64
atk_did_resolver_get_network_requests (AtkDidResolver *self)
{
  g_return_val_if_fail (ATK_IS_DID_RESOLVER (self), 0);
  return self->network_requests;
}

guint
atk_did_resolver_get_cache_size (AtkDidResolver *self)
{
  g_return_val_if_fail (ATK_IS_DID_RESOLVER (self), 0);
  return atk_ttl_cache_size (self->cache);
}

void
atk_did_resolver_render_prometheus (AtkDidResolver *self, GString *out)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));

  atk_counter_set_render (self->plc_counts, out, "atkafka_plc_requests",
                          "DID document and audit log lookups by kind, status and cache use.");
  atk_counter_set_render (self->api_counts, out, "atkafka_api_requests",
                          "AppView profile lookups by kind, status and cache use.");
  g_string_append_printf (out,
                          "# HELP atkafka_cache_size Entries in the identity caches.\n"
                          "# TYPE atkafka_cache_size gauge\n"
                          "atkafka_cache_size{kind=\"did_doc\"} %u\n"
                          "atkafka_cache_size{kind=\"handle\"} %u\n",
                          atk_ttl_cache_size (self->cache),
                          atk_handle_resolver_get_cache_size (self->peers.handles));
  atk_handle_resolver_render_prometheus (self->peers.handles, out);
}

/* ---- the cache ---- */

static void
cache_put (AtkDidResolver *self, const char *did, AtkDidInfo *info, const GError *error)
{
  gint64 ttl = info != NULL ? self->ttl_us : self->negative_ttl_us;

  /* A handle that did not verify may be being set up: ask again as soon as for a failure. */
  if (info != NULL && info->declared_handle != NULL
      && g_strcmp0 (info->handle, ATK_HANDLE_INVALID) == 0)
    ttl = MIN (ttl, self->negative_ttl_us);
  if (self->max_entries == 0 || ttl <= 0)
    return;
  atk_ttl_cache_put (self->cache, did, info != NULL ? atk_did_info_ref (info) : NULL, error,
                     now_us (self) + ttl);
}

void
atk_did_resolver_cache_insert (AtkDidResolver *self, const char *did, AtkDidInfo *info,
                               const GError *error)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  g_return_if_fail (did != NULL);
  g_return_if_fail ((info != NULL) != (error != NULL));
  cache_put (self, did, info, error);
}

AtkDidInfo *
atk_did_resolver_lookup_cached (AtkDidResolver *self, const char *did, GError **error)
{
  gpointer info;
  const GError *cached_error;

  g_return_val_if_fail (ATK_IS_DID_RESOLVER (self), NULL);
  g_return_val_if_fail (did != NULL, NULL);

  if (!atk_ttl_cache_lookup (self->cache, did, now_us (self), &info, &cached_error))
    return NULL;
  /* once per message with event metadata: the counter of hits is kept at hand */
  if (info != NULL && self->cached_doc_hits != NULL)
    (*self->cached_doc_hits)++;
  else if (info != NULL)
    self->cached_doc_hits = count (self, "plc", "did_doc", "ok", TRUE);
  else
    count (self, "plc", "did_doc", atk_did_fetch_status (cached_error), TRUE);
  if (info == NULL)
    {
      g_propagate_error (error, g_error_copy (cached_error));
      return NULL;
    }
  return atk_did_info_ref (info);
}

void
atk_did_resolver_invalidate (AtkDidResolver *self, const char *did)
{
  AtkDidInfo *info;
  Job *job;

  g_return_if_fail (ATK_IS_DID_RESOLVER (self));

  /* the handle may have moved too */
  info = atk_ttl_cache_peek (self->cache, did);
  if (info != NULL && info->declared_handle != NULL)
    atk_handle_resolver_forget (self->peers.handles, info->declared_handle);
  atk_ttl_cache_remove (self->cache, did);
  job = g_hash_table_lookup (self->jobs, did);
  if (job != NULL && job->started)
    {
      job->detached = TRUE;
      g_hash_table_remove (self->jobs, did);
    }
}

/* ---- jobs ---- */

static void
job_free (Job *job)
{
  g_ptr_array_unref (job->tasks);
  atk_did_fetch_free (job->fetch);
  g_free (job);
}

static void
finish_job (AtkDidFetch *fetch, gpointer user_data)
{
  Job *job = user_data;
  AtkDidResolver *self = job->self;
  const char *did = atk_did_fetch_get_did (fetch);
  AtkDidInfo *info = atk_did_fetch_get_info (fetch);
  const GError *error = atk_did_fetch_get_error (fetch);
  g_autoptr (GPtrArray) tasks = g_ptr_array_ref (job->tasks);

  if (!job->detached)
    {
      g_hash_table_remove (self->jobs, did);
      cache_put (self, did, info, error);
    }
  self->running--;
  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = tasks->pdata[i];

      if (info != NULL)
        g_task_return_pointer (task, atk_did_info_ref (info), (GDestroyNotify)atk_did_info_unref);
      else
        g_task_return_error (task, g_error_copy (error));
    }
  job_free (job);

  while (self->running < self->max_concurrency && self->queued.length > 0)
    start_job (g_queue_pop_head (&self->queued));
}

static void
start_job (Job *job)
{
  job->started = TRUE;
  job->self->running++;
  atk_did_fetch_start (job->fetch, &job->self->peers, finish_job, job);
}

static Job *
job_new (AtkDidResolver *self, const char *did)
{
  Job *job = g_new0 (Job, 1);

  job->self = self;
  job->fetch = atk_did_fetch_new (did);
  job->tasks = g_ptr_array_new_with_free_func (g_object_unref);
  return job;
}

void
atk_did_resolver_resolve_async (AtkDidResolver *self, const char *did, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidInfo) info = NULL;
  Job *job;

  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  g_return_if_fail (did != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, atk_did_resolver_resolve_async);

  if (!g_str_has_prefix (did, "did:") || !atk_did_is_plausible (did))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               "Not a resolvable DID: “%.100s”", did);
      return;
    }
  info = atk_did_resolver_lookup_cached (self, did, &error);
  if (info != NULL)
    {
      g_task_return_pointer (task, g_steal_pointer (&info), (GDestroyNotify)atk_did_info_unref);
      return;
    }
  if (error != NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  job = g_hash_table_lookup (self->jobs, did);
  if (job == NULL)
    {
      job = job_new (self, did);
      g_hash_table_insert (self->jobs, (gpointer)atk_did_fetch_get_did (job->fetch), job);
      g_ptr_array_add (job->tasks, g_steal_pointer (&task));
      if (self->running < self->max_concurrency)
        start_job (job);
      else
        g_queue_push_tail (&self->queued, job);
      return;
    }
  g_ptr_array_add (job->tasks, g_steal_pointer (&task));
}

AtkDidInfo *
atk_did_resolver_resolve_finish (AtkDidResolver *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
