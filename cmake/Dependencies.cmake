# Every dependency is a Debian 12 package found on the system; nothing is
# vendored or downloaded at build time (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED COMPONENTS json)
find_package(RocksDB REQUIRED)
find_package(CLI11 REQUIRED)
find_package(spdlog REQUIRED)
find_package(OpenSSL REQUIRED)
# xxHash ships a pkg-config file but no CMake package on Debian 12.
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
# sd_notify(3): readiness, stopping and the watchdog under systemd.
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
if(KALAVARA_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
