// sigdie: dies by the default action of SIGTERM (exit status -15 for the parent).
#include "check.h"

int main(void) {
  fputs("raising SIGTERM\n", stderr);
  raise(SIGTERM);
  fputs("still alive\n", stderr);
  return 1;
}
