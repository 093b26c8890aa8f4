/* SPDX-License-Identifier: MIT */
#include "atk-frame.h"
