/* clock: monotonic milliseconds, the only time base used for deadlines. */
#ifndef ARBOR_CLOCK_H
#define ARBOR_CLOCK_H
#include <stdint.h>

int64_t clk_now_ms(void);
int64_t clk_now_us(void);

#endif
