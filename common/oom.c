#include "oom.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_program = "arbor";

void oom_die(size_t size)
{
    /* No allocation from here on: a fixed buffer and write(2). */
    char line[200];
    int n = snprintf(line, sizeof line, "%s: out of memory (allocating %zu bytes): exiting\n",
                     s_program, size);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t) n);
        (void) w; /* nothing more can be done */
    }
    _exit(OOM_EXIT_CODE);
}

void *oom_alloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        oom_die(size);
    return p;
}

void *oom_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom_die(n * size);
    return p;
}

void oom_install(const char *program)
{
    s_program = program;
    cJSON_Hooks hooks = {oom_alloc, free};
    cJSON_InitHooks(&hooks);
}
