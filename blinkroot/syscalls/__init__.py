"""The Linux syscall layer: one table (table.py), handlers by area (files.py, memory.py, ...)."""
