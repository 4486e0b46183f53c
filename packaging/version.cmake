# Run at build time (cmake -P): writes OUT from common/version.h.in with the
# project's version and the git commit of SRC. configure_file rewrites OUT
# only when its text changes, so only common/version.c recompiles, and only
# after a commit (or a change of dirtiness).
#   -DSRC=<source dir> -DOUT=<header> -DARBOR_VERSION=<x.y.z>
set(ARBOR_GIT_COMMIT "")
find_program(GIT git)
if(GIT AND EXISTS "${SRC}/.git")
  execute_process(COMMAND ${GIT} -C "${SRC}" rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE commit RESULT_VARIABLE rc ERROR_QUIET
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(rc EQUAL 0 AND commit)
    set(ARBOR_GIT_COMMIT "${commit}")
    execute_process(COMMAND ${GIT} -C "${SRC}" diff --quiet HEAD --
                    RESULT_VARIABLE dirty ERROR_QUIET)
    if(NOT dirty EQUAL 0)
      string(APPEND ARBOR_GIT_COMMIT "+dirty")
    endif()
  endif()
endif()
configure_file("${SRC}/common/version.h.in" "${OUT}" @ONLY)
