/* at-kafka: the syntax of DIDs and handles, the answers a handle resolves through, and the
 * URL of a did:web document.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Syntax checks as the AT Protocol specifies them (handle: ≤ 253 characters, dot-separated
 * labels, the last starting with a letter; DID: did:method:identifier, ≤ 2048 bytes). */
gboolean atk_handle_is_valid (const char *handle);
/* FALSE for the TLDs no handle may have (.local, .arpa, .invalid, .localhost, .internal,
 * .example, .onion, .alt). */
gboolean atk_handle_tld_allowed (const char *handle);
gboolean atk_did_is_valid (const char *did, gsize len);

/* The DID a handle's _atproto TXT record names: the first of `records` (each one TXT record,
 * its strings joined) that starts with "did=". NULL with G_IO_ERROR_NOT_FOUND when none does,
 * G_IO_ERROR_INVALID_DATA when that one is no DID. */
char *atk_handle_did_from_txt (const char *const *records, GError **error);

/* The DID in a /.well-known/atproto-did body (surrounding white space ignored); NULL with
 * G_IO_ERROR_INVALID_DATA when it is not one. */
char *atk_handle_did_from_well_known (const char *body, gsize len, GError **error);

/* The URL of a did:web's document (scheme "https", or "http" for tests); NULL for a DID that
 * names no host. */
char *atk_did_web_url (const char *did, const char *scheme);
/* Only characters a DID may hold, at most 2048 of them (a cheap check before any lookup). */
gboolean atk_did_is_plausible (const char *did);

G_END_DECLS
