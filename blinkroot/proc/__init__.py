"""The process manager: processes, threads, signals, exec."""
