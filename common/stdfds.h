/* stdfds: fds 0, 1 and 2 open before anything else is.
 *
 * A program started with one of them closed (`2>&-`, a careless service
 * manager) hands that number out to the first fd it makes: its logs then
 * go into a socket, or, as the supervisor did, the fork-server's channel
 * lands on fd 2 and the fork-server refuses to start. Each arbor program
 * calls stdfds_open() first thing in main(), as s6 and systemd do for what
 * they start. */
#ifndef ARBOR_STDFDS_H
#define ARBOR_STDFDS_H

/* Open /dev/null on each of fds 0-2 that is closed. 0, or -1 with errno
 * when one could not be opened (the caller may go on: it did before). */
int stdfds_open(void);

#endif
