/* specfile: read a tree spec (file or stdin) and check that it is a JSON object.
 * The supervisor validates the rules; this only catches what the CLI can
 * say more precisely (where the JSON breaks). */
#ifndef ARBOR_CLI_SPECFILE_H
#define ARBOR_CLI_SPECFILE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define SPECFILE_MAX_BYTES (4 << 20) /* the broker's default --max-msg */

/* Parse text; on failure returns NULL and writes "line L, column C: ..." to
 * err. */
cJSON *specfile_parse(const char *text, size_t len, char *err, size_t err_size);

/* Read path ("-" = stdin) whole, then specfile_parse. err names the file. */
cJSON *specfile_load(const char *path, char *err, size_t err_size);

#endif
