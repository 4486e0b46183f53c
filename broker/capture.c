#include "capture.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

struct cap_t {
    FILE *file;
    int failed; /* warn once, not per line */
};

cap_t *cap_new(const char *path)
{
    cap_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->file = fopen(path, "ae"); /* e: O_CLOEXEC */
    if (!self->file) {
        free(self);
        return NULL;
    }
    return self;
}

void cap_destroy(cap_t **self)
{
    if (!self || !*self)
        return;
    fclose((*self)->file);
    free(*self);
    *self = NULL;
}

static void s_flush(cap_t *self)
{
    if (fflush(self->file) != 0 && !self->failed++)
        log_warn("capture: cannot write: lines are being lost");
}

void cap_in(cap_t *self, const char *from, const cJSON *msg)
{
    /* Re-printed, not copied: the frame may hold newlines or trailing bytes. */
    char *text = cJSON_PrintUnformatted(msg);
    cJSON *name = cJSON_CreateString(from);
    char *quoted = name ? cJSON_PrintUnformatted(name) : NULL;
    if (text && quoted)
        fprintf(self->file, "{\"from\":%s,\"dir\":\"in\",\"msg\":%s}\n", quoted, text);
    cJSON_free(text);
    cJSON_free(quoted);
    cJSON_Delete(name);
    s_flush(self);
}

void cap_out(cap_t *self, const char *text)
{
    fprintf(self->file, "{\"from\":\"broker\",\"dir\":\"out\",\"msg\":%s}\n", text);
    s_flush(self);
}
