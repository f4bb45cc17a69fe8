/* The SPI link on the STM32: SPI2 slave with DMA, the NSS interrupt and the READY line, around
 * the update agent (agent/agent.c). docs/protocol.md describes what the master sees.
 *
 * One transaction (NSS low ... high) carries one request in and the previous response out:
 *   armed:   RX DMA (DMA1 stream 3) points at a free receive buffer, TX DMA (stream 4) at the
 *            response; READY (PB11) is high.
 *   NSS low: EXTI12 falling edge -> READY low (the armed buffers are in use from now on).
 *   NSS high: EXTI12 rising edge -> both streams stopped, byte count taken, frame handed to the
 *            main loop (link_poll).
 *   link_poll: agent_request decides and builds the response; the other receive buffer and the
 *            response are armed and READY goes high; only then agent_work programs the chunk, so
 *            the next WRITE is received by DMA while this one is programmed (double buffering).
 *
 * The interrupt handler runs from SRAM (RAMFUNC) through the SRAM copy of the vector table: during
 * a flash program or erase any fetch from flash stalls the CPU (single bank, RM0090 section 3.5),
 * and the handler must still lower READY. It touches only registers and SRAM variables.
 *
 * Lowering READY at the start of a transaction (not only at its end) means READY is already low
 * when NSS rises, so the master may sample READY right after releasing NSS without seeing a stale
 * high level. */
#include "link.h"

#include <string.h>

#include "app.h"
#include "cpu.h"
#include "flash_area.h"
#include "gpio.h"
#include "image.h"
#include "keyring.h"
#include "stm32f407_regs.h"
#include "log.h"
#include "wait.h"

#define NSS_PIN 12u   /* PB12: SPI2_NSS (AF5) and EXTI12 */
#define SCK_PIN 13u   /* PB13: SPI2_SCK (AF5) */
#define MISO_PIN 14u  /* PB14: SPI2_MISO (AF5) */
#define MOSI_PIN 15u  /* PB15: SPI2_MOSI (AF5) */
#define READY_PIN 11u /* PB11: READY, push-pull output */
#define SPI2_AF 5u    /* DS8626 table 9 */
#define DMA_RX_STREAM 3u
#define DMA_TX_STREAM 4u
#define DMA_SPI2_CHANNEL 0u
/* A stream's EN bit reads 0 once the current beat finished (RM0090 section 10.3.17): at most a
 * few bus cycles. */
#define DMA_STOP_US 10u

static struct agent agent;
static uint8_t rx_buf[2][FOTA_MAX_FRAME] __attribute__((aligned(4)));
static uint8_t tx_buf[AGENT_RESP_MAX] __attribute__((aligned(4)));
static uint8_t rx_cur;           /* index of the buffer the RX DMA writes into */
static volatile uint8_t armed;   /* DMA streams armed, READY high or about to be */
static volatile uint8_t frame_ready;
static volatile uint32_t rx_count;
static volatile uint32_t stray_transactions; /* clocked while not armed (master ignored READY) */
static uint8_t nss_low;                      /* inside a transaction (EXTI handler only) */
static int link_ok;

static inline void ready_set(int high)
{
    GPIO_BSRR(GPIOB) = high ? (1u << READY_PIN) : (1u << (READY_PIN + 16u));
}

/* EXTI15_10: only line 12 is enabled. Runs from SRAM, see the file comment.
 *
 * One pending bit stands for at least one edge, and the level read now cannot tell a falling edge
 * from a rising edge followed at once by the next falling one (back-to-back transactions from a
 * master that ignores READY; RM0090 section 12.3.6: PR only records that an edge occurred). So
 * the phase is tracked: inside a transaction, an interrupt means NSS rose, whatever it reads now. */
RAMFUNC void link_exti_isr(void)
{
    EXTI_PR = 1u << NSS_PIN; /* write-1-to-clear */
    GPIO_BSRR(GPIOB) = 1u << (READY_PIN + 16u);
    uint8_t low = (GPIO_IDR(GPIOB) & (1u << NSS_PIN)) == 0u;
    if (!nss_low && low) {
        nss_low = 1;
        cpu_dsb(); /* Cortex-M4 erratum 838869: a store right before the exception return */
        return;    /* falling edge: a transaction started; READY is low now */
    }
    nss_low = low; /* low: the next transaction has started already */
    if (!armed) {
        stray_transactions = stray_transactions + 1u;
        cpu_dsb(); /* Cortex-M4 erratum 838869: a store right before the exception return */
        return;
    }
    /* Let the DMA take the last byte out of the data register (a couple of bus cycles). */
    for (uint32_t i = 0; i < 64u && (SPI2_SR & SPI_SR_RXNE) != 0u; i++) {
    }
    DMA1_SCR(DMA_RX_STREAM) &= ~DMA_SCR_EN;
    DMA1_SCR(DMA_TX_STREAM) &= ~DMA_SCR_EN;
    /* NDTR is final only once the stream has stopped: EN reads 0 after the current beat (RM0090
     * section 10.3.17). Bounded: a few bus cycles on the chip. */
    for (uint32_t i = 0; i < 64u && (DMA1_SCR(DMA_RX_STREAM) & DMA_SCR_EN) != 0u; i++) {
    }
    rx_count = FOTA_MAX_FRAME - DMA1_SNDTR(DMA_RX_STREAM);
    armed = 0;
    frame_ready = 1;
    cpu_dsb(); /* Cortex-M4 erratum 838869: a store right before the exception return */
}

/* Arm both DMA streams and SPI2 for the next transaction, then raise READY. RM0090 section
 * 28.3.9 order: RXDMAEN, streams, TXDMAEN, SPE. Returns 0 when a stream would not stop. */
static int arm(uint8_t *rx, const uint8_t *tx, size_t tx_len)
{
    DMA1_SCR(DMA_RX_STREAM) &= ~DMA_SCR_EN;
    DMA1_SCR(DMA_TX_STREAM) &= ~DMA_SCR_EN;
    if (!wait_reg(&DMA1_SCR(DMA_RX_STREAM), DMA_SCR_EN, 0u, DMA_STOP_US) ||
        !wait_reg(&DMA1_SCR(DMA_TX_STREAM), DMA_SCR_EN, 0u, DMA_STOP_US)) {
        return 0;
    }
    /* Reset SPI2: its data and shift registers may still hold bytes of the last response, which
     * would otherwise go out first in the next transaction. */
    RCC_APB1RSTR |= RCC_APB1RSTR_SPI2RST;
    RCC_APB1RSTR &= ~RCC_APB1RSTR_SPI2RST;
    SPI2_CR1 = 0u; /* slave, mode 0 (CPOL 0, CPHA 0), 8-bit, MSB first, hardware NSS */
    SPI2_CR2 = SPI_CR2_RXDMAEN;

    /* Event flags must be clear before a stream is enabled (RM0090 section 10.3.17). */
    DMA1_LIFCR = DMA_LIFCR_STREAM3_ALL;
    DMA1_HIFCR = DMA_HIFCR_STREAM4_ALL;
    const uint32_t common = (DMA_SPI2_CHANNEL << DMA_SCR_CHSEL_SHIFT) | DMA_SCR_MINC | DMA_SCR_PL_HIGH;
    DMA1_SPAR(DMA_RX_STREAM) = SPI2_DR_ADDR;
    DMA1_SM0AR(DMA_RX_STREAM) = (uint32_t)(uintptr_t)rx;
    DMA1_SNDTR(DMA_RX_STREAM) = FOTA_MAX_FRAME;
    DMA1_SCR(DMA_RX_STREAM) = common | DMA_SCR_DIR_P2M;
    DMA1_SCR(DMA_RX_STREAM) = common | DMA_SCR_DIR_P2M | DMA_SCR_EN;
    DMA1_SPAR(DMA_TX_STREAM) = SPI2_DR_ADDR;
    DMA1_SM0AR(DMA_TX_STREAM) = (uint32_t)(uintptr_t)tx;
    DMA1_SNDTR(DMA_TX_STREAM) = (uint32_t)tx_len;
    DMA1_SCR(DMA_TX_STREAM) = common | DMA_SCR_DIR_M2P;
    DMA1_SCR(DMA_TX_STREAM) = common | DMA_SCR_DIR_M2P | DMA_SCR_EN;
    SPI2_CR2 = SPI_CR2_RXDMAEN | SPI_CR2_TXDMAEN;
    SPI2_CR1 = SPI_CR1_SPE;
    armed = 1;
    ready_set(1);
    return 1;
}

int link_up(void)
{
    return link_ok;
}

struct agent *link_agent(void)
{
    return &agent;
}

static void log_link_error(const char *what)
{
    log_begin();
    log_str("link: ");
    log_str(what);
    log_end();
}

void link_init(void)
{
    rcc_enable(&RCC_AHB1ENR, RCC_AHB1ENR_GPIOBEN | RCC_AHB1ENR_DMA1EN);
    rcc_enable(&RCC_APB1ENR, RCC_APB1ENR_SPI2EN);
    rcc_enable(&RCC_APB2ENR, RCC_APB2ENR_SYSCFGEN);

    ready_set(0);
    gpio_set_mode(GPIOB, READY_PIN, GPIO_MODE_OUTPUT);
    GPIO_OSPEEDR(GPIOB) |= GPIO_OSPEED_HIGH << (2u * MISO_PIN);
    for (uint32_t pin = NSS_PIN; pin <= MOSI_PIN; pin++) {
        gpio_set_af(GPIOB, pin, SPI2_AF);
        gpio_set_mode(GPIOB, pin, GPIO_MODE_AF);
    }
    /* An absent or unpowered ESP32 leaves NSS and SCK floating: pull NSS up (no transaction) and SCK
     * down (its idle level in mode 0), so a quiet bus raises no EXTI storm (RM0090 section 8.4.4). */
    GPIO_PUPDR(GPIOB) = (GPIO_PUPDR(GPIOB) & ~((3u << (2u * NSS_PIN)) | (3u << (2u * SCK_PIN)))) |
                        (GPIO_PULL_UP << (2u * NSS_PIN)) | (GPIO_PULL_DOWN << (2u * SCK_PIN));

    /* The agent reads the journal and validates both slots for INFO (two SHA-256 passes). */
    image_set_keyring(&fota_keyring);
    (void)agent_init(&agent, &agent_port_stm32, app_slot, app_header);

    /* NSS edges on EXTI12 (port B), both directions; the handler runs from SRAM. */
    cpu_vector_t *vectors = cpu_vectors_to_sram();
    vectors[16u + NVIC_IRQN_EXTI15_10] = link_exti_isr;
    cpu_dsb();
    SYSCFG_EXTICR4 = (SYSCFG_EXTICR4 & ~(SYSCFG_EXTICR_MASK << SYSCFG_EXTICR4_EXTI12_SHIFT)) |
                     (SYSCFG_EXTICR_PORTB << SYSCFG_EXTICR4_EXTI12_SHIFT);
    EXTI_RTSR |= 1u << NSS_PIN;
    EXTI_FTSR |= 1u << NSS_PIN;
    EXTI_PR = 1u << NSS_PIN;
    nss_low = (GPIO_IDR(GPIOB) & (1u << NSS_PIN)) == 0u;
    EXTI_IMR |= 1u << NSS_PIN;
    NVIC_ICPR(NVIC_IRQN_EXTI15_10 / 32u) = 1u << (NVIC_IRQN_EXTI15_10 % 32u);
    NVIC_ISER(NVIC_IRQN_EXTI15_10 / 32u) = 1u << (NVIC_IRQN_EXTI15_10 % 32u);

    size_t len = agent_no_response(tx_buf, sizeof(tx_buf));
    rx_cur = 0;
    link_ok = arm(rx_buf[rx_cur], tx_buf, len);
    if (!link_ok) {
        log_link_error("DMA stream did not stop, link down");
    }
    app_variant_start();
}

void link_poll(void)
{
    if (!link_ok) {
        return;
    }
    /* One frame per call: while an image streams in, the next frame is always there when a
     * chunk is programmed, and the application's own tasks (LED, temperature, self-test) must get
     * their turn between chunks. */
    if (frame_ready) {
        frame_ready = 0;
        const uint8_t *frame = rx_buf[rx_cur];
        size_t n = rx_count;
        size_t len = agent_request(&agent, frame, n, tx_buf, sizeof(tx_buf));
        /* The frame's buffer stays untouched until agent_work has programmed its data. */
        rx_cur ^= 1u;
        if (agent_reset_pending(&agent)) {
            /* RESET accepted: the link is not armed again, so READY stays low until the new
             * application raises it. A master that waits RESET_DELAY_MS and then polls READY can
             * never send its next frame to this application in the last moments before the reset
             * (the frame would be lost, and cost a retry). */
            agent_poll(&agent);
            return;
        }
        if (!arm(rx_buf[rx_cur], tx_buf, len)) {
            link_ok = 0;
            log_link_error("DMA stream did not stop, link down");
            return;
        }
        agent_work(&agent); /* a frame that arrived meanwhile is link_pending(): no sleep */
    }
    agent_poll(&agent);
}

int link_pending(void)
{
    return link_ok && frame_ready;
}
