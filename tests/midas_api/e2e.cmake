# SPDX-License-Identifier: MIT
# End-to-end tests: midas-mock-merchant on its own, the iceland-bonus-card agent against it, and
# midas-api + midas-mock-merchant driven over HTTP. Each test starts its programs on free loopback
# ports (--port 0) and stops them at the end, also when it fails.
if(TARGET midas-mock-merchant)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(midas_e2e_httplib REQUIRED IMPORTED_TARGET cpp-httplib)
  set(_e2e_definitions
    MIDAS_MOCK_MERCHANT_BIN="$<TARGET_FILE:midas-mock-merchant>"
    MIDAS_MOCK_MERCHANT_KEYS_DIR="${PROJECT_SOURCE_DIR}/examples/mock_merchant/keys"
    MIDAS_E2E_LOG_DIR="${CMAKE_CURRENT_BINARY_DIR}")

  midas_add_test(NAME midas_api_e2e_mock_merchant_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_mock_merchant_test.cpp
    LABELS midas_api e2e
    PREFIX "midas_api e2e mock merchant: "
    LIBS midas_api_core PkgConfig::midas_e2e_httplib)
  target_compile_definitions(midas_api_e2e_mock_merchant_tests PRIVATE ${_e2e_definitions})
  add_dependencies(midas_api_e2e_mock_merchant_tests midas-mock-merchant)

  if(TARGET midas_api_service)
    midas_add_test(NAME midas_api_e2e_iceland_agent_tests
      SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_iceland_agent_test.cpp
      LABELS midas_api e2e
      PREFIX "midas_api e2e iceland agent: "
      LIBS midas_api_service PkgConfig::midas_e2e_httplib)
    target_compile_definitions(midas_api_e2e_iceland_agent_tests PRIVATE ${_e2e_definitions})
    add_dependencies(midas_api_e2e_iceland_agent_tests midas-mock-merchant)
  endif()

  if(TARGET midas-api AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/e2e_api_test.cpp)
    midas_add_test(NAME midas_api_e2e_api_tests
      SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_api_test.cpp
      LABELS midas_api e2e
      PREFIX "midas_api e2e: "
      LIBS midas_api_core PkgConfig::midas_e2e_httplib)
    target_compile_definitions(midas_api_e2e_api_tests PRIVATE ${_e2e_definitions}
      MIDAS_API_BIN="$<TARGET_FILE:midas-api>")
    add_dependencies(midas_api_e2e_api_tests midas-mock-merchant midas-api)
  endif()
endif()
