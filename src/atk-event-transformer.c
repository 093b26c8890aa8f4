/* SPDX-License-Identifier: MIT */
#include "atk-event-transformer.h"
