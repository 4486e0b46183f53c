#include "logdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int logdir_file_name(const char *dir, const char *tree, const char *path, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s%s/", dir, tree[0] == '.' ? "+" : "", tree);
    if (n < 0 || (size_t) n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    size_t used = (size_t) n;
    for (const char *p = path; *p; p++) {
        if (used + 1 >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        out[used++] = *p == '/' ? '+' : *p;
    }
    if (used + sizeof ".log" > size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(out + used, ".log", sizeof ".log");
    return 0;
}

static int s_open(logdir_batch_t *b)
{
    char name[4096];
    if (logdir_file_name(b->dir, b->tree, b->path, name, sizeof name) != 0)
        return -1;
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
    int fd = open(name, flags, 0640);
    if (fd < 0 && errno == ENOENT) { /* the tree's first line: its directory */
        char *slash = strrchr(name, '/');
        *slash = 0;
        if (mkdir(name, 0750) != 0 && errno != EEXIST)
            return -1;
        *slash = '/';
        fd = open(name, flags, 0640);
    }
    return fd;
}

static void s_flush(logdir_batch_t *b)
{
    if (b->used == 0 || b->error)
        return;
    if (b->fd < 0 && (b->fd = s_open(b)) < 0) {
        b->error = errno;
        return;
    }
    for (size_t off = 0; off < b->used;) {
        ssize_t w = write(b->fd, b->buf + off, b->used - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            b->error = w < 0 ? errno : EIO;
            break;
        }
        off += (size_t) w;
    }
    b->used = 0;
}

void logdir_begin(logdir_batch_t *b, const char *dir, const char *tree, const char *path)
{
    b->dir = dir;
    b->tree = tree;
    b->path = path;
    b->fd = -1;
    b->error = 0;
    b->used = 0;
}

static void s_put(logdir_batch_t *b, const char *data, size_t len)
{
    while (len > 0) {
        if (b->used == sizeof b->buf)
            s_flush(b);
        if (b->error)
            return;
        size_t n = sizeof b->buf - b->used < len ? sizeof b->buf - b->used : len;
        memcpy(b->buf + b->used, data, n);
        b->used += n;
        data += n;
        len -= n;
    }
}

void logdir_line(logdir_batch_t *b, const logbuf_line_t *line)
{
    char head[64], mark[64];
    int n = snprintf(head, sizeof head, "%lld %s ", (long long) line->t_ms,
                     logbuf_stream_name(line->stream));
    s_put(b, head, (size_t) n);
    s_put(b, line->text, line->len);
    if (line->cut) {
        n = snprintf(mark, sizeof mark, LOGBUF_CUT_MARK, (unsigned long long) line->cut);
        s_put(b, mark, (size_t) n);
    }
    s_put(b, "\n", 1);
}

int logdir_end(logdir_batch_t *b)
{
    s_flush(b);
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    if (b->error) {
        errno = b->error;
        return -1;
    }
    return 0;
}

int logdir_check(const char *dir)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return access(dir, W_OK | X_OK);
}
