/* The temperature conversion of adc_temp.c, without registers (host-tested in tests/c): the sensor's
 * code scaled to VDDA = 3.3 V by VREFIN_CAL / VREFINT, then the line through the factory points
 * TS_CAL1 (30 C) and TS_CAL2 (110 C) (DS8626 sections 6.3.22 and 6.3.23). */
#include "adc_temp.h"

#define ADC_FULL_SCALE 4095u
/* Typical values at 3.3 V when the calibration words are implausible (erased or out of order):
 * VREFINT 1.21 V; sensor 0.76 V at 25 C plus 2.5 mV/C (DS8626 tables 69, 70). */
static const struct adc_cal typical = {1501u, 959u, 1207u};
#define SCALE 16 /* sub-LSB precision of the sensor code scaled to 3.3 V */

int32_t adc_temp_centi(uint32_t ts_raw, uint32_t vref_raw, const struct adc_cal *cal)
{
    if (cal == 0 || cal->vrefint == 0u || cal->vrefint >= ADC_FULL_SCALE || cal->ts110 <= cal->ts30 ||
        cal->ts110 >= ADC_FULL_SCALE) {
        cal = &typical;
    }
    if (vref_raw == 0u) {
        vref_raw = cal->vrefint; /* no reference reading: as if VDDA were 3.3 V */
    } else if (vref_raw < cal->vrefint / 2u) {
        vref_raw = cal->vrefint / 2u; /* VDDA above 6.6 V is not a reading: keeps the product below */
    }
    /* ts_33 at most 4095 * 2 * 16, times 8000 below 2^31. */
    int32_t ts_33 = (int32_t)((ts_raw * cal->vrefint * SCALE) / vref_raw);
    int32_t span = (int32_t)(cal->ts110 - cal->ts30) * SCALE;
    return 3000 + (8000 * (ts_33 - (int32_t)cal->ts30 * SCALE)) / span;
}
