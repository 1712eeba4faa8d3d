# Target helpers: one module = one folder = one library target `tandem_<name>`, aliased
# `tandem::<name>` (CONVENTIONS C1). Every dependency is named in DEPS; include paths come only
# from the targets, rooted at the repository so code writes #include "daemon/engine/engine.h".

include_guard(GLOBAL)

# Libraries a PURE module (engine, calendar) must never link: they would bring I/O, threads or
# logging sinks into code that must stay a function of its arguments (DESIGN: engine is pure).
set(TANDEM_IMPURE_DEPS asio_standalone cppzmq libzmq RocksDB::rocksdb RocksDB::rocksdb-shared
    spdlog::spdlog CURL::libcurl)

function(tandem_apply_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(TANDEM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# tandem_cc_library(NAME engine [PURE] SRCS a.cc HDRS a.h DEPS tandem::base ...)
function(tandem_cc_library)
  cmake_parse_arguments(T "PURE" "NAME" "SRCS;HDRS;DEPS" ${ARGN})
  if(T_PURE)
    foreach(dep IN LISTS T_DEPS)
      if(dep IN_LIST TANDEM_IMPURE_DEPS)
        message(FATAL_ERROR "tandem_${T_NAME} is a pure module and may not link ${dep}")
      endif()
    endforeach()
  endif()
  add_library(tandem_${T_NAME} STATIC ${T_SRCS} ${T_HDRS})
  add_library(tandem::${T_NAME} ALIAS tandem_${T_NAME})
  target_include_directories(tandem_${T_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(tandem_${T_NAME} PUBLIC ${T_DEPS})
  tandem_apply_warnings(tandem_${T_NAME})
endfunction()

# tandem_cc_test(NAME engine SRCS a_test.cc DEPS tandem::engine)
# One gtest executable per module, registered with ctest through gtest_discover_tests.
function(tandem_cc_test)
  cmake_parse_arguments(T "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main)
  # Tests find shipped data (workflows/, calendars) and built binaries through these two paths.
  target_compile_definitions(${T_NAME} PRIVATE
    TANDEM_SOURCE_DIR="${PROJECT_SOURCE_DIR}" TANDEM_BINARY_DIR="${PROJECT_BINARY_DIR}")
  tandem_apply_warnings(${T_NAME})
  gtest_discover_tests(${T_NAME} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} DISCOVERY_TIMEOUT 30)
endfunction()
