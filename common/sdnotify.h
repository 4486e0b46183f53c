/* sdnotify: systemd's readiness protocol (sd_notify(3)) without libsystemd —
 * one datagram "READY=1" to the AF_UNIX socket named by $NOTIFY_SOCKET, for
 * units of Type=notify (systemd/). Outside systemd (no NOTIFY_SOCKET) both
 * calls do nothing. */
#ifndef ARBOR_SDNOTIFY_H
#define ARBOR_SDNOTIFY_H

/* Take $NOTIFY_SOCKET out of the environment and keep it: call first in
 * main, before any child is started, so that no worker inherits it (a
 * worker that speaks sd_notify must not be taken for the daemon). */
void sdnotify_init(void);

/* Send "READY=1" (and a STATUS= line) once; later calls do nothing.
 * 0 sent or nothing to do, -1 when the datagram could not be sent (errno;
 * the caller logs it: systemd will time the unit out). */
int sdnotify_ready(const char *status);

#endif
