/* SPDX-License-Identifier: MIT */
/* vmm-guest: a tiny multiboot kernel that makes a VM worth migrating.
 *
 * 1. At boot it fills all RAM above itself with non-zero data, so QEMU
 *    cannot skip pages as zero pages and a migration moves the whole guest.
 * 2. A PIT timer ticks at hz=N (default 10); on every tick the kernel writes
 *    to every 4 KiB page of a working set of dirty=<MiB> (default 4, 0 = none)
 *    so a migration has to chase dirty pages.
 * 3. Every tick prints one line "tick <n>" on COM1 (n = 1, 2, 3, ...). A
 *    counter that continues in the destination's serial log with no gap and
 *    no reset proves the guest survived the migration.
 *
 * Between ticks the CPU sits in hlt, so an idle guest costs little host CPU.
 * Boot line: "vmm-guest boot mem=<KiB> dirty=<MiB> hz=<N>".
 *
 * Freestanding: no libc, no libgcc (so no 64-bit division), no SSE.
 */
#include <stddef.h>
#include <stdint.h>

#define MB_LOADER_MAGIC 0x2BADB002u
#define MB_INFO_MEM     (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)

#define COM1      0x3F8
#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1
#define PIT_CH0   0x40
#define PIT_CMD   0x43
#define PIT_HZ    1193182u

#define PAGE_SIZE    4096u
#define MIB          (1024u * 1024u)
#define DEFAULT_DIRTY 4u
#define DEFAULT_HZ   10u
#define MAX_HZ       1000u
#define MAX_RAM_TOP  0xC0000000u /* stay below the PCI hole */

struct mb_info {
    uint32_t flags;
    uint32_t mem_lower; /* KiB below 1 MiB */
    uint32_t mem_upper; /* KiB above 1 MiB */
    uint32_t boot_device;
    uint32_t cmdline;   /* physical address of a NUL-terminated string */
};

struct idt_entry {
    uint16_t off_lo;
    uint16_t sel;
    uint8_t zero;
    uint8_t type;
    uint16_t off_hi;
} __attribute__((packed));

struct idt_ptr {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

/* From boot.s and guest.ld. */
extern char _end[];
extern const uint32_t vmm_exc_table[32];
void vmm_irq0_stub(void);
void vmm_irq_master_stub(void);
void vmm_irq_slave_stub(void);

/* Called from boot.s. */
void kmain(uint32_t magic, const struct mb_info *mbi);
void vmm_timer(void);
void vmm_exception(uint32_t vector);

static struct idt_entry idt[48];
static volatile uint32_t ticks;   /* guest ticks (hz per second) */
static uint32_t irqs_per_tick;    /* PIT interrupts per guest tick */
static uint32_t irq_phase;

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* ---- COM1 ------------------------------------------------------------- */

static void serial_init(void)
{
    outb(COM1 + 1, 0x00); /* no UART interrupts */
    outb(COM1 + 3, 0x80); /* DLAB */
    outb(COM1 + 0, 0x01); /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xC7); /* FIFO on, cleared */
    outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static void putc(char c)
{
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (uint8_t)c);
}

static void puts(const char *s)
{
    while (*s)
        putc(*s++);
}

static void putu(uint32_t v)
{
    char buf[11];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (i)
        putc(buf[--i]);
}

/* ---- kernel command line ---------------------------------------------- */

/* Value of "key=<decimal>" in cmdline, or dflt if absent or malformed. */
static uint32_t cmdline_uint(const char *s, const char *key, uint32_t dflt)
{
    while (s && *s) {
        while (*s == ' ')
            s++;
        const char *k = key;
        const char *p = s;
        while (*k && *p == *k) {
            k++;
            p++;
        }
        if (!*k && *p == '=' && p[1] >= '0' && p[1] <= '9') {
            uint32_t v = 0;
            for (p++; *p >= '0' && *p <= '9'; p++) {
                if (v > 100000000u)
                    return dflt;
                v = v * 10u + (uint32_t)(*p - '0');
            }
            if (*p == ' ' || *p == '\0')
                return v;
        }
        while (*s && *s != ' ')
            s++;
    }
    return dflt;
}

/* ---- interrupts ------------------------------------------------------- */

static void idt_set(unsigned vec, uint32_t handler)
{
    idt[vec].off_lo = (uint16_t)(handler & 0xFFFFu);
    idt[vec].sel = 0x08;
    idt[vec].zero = 0;
    idt[vec].type = 0x8E; /* present, ring 0, 32-bit interrupt gate */
    idt[vec].off_hi = (uint16_t)(handler >> 16);
}

static void idt_init(void)
{
    for (unsigned i = 0; i < 32; i++)
        idt_set(i, vmm_exc_table[i]);
    idt_set(32, (uint32_t)(uintptr_t)vmm_irq0_stub);
    for (unsigned i = 33; i < 40; i++)
        idt_set(i, (uint32_t)(uintptr_t)vmm_irq_master_stub);
    for (unsigned i = 40; i < 48; i++)
        idt_set(i, (uint32_t)(uintptr_t)vmm_irq_slave_stub);
    struct idt_ptr p = {sizeof(idt) - 1, (uint32_t)(uintptr_t)idt};
    __asm__ volatile("lidt %0" : : "m"(p));
}

/* Remap the PICs to vectors 32..47 and unmask only IRQ 0. */
static void pic_init(void)
{
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, 32);
    outb(PIC2_DATA, 40);
    outb(PIC1_DATA, 0x04);
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01);
    outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, 0xFE);
    outb(PIC2_DATA, 0xFF);
}

/* The PIT divisor is 16 bits (>= 19 Hz), so slow tick rates count several
 * PIT interrupts per tick. */
static void pit_init(uint32_t hz)
{
    uint32_t div;
    irqs_per_tick = 1;
    for (;;) {
        div = PIT_HZ / (hz * irqs_per_tick);
        if (div <= 0xFFFFu)
            break;
        irqs_per_tick++;
    }
    if (div < 1)
        div = 1;
    outb(PIT_CMD, 0x34); /* channel 0, lo/hi byte, rate generator */
    outb(PIT_CH0, (uint8_t)(div & 0xFFu));
    outb(PIT_CH0, (uint8_t)(div >> 8));
}

void vmm_timer(void)
{
    if (++irq_phase >= irqs_per_tick) {
        irq_phase = 0;
        ticks = ticks + 1;
    }
    outb(PIC1_CMD, 0x20);
}

void vmm_exception(uint32_t vector)
{
    puts("vmm-guest panic exception ");
    putu(vector);
    putc('\n');
}

/* ---- memory ----------------------------------------------------------- */

static void fill(uint32_t *p, uint32_t words)
{
    for (uint32_t i = 0; i < words; i++)
        p[i] = (i * 0x9E3779B1u + 0x6A09E667u) | 1u;
}

static void dirty(uint32_t *base, uint32_t pages, uint32_t tick)
{
    volatile uint32_t *p = base;
    for (uint32_t i = 0; i < pages; i++)
        p[i * (PAGE_SIZE / 4u)] = tick ^ i ^ 0x5A5A0000u;
}

void kmain(uint32_t magic, const struct mb_info *mbi)
{
    serial_init();
    if (magic != MB_LOADER_MAGIC || !(mbi->flags & MB_INFO_MEM)) {
        puts("vmm-guest panic: not booted by a multiboot loader\n");
        return;
    }

    /* Read everything from the multiboot info before the fill: the loader
     * puts the info and the command line right after the kernel. */
    const char *cmdline = (mbi->flags & MB_INFO_CMDLINE)
                              ? (const char *)(uintptr_t)mbi->cmdline
                              : NULL;
    uint32_t dirty_mib = cmdline_uint(cmdline, "dirty", DEFAULT_DIRTY);
    uint32_t hz = cmdline_uint(cmdline, "hz", DEFAULT_HZ);
    if (hz < 1)
        hz = 1;
    if (hz > MAX_HZ)
        hz = MAX_HZ;

    uint32_t top = mbi->mem_upper;
    if (top > (MAX_RAM_TOP - MIB) / 1024u)
        top = (MAX_RAM_TOP - MIB) / 1024u;
    uint32_t mem_kib = 1024u + top;
    uint32_t start = ((uint32_t)(uintptr_t)_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    uint32_t end = MIB + top * 1024u;
    uint32_t pages = end > start ? (end - start) / PAGE_SIZE : 0;

    uint32_t dirty_pages = dirty_mib > pages / 256u ? pages : dirty_mib * 256u;
    dirty_mib = dirty_pages / 256u;

    fill((uint32_t *)(uintptr_t)start, pages * (PAGE_SIZE / 4u));

    /* Start a fresh line: the BIOS leaves its last message unterminated. */
    puts("\nvmm-guest boot mem=");
    putu(mem_kib);
    puts(" dirty=");
    putu(dirty_mib);
    puts(" hz=");
    putu(hz);
    putc('\n');

    idt_init();
    pic_init();
    pit_init(hz);

    uint32_t done = 0;
    for (;;) {
        uint32_t now;
        /* sti takes effect after the next instruction, so no tick can slip
         * in between the check and the hlt. */
        __asm__ volatile("cli" ::: "memory");
        while ((now = ticks) == done)
            __asm__ volatile("sti; hlt; cli" ::: "memory");
        __asm__ volatile("sti" ::: "memory");

        dirty((uint32_t *)(uintptr_t)start, dirty_pages, now);
        while (done != now) {
            done++;
            puts("tick ");
            putu(done);
            putc('\n');
        }
    }
}
