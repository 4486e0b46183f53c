/* arbor-forkserver: the fork-server program (fsrv.h). arbor-supervisor
 * starts it with the channel as fd 3; it is not meant to be run by hand.
 * It links no ZeroMQ and no JSON library and is static (forkserver/
 * CMakeLists.txt): the fewer mappings it has, the cheaper each fork, and
 * each exit of a worker it forked. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "fsrv.h"
#include "version.h"
#include "stdfds.h"

int main(int argc, char **argv)
{
    stdfds_open(); /* first: a closed 0-2 must not be handed out (stdfds.h) */
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: arbor-forkserver   (started by arbor-supervisor, not by hand)\n"
               "The fork-server of one supervisor: forks and reaps its workers, runs\n"
               "the builtin behaviours, and talks to the supervisor over fd 3.\n"
               "  -h, --help     this text\n"
               "      --version  print the version and exit\n");
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--version"))
        return version_print(stdout, "arbor-forkserver") == 0 ? 0 : 2;
    if (argc > 1 || fcntl(FSRV_EXEC_FD, F_GETFD) < 0) {
        fprintf(stderr, "arbor-forkserver: started by arbor-supervisor only (needs its channel "
                        "on fd %d)\n",
                FSRV_EXEC_FD);
        return 2;
    }
    fsrv_server_main(builtin_run);
}
