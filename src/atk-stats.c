/* SPDX-License-Identifier: MIT */
#include "atk-stats.h"
