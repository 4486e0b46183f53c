#include "creds.h"

#include "oom.h"

#include <errno.h>
#include <stdarg.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "user"/"group" as an id: a JSON number or a string of digits. */
static bool s_numeric_id(const cJSON *v, unsigned long *out)
{
    if (cJSON_IsNumber(v)) {
        *out = (unsigned long) v->valuedouble;
        return true;
    }
    const char *p = cJSON_GetStringValue(v);
    if (!p || !*p || strspn(p, "0123456789") != strlen(p))
        return false;
    *out = strtoul(p, NULL, 10);
    return true;
}

static cJSON *__attribute__((format(printf, 2, 3))) s_failed(int err, const char *fmt, ...)
{
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "errno", err ? err : ENOENT);
    cJSON_AddStringToObject(c, "what", what);
    return c;
}

struct creds_t {
    cJSON *user, *group; /* the names (or ids) last asked for; NULL: absent */
    cJSON *answer;       /* what they resolved to */
    int64_t at_ms;
};

creds_t *creds_new(void)
{
    creds_t *self = calloc(1, sizeof *self);
    if (!self)
        oom_die(sizeof *self);
    return self;
}

static void s_forget(creds_t *self)
{
    cJSON_Delete(self->user);
    cJSON_Delete(self->group);
    cJSON_Delete(self->answer);
    self->user = self->group = self->answer = NULL;
}

void creds_destroy(creds_t **self)
{
    if (!*self)
        return;
    s_forget(*self);
    free(*self);
    *self = NULL;
}

/* Both absent, or both there and equal. */
static bool s_same(const cJSON *a, const cJSON *b)
{
    return (!a && !b) || (a && b && cJSON_Compare(a, b, true));
}

static cJSON *s_lookup(const cJSON *user, const cJSON *group);

cJSON *creds_resolve(creds_t *self, const cJSON *spec, int64_t now_ms)
{
    const cJSON *user = cJSON_GetObjectItem(spec, "user");
    const cJSON *group = cJSON_GetObjectItem(spec, "group");
    if (!user && !group)
        return NULL;
    if (!self->answer || now_ms - self->at_ms >= CREDS_TTL_MS || now_ms < self->at_ms ||
        !s_same(user, self->user) || !s_same(group, self->group)) {
        s_forget(self);
        self->answer = s_lookup(user, group);
        self->user = user ? cJSON_Duplicate(user, true) : NULL;
        self->group = group ? cJSON_Duplicate(group, true) : NULL;
        self->at_ms = now_ms;
        if (!self->answer || (user && !self->user) || (group && !self->group))
            oom_die(sizeof(cJSON));
    }
    cJSON *copy = cJSON_Duplicate(self->answer, true);
    if (!copy)
        oom_die(sizeof(cJSON));
    return copy;
}

static cJSON *s_lookup(const cJSON *user, const cJSON *group)
{
    unsigned long id;
    struct passwd *pw = NULL;
    uid_t uid = 0;
    gid_t gid = 0;
    if (user) {
        bool numeric = s_numeric_id(user, &id);
        errno = 0;
        pw = numeric ? getpwuid((uid_t) id) : getpwnam(cJSON_GetStringValue(user));
        if (!pw && !numeric)
            return s_failed(errno, "user \"%s\" does not exist", cJSON_GetStringValue(user));
        uid = pw ? pw->pw_uid : (uid_t) id;
        gid = pw ? pw->pw_gid : 0;
        if (!pw && !group)
            return s_failed(ENOENT, "user %lu has no passwd entry: give \"group\" too", id);
    }
    if (group) {
        struct group *gr;
        errno = 0;
        if (s_numeric_id(group, &id))
            gid = (gid_t) id;
        else if ((gr = getgrnam(cJSON_GetStringValue(group))))
            gid = gr->gr_gid;
        else
            return s_failed(errno, "group \"%s\" does not exist", cJSON_GetStringValue(group));
    }
    cJSON *c = cJSON_CreateObject();
    if (user)
        cJSON_AddNumberToObject(c, "uid", uid);
    cJSON_AddNumberToObject(c, "gid", gid);
    /* Supplementary groups: the user's own (as initgroups), else gid alone.
     * (pw is only ever set for a user.) */
    cJSON *groups = cJSON_AddArrayToObject(c, "groups");
    if (pw) {
        int n = 64;
        gid_t *list = NULL;
        for (;;) {
            list = realloc(list, (size_t) n * sizeof *list);
            if (!list)
                oom_die((size_t) n * sizeof *list);
            int want = n;
            if (getgrouplist(pw->pw_name, gid, list, &want) >= 0) {
                n = want;
                break;
            }
            n = want > n ? want : n * 2; /* too few: it said how many there are */
        }
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(groups, cJSON_CreateNumber(list[i]));
        free(list);
    } else {
        cJSON_AddItemToArray(groups, cJSON_CreateNumber(gid));
    }
    if (pw) { /* as login(1) and systemd's User= do; "env" may override */
        cJSON_AddStringToObject(c, "home", pw->pw_dir);
        cJSON_AddStringToObject(c, "name", pw->pw_name);
    }
    return c;
}
