/* Minimal register access and helpers for the twin's test programs. */
#ifndef PROG_H
#define PROG_H
#include <stdint.h>

#define REG(addr) (*(volatile uint32_t *)(addr))
/* After a clock enable, a DSB before the block's first access (ES0182 2.1.13; the twin loses an
 * access inside the window). */
#define DSB() __asm__ volatile("dsb 0xF" ::: "memory")
#define RCC_AHB1ENR REG(0x40023830)
#define RCC_APB1ENR REG(0x40023840)
#define RCC_APB2ENR REG(0x40023844)
#define RCC_CSR REG(0x40023874)
#define GPIOA_MODER REG(0x40020000)
#define GPIOA_AFRL REG(0x40020020)
#define GPIOB_MODER REG(0x40020400)
#define GPIOB_IDR REG(0x40020410)
#define GPIOB_AFRH REG(0x40020424)
#define GPIOB_BSRR REG(0x40020418)
#define GPIOD_MODER REG(0x40020C00)
#define GPIOD_ODR REG(0x40020C14)
#define GPIOD_BSRR REG(0x40020C18)
#define USART2_SR REG(0x40004400)
#define USART2_DR REG(0x40004404)
#define USART2_BRR REG(0x40004408)
#define USART2_CR1 REG(0x4000440C)
#define SYST_CSR REG(0xE000E010)
#define SYST_RVR REG(0xE000E014)
#define SYST_CVR REG(0xE000E018)
#define NVIC_ISER(n) REG(0xE000E100 + 4 * (n))
#define NVIC_ISPR(n) REG(0xE000E200 + 4 * (n))
#define NVIC_IPR8(n) (*(volatile uint8_t *)(0xE000E400 + (n)))
#define SCB_ICSR REG(0xE000ED04)
#define SCB_VTOR REG(0xE000ED08)
#define SCB_AIRCR REG(0xE000ED0C)
#define SCB_SHPR3 REG(0xE000ED20)
#define FLASH_ACR REG(0x40023C00)
#define FLASH_KEYR REG(0x40023C04)
#define FLASH_SR REG(0x40023C0C)
#define FLASH_CR REG(0x40023C10)
#define IWDG_KR REG(0x40003000)
#define IWDG_PR REG(0x40003004)
#define IWDG_RLR REG(0x40003008)
#define SPI2_CR1 REG(0x40003800)
#define SPI2_CR2 REG(0x40003804)
#define SPI2_SR REG(0x40003808)
#define SPI2_DR REG(0x4000380C)
#define DMA1_LISR REG(0x40026000)
#define DMA1_HISR REG(0x40026004)
#define DMA1_LIFCR REG(0x40026008)
#define DMA1_HIFCR REG(0x4002600C)
#define DMA1_SCR(n) REG(0x40026010 + 0x18 * (n))
#define DMA1_SNDTR(n) REG(0x40026014 + 0x18 * (n))
#define DMA1_SPAR(n) REG(0x40026018 + 0x18 * (n))
#define DMA1_SM0AR(n) REG(0x4002601C + 0x18 * (n))
#define CRC_DR REG(0x40023000)
#define CRC_CR REG(0x40023008)
#define EXTI_IMR REG(0x40013C00)
#define EXTI_RTSR REG(0x40013C08)
#define EXTI_PR REG(0x40013C14)
#define SYSCFG_EXTICR4 REG(0x40013814)

void uart_init(void);
void put(const char *s);
void puthex(uint32_t v);
void putdec(uint32_t v);
void line(const char *key, uint32_t v);  /* "key 0x%08X\n" */
void leds_init(void);

#endif
