/* stopsig: the signals that ask an arbor program to stop (SIGTERM, SIGINT,
 * SIGHUP), delivered through a signalfd that its loop polls. */
#ifndef ARBOR_STOPSIG_H
#define ARBOR_STOPSIG_H

/* Block the stop signals (before any thread starts, so that threads inherit
 * the mask) and return a non-blocking CLOEXEC signalfd for them, or -1. */
int stopsig_open(void);

#endif
