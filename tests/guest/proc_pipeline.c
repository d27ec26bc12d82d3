// proc_pipeline: MiB (argument; 4 by default, test_processes.py moves 100) through
// writer -> relay -> relay -> reader, four processes joined by pipes, with odd read
// and write sizes; totals and checksums must match.
#include "check.h"
#include <sys/wait.h>

static long TOTAL = 4L << 20;
#define BLOCK 65536

static unsigned char pattern[BLOCK];

static void fill(void) {
  uint32_t x = 12345;
  for (int i = 0; i < BLOCK; i++) {
    x = x * 1103515245u + 12345u;
    pattern[i] = x >> 16;
  }
}

static int write_all(int fd, const unsigned char *p, long n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= w;
  }
  return 0;
}

/* the byte at stream offset i, once the relays have each xor'ed their key */
static uint64_t checksum_update(uint64_t h, const unsigned char *p, long n) {
  for (long i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static void writer(int out) {
  static const int sizes[] = {65536, 1, 4095, 100000, 7, 65537, 32768, 12345};
  long sent = 0;
  int k = 0;
  static unsigned char buf[200000];
  while (sent < TOTAL) {
    long n = sizes[k++ % 8];
    if (n > TOTAL - sent) n = TOTAL - sent;
    for (long i = 0; i < n; i++) buf[i] = pattern[(sent + i) % BLOCK] ^ (unsigned char)((sent + i) >> 16);
    if (write_all(out, buf, n)) _exit(2);
    sent += n;
  }
  _exit(0);
}

static void relay(int in, int out, unsigned char key, int bufsize) {
  static unsigned char buf[1 << 17];
  long total = 0;
  for (;;) {
    ssize_t n = read(in, buf, bufsize);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) _exit(3);
    if (n == 0) break;
    for (ssize_t i = 0; i < n; i++) buf[i] ^= key;
    if (write_all(out, buf, n)) _exit(4);
    total += n;
  }
  _exit(total == TOTAL ? 0 : 5);
}

static void reader(int in, int report) {
  static unsigned char buf[1 << 16];
  uint64_t h = 0xcbf29ce484222325ull;
  long total = 0, reads = 0;
  for (;;) {
    ssize_t n = read(in, buf, 50000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    h = checksum_update(h, buf, n);
    total += n;
    reads++;
  }
  char line[128];
  int len = snprintf(line, sizeof line, "reader: %ld bytes, fnv1a %016llx\n", total, (unsigned long long)h);
  write(report, line, len);
  _exit(0);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1) TOTAL = atol(argv[1]) << 20;
  fill();
  /* what the reader should see, computed here */
  uint64_t expect = 0xcbf29ce484222325ull;
  for (long off = 0; off < TOTAL; off += BLOCK) {
    static unsigned char block[BLOCK];
    for (int i = 0; i < BLOCK; i++) block[i] = pattern[i] ^ (unsigned char)((off + i) >> 16) ^ 0x5a ^ 0xc3;
    expect = checksum_update(expect, block, BLOCK);
  }
  printf("expected: %ld bytes, fnv1a %016llx\n", TOTAL, (unsigned long long)expect);

  int a[2], b[2], c[2], rep[2];
  pipe(a);
  pipe(b);
  pipe(c);
  pipe(rep);
  pid_t pids[4];
  if ((pids[0] = fork()) == 0) {
    close(a[0]); close(b[0]); close(b[1]); close(c[0]); close(c[1]); close(rep[0]); close(rep[1]);
    writer(a[1]);
  }
  if ((pids[1] = fork()) == 0) {
    close(a[1]); close(b[0]); close(c[0]); close(c[1]); close(rep[0]); close(rep[1]);
    relay(a[0], b[1], 0x5a, 4096);
  }
  if ((pids[2] = fork()) == 0) {
    close(a[0]); close(a[1]); close(b[1]); close(c[0]); close(rep[0]); close(rep[1]);
    relay(b[0], c[1], 0xc3, 1 << 17);
  }
  if ((pids[3] = fork()) == 0) {
    close(a[0]); close(a[1]); close(b[0]); close(b[1]); close(c[1]); close(rep[0]);
    reader(c[0], rep[1]);
  }
  close(a[0]); close(a[1]); close(b[0]); close(b[1]); close(c[0]); close(c[1]); close(rep[1]);
  char line[256] = {0};
  long got = 0, n;
  while ((n = read(rep[0], line + got, sizeof line - 1 - got)) > 0) got += n;
  printf("%s", line);
  static const char *names[] = {"writer", "relay 1", "relay 2", "reader"};
  for (int i = 0; i < 4; i++) {
    int st;
    waitpid(pids[i], &st, 0);
    printf("%s: %s %d\n", names[i], WIFEXITED(st) ? "exited" : "killed", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
  }

  /* a reader that goes away: the writer gets SIGPIPE, the pipeline still ends */
  pipe(a);
  pid_t w = fork();
  if (w == 0) {
    close(a[0]);
    writer(a[1]);
  }
  pid_t r = fork();
  if (r == 0) {
    close(a[1]);
    static unsigned char buf[1000];
    read(a[0], buf, sizeof buf);
    _exit(0);
  }
  close(a[0]);
  close(a[1]);
  int st;
  waitpid(r, &st, 0);
  printf("short reader: exited %d\n", WEXITSTATUS(st));
  waitpid(w, &st, 0);
  printf("writer after its reader left: %s\n",
         WIFSIGNALED(st) ? signame(WTERMSIG(st)) : "exited");
  return 0;
}
