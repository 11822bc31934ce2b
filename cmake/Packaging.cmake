# What `cpack -G DEB` puts in kalavara_VERSION_ARCH.deb, and how: the two
# binaries in /usr/bin, the systemd units in /lib/systemd/system, the example
# configurations in /etc/kalavara (conffiles), the copyright, changelog and
# docs in /usr/share/doc/kalavara, and the maintainer scripts of
# packaging/deb/ (the kalavara system user; no service enabled on install).
# Runtime dependencies come from dpkg-shlibdeps. Only what the package holds
# has install() rules: no tests, no benchmark tools.
#
#   cmake --build build && (cd build && cpack -G DEB)
#
# Not in the sanitized build: its binaries need the sanitizer runtimes and
# are not for installing.
if(KALAVARA_SANITIZE)
  return()
endif()

include(GNUInstallDirs)

set(KALAVARA_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)

# The changelog's newest entry names the version the package gets: a
# version bump without an entry would ship a changelog that contradicts it.
file(STRINGS ${KALAVARA_PACKAGING_DIR}/deb/changelog KALAVARA_CHANGELOG_TOP LIMIT_COUNT 1)
if(NOT KALAVARA_CHANGELOG_TOP MATCHES "^kalavara \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "packaging/deb/changelog: the newest entry is \"${KALAVARA_CHANGELOG_TOP}\", "
                      "not version ${PROJECT_VERSION} of the project: add an entry")
endif()

install(TARGETS kalavara-master kalavara-volume RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Absolute paths: Debian 12's packages put units in /lib/systemd/system (not
# /usr/lib) and configuration in /etc whatever the prefix. So a plain
# `cmake --install` writes there too, whatever --prefix says; the units
# expect the binaries in /usr/bin, where the package puts them.
install(FILES ${KALAVARA_PACKAGING_DIR}/systemd/kalavara-master.service
              ${KALAVARA_PACKAGING_DIR}/systemd/kalavara-volume@.service
        DESTINATION /lib/systemd/system)
# One volume config to start from, for the unit kalavara-volume@disk1; more
# disks are more copies (volume-disk2.toml, …). Listed in deb/conffiles.
install(FILES ${KALAVARA_PACKAGING_DIR}/master.toml DESTINATION /etc/kalavara)
install(FILES ${KALAVARA_PACKAGING_DIR}/volume.toml DESTINATION /etc/kalavara
        RENAME volume-disk1.toml)

# Debian wants the changelog compressed with gzip -9n (no name, no time
# stamp: the same bytes on every build).
set(KALAVARA_CHANGELOG_GZ ${CMAKE_BINARY_DIR}/packaging/changelog.gz)
add_custom_command(
  OUTPUT ${KALAVARA_CHANGELOG_GZ}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/packaging
  COMMAND sh -c "gzip -9nc \"$1\" > \"$2\"" sh ${KALAVARA_PACKAGING_DIR}/deb/changelog
          ${KALAVARA_CHANGELOG_GZ}
  DEPENDS ${KALAVARA_PACKAGING_DIR}/deb/changelog
  COMMENT "Compressing the package's changelog"
  VERBATIM)
add_custom_target(kalavara-package-changelog ALL DEPENDS ${KALAVARA_CHANGELOG_GZ})
set(KALAVARA_DOC_DIR ${CMAKE_INSTALL_DATADIR}/doc/kalavara)
install(FILES ${KALAVARA_PACKAGING_DIR}/deb/copyright ${KALAVARA_CHANGELOG_GZ} ${PROJECT_SOURCE_DIR}/README.md
        DESTINATION ${KALAVARA_DOC_DIR})
# Under docs/, so README.md's links work in the installed copy too.
file(GLOB KALAVARA_DOCS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${KALAVARA_DOCS} DESTINATION ${KALAVARA_DOC_DIR}/docs)
# The monitoring examples docs/monitoring.md describes: alert rules (and
# their promtool tests) and the Grafana dashboard.
install(FILES ${KALAVARA_PACKAGING_DIR}/prometheus/kalavara-alerts.yml
              ${KALAVARA_PACKAGING_DIR}/prometheus/kalavara-alerts.test.yml
              ${KALAVARA_PACKAGING_DIR}/grafana/kalavara-dashboard.json
        DESTINATION ${KALAVARA_DOC_DIR}/examples)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kalavara)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Seed cd65ffe9 maintainers <maintainers@users.noreply.r-seed-cd65ffe9.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "distributed persistent key-value store that speaks HTTP")
set(CPACK_PACKAGE_DESCRIPTION
    "A master keeps the index (key to volumes) in RocksDB and answers with\n"
    "redirects, and volumes store each value as a file, on N of them with\n"
    "--replicas N. Values never pass through the master, and curl is the\n"
    "client: ETags, ranges, conditional requests and key listing work as HTTP\n"
    "users expect.\n"
    "\n"
    "This package holds kalavara-master and kalavara-volume, their systemd\n"
    "units (kalavara-master.service and kalavara-volume@.service, one\n"
    "instance per disk) and example configurations in /etc/kalavara.")
string(JOIN "" CPACK_PACKAGE_DESCRIPTION ${CPACK_PACKAGE_DESCRIPTION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Stripped binaries: the package is for running, the build tree keeps the
# debug information.
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# postinst runs adduser; the rest comes from dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${KALAVARA_PACKAGING_DIR}/deb/conffiles ${KALAVARA_PACKAGING_DIR}/deb/postinst
    ${KALAVARA_PACKAGING_DIR}/deb/prerm ${KALAVARA_PACKAGING_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
