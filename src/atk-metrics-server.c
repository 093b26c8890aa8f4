/* SPDX-License-Identifier: MIT */
#include "atk-metrics-server.h"
