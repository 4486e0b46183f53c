#include "sig.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sig_name(int signo)
{
    static __thread char buf[24];
    const char *abbrev = (signo > 0 && signo < NSIG) ? sigabbrev_np(signo) : NULL;
    if (abbrev)
        snprintf(buf, sizeof buf, "SIG%s", abbrev);
    else
        snprintf(buf, sizeof buf, "SIG%d", signo);
    return buf;
}

int sig_parse(const char *name)
{
    if (!name || !*name)
        return -1;
    char *end;
    long n = strtol(name, &end, 10);
    if (*end == 0)
        return (n > 0 && n < NSIG) ? (int) n : -1;
    if (strncmp(name, "SIG", 3) == 0)
        name += 3;
    for (int s = 1; s < NSIG; s++) {
        const char *abbrev = sigabbrev_np(s);
        if (abbrev && strcmp(abbrev, name) == 0)
            return s;
    }
    return -1;
}
