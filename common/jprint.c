#include "jprint.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define S_EXACT 9007199254740992.0 /* 2^53: every integer below is a double */

/* Turn one integral number into raw text; 0, or -1 without memory. */
static int s_rawify(cJSON *item)
{
    double d = item->valuedouble;
    if (!(fabs(d) < S_EXACT) || d != floor(d))
        return 0; /* NaN, infinite, fractional or too big: cJSON's way */
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long) d);
    char *text = cJSON_malloc((size_t) n + 1);
    if (!text)
        return -1;
    memcpy(text, buf, (size_t) n + 1);
    item->type = cJSON_Raw | (item->type & ~0xFF);
    item->valuestring = text;
    return 0;
}

static int s_walk(cJSON *item)
{
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item) && s_rawify(item) != 0)
            return -1;
        if ((cJSON_IsObject(item) || cJSON_IsArray(item)) && s_walk(item->child) != 0)
            return -1;
    }
    return 0;
}

char *jprint_unformatted(cJSON *item)
{
    if (!item)
        return NULL;
    /* The top item alone: its siblings (if any) are not ours to print. */
    if (cJSON_IsNumber(item) ? s_rawify(item) != 0
                             : ((cJSON_IsObject(item) || cJSON_IsArray(item)) &&
                                s_walk(item->child) != 0))
        return NULL;
    return cJSON_PrintUnformatted(item);
}
