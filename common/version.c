#include "version.h"

#include "arbor_version_gen.h"

const char *version_number(void) { return ARBOR_VERSION; }

const char *version_string(void)
{
    return ARBOR_GIT_COMMIT[0] ? ARBOR_VERSION " (git " ARBOR_GIT_COMMIT ")" : ARBOR_VERSION;
}

int version_print(FILE *out, const char *program)
{
    if (fprintf(out, "%s %s\n", program, version_string()) < 0)
        return -1;
    return fflush(out) == 0 ? 0 : -1;
}
