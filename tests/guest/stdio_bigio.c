// stdio_bigio: 1 MiB through stdio, reading stdin, string functions, float formatting and parsing.
// stdin: first line of input
// stdin: second line, a bit longer
// stdin:
// stdin: after an empty line
#include "check.h"
#include <limits.h>
#include <ctype.h>
#include <math.h>

static void copy_stdin(void) {
  SECTION("stdin");
  char line[256];
  int n = 0;
  while (fgets(line, sizeof line, stdin)) printf("line %d: %s", ++n, line);
  printf("lines = %d, eof %d, error %d\n", n, feof(stdin), ferror(stdin));
}

static void big_output(void) {
  SECTION("1 MiB");
  static char chunk[8192];
  unsigned long total = 0, sum = 0;
  for (int i = 0; total < (1 << 20); i++) {
    int len = 1 + (i * 7919) % (int)sizeof chunk;
    if (total + len > (1 << 20)) len = (1 << 20) - total;
    for (int k = 0; k < len; k++) chunk[k] = "abcdefghijklmnopqrstuvwxyz0123456789\n"[(total + k) % 37];
    total += fwrite(chunk, 1, len, stdout);
    for (int k = 0; k < len; k++) sum += (unsigned char)chunk[k];
  }
  printf("\nwrote %lu bytes, sum %lu\n", total, sum);
  fprintf(stderr, "big output done\n");
}

static int compare(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strings(void) {
  SECTION("strings");
  const char *text = "the quick brown fox jumps over the lazy dog";
  printf("strlen = %zu\n", strlen(text));
  printf("strchr = %s\n", strchr(text, 'q'));
  printf("strrchr = %s\n", strrchr(text, 't'));
  printf("strstr = %s\n", strstr(text, "lazy"));
  printf("memmem = %s\n", (char *)memmem(text, strlen(text), "fox", 3));
  printf("strspn = %zu strcspn = %zu\n", strspn(text, "eht "), strcspn(text, "xyz"));
  char buf[64];
  strcpy(buf, "0123456789");
  memmove(buf + 2, buf, 8);
  printf("memmove = %s\n", buf);
  char copy[64];
  strcpy(copy, text);
  char *save, *words[16];
  int n = 0;
  for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) words[n++] = w;
  qsort(words, n, sizeof *words, compare);
  printf("sorted:");
  for (int i = 0; i < n; i++) printf(" %s", words[i]);
  printf("\n");
  char *key = "over";
  char **found = bsearch(&key, words, n, sizeof *words, compare);
  printf("bsearch over: %s\n", found ? *found : "(none)");
  const char *volatile long_text = text; /* hide the truncation from -Wformat-truncation */
  printf("snprintf = %d\n", snprintf(buf, 8, "%s", long_text));
  printf("truncated = %s\n", buf);
  printf("formats: [%5s] [%-5d] [%+d] [%05.1f] [%x] [%o] [%#x] [%lld] [%zu] [%c] [%%] [%.3s]\n", "ab",
         42, 7, 3.14159, 255, 8, 255, -1234567890123LL, (size_t)77, 'q', "abcdef");
  int a, b;
  char word[16];
  printf("sscanf = %d\n", sscanf("12 -34 hello", "%d %d %15s", &a, &b, word));
  printf("  %d %d %s\n", a, b, word);
  printf("toupper: %c %c, isdigit: %d %d\n", toupper('a'), toupper('1'), !!isdigit('5'),
         !!isdigit('x'));
}

static void integers(void) {
  SECTION("strtol");
  char *end;
  errno = 0;
  long parsed = strtol("  -123abc", &end, 10);
  printf("strtol(\"  -123abc\") = %ld, rest \"%s\"\n", parsed, end);
  printf("strtol(\"0x1f\", 0) = %ld\n", strtol("0x1f", NULL, 0));
  printf("strtol(\"0777\", 0) = %ld\n", strtol("0777", NULL, 0));
  printf("strtol(\"zz\", 36) = %ld\n", strtol("zz", NULL, 36));
  errno = 0;
  long big = strtol("99999999999999999999", NULL, 10);
  printf("overflow: %d, %s\n", big == LONG_MAX, errname(errno));
  errno = 0;
  strtol("1", NULL, 99);
  printf("bad base: %s\n", errname(errno));
  printf("strtoul(\"-1\") = %lu\n", strtoul("-1", NULL, 10));
  printf("strtoull(\"18446744073709551615\") = %llu\n", strtoull("18446744073709551615", NULL, 10));
  printf("atoi(\"42x\") = %d\n", atoi("42x"));
}

static void floats(void) {
  SECTION("floating point text");
  double values[] = {0.0, -0.0, 0.1, 1.0 / 3, 2.5, 1e300, 1e-300, 123456789.125, -1.5e-7};
  /* (denormals are left out: musl and glibc print %a and set errno differently) */
  for (unsigned i = 0; i < sizeof values / sizeof *values; i++)
    printf("%g | %.17g | %e | %.3f | %a\n", values[i], values[i], values[i], values[i], values[i]);
  printf("inf %g %f, -inf %g, nan %g\n", INFINITY, INFINITY, -INFINITY, NAN);
  printf("rounding: %.2f %.2f %.0f %.0f %.1f\n", 0.125, 0.375, 0.5, 1.5, 0.25);
  printf("long double: %.20Lg\n", 1.0L / 3);
  printf("float: %.9g\n", (double)(1.0f / 3));
  const char *inputs[] = {"0.1", "  -2.5e3xyz", "0x1p-3", "inf", "-nan", "1e400", "1e-400",
                          "2.2250738585072014e-308", "1e", "+7.", "0X1.8P+1"};
  for (unsigned i = 0; i < sizeof inputs / sizeof *inputs; i++) {
    char *end;
    errno = 0;
    double d = strtod(inputs[i], &end);
    printf("strtod(\"%s\") = %.17g, consumed %d, errno %s\n", inputs[i], isnan(d) ? 0.0 : d,
           (int)(end - inputs[i]), errno ? errname(errno) : "0");
  }
  printf("strtof(\"3.4e39\") is inf: %d\n", isinf(strtof("3.4e39", NULL)));
  printf("atof(\"6.02e23\") = %.6g\n", atof("6.02e23"));
}

int main(void) {
  copy_stdin();
  strings();
  integers();
  floats();
  big_output();
  return 0;
}
