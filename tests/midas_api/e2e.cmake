# SPDX-License-Identifier: MIT
# End-to-end tests: midas-mock-merchant on its own, the iceland-bonus-card agent against it, and
# midas-api + midas-mock-merchant driven over HTTP. Each test starts its programs on free loopback
# ports (--port 0) and stops them at the end, also when it fails.
if(TARGET midas-mock-merchant)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(midas_e2e_httplib REQUIRED IMPORTED_TARGET cpp-httplib)
  # midas_add_test passes one label through doctest's discovery (a list does not survive it), so
  # the labels and a timeout are set by a script that ctest runs after the discovered list.
  function(midas_e2e_properties target)
    set(script "${CMAKE_CURRENT_BINARY_DIR}/${target}_properties.cmake")
    file(WRITE "${script}"
"if(NOT \"\${${target}_TESTS}\" STREQUAL \"\")
  set_tests_properties(\${${target}_TESTS} PROPERTIES LABELS \"midas_api;e2e\" TIMEOUT 180
    SKIP_REGULAR_EXPRESSION [==[test cases: *0 \\|]==])
endif()
")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${script}")
  endfunction()

  set(_e2e_definitions
    MIDAS_MOCK_MERCHANT_BIN="$<TARGET_FILE:midas-mock-merchant>"
    MIDAS_MOCK_MERCHANT_KEYS_DIR="${PROJECT_SOURCE_DIR}/examples/mock_merchant/keys"
    MIDAS_E2E_LOG_DIR="${CMAKE_CURRENT_BINARY_DIR}")

  midas_add_test(NAME midas_api_e2e_mock_merchant_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_mock_merchant_test.cpp
    LABELS midas_api
    PREFIX "midas_api e2e mock merchant: "
    LIBS midas_api_core PkgConfig::midas_e2e_httplib)
  target_compile_definitions(midas_api_e2e_mock_merchant_tests PRIVATE ${_e2e_definitions})
  add_dependencies(midas_api_e2e_mock_merchant_tests midas-mock-merchant)
  midas_e2e_properties(midas_api_e2e_mock_merchant_tests)

  if(TARGET midas_api_service)
    midas_add_test(NAME midas_api_e2e_iceland_agent_tests
      SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_iceland_agent_test.cpp
      LABELS midas_api
      PREFIX "midas_api e2e iceland agent: "
      LIBS midas_api_service PkgConfig::midas_e2e_httplib)
    target_compile_definitions(midas_api_e2e_iceland_agent_tests PRIVATE ${_e2e_definitions})
    add_dependencies(midas_api_e2e_iceland_agent_tests midas-mock-merchant)
    midas_e2e_properties(midas_api_e2e_iceland_agent_tests)
  endif()

  if(TARGET midas-api)
    midas_add_test(NAME midas_api_e2e_api_tests
      SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_api_test.cpp
      LABELS midas_api
      PREFIX "midas_api e2e: "
      LIBS midas_api_core PkgConfig::midas_e2e_httplib)
    target_compile_definitions(midas_api_e2e_api_tests PRIVATE ${_e2e_definitions}
      MIDAS_API_BIN="$<TARGET_FILE:midas-api>")
    add_dependencies(midas_api_e2e_api_tests midas-mock-merchant midas-api)
    midas_e2e_properties(midas_api_e2e_api_tests)

    # The durable join on every backend; the Postgres and Redis cases need
    # MIDAS_TEST_PG_URL / MIDAS_TEST_REDIS_URL (scripts/services start) and are skipped without.
    midas_add_test(NAME midas_api_e2e_join_tests
      SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_join_test.cpp
      LABELS midas_api
      PREFIX "midas_api e2e join: "
      LIBS midas_api_core PkgConfig::midas_e2e_httplib)
    target_compile_definitions(midas_api_e2e_join_tests PRIVATE ${_e2e_definitions}
      MIDAS_API_BIN="$<TARGET_FILE:midas-api>")
    add_dependencies(midas_api_e2e_join_tests midas-mock-merchant midas-api)
    if(TARGET midasctl)
      target_compile_definitions(midas_api_e2e_join_tests PRIVATE
        MIDASCTL_BIN="$<TARGET_FILE:midasctl>")
      add_dependencies(midas_api_e2e_join_tests midasctl)
    endif()
    midas_e2e_properties(midas_api_e2e_join_tests)
  endif()
endif()
