/* ADC1 conversions of the temperature sensor (channel 16) and VREFINT (channel 17), RM0090
 * sections 13.3 and 13.10.
 *
 * VDDA is not assumed: the Discovery board runs at about 3.0 V (regulator plus diode), where a
 * 3.3 V formula reads 25 C as about 55 C. Both codes are taken at the same VDDA, so the sensor's
 * code scaled by VREFIN_CAL / VREFINT is what it would read at 3.3 V, where the factory measured
 * TS_CAL1 (30 C) and TS_CAL2 (110 C) (DS8626 sections 6.3.22 and 6.3.23, tables 69 and 70); a
 * line through those two points (adc_temp_centi, in temp_conv.c) replaces the datasheet's V25 and
 * slope, which vary between parts. */
#include "adc_temp.h"
#include "fota_err.h"
#include "stm32f407_regs.h"
#include "wait.h"

#define ADC_FULL_SCALE 4095u
#define ADC_CHANNEL_VREFINT 17u
#define ADC_SMP_480_CYCLES 7u
#define ADC_PRE_DIV4 1u
/* Sensor start-up 10 us max (DS8626 table 69) + ADC stabilisation 3 us (table 66). */
#define ADC_SETTLE_US 20u
/* 480 + 12 cycles at 21 MHz is 23 us; allow 1 ms. */
#define ADC_CONVERSION_US 1000u

void adc_temp_init(void)
{
    rcc_enable(&RCC_APB2ENR, RCC_APB2ENR_ADC1EN);
    /* ADCCLK = PCLK2 / 4 = 21 MHz (max 36 MHz), temperature sensor and VREFINT on. */
    ADC_CCR = (ADC_PRE_DIV4 << ADC_CCR_ADCPRE_SHIFT) | ADC_CCR_TSVREFE;
    /* Sampling time of channels 16 and 17 at least 10 us (DS8626 tables 69, 70): 480 cycles = 22.9 us. */
    ADC1_SMPR1 = (ADC_SMP_480_CYCLES << ADC_SMPR1_SMP16_SHIFT) | (ADC_SMP_480_CYCLES << ADC_SMPR1_SMP17_SHIFT);
    ADC1_SQR1 = 0u << ADC_SQR1_L_SHIFT; /* one conversion */
    ADC1_CR1 = 0u;                      /* 12-bit, no scan */
    ADC1_CR2 = ADC_CR2_ADON;
    delay_us_at_least(ADC_SETTLE_US);
}

static int convert(uint32_t channel, uint32_t *code)
{
    ADC1_SQR3 = channel << ADC_SQR3_SQ1_SHIFT;
    (void)ADC1_DR; /* drop a stale result so EOC belongs to this conversion */
    ADC1_CR2 = ADC_CR2_ADON | ADC_CR2_SWSTART;
    if (!wait_reg(&ADC1_SR, ADC_SR_EOC, ADC_SR_EOC, ADC_CONVERSION_US)) {
        return FOTA_E_TIMEOUT;
    }
    *code = ADC1_DR & ADC_FULL_SCALE; /* reading DR clears EOC */
    return FOTA_OK;
}

int adc_temp_read(int32_t *centi_c, uint32_t *raw)
{
    uint32_t vref = 0u;
    int rc = convert(ADC_CHANNEL_VREFINT, &vref);
    if (rc == FOTA_OK) {
        rc = convert(ADC_CHANNEL_TEMP, raw);
    }
    if (rc != FOTA_OK) {
        return rc;
    }
    const struct adc_cal cal = {CAL_VREFINT, CAL_TS30, CAL_TS110};
    *centi_c = adc_temp_centi(*raw, vref, &cal);
    return FOTA_OK;
}
