// hello: a raw write, stdio to stdout and stderr, atexit, exit status 3.
#include "check.h"

static void goodbye(void) { puts("atexit handler ran"); }

int main(void) {
  atexit(goodbye);
  write(1, "raw 1\n", 6); /* test_cli.py looks for this call in the syscall log */
  puts("hello, world");
  printf("%s %d %x %5.2f|%-4s|%c\n", "printf", 42, 255, 3.14159, "ab", 'z');
  fputs("to stderr via stdio\n", stderr);
  write(2, "to stderr via write\n", 20);
  exit(3);
}
