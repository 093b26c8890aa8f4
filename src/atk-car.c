/* SPDX-License-Identifier: MIT */
#include "atk-car.h"
