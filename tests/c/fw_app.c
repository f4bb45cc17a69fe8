/* Pure parts of the application and drivers: the scheduler and the temperature conversion. */
#include "adc_temp.h"
#include "fixture.h"
#include "sched.h"

volatile uint32_t g_core_mhz = 16; /* drivers/clock.c on the target; adc_temp.c refers to it */

static uint32_t runs[3], last_now[3];
static void t0(uint32_t now) { runs[0]++; last_now[0] = now; }
static void t1(uint32_t now) { runs[1]++; last_now[1] = now; }

TEST(sched_periods_and_catch_up)
{
    CHECK_EQ(sched_add(t0, 500, 500), 0);
    CHECK_EQ(sched_add(t1, 1000, 1000), 0);
    for (uint32_t now = 0; now <= 5000; now++) {
        sched_run(now);
    }
    CHECK_EQ(runs[0], 10); /* 500, 1000, ..., 5000 */
    CHECK_EQ(runs[1], 5);
    CHECK_EQ(last_now[0], 5000);
    /* A loop that stalls (a 2 s flash erase): the task runs once, then keeps its period. */
    sched_run(8200);
    CHECK_EQ(runs[0], 11);
    sched_run(8699);
    CHECK_EQ(runs[0], 11);
    sched_run(8700);
    CHECK_EQ(runs[0], 12);
    /* Across the 32-bit millisecond wrap (49 days of uptime): get there in steps the signed
     * comparison can follow, then tick through the wrap. */
    for (uint32_t now = 8700; now < 0xFFFFE000u - 1000000000u; now += 1000000000u) {
        sched_run(now);
    }
    sched_run(0xFFFFE000u);
    uint32_t before = runs[1];
    for (uint32_t now = 0xFFFFF000u; now != 0x00001000u; now++) {
        sched_run(now);
    }
    CHECK(runs[1] - before >= 8 && runs[1] - before <= 9, "%u runs across the wrap", runs[1] - before);
    /* The table is bounded. */
    int added = 0;
    while (sched_add(t0, 1, 0) == 0) {
        added++;
    }
    CHECK_EQ(added, SCHED_MAX_TASKS - 2);
}

TEST(adc_temperature_formula)
{
    /* The datasheet formula with VDDA 3.3 V: the code for T is (760 + (T - 25) * 2.5) mV * 4095 / 3300
     * (the simulator uses this inverse). One LSB is 0.806 mV = 0.32 degC. */
    const int temps[] = {-40, 0, 25, 30, 85, 125};
    for (unsigned i = 0; i < sizeof(temps) / sizeof(temps[0]); i++) {
        double mv = 760.0 + (temps[i] - 25) * 2.5;
        uint32_t raw = (uint32_t)(mv * 4095.0 / 3300.0 + 0.5);
        int32_t centi = adc_temp_centi_from_raw(raw);
        CHECK(centi > temps[i] * 100 - 20 && centi < temps[i] * 100 + 20, "T=%d: raw %u -> %d", temps[i], raw,
              centi);
    }
    CHECK_EQ(adc_temp_centi_from_raw(943), 2497);
    CHECK(adc_temp_centi_from_raw(0) < -27000, "raw 0 -> %d", adc_temp_centi_from_raw(0));
    CHECK(adc_temp_centi_from_raw(4095) > 100000, "full scale -> %d", adc_temp_centi_from_raw(4095));
}
