/* sig: signal names both ways ("SIGKILL" <-> 9). */
#ifndef ARBOR_SIG_H
#define ARBOR_SIG_H

/* "SIGSEGV"; a static buffer for unknown numbers ("SIG42"). */
const char *sig_name(int signo);
/* Accepts "SIGSEGV", "SEGV" or a number; returns -1 when unknown. */
int sig_parse(const char *name);

#endif
