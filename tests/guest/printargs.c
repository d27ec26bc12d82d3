// printargs: prints its argument vector, one per line (used by the #! and -0 CLI tests).
// args: first "second arg" '' last
#include "check.h"

int main(int argc, char **argv) {
  printf("argc=%d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d]=\"%s\"\n", i, argv[i]);
  return 0;
}
