# SPDX-License-Identifier: MIT
# cmake -DBUILD_DIR=<midas build> -DPREFIX=<dir> -P install.cmake
# Installs the midas build tree into an empty PREFIX (the fixture of the package tests) and checks
# that the package files a consumer needs are there.
cmake_minimum_required(VERSION 3.21)
if(NOT BUILD_DIR OR NOT PREFIX)
  message(FATAL_ERROR "install.cmake: pass -DBUILD_DIR=... -DPREFIX=...")
endif()

file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE rc)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} --prefix ${PREFIX} failed (${rc})")
endif()

set(missing "")
foreach(pattern
    include/midas/midas.hpp
    include/midas/version.hpp
    lib*/libmidas.*
    lib*/cmake/midas/midasConfig.cmake
    lib*/cmake/midas/midasConfigVersion.cmake
    lib*/cmake/midas/midasTargets.cmake)
  file(GLOB found "${PREFIX}/${pattern}")
  if(NOT found)
    list(APPEND missing "${pattern}")
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "installed into ${PREFIX}, but these are missing: ${missing}")
endif()
message(STATUS "midas installed into ${PREFIX}")
