// SPDX-License-Identifier: MIT
#pragma once

/// The midas version; CMake reads these three lines.
#define MIDAS_VERSION_MAJOR 0
#define MIDAS_VERSION_MINOR 1
#define MIDAS_VERSION_PATCH 0
