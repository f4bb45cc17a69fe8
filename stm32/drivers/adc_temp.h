/* Die temperature from the internal sensor on ADC1 channel 16, against VREFINT on channel 17. */
#ifndef FOTA_ADC_TEMP_H
#define FOTA_ADC_TEMP_H

#include <stdint.h>

/* ADC codes of the factory calibration, taken at VDDA = 3.3 V (DS8626 sections 6.3.22, 6.3.23). */
struct adc_cal {
    uint16_t vrefint; /* VREFINT */
    uint16_t ts30;    /* sensor at 30 C */
    uint16_t ts110;   /* sensor at 110 C */
};

void adc_temp_init(void);
/* Convert once; *centi_c in 0.01 degC, *raw the sensor's code. Returns FOTA_OK or FOTA_E_TIMEOUT
 * (no end of conversion). */
int adc_temp_read(int32_t *centi_c, uint32_t *raw);
/* The conversion, exposed for unit tests: the sensor's and VREFINT's codes at the same VDDA, and
 * the calibration (NULL or an implausible one: the datasheet's typical values) -> 0.01 degC. */
int32_t adc_temp_centi(uint32_t ts_raw, uint32_t vref_raw, const struct adc_cal *cal);

#endif /* FOTA_ADC_TEMP_H */
