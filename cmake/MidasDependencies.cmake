# SPDX-License-Identifier: MIT
# Finds what midas links. Included by the build and, installed, by midasConfig.cmake, so a
# consumer re-finds exactly the dependencies midas was built with.
include(CMakeFindDependencyMacro)

macro(midas_find_dep)
  if(CMAKE_FIND_PACKAGE_NAME)  # inside find_package(midas): let the caller's find fail softly
    find_dependency(${ARGV})
  else()
    find_package(${ARGV} REQUIRED)
  endif()
endmacro()

set(THREADS_PREFER_PTHREAD_FLAG ON)
midas_find_dep(Threads)
midas_find_dep(Boost 1.74)
midas_find_dep(nlohmann_json 3.10)

if(MIDAS_WITH_REDIS AND NOT TARGET hiredis::hiredis)
  find_package(hiredis CONFIG QUIET)  # hiredis >= 1.0 ships a target
  if(NOT TARGET hiredis::hiredis)     # Debian's 0.14: pkg-config only
    if(CMAKE_FIND_PACKAGE_NAME)  # inside find_package(midas): no hiredis means midas is not found
      find_package(PkgConfig QUIET)
      if(PKG_CONFIG_FOUND)
        pkg_check_modules(midas_hiredis QUIET IMPORTED_TARGET hiredis)
      endif()
      if(NOT midas_hiredis_FOUND)
        set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE
            "midas was built with the Redis backend and needs hiredis (pkg-config module hiredis), not found")
        set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
        return()
      endif()
    else()
      find_package(PkgConfig REQUIRED)
      pkg_check_modules(midas_hiredis REQUIRED IMPORTED_TARGET hiredis)
    endif()
    add_library(hiredis::hiredis INTERFACE IMPORTED)  # not an ALIAS: the export must name hiredis::hiredis
    target_link_libraries(hiredis::hiredis INTERFACE PkgConfig::midas_hiredis)
  endif()
endif()

if(MIDAS_WITH_POSTGRES AND NOT TARGET PostgreSQL::PostgreSQL)
  midas_find_dep(PostgreSQL)
endif()
