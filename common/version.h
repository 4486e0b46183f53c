/* version: what every arbor program prints for --version — the version of
 * the source (CMake's project(VERSION)) and, when it was built from a git
 * checkout, the commit ("+dirty" with uncommitted changes). The text is
 * generated in one place (packaging/version.cmake) and compiled into one
 * file (version.c), so a new commit recompiles only that file. */
#ifndef ARBOR_VERSION_H
#define ARBOR_VERSION_H

#include <stdio.h>

/* "0.1.0", without the commit. */
const char *version_number(void);

/* "0.1.0 (git 1a2b3c4d5e6f)", or "0.1.0" when built outside git. */
const char *version_string(void);

/* Print "PROGRAM VERSION_STRING\n" to out (the --version answer): 0, or -1
 * when out failed. */
int version_print(FILE *out, const char *program);

#endif
