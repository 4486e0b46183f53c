# Included by the top-level CMakeLists.txt after every program's target:
#  1. the version every program prints for --version (common/version.h.in),
#  2. man pages from docs/man/*.scd (scdoc),
#  3. install rules: programs, man pages, bash completion, systemd units,
#     the Python module (python/arbor, when present),
#  4. the Debian package: `cpack -G DEB` in the build directory.
# libarbor_worker's own install rules live with it (worker/CMakeLists.txt);
# the package holds whatever `cmake --install` installs.
include(GNUInstallDirs)

# --- 1. version -------------------------------------------------------------
# Generated at every build (the commit changes without a re-configure);
# packaging/version.cmake rewrites the header only when its text changes.
set(ARBOR_VERSION_HEADER ${CMAKE_BINARY_DIR}/generated/arbor_version_gen.h)
add_custom_target(arbor_version_header
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DOUT=${ARBOR_VERSION_HEADER}
          -DARBOR_VERSION=${PROJECT_VERSION} -P ${CMAKE_SOURCE_DIR}/packaging/version.cmake
  BYPRODUCTS ${ARBOR_VERSION_HEADER}
  COMMENT "arbor version header"
  VERBATIM)
add_library(arbor_version STATIC ${CMAKE_SOURCE_DIR}/common/version.c)
target_include_directories(arbor_version PRIVATE ${CMAKE_BINARY_DIR}/generated)
target_include_directories(arbor_version PUBLIC ${CMAKE_SOURCE_DIR}/common)
set_target_properties(arbor_version PROPERTIES POSITION_INDEPENDENT_CODE ON)
add_dependencies(arbor_version arbor_version_header)

set(ARBOR_PROGRAMS arbor-broker arbor-supervisor arbor-forkserver arborctl)
foreach(program ${ARBOR_PROGRAMS})
  target_link_libraries(${program} PRIVATE arbor_version)
endforeach()

# --- 2. man pages -------------------------------------------------------------
# One source per page (docs/man/NAME.SECTION.scd), rendered by scdoc and
# gzipped as Debian installs them. tests/integration/test_man.py checks that
# every option each program's --help prints is in its page.
find_program(SCDOC scdoc)
find_program(GZIP gzip)
file(GLOB ARBOR_MAN_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/man/*.scd)
set(ARBOR_MAN_DIR ${CMAKE_BINARY_DIR}/man)
set(ARBOR_MAN_PAGES "")
if(SCDOC AND GZIP)
  foreach(src ${ARBOR_MAN_SOURCES})
    get_filename_component(page ${src} NAME_WLE)        # arborctl.1
    string(REGEX REPLACE "^.*\\.([0-9])$" "\\1" section ${page})
    set(out ${ARBOR_MAN_DIR}/${page})
    add_custom_command(OUTPUT ${out} ${out}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${ARBOR_MAN_DIR}
      COMMAND ${SCDOC} < ${src} > ${out}
      COMMAND ${GZIP} -9nc ${out} > ${out}.gz
      DEPENDS ${src}
      COMMENT "man page ${page}")
    list(APPEND ARBOR_MAN_PAGES ${out})
    install(FILES ${out}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(arbor_man ALL DEPENDS ${ARBOR_MAN_PAGES})
else()
  message(WARNING "scdoc or gzip not found: no man pages (scripts/bootstrap.sh installs scdoc)")
endif()

# --- 3. install rules ---------------------------------------------------------
# arbor-supervisor execs the arbor-forkserver next to its own executable
# (supervisor/fsrv.c): both go to the same directory.
install(TARGETS ${ARBOR_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/completion/arborctl
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions)
# Relative to the prefix: /usr/lib/systemd/system for the package (bookworm
# is merged-/usr, so that is /lib/systemd/system too).
install(FILES ${CMAKE_SOURCE_DIR}/systemd/arbor-broker.service
              ${CMAKE_SOURCE_DIR}/systemd/arbor-supervisor@.service
        DESTINATION lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/systemd/arbor.sysusers
        DESTINATION lib/sysusers.d RENAME arbor.conf)
# The Python module's files, for Debian's python3 (no pip needed).
if(EXISTS ${CMAKE_SOURCE_DIR}/python/arbor)
  install(DIRECTORY ${CMAKE_SOURCE_DIR}/python/arbor
          DESTINATION lib/python3/dist-packages
          FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
  set(ARBOR_HAS_PYTHON ON)
endif()

# --- 4. Debian package --------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME arbor)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "arbor maintainers <arbor@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "supervision trees of worker processes (broker, supervisor, CLI)")
set(CPACK_PACKAGE_DESCRIPTION
    "arbor builds nested trees of worker processes from JSON specs, propagates\n\
cancellation with deadlines, never leaves an orphan and reports every error of\n\
a tree as one structured report. This package holds arbor-broker,\n\
arbor-supervisor (with its fork-server), arborctl, their man pages, bash\n\
completion, systemd units and the worker library.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # arbor_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Debian bookworm's runtime packages of the -dev packages arbor builds with.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6 (>= 2.34), libzmq5 (>= 4.3.4), libczmq4 (>= 4.2.1), libcjson1 (>= 1.7.15), passwd")
if(ARBOR_HAS_PYTHON)
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3")
endif()
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "gnuplot-nox")  # arborctl timeline
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/postinst
    ${CMAKE_SOURCE_DIR}/packaging/prerm
    ${CMAKE_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_STRIP_FILES OFF)  # keep RelWithDebInfo's symbols: backtraces of a supervisor matter
include(CPack)
