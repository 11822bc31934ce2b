# Compiles through ccache when it is installed (KALAVARA_CCACHE, on by
# default), set up so the precompiled header does not make every compile
# uncacheable:
#   sloppiness pch_defines,time_macros  what ccache requires to cache a
#                      compile that uses a precompiled header (its manual,
#                      "Precompiled headers"); include_file_mtime/ctime: a
#                      fresh clone's headers are all new
#   base_dir           absolute paths under the source folder are hashed as
#                      relative ones. A fresh clone at another path still
#                      missed every compile when measured, most likely as
#                      the precompiled header holds the headers' absolute
#                      paths; a build again at the same path should hit
# Clang also needs -fno-pch-timestamp, or a PCH built again from the same
# headers would not match the cached objects that used it.
option(KALAVARA_CCACHE "Compile through ccache when it is installed" ON)
if(KALAVARA_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(KALAVARA_CCACHE_PROGRAM ccache)
  if(KALAVARA_CCACHE_PROGRAM)
    set(CMAKE_CXX_COMPILER_LAUNCHER
        ${CMAKE_COMMAND} -E env
        CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
        CCACHE_BASEDIR=${CMAKE_SOURCE_DIR} ${KALAVARA_CCACHE_PROGRAM})
  endif()
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  add_compile_options("SHELL:-Xclang -fno-pch-timestamp")
endif()
