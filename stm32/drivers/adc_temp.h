/* Die temperature from the internal sensor on ADC1 channel 16. */
#ifndef FOTA_ADC_TEMP_H
#define FOTA_ADC_TEMP_H

#include <stdint.h>

void adc_temp_init(void);
/* Convert once; *centi_c in 0.01 degC. Returns FOTA_OK or FOTA_E_TIMEOUT (no end of conversion). */
int adc_temp_read(int32_t *centi_c, uint32_t *raw);
/* The conversion, exposed for the twin's inverse and unit tests: raw 12-bit code -> 0.01 degC. */
int32_t adc_temp_centi_from_raw(uint32_t raw);

#endif /* FOTA_ADC_TEMP_H */
