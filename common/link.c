#include "link.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "clock.h"

static const char *const s_names[] = {
    [LINK_EV_CANCEL] = "node_cancel",
    [LINK_EV_CHILDREN_EXITED] = "node_children_exited",
};

void link_worker_init(int fd)
{
    struct timeval tv = {LINK_SEND_TIMEOUT_MS / 1000, (LINK_SEND_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

cJSON *link_phase_body(const char *phase, const char *error_type, const char *error_message)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "phase", phase);
    cJSON_AddNumberToObject(body, "t_mono_ms", (double) clk_now_ms());
    if (error_type) {
        cJSON *err = cJSON_AddObjectToObject(body, "error");
        cJSON_AddStringToObject(err, "type", error_type);
        cJSON_AddStringToObject(err, "message", error_message ? error_message : "");
        cJSON_AddStringToObject(err, "phase", phase);
    }
    return body;
}

void link_error_line(int fd, const char *type, const char *message, const char *phase)
{
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "type", type);
    cJSON_AddStringToObject(line, "message", message);
    cJSON_AddStringToObject(line, "phase", phase);
    char *text = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    if (text)
        dprintf(fd, LINK_ERROR_MARK "%s\n", text);
    free(text);
}

int link_phase(int fd, const char *phase, const char *error_type, const char *error_message)
{
    cJSON *body = link_phase_body(phase, error_type, error_message);
    char buf[LINK_MSG_MAX];
    bool ok = body && cJSON_PrintPreallocated(body, buf, sizeof buf, false);
    cJSON_Delete(body);
    if (!ok) {
        errno = EMSGSIZE;
        return -1;
    }
    ssize_t n;
    do
        n = send(fd, buf, strlen(buf), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

int link_event_of(const char *data, size_t len)
{
    for (int ev = LINK_EV_CANCEL; ev <= LINK_EV_CHILDREN_EXITED; ev++)
        if (strlen(s_names[ev]) == len && memcmp(s_names[ev], data, len) == 0)
            return ev;
    return LINK_EV_NONE;
}

int link_wait(int fd, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : clk_now_ms() + timeout_ms;
    for (;;) {
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - clk_now_ms();
            if (left <= 0)
                return LINK_EV_NONE;
            wait = (int) left;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, wait);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return LINK_EV_GONE;
        if (rc == 0)
            return LINK_EV_NONE;
        char buf[LINK_MSG_MAX];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return LINK_EV_GONE;
        if (n > 0) {
            int ev = link_event_of(buf, (size_t) n);
            if (ev != LINK_EV_NONE)
                return ev;
        }
    }
}

int link_tell(int fd, int event)
{
    if (event != LINK_EV_CANCEL && event != LINK_EV_CHILDREN_EXITED) {
        errno = EINVAL;
        return -1;
    }
    ssize_t n = send(fd, s_names[event], strlen(s_names[event]), MSG_DONTWAIT | MSG_NOSIGNAL);
    return n < 0 ? -1 : 0;
}
