# The sanitized build (scripts/build.sh --sanitize, into build-sanitize/),
# which serves both the sanitized tests (scripts/test.sh --sanitize) and the
# fuzz targets (scripts/fuzz.sh), so CI compiles the project twice, not three
# times:
#   KALAVARA_SANITIZE  everything with AddressSanitizer and UBSan
#   KALAVARA_FUZZ      also clang's coverage instrumentation on every object
#                      (-fsanitize=fuzzer-no-link), and the libFuzzer targets
#                      of tests/fuzz; clang only, implies KALAVARA_SANITIZE
# Included before any target is made, so every library and binary of the
# project is instrumented alike (the system's libraries are not). Without a
# fuzzer linked in, the coverage hooks are the sanitizer runtime's no-ops: the
# tests run as in a KALAVARA_SANITIZE-only build, a little slower.
option(KALAVARA_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(KALAVARA_FUZZ "Also build the libFuzzer targets in tests/fuzz (clang only)" OFF)

if(KALAVARA_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "KALAVARA_FUZZ needs clang (libFuzzer): configure with "
                        "-DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  set(KALAVARA_SANITIZE ON)
endif()

if(KALAVARA_SANITIZE)
  # Any undefined behaviour stops the program, as a memory error does: a
  # report that scrolls by in a passing test would go unnoticed.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # Clang 14 cannot compile a coroutine with UBSan's check of indirect
    # calls' function types ("Cannot represent a difference across
    # sections", llvm/llvm-project#49689); the rest of UBSan stays.
    add_compile_options(-fno-sanitize=function)
  endif()
  if(KALAVARA_FUZZ)
    # Coverage feedback from the project's code; only the fuzz targets link
    # libFuzzer itself (tests/fuzz/CMakeLists.txt).
    add_compile_options(-fsanitize=fuzzer-no-link)
  endif()
endif()
