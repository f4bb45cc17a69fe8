/* ADC1 single conversion of the temperature sensor (RM0090 sections 13.3 and 13.10).
 * The datasheet formula (DS8626 section 6.3.22, table 69): T = (Vsense - V25) / Avg_Slope + 25,
 * with V25 = 0.76 V and Avg_Slope = 2.5 mV/degC, and VDDA = VREF+ = 3.3 V (Discovery board).
 * Factory calibration values are not used: the plain formula needs no fallback. */
#include "adc_temp.h"
#include "fota_err.h"
#include "stm32f407_regs.h"
#include "wait.h"

#define ADC_VREF_MV 3300u
#define ADC_FULL_SCALE 4095u
#define TEMP_V25_UV 760000
#define TEMP_SLOPE_UV_PER_CENTI 25 /* 2.5 mV/degC = 25 uV per 0.01 degC */
#define ADC_SMP_480_CYCLES 7u
#define ADC_PRE_DIV4 1u
/* Sensor start-up 10 us max (DS8626 table 69) + ADC stabilisation 3 us (table 66). */
#define ADC_SETTLE_US 20u
/* 480 + 12 cycles at 21 MHz is 23 us; allow 1 ms. */
#define ADC_CONVERSION_US 1000u

void adc_temp_init(void)
{
    RCC_APB2ENR |= RCC_APB2ENR_ADC1EN;
    /* ADCCLK = PCLK2 / 4 = 21 MHz (max 36 MHz), temperature sensor and VREFINT on. */
    ADC_CCR = (ADC_PRE_DIV4 << ADC_CCR_ADCPRE_SHIFT) | ADC_CCR_TSVREFE;
    /* Sampling time of channel 16 at least 10 us (DS8626 table 69 t_S_temp): 480 cycles = 22.9 us. */
    ADC1_SMPR1 = ADC_SMP_480_CYCLES << ADC_SMPR1_SMP16_SHIFT;
    ADC1_SQR1 = 0u << ADC_SQR1_L_SHIFT; /* one conversion */
    ADC1_SQR3 = ADC_CHANNEL_TEMP << ADC_SQR3_SQ1_SHIFT;
    ADC1_CR1 = 0u; /* 12-bit, no scan */
    ADC1_CR2 = ADC_CR2_ADON;
    delay_us_at_least(ADC_SETTLE_US);
}

int32_t adc_temp_centi_from_raw(uint32_t raw)
{
    /* raw * 3300 mV / 4095 in units of 10 uV keeps the product inside 32 bits. */
    int32_t uv = (int32_t)((raw * (ADC_VREF_MV * 100u)) / ADC_FULL_SCALE) * 10;
    return (uv - TEMP_V25_UV) / TEMP_SLOPE_UV_PER_CENTI + 2500;
}

int adc_temp_read(int32_t *centi_c, uint32_t *raw)
{
    (void)ADC1_DR; /* drop a stale result so EOC belongs to this conversion */
    ADC1_CR2 = ADC_CR2_ADON | ADC_CR2_SWSTART;
    if (!wait_reg(&ADC1_SR, ADC_SR_EOC, ADC_SR_EOC, ADC_CONVERSION_US)) {
        return FOTA_E_TIMEOUT;
    }
    uint32_t code = ADC1_DR & ADC_FULL_SCALE; /* reading DR clears EOC */
    *raw = code;
    *centi_c = adc_temp_centi_from_raw(code);
    return FOTA_OK;
}
