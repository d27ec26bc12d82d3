"""The debugger (blinkenlights, GDB stub, checkpoints): a later step; the kernel only offers hooks."""
