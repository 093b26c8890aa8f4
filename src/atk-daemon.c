/* SPDX-License-Identifier: MIT */
#include "atk-daemon.h"
