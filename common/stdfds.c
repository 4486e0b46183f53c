#include "stdfds.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int stdfds_open(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        /* The lowest free number is fd itself: the ones below are open. */
        int got = open("/dev/null", O_RDWR); /* not CLOEXEC: it is a std fd */
        if (got < 0)
            return -1;
        if (got != fd) { /* cannot be; never leave a stray fd */
            close(got);
            errno = EBADF;
            return -1;
        }
    }
    return 0;
}
