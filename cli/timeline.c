#include "env.h"
#include "timeline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "sbuf.h"
#include "trace.h"

extern char **environ;

#define LABEL_MAX 56 /* characters of an annotation (error, stuck) */

typedef struct {
    const char *phase;
    const char *colour;
} phase_style_t;

/* Worker phases in order, each with its colour; "exited" is drawn as a tick. */
static const phase_style_t s_phases[] = {
    {"spawned", "#c7c7c7"},          {"ready", "#9ecae1"},
    {"running", "#31a354"},          {"cancel_requested", "#f2c200"},
    {"cancelling_children", "#fb8c00"}, {"children_exited", "#a1887f"},
    {"cleanup", "#8e63ce"},          {"exiting", "#3f6fd8"},
    {NULL, "#777777"}, /* any other phase */
};
#define N_STYLES (sizeof s_phases / sizeof *s_phases)

static int s_style_of(const char *phase)
{
    for (size_t i = 0; i + 1 < N_STYLES; i++)
        if (strcmp(s_phases[i].phase, phase) == 0)
            return (int) i;
    return (int) N_STYLES - 1;
}

/* A gnuplot single-quoted string: '' is the only escape; control characters
 * become '?', and the text is cut at max characters (UTF-8 kept whole). */
static void s_quote(sbuf_t *out, const char *text, size_t max)
{
    sbuf_add(out, "'", 1);
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        bool lead = (*p & 0xC0) != 0x80;
        if (lead && max && chars == max) {
            sbuf_add(out, "...", 3);
            break;
        }
        chars += lead;
        if (*p == '\'')
            sbuf_add(out, "''", 2);
        else if (*p < 0x20 || *p == 0x7f)
            sbuf_add(out, "?", 1);
        else
            sbuf_add(out, (const char *) p, 1);
    }
    sbuf_add(out, "'", 1);
}

/* A gnuplot double-quoted string for titles: newlines kept as \n, '"' and
 * '\\' dropped to '?', other control characters '?'. */
static void s_quote_lines(sbuf_t *out, const char *text)
{
    sbuf_add(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (*p == '\n')
            sbuf_add(out, "\\n", 2);
        else if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
            sbuf_add(out, "?", 1);
        else
            sbuf_add(out, (const char *) p, 1);
    }
    sbuf_add(out, "\"", 1);
}

/* "Type: message", or for a stuck node "Type: stuck in cleanup; sent
 * SIGTERM, SIGKILL" (its message only repeats that). */
static void s_annotation(sbuf_t *text, const trace_row_t *row)
{
    const char *type = row->error ? env_str(row->error, "type") : NULL;
    const char *message = row->error ? env_str(row->error, "message") : NULL;
    if (row->error)
        sbuf_printf(text, "%s: ", type ? type : "error");
    if (row->stuck_phase) {
        sbuf_printf(text, "stuck in %s", row->stuck_phase);
        const char *sep = "; sent ";
        for (int m = 0; m < row->nmarks; m++) {
            sbuf_printf(text, "%s%s", sep, row->marks[m].signal);
            sep = ", ";
        }
    } else if (row->error) {
        sbuf_printf(text, "%s", message ? message : "");
    }
}

static int64_t s_row_end(const trace_row_t *row)
{
    int64_t end = 0;
    for (int i = 0; i < row->nslices; i++)
        if (row->slices[i].t1_ms > end)
            end = row->slices[i].t1_ms;
    for (int i = 0; i < row->nmarks; i++)
        if (row->marks[i].t_ms > end)
            end = row->marks[i].t_ms;
    return end;
}

char *timeline_script(const cJSON *report, timeline_format_t format, int width)
{
    trace_model_t m;
    if (trace_model_build(report, &m) != 0)
        return NULL;
    if (width <= 0)
        width = TIMELINE_WIDTH;
    int rows = m.nrows < TIMELINE_MAX_ROWS ? m.nrows : TIMELINE_MAX_ROWS;
    int height = 150 + 21 * rows;
    if (height < 360)
        height = 360;

    /* Room on the right for the annotations at the end of their rows. */
    size_t longest_path = 4;
    bool annotated = false;
    for (int r = 0; r < rows; r++) {
        size_t len = strlen(m.rows[r].path) + (m.rows[r].stuck_phase ? 8 : 0) +
                     (m.rows[r].incarnations > 1 ? 5 : 0);
        if (len > longest_path)
            longest_path = len;
        annotated |= m.rows[r].error || m.rows[r].stuck_phase;
    }
    if (longest_path > 80)
        longest_path = 80;
    double xmax = m.end_ms > 0 ? (double) m.end_ms : 1.0;
    double plot_px = width - 80.0 - 6.5 * (double) longest_path - 200.0; /* 200: the key */
    if (plot_px < 300)
        plot_px = 300;
    /* Annotations take at most ~45% of the plot: shorter on a narrow picture. */
    int label_max = (int) (plot_px * 0.45 / 6.5) - 6;
    if (label_max > LABEL_MAX)
        label_max = LABEL_MAX;
    double label_px = 6.5 * (label_max + 6);
    double xrange = annotated ? xmax * plot_px / (plot_px - label_px) : xmax * 1.03;

    sbuf_t s = {0};
    sbuf_printf(&s, "# arbor timeline of tree %s (generated by arborctl timeline)\n", m.tree);
    if (format == TIMELINE_SVG)
        sbuf_printf(&s, "set terminal svg size %d,%d dynamic noenhanced font 'sans,11' "
                        "background rgb 'white'\n", width, height);
    else
        sbuf_printf(&s, "set terminal pngcairo size %d,%d noenhanced font 'sans,9' "
                        "background rgb 'white'\n", width, height);
    sbuf_printf(&s, "set encoding utf8\n");

    /* Title: the tree, its fate, and who got stuck. */
    sbuf_t title = {0};
    sbuf_printf(&title, "tree %s on %s: %s, %" PRId64 " ms, %d node%s", m.tree, m.supervisor,
                m.status, m.end_ms, m.nrows, m.nrows == 1 ? "" : "s");
    if (rows < m.nrows)
        sbuf_printf(&title, " (first %d shown)", rows);
    for (int r = 0; r < m.nrows; r++)
        if (m.rows[r].stuck_phase) {
            sbuf_printf(&title, "\nstuck: %s in %s", m.rows[r].path, m.rows[r].stuck_phase);
            break;
        }
    sbuf_printf(&s, "set title ");
    s_quote_lines(&s, title.data ? title.data : "");
    sbuf_printf(&s, " font 'sans,12'\n");
    sbuf_reset(&title);

    sbuf_printf(&s, "set xlabel 'ms since the tree started'\n"
                    "set xrange [0:%.3f]\n"
                    "set yrange [%.2f:0.4]\n"
                    "set border 3 lc rgb '#555555'\n"
                    "set xtics out nomirror\n"
                    "set grid xtics lc rgb '#e4e4e4' lt 1\n"
                    "set key outside right top vertical samplen 1.5 spacing 1.2 width 1 box lc rgb '#bbbbbb'\n"
                    "set style fill solid 1.0 noborder\n"
                    "set offsets 0,0,0,0\n",
                xrange, rows + 0.6);
    sbuf_printf(&s, "set ytics nomirror scale 0 (");
    for (int r = 0; r < rows; r++) {
        const trace_row_t *row = &m.rows[r];
        sbuf_t label = {0};
        if (row->incarnations > 1)
            sbuf_printf(&label, "%s #%d%s", row->path, row->incarnation,
                        row->stuck_phase ? "  [stuck]" : "");
        else
            sbuf_printf(&label, "%s%s", row->path, row->stuck_phase ? "  [stuck]" : "");
        s_quote(&s, label.data ? label.data : "?", 0);
        sbuf_reset(&label);
        sbuf_printf(&s, " %d%s", r + 1, r + 1 < rows ? ", " : "");
    }
    sbuf_printf(&s, ")\n");
    if (rows == 0)
        sbuf_printf(&s, "set ytics ('(no nodes)' 1)\n");

    /* Annotations and the stuck phase's outline. */
    for (int r = 0; r < rows; r++) {
        const trace_row_t *row = &m.rows[r];
        if (row->error || row->stuck_phase) {
            sbuf_t text = {0};
            s_annotation(&text, row);
            sbuf_printf(&s, "set label %d ", r + 1);
            s_quote(&s, text.data ? text.data : "", (size_t) label_max);
            sbuf_reset(&text);
            sbuf_printf(&s, " at %.3f,%d left offset 1.2,0 front textcolor rgb '%s'\n",
                        (double) s_row_end(row), r + 1,
                        row->stuck_phase ? "#e00000" : "#a00000");
        }
    }

    /* Data: one block per phase style, then the marks. */
    bool used[N_STYLES] = {0};
    for (size_t k = 0; k < N_STYLES; k++) {
        sbuf_t block = {0};
        for (int r = 0; r < rows; r++) {
            const trace_row_t *row = &m.rows[r];
            for (int i = 0; i < row->nslices; i++) {
                const trace_slice_t *sl = &row->slices[i];
                if (strcmp(sl->phase, "exited") == 0 || s_style_of(sl->phase) != (int) k ||
                    sl->t1_ms <= sl->t0_ms)
                    continue;
                sbuf_printf(&block, "%.1f %d %" PRId64 " %" PRId64 " %.2f %.2f\n",
                            (double) (sl->t0_ms + sl->t1_ms) / 2.0, r + 1, sl->t0_ms, sl->t1_ms,
                            r + 1 - 0.34, r + 1 + 0.34);
            }
        }
        if (block.len) {
            used[k] = true;
            sbuf_printf(&s, "$phase%zu << EOD\n%sEOD\n", k, block.data);
        }
        sbuf_reset(&block);
    }
    const char *marks[] = {"exited", "term_sent", "kill_sent", "error"};
    bool mark_used[4] = {0};
    for (int k = 0; k < 4; k++) {
        sbuf_t block = {0};
        for (int r = 0; r < rows; r++) {
            const trace_row_t *row = &m.rows[r];
            if (k == 0) {
                for (int i = 0; i < row->nslices; i++)
                    if (strcmp(row->slices[i].phase, "exited") == 0)
                        sbuf_printf(&block, "%" PRId64 " %d\n", row->slices[i].t0_ms, r + 1);
            } else if (k < 3) {
                for (int i = 0; i < row->nmarks; i++)
                    if (strcmp(row->marks[i].name, marks[k]) == 0)
                        sbuf_printf(&block, "%" PRId64 " %d\n", row->marks[i].t_ms, r + 1);
            } else if (row->error) {
                sbuf_printf(&block, "%" PRId64 " %d\n", row->error_ms, r + 1);
            }
        }
        if (block.len) {
            mark_used[k] = true;
            sbuf_printf(&s, "$mark%d << EOD\n%sEOD\n", k, block.data);
        }
        sbuf_reset(&block);
    }

    /* The stuck phases, outlined (a plot, so that the signal marks drawn
     * after it stay visible on top). */
    sbuf_t stuck = {0};
    for (int r = 0; r < rows; r++) {
        const trace_row_t *row = &m.rows[r];
        if (row->stuck_slice < 0)
            continue;
        const trace_slice_t *sl = &row->slices[row->stuck_slice];
        double x1 = (double) sl->t1_ms;
        if (x1 - (double) sl->t0_ms < xmax / 400.0)
            x1 = (double) sl->t0_ms + xmax / 400.0;
        sbuf_printf(&stuck, "%.3f %d %" PRId64 " %.3f %.2f %.2f\n", ((double) sl->t0_ms + x1) / 2,
                    r + 1, sl->t0_ms, x1, r + 1 - 0.46, r + 1 + 0.46);
    }
    if (stuck.len)
        sbuf_printf(&s, "$stuck << EOD\n%sEOD\n", stuck.data);

    /* The plot: every used block with its legend entry. */
    const char *sep = "plot ";
    for (size_t k = 0; k < N_STYLES; k++) {
        if (!used[k])
            continue;
        sbuf_printf(&s, "%s$phase%zu using 1:2:3:4:5:6 with boxxyerror lc rgb '%s' title '%s'",
                    sep, k, s_phases[k].colour, s_phases[k].phase ? s_phases[k].phase : "other");
        sep = ", \\\n     ";
    }
    if (mark_used[0]) {
        sbuf_printf(&s, "%s$mark0 using 1:($2-0.36):(0):(0.72) with vectors nohead lw 2 "
                        "lc rgb '#222222' title 'exited'", sep);
        sep = ", \\\n     ";
    }
    if (stuck.len) {
        sbuf_printf(&s, "%s$stuck using 1:2:3:4:5:6 with boxxyerror fillstyle empty "
                        "lc rgb '#e00000' lw 3 title 'stuck phase'", sep);
        sep = ", \\\n     ";
    }
    sbuf_reset(&stuck);
    if (mark_used[1]) {
        sbuf_printf(&s, "%s$mark1 using 1:($2-0.42) with points pt 11 ps 1.6 lc rgb '#c2185b' "
                        "title 'SIGTERM sent'", sep);
        sep = ", \\\n     ";
    }
    if (mark_used[2]) {
        sbuf_printf(&s, "%s$mark2 using 1:($2-0.42) with points pt 11 ps 1.6 lc rgb '#000000' "
                        "title 'SIGKILL sent'", sep);
        sep = ", \\\n     ";
    }
    if (mark_used[3]) {
        sbuf_printf(&s, "%s$mark3 using 1:2 with points pt 2 ps 2 lw 3 lc rgb '#e00000' "
                        "title 'error'", sep);
        sep = ", \\\n     ";
    }
    if (strcmp(sep, "plot ") == 0) /* nothing to draw: an empty frame still says so */
        sbuf_printf(&s, "plot NaN notitle");
    sbuf_printf(&s, "\n");
    trace_model_clear(&m);
    if (s.oom) {
        sbuf_reset(&s);
        return NULL;
    }
    return sbuf_take(&s);
}

/* --- running gnuplot ----------------------------------------------------- */

static int s_write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t) w;
    }
    return close(fd);
}

/* Copy the file at from to to ("-": stdout). */
static int s_copy(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    bool stdout_ = strcmp(to, "-") == 0;
    int out = stdout_ ? STDOUT_FILENO : open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    int rc = 0;
    ssize_t n;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno != EINTR)
                rc = -1;
            continue;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t) (n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = -1;
                break;
            }
            off += w;
        }
    }
    int saved = errno;
    close(in);
    if (!stdout_ && close(out) != 0 && rc == 0)
        rc = -1;
    errno = saved;
    return rc;
}

/* The last non-empty line of a small file (gnuplot's complaint), cleaned. */
static void s_last_line(const char *path, char *out, size_t size)
{
    out[0] = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = 0;
        bool blank = true;
        for (char *p = line; *p; p++) {
            if ((unsigned char) *p < 0x20)
                *p = ' ';
            if (*p != ' ' && *p != '^')
                blank = false;
        }
        if (!blank)
            snprintf(out, size, "%.*s", (int) (size > 1 ? size - 1 : 0), line);
    }
    fclose(f);
}

/* Wait for pid until deadline; 1 exited (status filled), 0 timed out. */
static int s_wait(pid_t pid, int64_t deadline, int *status)
{
    int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
    while (true) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) {
            if (pidfd >= 0)
                close(pidfd);
            return w == pid ? 1 : (*status = -1, 1);
        }
        int64_t left = deadline - clk_now_ms();
        if (left <= 0)
            break;
        if (pidfd >= 0) {
            struct pollfd p = {.fd = pidfd, .events = POLLIN};
            poll(&p, 1, (int) left);
        } else {
            struct timespec ts = {0, 10 * 1000 * 1000}; /* no pidfd: short naps */
            nanosleep(&ts, NULL);
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return 0;
}

int timeline_render(const char *script, const char *out_path, int timeout_ms, char *err,
                    size_t err_size)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/arborctl-timeline-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        snprintf(err, err_size, "cannot create a temp dir in %s: %s", tmp && *tmp ? tmp : "/tmp",
                 strerror(errno));
        return TIMELINE_ERROR;
    }
    char script_path[600], img_path[600], err_path[600];
    snprintf(script_path, sizeof script_path, "%s/timeline.gp", dir);
    snprintf(img_path, sizeof img_path, "%s/timeline.img", dir);
    snprintf(err_path, sizeof err_path, "%s/gnuplot.err", dir);
    int rc = TIMELINE_ERROR;
    int img = -1, errfd = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false;
    if (s_write_file(script_path, script) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", script_path, strerror(errno));
        goto done;
    }
    img = open(img_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    errfd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (img < 0 || errfd < 0) {
        snprintf(err, err_size, "cannot create files in %s: %s", dir, strerror(errno));
        goto done;
    }
    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    attr_ok = posix_spawnattr_init(&attr) == 0;
    if (!fa_ok || !attr_ok) {
        snprintf(err, err_size, "cannot set up to run gnuplot");
        goto done;
    }
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, img, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, errfd, STDERR_FILENO);
    /* arborctl blocks SIGINT/SIGTERM (ctl.c) and ignores SIGPIPE: not gnuplot. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"gnuplot", script_path, NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, "gnuplot", &fa, &attr, argv, environ);
    if (e != 0) {
        if (e == ENOENT)
            snprintf(err, err_size, "gnuplot is not installed: install gnuplot-nox "
                                    "(apt-get install gnuplot-nox)");
        else
            snprintf(err, err_size, "cannot run gnuplot: %s", strerror(e));
        rc = e == ENOENT ? TIMELINE_NO_GNUPLOT : TIMELINE_ERROR;
        goto done;
    }
    close(img);
    close(errfd);
    img = errfd = -1;
    int status = 0;
    if (!s_wait(pid, clk_now_ms() + timeout_ms, &status)) {
        kill(pid, SIGKILL); /* our own unreaped child: its pid cannot be reused yet */
        waitpid(pid, &status, 0);
        snprintf(err, err_size, "gnuplot did not finish within %d ms; killed it", timeout_ms);
        goto done;
    }
    struct stat st;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        stat(img_path, &st) != 0 || st.st_size == 0) {
        char why[400];
        s_last_line(err_path, why, sizeof why);
        if (status != -1 && WIFSIGNALED(status))
            snprintf(err, err_size, "gnuplot died by signal %d", WTERMSIG(status));
        else
            snprintf(err, err_size, "gnuplot failed (exit %d)%s%s",
                     status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                     *why ? ": " : ", and drew nothing", why);
        goto done;
    }
    if (s_copy(img_path, out_path) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", strcmp(out_path, "-") ? out_path : "stdout",
                 strerror(errno));
        goto done;
    }
    rc = TIMELINE_OK;
done:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    if (img >= 0)
        close(img);
    if (errfd >= 0)
        close(errfd);
    unlink(script_path);
    unlink(img_path);
    unlink(err_path);
    rmdir(dir);
    return rc;
}
