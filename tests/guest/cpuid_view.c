// cpuid_view: what CPUID tells the guest (checked under blinkroot only: the host's
// answers differ by machine, blinkroot's are its engine's; see tests/test_engine.py).
// oracle: none
#include <cpuid.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  unsigned a, b, c, d;
  char sig[13];
  __cpuid(0x40000000, a, b, c, d);
  memcpy(sig, &b, 4);
  memcpy(sig + 4, &c, 4);
  memcpy(sig + 8, &d, 4);
  sig[12] = 0;
  printf("hypervisor leaf: %s\n", sig);
  __cpuid(1, a, b, c, d);
  printf("hypervisor bit: %u\n", c >> 31 & 1);
  printf("avx: %u fma: %u xsave: %u sse4.2: %u\n", c >> 28 & 1, c >> 12 & 1, c >> 26 & 1,
         c >> 20 & 1);
  __cpuid_count(7, 0, a, b, c, d);
  printf("avx2: %u avx512f: %u\n", b >> 5 & 1, b >> 16 & 1);
  return 0;
}
