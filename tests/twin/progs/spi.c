/* SPI2 slave. Mode 0 (config word 0x08003F00 = 0): polled echo, every byte received is answered
 * with itself + 1 in the next byte; "slow" mode (config 1) waits 40 us between polls so that
 * bytes overrun at a high clock. Mode 2: DMA1 stream 3 receives 16 bytes, stream 4 sends a
 * 16-byte pattern; the NSS rising edge (EXTI12) interrupt logs what arrived. Mode 3: stream 3
 * receives into a 32-byte buffer; the NSS rising edge handler clears EN and reads EN and NDTR at
 * once, then waits for EN = 0 (RM0090 10.3.17) and reads NDTR and the flags again. */
#include "prog.h"

static uint8_t rx_buf[16];
static const char tx_pattern[16] = "twin-dma-pattern";
static uint8_t tx_buf[16];
static volatile uint32_t nss_edges;
static volatile uint32_t stop_mode, en_at_once, ndtr_at_once, polls, ndtr_stopped, lisr_stopped;
static uint8_t rx_big[32];

void IRQ_Handler(void) /* only EXTI15_10 is enabled */
{
    EXTI_PR = 1u << 12;
    if (stop_mode) {
        DMA1_SCR(3) &= ~1u;
        en_at_once = DMA1_SCR(3) & 1u;
        ndtr_at_once = DMA1_SNDTR(3);
        uint32_t n = 0;
        while ((DMA1_SCR(3) & 1u) != 0u && n < 1000u) {
            n++;
        }
        polls = n;
        ndtr_stopped = DMA1_SNDTR(3);
        lisr_stopped = DMA1_LISR & (0x3Fu << 22);
    }
    nss_edges++;
}

static void spin_us(uint32_t us)
{
    for (volatile uint32_t i = 0; i < us * 4u; i++) {
    }
}

int main(void)
{
    uart_init();
    uint32_t mode = *(volatile uint32_t *)0x08003F00u;
    RCC_AHB1ENR |= (1u << 1) | (1u << 21); DSB(); /* GPIOB, DMA1 */
    RCC_APB1ENR |= 1u << 14; DSB();               /* SPI2 */
    RCC_APB2ENR |= 1u << 14; DSB();               /* SYSCFG */
    GPIOB_AFRH = (GPIOB_AFRH & 0x0000FFFFu) | 0x55550000u;
    GPIOB_MODER = (GPIOB_MODER & 0x00FFFFFFu) | 0xAA000000u; /* PB12-15 AF5 */
    SYSCFG_EXTICR4 = (SYSCFG_EXTICR4 & ~0xFu) | 1u;          /* EXTI12 <- port B */
    EXTI_RTSR |= 1u << 12;
    EXTI_IMR |= 1u << 12;
    NVIC_ISER(40 / 32) = 1u << (40 % 32);
    if (mode == 3u) {
        stop_mode = 1;
        SPI2_CR2 = 1; /* RXDMAEN */
        DMA1_SPAR(3) = 0x4000380Cu;
        DMA1_SM0AR(3) = (uint32_t)rx_big;
        DMA1_SNDTR(3) = 32;
        DMA1_SCR(3) = (1u << 10) | 1u; /* channel 0, P->M, MINC, EN */
        SPI2_CR1 = 1u << 6;
        while (nss_edges == 0u) {
            __asm volatile("wfi");
        }
        line("en_at_once", en_at_once);
        line("ndtr_at_once", ndtr_at_once);
        line("polls", polls);
        line("ndtr_stopped", ndtr_stopped);
        line("lisr_stopped", lisr_stopped);
        line("last", rx_big[31u - ndtr_stopped]); /* the last byte received */
        for (;;) {
            __asm volatile("wfi");
        }
    }
    if (mode == 2u) {
        for (int i = 0; i < 16; i++) {
            tx_buf[i] = (uint8_t)tx_pattern[i];
        }
        SPI2_CR2 = 3; /* RXDMAEN | TXDMAEN */
        DMA1_SPAR(3) = 0x4000380Cu;
        DMA1_SM0AR(3) = (uint32_t)rx_buf;
        DMA1_SNDTR(3) = 16;
        DMA1_SCR(3) = (1u << 10) | 1u; /* channel 0, P->M, MINC, EN */
        DMA1_SPAR(4) = 0x4000380Cu;
        DMA1_SM0AR(4) = (uint32_t)tx_buf;
        DMA1_SNDTR(4) = 16;
        DMA1_SCR(4) = (1u << 10) | (1u << 6) | 1u; /* channel 0, M->P, MINC, EN */
        SPI2_CR1 = 1u << 6; /* SPE, slave, hardware NSS */
        line("ndtr_tx_armed", DMA1_SNDTR(4));
        while (nss_edges == 0u) {
            __asm volatile("wfi");
        }
        while ((DMA1_SCR(3) & 1u) != 0u) { /* the last item is done when EN reads 0 (RM0090 10.5.5) */
        }
        line("lisr", DMA1_LISR & (0x3Fu << 22));
        line("hisr", DMA1_HISR & 0x3Fu);
        line("ndtr_rx", DMA1_SNDTR(3));
        put("rx ");
        for (int i = 0; i < 16; i++) {
            put((char[2]){(char)rx_buf[i], 0});
        }
        put("\n");
        for (;;) {
            __asm volatile("wfi");
        }
    }
    SPI2_DR = 0xA0;
    SPI2_CR1 = 1u << 6;
    uint32_t last_edges = 0;
    for (;;) {
        if (SPI2_SR & 1u) {
            uint8_t b = (uint8_t)SPI2_DR;
            SPI2_DR = (uint8_t)(b + 1u);
        }
        if (mode == 1u) {
            spin_us(40);
        }
        if (nss_edges != last_edges) {
            last_edges = nss_edges;
            line("sr", SPI2_SR);
        }
    }
}
