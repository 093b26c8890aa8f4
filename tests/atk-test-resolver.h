/* Resolving DIDs synchronously for the tests of AtkDidResolver, and what they ask of the
 * test DNS server (tests/integration/loopdns.py) and count.
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-did-resolver.h"

G_BEGIN_DECLS

typedef struct
{
  gboolean done;
  AtkDidInfo *info;
  GError *error;
} AtkTestResolved;

/* Resolves did and waits (20 s at most, asserted); the caller clears the result. */
void atk_test_resolve (AtkDidResolver *resolver, const char *did, AtkTestResolved *result);
/* The same in two steps, for lookups that overlap. */
void atk_test_resolve_start (AtkDidResolver *resolver, const char *did, AtkTestResolved *result);
void atk_test_resolve_wait (AtkTestResolved *result);
void atk_test_resolved_clear (AtkTestResolved *result);

/* An AtkDidResolver for this PLC directory and AppView (or NULL); asserts it is made. */
AtkDidResolver *atk_test_resolver_new (const char *plc_url, const char *api_url);

/* Network lookups of DID documents with this status; handle lookups by kind and status. */
guint64 atk_test_doc_requests (AtkDidResolver *resolver, const char *status);
guint64 atk_test_handle_requests (AtkDidResolver *resolver, const char *kind, const char *status);

/* Writes the test DNS server's zone ($ATK_TEST_DNS_ZONE): TXT records, names answering
 * A 127.0.0.1, dropped names. */
void atk_test_set_dns_zone (const char *json);

G_END_DECLS
