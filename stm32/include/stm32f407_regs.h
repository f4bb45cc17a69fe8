/* STM32F407 register definitions: only what this firmware uses, written for this project.
 *
 * Naming follows libopencm3: PERIPH_REG for a register, PERIPH_REG_FIELD for a bit or field, with
 * _SHIFT / _MASK pairs for multi-bit fields. Every register is reached through MMIO32(), the one
 * volatile accessor. Addresses and bit positions come from RM0090 rev 19 (section numbers given
 * per block) and, for the Cortex-M4 core registers, from PM0214 (STM32F4 programming manual).
 *
 * The simulator (twin/stm32_twin) stops on any register it does not model: add a register here
 * only together with a note in stm32/README.md ("Registers touched"). */
#ifndef STM32F407_REGS_H
#define STM32F407_REGS_H

#include <stdint.h>

#define MMIO32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define MMIO16(addr) (*(volatile const uint16_t *)(uintptr_t)(addr)) /* read-only calibration words */

/* ---- Memory map (RM0090 section 2.3, table 1) ---- */
#define PERIPH_BASE_APB1 0x40000000u
#define PERIPH_BASE_APB2 0x40010000u
#define PERIPH_BASE_AHB1 0x40020000u

/* ---- RCC: reset and clock control (RM0090 section 7.3) ---- */
#define RCC_BASE (PERIPH_BASE_AHB1 + 0x3800u)
#define RCC_CR MMIO32(RCC_BASE + 0x00u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_HSEBYP (1u << 18)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)

#define RCC_PLLCFGR MMIO32(RCC_BASE + 0x04u)
#define RCC_PLLCFGR_PLLM_SHIFT 0
#define RCC_PLLCFGR_PLLM_MASK 0x3Fu
#define RCC_PLLCFGR_PLLN_SHIFT 6
#define RCC_PLLCFGR_PLLN_MASK 0x1FFu
#define RCC_PLLCFGR_PLLP_SHIFT 16 /* 00: /2, 01: /4, 10: /6, 11: /8 */
#define RCC_PLLCFGR_PLLP_MASK 0x3u
#define RCC_PLLCFGR_PLLSRC_HSE (1u << 22)
#define RCC_PLLCFGR_PLLQ_SHIFT 24
#define RCC_PLLCFGR_PLLQ_MASK 0xFu

#define RCC_CFGR MMIO32(RCC_BASE + 0x08u)
#define RCC_CFGR_SW_SHIFT 0
#define RCC_CFGR_SW_MASK 0x3u
#define RCC_CFGR_SW_HSI 0x0u
#define RCC_CFGR_SW_HSE 0x1u
#define RCC_CFGR_SW_PLL 0x2u
#define RCC_CFGR_SWS_SHIFT 2
#define RCC_CFGR_SWS_MASK 0x3u
#define RCC_CFGR_HPRE_SHIFT 4 /* 0xxx: AHB = SYSCLK */
#define RCC_CFGR_HPRE_MASK 0xFu
#define RCC_CFGR_PPRE1_SHIFT 10 /* 0xx: /1, 100: /2, 101: /4, 110: /8, 111: /16 */
#define RCC_CFGR_PPRE1_MASK 0x7u
#define RCC_CFGR_PPRE2_SHIFT 13
#define RCC_CFGR_PPRE2_MASK 0x7u
#define RCC_CFGR_PPRE_DIV1 0x0u
#define RCC_CFGR_PPRE_DIV2 0x4u
#define RCC_CFGR_PPRE_DIV4 0x5u

#define RCC_APB1RSTR MMIO32(RCC_BASE + 0x20u)
#define RCC_APB1RSTR_SPI2RST (1u << 14)

#define RCC_AHB1ENR MMIO32(RCC_BASE + 0x30u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_AHB1ENR_GPIOBEN (1u << 1)
#define RCC_AHB1ENR_GPIODEN (1u << 3)
#define RCC_AHB1ENR_DMA1EN (1u << 21)

#define RCC_APB1ENR MMIO32(RCC_BASE + 0x40u)
#define RCC_APB1ENR_SPI2EN (1u << 14)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB1ENR_PWREN (1u << 28)

#define RCC_APB2ENR MMIO32(RCC_BASE + 0x44u)
#define RCC_APB2ENR_ADC1EN (1u << 8)
#define RCC_APB2ENR_SYSCFGEN (1u << 14)

#define RCC_CSR MMIO32(RCC_BASE + 0x74u)
#define RCC_CSR_LSION (1u << 0)
#define RCC_CSR_LSIRDY (1u << 1)
#define RCC_CSR_RMVF (1u << 24)
#define RCC_CSR_BORRSTF (1u << 25)
#define RCC_CSR_PINRSTF (1u << 26)
#define RCC_CSR_PORRSTF (1u << 27)
#define RCC_CSR_SFTRSTF (1u << 28)
#define RCC_CSR_IWDGRSTF (1u << 29)
#define RCC_CSR_WWDGRSTF (1u << 30)
#define RCC_CSR_LPWRRSTF (1u << 31)

/* ---- FLASH interface (RM0090 section 3.9) ---- */
#define FLASH_IF_BASE (PERIPH_BASE_AHB1 + 0x3C00u)
#define FLASH_ACR MMIO32(FLASH_IF_BASE + 0x00u)
#define FLASH_ACR_LATENCY_SHIFT 0
#define FLASH_ACR_LATENCY_MASK 0x7u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)
#define FLASH_ACR_ICRST (1u << 11)
#define FLASH_ACR_DCRST (1u << 12)

#define FLASH_KEYR MMIO32(FLASH_IF_BASE + 0x04u)
#define FLASH_KEYR_KEY1 0x45670123u /* RM0090 section 3.5.1: KEY1 then KEY2 */
#define FLASH_KEYR_KEY2 0xCDEF89ABu

#define FLASH_SR MMIO32(FLASH_IF_BASE + 0x0Cu)
#define FLASH_SR_EOP (1u << 0)
#define FLASH_SR_OPERR (1u << 1)
#define FLASH_SR_WRPERR (1u << 4)
#define FLASH_SR_PGAERR (1u << 5)
#define FLASH_SR_PGPERR (1u << 6)
#define FLASH_SR_PGSERR (1u << 7)
#define FLASH_SR_BSY (1u << 16)
#define FLASH_SR_ERRORS (FLASH_SR_OPERR | FLASH_SR_WRPERR | FLASH_SR_PGAERR | FLASH_SR_PGPERR | FLASH_SR_PGSERR)

#define FLASH_CR MMIO32(FLASH_IF_BASE + 0x10u)
/* Option bytes as loaded at reset (RM0090 section 3.9.10). */
#define FLASH_OPTCR MMIO32(FLASH_IF_BASE + 0x14u)
#define FLASH_OPTCR_BOR_LEV_SHIFT 2 /* 00: level 3, 01: level 2, 10: level 1, 11: off */
#define FLASH_OPTCR_BOR_LEV_MASK 0x3u
#define FLASH_OPTCR_WDG_SW (1u << 5) /* 0: hardware watchdog, running from reset */
#define FLASH_OPTCR_RDP_SHIFT 8      /* 0xAA: level 0, 0xCC: level 2, else level 1 */
#define FLASH_OPTCR_RDP_MASK 0xFFu
#define FLASH_OPTCR_NWRP_SHIFT 16 /* one bit per sector 0-11, 0: write protected */
#define FLASH_OPTCR_NWRP_MASK 0xFFFu
#define FLASH_CR_PG (1u << 0)
#define FLASH_CR_SER (1u << 1)
#define FLASH_CR_MER (1u << 2)
#define FLASH_CR_SNB_SHIFT 3
#define FLASH_CR_SNB_MASK 0xFu
#define FLASH_CR_PSIZE_SHIFT 8
#define FLASH_CR_PSIZE_MASK 0x3u
#define FLASH_CR_PSIZE_X32 0x2u
#define FLASH_CR_STRT (1u << 16)
#define FLASH_CR_LOCK (1u << 31)

/* ---- GPIO (RM0090 section 8.4) ---- */
#define GPIO_PORT_BASE(n) (PERIPH_BASE_AHB1 + 0x400u * (uint32_t)(n))
#define GPIOA GPIO_PORT_BASE(0)
#define GPIOB GPIO_PORT_BASE(1)
#define GPIOD GPIO_PORT_BASE(3)
#define GPIO_MODER(port) MMIO32((port) + 0x00u)
#define GPIO_OTYPER(port) MMIO32((port) + 0x04u)
#define GPIO_OSPEEDR(port) MMIO32((port) + 0x08u) /* section 8.4.3, 2 bits per pin */
#define GPIO_OSPEED_HIGH 0x2u
#define GPIO_PUPDR(port) MMIO32((port) + 0x0Cu)
#define GPIO_PULL_UP 0x1u   /* PUPDR field: 01 pull-up, 10 pull-down (RM0090 section 8.4.4) */
#define GPIO_PULL_DOWN 0x2u
#define GPIO_IDR(port) MMIO32((port) + 0x10u)
#define GPIO_ODR(port) MMIO32((port) + 0x14u)
#define GPIO_BSRR(port) MMIO32((port) + 0x18u)
#define GPIO_AFRL(port) MMIO32((port) + 0x20u)
#define GPIO_AFRH(port) MMIO32((port) + 0x24u)
#define GPIO_MODE_INPUT 0x0u
#define GPIO_MODE_OUTPUT 0x1u
#define GPIO_MODE_AF 0x2u
#define GPIO_MODE_ANALOG 0x3u
#define GPIO_MODE_MASK 0x3u
#define GPIO_AF_MASK 0xFu

/* ---- USART2 (RM0090 section 30.6) ---- */
#define USART2_BASE (PERIPH_BASE_APB1 + 0x4400u)
#define USART_SR(base) MMIO32((base) + 0x00u)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_DR(base) MMIO32((base) + 0x04u)
#define USART_BRR(base) MMIO32((base) + 0x08u)
#define USART_CR1(base) MMIO32((base) + 0x0Cu)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)

/* ---- ADC1 and the ADC common block (RM0090 section 13.13) ---- */
#define ADC1_BASE (PERIPH_BASE_APB2 + 0x2000u)
#define ADC1_SR MMIO32(ADC1_BASE + 0x00u)
#define ADC_SR_EOC (1u << 1)
#define ADC1_CR1 MMIO32(ADC1_BASE + 0x04u)
#define ADC1_CR2 MMIO32(ADC1_BASE + 0x08u)
#define ADC_CR2_ADON (1u << 0)
#define ADC_CR2_SWSTART (1u << 30)
#define ADC1_SMPR1 MMIO32(ADC1_BASE + 0x0Cu)
#define ADC_SMPR1_SMP16_SHIFT 18 /* channel 16 sample time, 111: 480 cycles */
#define ADC_SMPR1_SMP16_MASK 0x7u
#define ADC_SMPR1_SMP17_SHIFT 21 /* channel 17 (VREFINT) sample time */
#define ADC1_SQR1 MMIO32(ADC1_BASE + 0x2Cu)
#define ADC_SQR1_L_SHIFT 20 /* regular sequence length - 1 */
#define ADC_SQR1_L_MASK 0xFu
#define ADC1_SQR3 MMIO32(ADC1_BASE + 0x34u)
#define ADC_SQR3_SQ1_SHIFT 0
#define ADC_SQR3_SQ1_MASK 0x1Fu
#define ADC1_DR MMIO32(ADC1_BASE + 0x4Cu)
#define ADC_COMMON_BASE (PERIPH_BASE_APB2 + 0x2300u)
#define ADC_CCR MMIO32(ADC_COMMON_BASE + 0x04u)
#define ADC_CCR_ADCPRE_SHIFT 16 /* 00: PCLK2/2, 01: /4, 10: /6, 11: /8 */
#define ADC_CCR_ADCPRE_MASK 0x3u
#define ADC_CCR_TSVREFE (1u << 23)
#define ADC_CHANNEL_TEMP 16u /* RM0090 section 13.10: temperature sensor on ADC1_IN16 */

/* ---- SPI2 (RM0090 section 28.5) ---- */
#define SPI2_BASE (PERIPH_BASE_APB1 + 0x3800u)
#define SPI2_CR1 MMIO32(SPI2_BASE + 0x00u)
#define SPI_CR1_CPHA (1u << 0)
#define SPI_CR1_CPOL (1u << 1)
#define SPI_CR1_MSTR (1u << 2)
#define SPI_CR1_SPE (1u << 6)
#define SPI_CR1_LSBFIRST (1u << 7)
#define SPI_CR1_SSM (1u << 9)
#define SPI_CR1_DFF (1u << 11)
#define SPI2_CR2 MMIO32(SPI2_BASE + 0x04u)
#define SPI_CR2_RXDMAEN (1u << 0)
#define SPI_CR2_TXDMAEN (1u << 1)
#define SPI2_SR MMIO32(SPI2_BASE + 0x08u)
#define SPI_SR_RXNE (1u << 0)
#define SPI_SR_TXE (1u << 1)
#define SPI_SR_OVR (1u << 6)
#define SPI_SR_BSY (1u << 7)
#define SPI2_DR MMIO32(SPI2_BASE + 0x0Cu)
#define SPI2_DR_ADDR (SPI2_BASE + 0x0Cu)

/* ---- DMA1 (RM0090 section 10.5; table 42: SPI2_RX stream 3 channel 0, SPI2_TX stream 4
 * channel 0) ---- */
#define DMA1_BASE (PERIPH_BASE_AHB1 + 0x6000u)
#define DMA1_LISR MMIO32(DMA1_BASE + 0x00u)
#define DMA1_HISR MMIO32(DMA1_BASE + 0x04u)
#define DMA1_LIFCR MMIO32(DMA1_BASE + 0x08u)
#define DMA1_HIFCR MMIO32(DMA1_BASE + 0x0Cu)
/* Stream 3 flags live in LISR/LIFCR bits 22-27, stream 4 flags in HISR/HIFCR bits 0-5:
 * FEIF, DMEIF, TEIF, HTIF, TCIF (write-1-to-clear in the IFCR registers). */
#define DMA_LIFCR_STREAM3_ALL ((1u << 22) | (1u << 24) | (1u << 25) | (1u << 26) | (1u << 27))
#define DMA_HIFCR_STREAM4_ALL ((1u << 0) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5))
#define DMA1_SCR(n) MMIO32(DMA1_BASE + 0x10u + 0x18u * (n))
#define DMA1_SNDTR(n) MMIO32(DMA1_BASE + 0x14u + 0x18u * (n))
#define DMA1_SPAR(n) MMIO32(DMA1_BASE + 0x18u + 0x18u * (n))
#define DMA1_SM0AR(n) MMIO32(DMA1_BASE + 0x1Cu + 0x18u * (n))
#define DMA1_SFCR(n) MMIO32(DMA1_BASE + 0x24u + 0x18u * (n))
#define DMA_SCR_EN (1u << 0)
#define DMA_SCR_DIR_SHIFT 6 /* 00: peripheral to memory, 01: memory to peripheral */
#define DMA_SCR_DIR_P2M (0x0u << DMA_SCR_DIR_SHIFT)
#define DMA_SCR_DIR_M2P (0x1u << DMA_SCR_DIR_SHIFT)
#define DMA_SCR_MINC (1u << 10)
#define DMA_SCR_PL_SHIFT 16
#define DMA_SCR_PL_HIGH (0x2u << DMA_SCR_PL_SHIFT)
#define DMA_SCR_CHSEL_SHIFT 25
#define DMA_SCR_CHSEL_MASK 0x7u
/* PSIZE = MSIZE = 00 (byte), direct mode (FCR DMDIS = 0): the reset values. */

/* ---- EXTI (RM0090 section 12.3) ---- */
#define EXTI_BASE (PERIPH_BASE_APB2 + 0x3C00u)
#define EXTI_IMR MMIO32(EXTI_BASE + 0x00u)
#define EXTI_RTSR MMIO32(EXTI_BASE + 0x08u)
#define EXTI_FTSR MMIO32(EXTI_BASE + 0x0Cu)
#define EXTI_PR MMIO32(EXTI_BASE + 0x14u)

/* ---- SYSCFG (RM0090 section 9.2): EXTICR4 selects the port of EXTI12..15 ---- */
#define SYSCFG_BASE (PERIPH_BASE_APB2 + 0x3800u)
#define SYSCFG_EXTICR4 MMIO32(SYSCFG_BASE + 0x14u)
#define SYSCFG_EXTICR_PORTB 0x1u
#define SYSCFG_EXTICR4_EXTI12_SHIFT 0
#define SYSCFG_EXTICR_MASK 0xFu

/* ---- IWDG (RM0090 section 19.4) ---- */
#define IWDG_BASE (PERIPH_BASE_APB1 + 0x3000u)
#define IWDG_KR MMIO32(IWDG_BASE + 0x00u)
#define IWDG_KR_UNLOCK 0x5555u
#define IWDG_KR_RELOAD 0xAAAAu
#define IWDG_KR_START 0xCCCCu
#define IWDG_PR MMIO32(IWDG_BASE + 0x04u)
#define IWDG_RLR MMIO32(IWDG_BASE + 0x08u)
#define IWDG_SR MMIO32(IWDG_BASE + 0x0Cu)
#define IWDG_SR_PVU (1u << 0)
#define IWDG_SR_RVU (1u << 1)

/* ---- Cortex-M4 core (PM0214 section 4) ---- */
#define SYSTICK_BASE 0xE000E010u
#define SYSTICK_CTRL MMIO32(SYSTICK_BASE + 0x00u)
#define SYSTICK_CTRL_ENABLE (1u << 0)
#define SYSTICK_CTRL_TICKINT (1u << 1)
#define SYSTICK_CTRL_CLKSOURCE (1u << 2) /* 1: processor clock */
#define SYSTICK_CTRL_COUNTFLAG (1u << 16)
#define SYSTICK_LOAD MMIO32(SYSTICK_BASE + 0x04u)
#define SYSTICK_VAL MMIO32(SYSTICK_BASE + 0x08u)

/* NVIC (PM0214 section 4.2); device interrupt numbers from RM0090 table 61. */
#define NVIC_ISER(n) MMIO32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) MMIO32(0xE000E180u + 4u * (n))
#define NVIC_ICPR(n) MMIO32(0xE000E280u + 4u * (n))
#define NVIC_IPR_BYTE(irq) (*(volatile uint8_t *)(uintptr_t)(0xE000E400u + (irq)))
#define NVIC_IRQN_EXTI15_10 40u

#define SCB_BASE 0xE000ED00u
#define SCB_ICSR MMIO32(SCB_BASE + 0x04u)
#define SCB_ICSR_PENDSTCLR (1u << 25)
#define SCB_VTOR MMIO32(SCB_BASE + 0x08u)
#define SCB_AIRCR MMIO32(SCB_BASE + 0x0Cu)
#define SCB_AIRCR_VECTKEY (0x05FAu << 16)
#define SCB_AIRCR_SYSRESETREQ (1u << 2)
#define SCB_CPACR MMIO32(0xE000ED88u) /* PM0214 section 4.6.1 */
#define SCB_CPACR_CP10_CP11_FULL (0xFu << 20)

/* Cycle counter (ARMv7-M ARM sections C1.6.5 DEMCR and C1.8 DWT). */
#define DEMCR MMIO32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL MMIO32(0xE0001000u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CYCCNT MMIO32(0xE0001004u)

/* ---- Device identity (RM0090 section 39.1) ---- */
#define UID_BASE 0x1FFF7A10u

/* ---- Factory calibration in system memory (DS8626 sections 6.3.22, 6.3.23: taken at
 * VDDA = 3.3 V; TS_CAL1 at 30 C, TS_CAL2 at 110 C), 16-bit ADC codes ---- */
#define CAL_VREFINT MMIO16(0x1FFF7A2Au)
#define CAL_TS30 MMIO16(0x1FFF7A2Cu)
#define CAL_TS110 MMIO16(0x1FFF7A2Eu)

/* ---- Debug MCU (RM0090 section 38.16) ---- */
#define DBGMCU_IDCODE MMIO32(0xE0042000u)
#define DBGMCU_IDCODE_REV_SHIFT 16
#define DBGMCU_REV_A 0x1000u /* revision A: see clock.c for its prefetch erratum */
#define DBGMCU_APB1_FZ MMIO32(0xE0042008u)
#define DBGMCU_APB1_FZ_IWDG_STOP (1u << 12)

static inline void cpu_irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
static inline void cpu_irq_enable(void) { __asm__ volatile("cpsie i" ::: "memory"); }
static inline void cpu_wfi(void) { __asm__ volatile("wfi"); }
static inline void cpu_dsb(void) { __asm__ volatile("dsb 0xF" ::: "memory"); }
static inline void cpu_isb(void) { __asm__ volatile("isb 0xF" ::: "memory"); }

/* Turn a peripheral clock on. ES0182 section 2.1.13: an access within 2 AHB cycles (AHB
 * peripherals) or 1 + AHB/APB prescaler cycles (APB peripherals) after the enable is lost; the
 * erratum's workaround is a DSB right after the RCC write (a read-back is not enough on every
 * part). Every RCC_xxxENR write of the firmware goes through here. */
static inline void rcc_enable(volatile uint32_t *enr, uint32_t bits)
{
    *enr |= bits;
    cpu_dsb();
}

#endif /* STM32F407_REGS_H */
