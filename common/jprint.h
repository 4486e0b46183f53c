/* jprint: cJSON_PrintUnformatted for objects that are printed to be sent and
 * then dropped (envelopes, reports). cJSON 1.7.15 (Debian 12) formats every
 * number with "%1.15g" and reads it back with sscanf to check it: ~0.6 µs a
 * number on the project machine, against ~0.04 µs for raw text. An event
 * carries three or four numbers and a 1111-node report ~15k, so that was a
 * tenth of the supervisor's CPU while a big tree was cancelled. */
#ifndef ARBOR_JPRINT_H
#define ARBOR_JPRINT_H

#include <cjson/cJSON.h>

/* Prints item like cJSON_PrintUnformatted (free with cJSON_free). Integral
 * numbers within ±2^53 become raw items holding their decimal digits first:
 * item is changed, so print with it only what is discarded after. The
 * output is cJSON's, except that integers of 16 digits come out exact
 * (cJSON rounds them to 15: "9.00719925474099e+15") and -0 as 0. NULL
 * without memory. */
char *jprint_unformatted(cJSON *item);

#endif
