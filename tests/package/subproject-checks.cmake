# SPDX-License-Identifier: MIT
# Included by the add_subdirectory and FetchContent consumers once midas is added as a subproject.
# midas_check_subproject(<midas source dir>) fails the configure unless midas behaves as a guest:
# no tests, examples or install rules of its own, and nothing of its warnings leaking to consumers.
# midas_add_consumer() then builds the shared consumer.cpp as `consumer` against midas::midas.

function(midas_check_subproject midas_dir)
  foreach(option MIDAS_BUILD_TESTS MIDAS_BUILD_EXAMPLES MIDAS_INSTALL)
    if(${option})
      message(FATAL_ERROR "${option} is ON although midas is not the top-level project")
    endif()
  endforeach()
  # The brief names midas_test_main; the others would appear if tests or examples were added anyway.
  foreach(target midas_test_main midas_quickstart)
    if(TARGET ${target})
      message(FATAL_ERROR "target ${target} exists: midas built its tests/examples as a subproject")
    endif()
  endforeach()
  get_property(subdirs DIRECTORY "${midas_dir}" PROPERTY SUBDIRECTORIES)
  foreach(dir IN LISTS subdirs)
    if(dir MATCHES "/(tests|examples)$")
      message(FATAL_ERROR "midas added its subdirectory ${dir} as a subproject")
    endif()
  endforeach()
  get_property(tests DIRECTORY "${midas_dir}" PROPERTY TESTS)
  if(tests)
    message(FATAL_ERROR "midas registered tests as a subproject: ${tests}")
  endif()

  if(NOT TARGET midas::midas)
    message(FATAL_ERROR "no target midas::midas")
  endif()
  get_target_property(options midas::midas INTERFACE_COMPILE_OPTIONS)
  if(options)
    message(FATAL_ERROR "midas::midas pushes compile options on its users: ${options}")
  endif()
endfunction()

function(midas_add_consumer)
  add_executable(consumer ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/consumer.cpp)
  target_link_libraries(consumer PRIVATE midas::midas)
  # The public headers must be clean under a user's usual warnings too.
  target_compile_options(consumer PRIVATE -Wall -Wextra -Wpedantic -Werror)
  foreach(backend REDIS POSTGRES)
    if(MIDAS_WITH_${backend})
      target_compile_definitions(consumer PRIVATE MIDAS_EXPECT_${backend}=1)
    else()
      target_compile_definitions(consumer PRIVATE MIDAS_EXPECT_${backend}=0)
    endif()
  endforeach()
  set_target_properties(consumer PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
endfunction()
