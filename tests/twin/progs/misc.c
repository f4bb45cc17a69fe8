/* CRC unit, ADC1 temperature channel, unique ID, flash size, DBGMCU IDCODE, and a read of an
 * address the twin does not model (I2C1) when the config word asks for it. */
#include "prog.h"

#define ADC1_SR REG(0x40012000)
#define ADC1_CR2 REG(0x40012008)
#define ADC1_SMPR1 REG(0x4001200C)
#define ADC1_SQR3 REG(0x40012034)
#define ADC1_DR REG(0x4001204C)
#define ADC_CCR REG(0x40012304)

int main(void)
{
    uart_init();
    RCC_AHB1ENR |= 1u << 12; DSB(); /* CRC */
    CRC_CR = 1;
    CRC_DR = 0x12345678u;
    CRC_DR = 0xCAFEBABEu;
    line("crc", CRC_DR);
    RCC_APB2ENR |= 1u << 8; DSB(); /* ADC1 */
    ADC_CCR |= 1u << 23;    /* TSVREFE */
    ADC1_SMPR1 = 7u << 18;  /* channel 16: 480 cycles */
    ADC1_SQR3 = 16;
    ADC1_CR2 = 1;           /* ADON */
    ADC1_CR2 |= 1u << 30;   /* SWSTART */
    while (!(ADC1_SR & 2u)) {
    }
    line("adc16", ADC1_DR);
    line("uid0", REG(0x1FFF7A10));
    line("uid1", REG(0x1FFF7A14));
    line("uid2", REG(0x1FFF7A18));
    line("flash_kb", *(volatile uint16_t *)0x1FFF7A22);
    line("idcode", REG(0xE0042000));
    if (*(volatile uint32_t *)0x08003F00u == 2u) {
        line("i2c1_cr1", REG(0x40005400));
    }
    line("done", 0);
    for (;;) {
        __asm volatile("wfi");
    }
}
