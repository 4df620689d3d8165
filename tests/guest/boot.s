# vmm-guest: multiboot (v1) entry point, GDT and interrupt stubs.
#
# The loader (QEMU -kernel) enters _start in 32-bit protected mode with
# EAX = 0x2BADB002 and EBX = physical address of the multiboot info. The
# multiboot spec says GDTR may be invalid, so we load our own flat GDT before
# touching any segment register, set up a stack in .bss and call
# kmain(magic, mbi). Everything else is C (kernel.c).

        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000003       # bit 0: page-align modules, bit 1: memory info
        .set KERNEL_CS, 0x08
        .set KERNEL_DS, 0x10

        .section .multiboot, "a"
        .p2align 2
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

        .section .bss
        .p2align 4
stack_bottom:
        .skip 16384
stack_top:

        .section .data
        .p2align 3
gdt:
        .quad 0x0000000000000000        # null
        .quad 0x00CF9A000000FFFF        # 0x08: code, base 0, limit 4 GiB
        .quad 0x00CF92000000FFFF        # 0x10: data, base 0, limit 4 GiB
gdt_desc:
        .word gdt_desc - gdt - 1
        .long gdt

        .section .text
        .globl _start
        .type _start, @function
_start:
        cli
        lgdt gdt_desc
        ljmp $KERNEL_CS, $1f
1:      movw $KERNEL_DS, %cx
        movw %cx, %ds
        movw %cx, %es
        movw %cx, %fs
        movw %cx, %gs
        movw %cx, %ss
        movl $stack_top, %esp
        cld
        pushl %ebx                      # multiboot info
        pushl %eax                      # multiboot magic
        call kmain
2:      cli
        hlt
        jmp 2b

# CPU exceptions 0..31: push the vector and report it; never returns.
        .macro EXC n
exc_\n:
        pushl $\n
        jmp exc_common
        .endm
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        EXC \n
        .endr
exc_common:
        call vmm_exception
3:      cli
        hlt
        jmp 3b

# IRQ 0 (PIT): the C handler counts and sends the EOI.
        .globl vmm_irq0_stub
vmm_irq0_stub:
        pushal
        cld
        call vmm_timer
        popal
        iret

# Any other (masked, so only spurious) IRQ: acknowledge and return.
        .globl vmm_irq_master_stub
vmm_irq_master_stub:
        pushl %eax
        movb $0x20, %al
        outb %al, $0x20
        popl %eax
        iret

        .globl vmm_irq_slave_stub
vmm_irq_slave_stub:
        pushl %eax
        movb $0x20, %al
        outb %al, $0xA0
        outb %al, $0x20
        popl %eax
        iret

        .section .rodata
        .p2align 2
        .globl vmm_exc_table
vmm_exc_table:
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .long exc_\n
        .endr

        .section .note.GNU-stack, "", @progbits
