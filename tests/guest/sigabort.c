// sigabort: abort() while SIGABRT is ignored must still kill with SIGABRT (status -6).
#include "check.h"

int main(void) {
  signal(SIGABRT, SIG_IGN);
  fputs("calling abort\n", stderr);
  abort();
}
