/* at-kafka: what a pipeline is made of, from the configuration: its input and its metadata
 * stage. The one place that knows the kinds of input.
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-config.h"
#include "atk-input.h"
#include "atk-metadata-stage.h"

G_BEGIN_DECLS

/* --ozone-pds-host, --tap-host, else the relay. Ozone mode logs in here: refused credentials
 * stop the start. */
AtkInput *atk_pipeline_build_input (const AtkConfig *config, GError **error);

/* The metadata stage, when event metadata or a service filter asks for DID lookups; NULL
 * without an error when none is needed. */
AtkMetadataStage *atk_pipeline_build_stage (const AtkConfig *config, GError **error);

G_END_DECLS
