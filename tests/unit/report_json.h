/* For unit tests: a tree's report as the supervisor sends it (report.h),
 * parsed back so that tests can look into it. */
#ifndef ARBOR_TEST_REPORT_JSON_H
#define ARBOR_TEST_REPORT_JSON_H

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "report.h"

static cJSON *s_report(const tree_t *t, int64_t now_ms)
{
    char *text = report_text(t, now_ms, NULL);
    assert_non_null(text);
    cJSON *r = cJSON_Parse(text);
    assert_non_null(r);
    free(text);
    return r;
}

#endif
