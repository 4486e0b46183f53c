/* logdir: the workers' output lines written to files (--log-dir DIR).
 *
 * One file per node, both streams in the order their lines completed:
 * DIR/TREE/PATH.log, the node path's '/' written as '+' (names never hold a
 * '+', so files never collide), e.g. DIR/t1/root+spawner-0+errorer-1.log.
 * One line per output line: "T_MS STREAM TEXT\n", T_MS the milliseconds since
 * the tree started, STREAM stdout or stderr; a cut line ends with
 * LOGBUF_CUT_MARK. A restarted node appends to the same file.
 *
 * A file is opened (O_APPEND | O_CLOEXEC), written and closed once per chunk
 * a pipe delivers: no fd is kept between chunks, so --max-processes needs no
 * room for them and nothing is left open for a fork to inherit. Writes to a
 * local file do not block the supervisor's loop for long; the files are not
 * bounded here (the memory kept per node is: logbuf.h). */
#ifndef ARBOR_LOGDIR_H
#define ARBOR_LOGDIR_H

#include <stddef.h>

#include "logbuf.h"

#define LOGDIR_BATCH 65536

/* The lines of one chunk for one node's file: logdir_begin, logdir_line for
 * each line, logdir_end. Nothing is opened until there is something to write. */
typedef struct {
    const char *dir, *tree, *path;
    int fd;
    int error;  /* the first errno, 0 if none */
    size_t used;
    char buf[LOGDIR_BATCH];
} logdir_batch_t;

/* DIR/TREE/PATH.log as described above into out. -1 (ENAMETOOLONG) when it
 * does not fit. A tree id starting with '.' gets a '+' in front (no
 * "DIR/../" from a tree named ".."). */
int logdir_file_name(const char *dir, const char *tree, const char *path, char *out, size_t size);

void logdir_begin(logdir_batch_t *b, const char *dir, const char *tree, const char *path);
void logdir_line(logdir_batch_t *b, const logbuf_line_t *line);
/* Write what is left and close. 0, or -1 with the first error's errno. */
int logdir_end(logdir_batch_t *b);

/* Make sure DIR exists (created 0750 if not, one level) and is a writable
 * directory. 0, or -1 with errno. */
int logdir_check(const char *dir);

#endif
