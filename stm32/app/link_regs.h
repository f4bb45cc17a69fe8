/* Registers of the SPI link (stm32/app/link.c) that stm32/include/stm32f407_regs.h does not carry:
 * SPI2, DMA1 streams 3 and 4, EXTI, SYSCFG, NVIC and the RCC bits they need. Same conventions as
 * that header (PERIPH_REG, PERIPH_REG_FIELD, one MMIO32 accessor); RM0090 rev 19 sections cited per
 * block, PM0214 for the NVIC. Candidates to move into the main register header. */
#ifndef LINK_REGS_H
#define LINK_REGS_H

#include "stm32f407_regs.h"

/* ---- RCC bits (RM0090 section 7.3) ---- */
#define RCC_AHB1ENR_DMA1EN (1u << 21)
#define RCC_APB1RSTR MMIO32(RCC_BASE + 0x20u)
#define RCC_APB1RSTR_SPI2RST (1u << 14)
#define RCC_APB2ENR_SYSCFGEN (1u << 14)

/* ---- GPIO output speed (RM0090 section 8.4.3) ---- */
#define GPIO_OSPEEDR(port) MMIO32((port) + 0x08u)
#define GPIO_OSPEED_HIGH 0x2u

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

/* ---- NVIC (PM0214 section 4.2) ---- */
#define NVIC_ISER(n) MMIO32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) MMIO32(0xE000E180u + 4u * (n))
#define NVIC_ICPR(n) MMIO32(0xE000E280u + 4u * (n))
#define NVIC_IPR_BYTE(irq) (*(volatile uint8_t *)(uintptr_t)(0xE000E400u + (irq)))
#define IRQN_EXTI15_10 40u /* RM0090 table 61 */

#endif /* LINK_REGS_H */
