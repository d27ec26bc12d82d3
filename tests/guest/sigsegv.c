// sigsegv: a NULL dereference with no handler kills the process with SIGSEGV (status -11).
#include "check.h"

int *volatile null_pointer;

int main(void) {
  fputs("dereferencing NULL\n", stderr);
  return *null_pointer;
}
