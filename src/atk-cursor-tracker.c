/* SPDX-License-Identifier: MIT */
#include "atk-cursor-tracker.h"
