// cpu: CPUID facts, integer/bit/SSE2/x87 arithmetic, rounding modes, libm, atomics.
// cflags: -lm -frounding-math
#include "check.h"
#include <emmintrin.h>
#include <fenv.h>
#include <math.h>

static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static int has_sse42, has_popcnt;

/* Only facts that hold on any sane x86-64 (raw CPUID values differ under emulation). */
static void test_cpuid(void) {
  SECTION("cpuid");
  unsigned r[4];
  char vendor[13];
  cpuid(0, 0, r);
  memcpy(vendor, &r[1], 4);
  memcpy(vendor + 4, &r[3], 4);
  memcpy(vendor + 8, &r[2], 4);
  vendor[12] = 0;
  static const char *known[] = {"GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls",
                                "  Shanghai  "};
  int is_known = 0;
  for (unsigned i = 0; i < sizeof known / sizeof *known; i++) is_known |= !strcmp(vendor, known[i]);
  printf("vendor is a known one: %s\n", is_known ? "true" : "false");
  printf("max basic leaf >= 1: %s\n", r[0] >= 1 ? "true" : "false");
  cpuid(1, 0, r);
  printf("SSE2: %d\n", (r[3] >> 26) & 1);
  has_sse42 = (r[2] >> 20) & 1;
  has_popcnt = (r[2] >> 23) & 1;
  printf("SSE4.2: %d\n", has_sse42);
  cpuid(0x80000000, 0, r);
  printf("max extended leaf >= 0x80000001: %s\n", r[0] >= 0x80000001 ? "true" : "false");
  cpuid(0x80000001, 0, r);
  printf("long mode: %d\n", (r[3] >> 29) & 1);
}

static void print_u128(const char *label, unsigned __int128 v) {
  printf("%s = 0x%016llx%016llx\n", label, (unsigned long long)(v >> 64), (unsigned long long)v);
}

static volatile long vol_a = -7, vol_b = 2;

static void test_integers(void) {
  SECTION("integers");
  unsigned __int128 n = ((unsigned __int128)0x0123456789abcdefULL << 64) | 0xfedcba9876543210ULL;
  volatile unsigned long long d = 1000000007ULL;
  print_u128("n / 1000000007", n / d);
  print_u128("n % 1000000007", n % d);
  __int128 s = -(__int128)n;
  printf("signed: quotient negative %d, remainder %lld\n", s / (__int128)d < 0,
         (long long)(s % (__int128)d));
  print_u128("mul 64x64", (unsigned __int128)0xffffffffffffffffULL * 0xfffffffffffffffeULL);
  printf("-7 / 2 = %ld, -7 %% 2 = %ld, -7 >> 1 = %ld\n", vol_a / vol_b, vol_a % vol_b, vol_a >> 1);
  printf("(unsigned)-7 >> 1 = %lu\n", (unsigned long)vol_a >> 1);
  unsigned long r;
  printf("add overflow: %d, ", __builtin_add_overflow(0xffffffffffffffffUL, 2UL, &r));
  printf("wrapped = %lu\n", r);
  long m;
  printf("mul overflow: %d\n", __builtin_mul_overflow(0x7fffffffffffffffL, 2L, &m));
  volatile unsigned long x = 0x0123456789abcdefUL;
  printf("bswap64 = %016lx, bswap32 = %08x\n", __builtin_bswap64(x), __builtin_bswap32((unsigned)x));
  printf("rol 12 = %016lx, ror 12 = %016lx\n", (x << 12) | (x >> 52), (x >> 12) | (x << 52));
  unsigned long sieve_count = 0;
  static unsigned char composite[100001];
  for (unsigned long i = 2; i <= 100000; i++) {
    if (composite[i]) continue;
    sieve_count++;
    for (unsigned long j = i * i; j <= 100000; j += i) composite[j] = 1;
  }
  printf("primes below 100000 = %lu\n", sieve_count);
  unsigned long long hash = 1469598103934665603ULL;
  for (int i = 0; i < 100000; i++) hash = (hash ^ (unsigned char)(i * 31)) * 1099511628211ULL;
  printf("fnv1a = %016llx\n", hash);
}

static void test_bits(void) {
  SECTION("bit operations");
  volatile unsigned long v = 0x00f0;
  unsigned long bsf, bsr;
  __asm__("bsf %1, %0" : "=r"(bsf) : "r"(v));
  __asm__("bsr %1, %0" : "=r"(bsr) : "r"(v));
  printf("bsf(0xf0) = %lu, bsr(0xf0) = %lu\n", bsf, bsr);
  unsigned char zf;
  unsigned long zero = 0, out = 77;
  __asm__("bsf %2, %0\n\tsetz %1" : "+r"(out), "=q"(zf) : "r"(zero));
  printf("bsf(0) sets ZF: %d\n", zf);
  volatile unsigned long top = 1UL << 63;
  printf("ctz = %d, clz = %d, clz(top) = %d\n", __builtin_ctzl(v), __builtin_clzl(v),
         __builtin_clzl(top));
  static const unsigned long samples[] = {0, 1, 0xff, 0x8000000000000001UL, ~0UL,
                                          0x123456789abcdef0UL};
  int agree = 1;
  for (unsigned i = 0; i < sizeof samples / sizeof *samples; i++) {
    printf("popcount(%lx) = %d\n", samples[i], __builtin_popcountl(samples[i]));
    if (has_popcnt) {
      unsigned long p;
      __asm__("popcnt %1, %0" : "=r"(p) : "r"(samples[i]));
      agree &= p == (unsigned long)__builtin_popcountl(samples[i]);
    }
  }
  printf("popcnt instruction agrees with the builtin (if present): %s\n", agree ? "true" : "false");
  unsigned char carry;
  unsigned long a = ~0UL;
  __asm__("addq $1, %0\n\tsetc %1" : "+r"(a), "=q"(carry));
  printf("carry out of ~0 + 1: %d, result %lu\n", carry, a);
  long b = 0x7fffffffffffffffL;
  unsigned char overflow;
  __asm__("addq $1, %0\n\tseto %1" : "+r"(b), "=q"(overflow));
  printf("overflow of LONG_MAX + 1: %d\n", overflow);
}

static unsigned crc32c_soft(const unsigned char *p, size_t n) {
  unsigned crc = ~0u;
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82f63b78u & -(crc & 1));
  }
  return ~crc;
}

static unsigned crc32c(const unsigned char *p, size_t n) {
  if (!has_sse42) return crc32c_soft(p, n);
  unsigned crc = ~0u;
  for (size_t i = 0; i < n; i++) __asm__("crc32b %1, %0" : "+r"(crc) : "rm"(p[i]));
  return ~crc;
}

static void test_sse(void) {
  SECTION("SSE2");
  __m128i a = _mm_set_epi32(4, 3, 2, 1), b = _mm_set_epi32(40, 30, 20, 10);
  int out[4];
  _mm_storeu_si128((__m128i *)out, _mm_add_epi32(a, b));
  printf("add_epi32 = %d %d %d %d\n", out[0], out[1], out[2], out[3]);
  _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi32(b, 0x1b));
  printf("shuffle_epi32 = %d %d %d %d\n", out[0], out[1], out[2], out[3]);
  __m128i bytes = _mm_set1_epi8(3), other = _mm_set1_epi8(10);
  long long sad[2];
  _mm_storeu_si128((__m128i *)sad, _mm_sad_epu8(bytes, other));
  printf("sad_epu8 = %lld %lld\n", sad[0], sad[1]);
  short shorts[8];
  _mm_storeu_si128((__m128i *)shorts, _mm_packs_epi32(_mm_set_epi32(-70000, 70000, -5, 5), a));
  printf("packs_epi32 = %d %d %d %d %d\n", shorts[0], shorts[1], shorts[2], shorts[3], shorts[4]);
  __m128d pd = _mm_sqrt_pd(_mm_set_pd(9.0, 2.0));
  double dd[2];
  _mm_storeu_pd(dd, pd);
  printf("sqrt_pd = %.17g %.17g\n", dd[0], dd[1]);
  long long truncated;
  double huge = 1e20;
  __asm__("cvttsd2si %1, %0" : "=r"(truncated) : "x"(huge));
  printf("cvttsd2si(1e20) = %llx\n", (unsigned long long)truncated);
  unsigned mxcsr;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  printf("initial MXCSR = %#x\n", mxcsr & ~0x3fu); /* without the sticky exception flags */
  const char *text = "123456789";
  printf("crc32c(\"123456789\") = %08x (software %08x)\n", crc32c((const unsigned char *)text, 9),
         crc32c_soft((const unsigned char *)text, 9));
}

static volatile double one = 1.0, three = 3.0, two = 2.0;

static void test_float(void) {
  SECTION("floating point");
  printf("1/3 = %.17g\n", one / three);
  printf("sqrt(2) = %.17g\n", sqrt(two));
  printf("fma(0.1, 10, -1) = %.17g\n", fma(0.1, 10 * one, -one));
  /* transcendental results may differ in the last bit between libm variants: print fewer digits */
  printf("sin(1) = %.12g, cos(1) = %.12g, tan(1) = %.12g\n", sin(one), cos(one), tan(one));
  printf("exp(1) = %.12g, log(3) = %.12g, pow(2, 0.5) = %.12g\n", exp(one), log(three),
         pow(two, 0.5));
  printf("atan2(1, -1) = %.12g, hypot(3, 4) = %.12g, cbrt(27) = %.12g\n", atan2(one, -one),
         hypot(three, 4 * one), cbrt(27 * one));
  printf("floor(-2.5) = %g, ceil(-2.5) = %g, round(-2.5) = %g, trunc(-2.7) = %g\n",
         floor(-2.5 * one), ceil(-2.5 * one), round(-2.5 * one), trunc(-2.7 * one));
  printf("nan: %d, inf: %d, signbit(-0.0): %d\n", isnan(sqrt(-one)), isinf(one / (one - one)),
         !!signbit(-0.0 * one));
  printf("float 16777217 = %.1f\n", (double)(float)(16777217 * one));
  static const struct {
    int mode;
    const char *name;
  } modes[] = {{FE_TONEAREST, "nearest"},
               {FE_UPWARD, "upward"},
               {FE_DOWNWARD, "downward"},
               {FE_TOWARDZERO, "toward zero"}};
  for (int i = 0; i < 4; i++) {
    fesetround(modes[i].mode);
    volatile double q = one / three;
    printf("%-11s: rint(2.5) = %g, rint(-2.5) = %g, nearbyint(-1.5) = %g, 1/3 = %a\n",
           modes[i].name, rint(2.5 * one), rint(-2.5 * one), nearbyint(-1.5 * one), q);
  }
  fesetround(FE_TONEAREST);
  /* (no fetestexcept: Unicorn's SSE never sets MXCSR's exception flags) */
}

static void test_x87(void) {
  SECTION("x87");
  volatile long double third = 1.0L / 3;
  printf("1/3 = %.21Lg\n", third);
  printf("sqrtl(2) = %.21Lg\n", sqrtl(2.0L * (long double)one));
  printf("LDBL_EPSILON-ish: %d\n", (1.0L + 0x1p-63L) != 1.0L);
  volatile long double big = 1e4000L;
  printf("1e4000L = %.6Le\n", big);
  printf("(long)(long double)-2.75 = %ld\n", (long)(-2.75L * (long double)one));
  unsigned short cw;
  __asm__ volatile("fnstcw %0" : "=m"(cw));
  printf("initial x87 control word = %#x\n", cw);
  long double r;
  __asm__("fldpi" : "=t"(r));
  printf("fldpi = %.21Lg\n", r);
}

static void test_atomics(void) {
  SECTION("atomics and string instructions");
  long counter = 5;
  printf("fetch_add = %ld, ", __atomic_fetch_add(&counter, 3, __ATOMIC_SEQ_CST));
  printf("now %ld\n", counter);
  long expected = 8;
  printf("cas success = %d, ", __atomic_compare_exchange_n(&counter, &expected, 100, 0,
                                                             __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
  expected = 8;
  printf("cas failure = %d, expected now %ld\n",
         __atomic_compare_exchange_n(&counter, &expected, 1, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST),
         expected);
  printf("exchange = %ld\n", __atomic_exchange_n(&counter, 7, __ATOMIC_SEQ_CST));
  static char src[100000], dst[100000];
  for (int i = 0; i < 100000; i++) src[i] = (char)(i * 13);
  size_t n = sizeof dst;
  char *d = dst;
  const char *s = src;
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  printf("rep movsb copied: %d\n", memcmp(src, dst, sizeof dst) == 0);
  d = dst;
  n = 5000;
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(0x41) : "memory");
  printf("rep stosb: %c%c, rest kept %d\n", dst[0], dst[4999], dst[5000] == src[5000]);
  unsigned long t1, t2;
  unsigned lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  t1 = ((unsigned long)hi << 32) | lo;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  t2 = ((unsigned long)hi << 32) | lo;
  printf("rdtsc monotonic: %d\n", t2 >= t1);
}

int main(void) {
  test_cpuid();
  test_integers();
  test_bits();
  test_sse();
  test_float();
  test_x87();
  test_atomics();
  return 0;
}
