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
    /* A part calibrated at 3.3 V (VREFINT 1.20 V, sensor 0.775 V at 30 C, 0.975 V at 110 C), read at
     * VDDA 3.0 V and at 3.3 V: the same temperature from both. */
    const struct adc_cal cal = {1489u, 962u, 1210u};
    const double vdda[] = {3.0, 3.3};
    const int temps[] = {-40, 0, 25, 30, 85, 125};
    for (unsigned v = 0; v < 2; v++) {
        uint32_t vref = (uint32_t)(1.20 * 4095.0 / vdda[v] + 0.5);
        for (unsigned i = 0; i < sizeof(temps) / sizeof(temps[0]); i++) {
            double volts = 0.775 + (temps[i] - 30) * 0.0025;
            uint32_t raw = (uint32_t)(volts * 4095.0 / vdda[v] + 0.5);
            int32_t centi = adc_temp_centi(raw, vref, &cal);
            CHECK(centi > temps[i] * 100 - 40 && centi < temps[i] * 100 + 40, "VDDA %.1f T=%d: raw %u -> %d",
                  vdda[v], temps[i], raw, centi);
        }
    }
    /* Erased calibration words: the datasheet's typical values (25 C at 3.3 V is code 943). */
    const struct adc_cal erased = {0xFFFFu, 0xFFFFu, 0xFFFFu};
    int32_t typ = adc_temp_centi(943u, 1501u, &erased);
    CHECK(typ > 2450 && typ < 2550, "typical values: %d", typ);
    CHECK_EQ(adc_temp_centi(943u, 1501u, 0), typ);
    CHECK_EQ(adc_temp_centi(943u, 0u, 0), typ); /* no VREFINT reading: as at 3.3 V */
    CHECK(adc_temp_centi(4095u, 1u, &cal) > 100000, "VREFINT code 1 stays defined"); /* UBSan: no overflow */
}
