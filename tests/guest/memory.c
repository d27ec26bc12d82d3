// memory: brk, mmap/munmap/mprotect/mremap/madvise/msync/mincore, faults at exact addresses.
#include "check.h"
#include <fcntl.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096L

static void *map_anon(long size, int prot) {
  return mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static int all_bytes(const char *p, long n, char c) {
  for (long i = 0; i < n; i++)
    if (p[i] != c) return 0;
  return 1;
}

static void test_brk(void) {
  SECTION("brk");
  char *start = (char *)syscall(SYS_brk, 0);
  FACT(start != NULL);
  char *grown = (char *)syscall(SYS_brk, start + 1024 * 1024);
  FACT(grown == start + 1024 * 1024);
  FACT(all_bytes(start, 1024 * 1024, 0));
  memset(start, 0x5a, 1024 * 1024);
  FACT(all_bytes(start, 1024 * 1024, 0x5a));
  char *shrunk = (char *)syscall(SYS_brk, start + PAGE);
  FACT(shrunk == start + PAGE);
  expect_fault("read above shrunk brk", read_byte, start + 512 * 1024, start + 512 * 1024);
  grown = (char *)syscall(SYS_brk, start + 2 * PAGE);
  FACT(grown == start + 2 * PAGE);
  FACT(start[0] == 0x5a); /* kept */
  FACT(all_bytes(start + PAGE, PAGE, 0)); /* the regrown page is fresh */
  FACT((char *)syscall(SYS_brk, (char *)4096) == start + 2 * PAGE); /* refused: unchanged */
  FACT((char *)syscall(SYS_brk, start) == start);
}

static void test_anonymous(void) {
  SECTION("anonymous mmap");
  char *p = SHOWP(map_anon(3 * PAGE, PROT_READ | PROT_WRITE), MAP_FAILED);
  FACT((uintptr_t)p % PAGE == 0);
  FACT(all_bytes(p, 3 * PAGE, 0));
  memset(p, 'a', 3 * PAGE);
  FACT(all_bytes(p, 3 * PAGE, 'a'));
  char *s = SHOWP(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
                  MAP_FAILED);
  s[100] = 'x';
  FACT(s[100] == 'x' && s[99] == 0);
  SHOW(munmap(s, PAGE));

  SHOW(munmap(p + PAGE, PAGE));
  expect_fault("read unmapped middle page", read_byte, p + PAGE + 5, p + PAGE + 5);
  expect_fault("write unmapped middle page", write_byte, p + PAGE, p + PAGE);
  FACT(p[0] == 'a' && p[2 * PAGE] == 'a');
  SHOW(munmap(p, 3 * PAGE)); /* unmapping a hole is fine */
  SHOW(munmap(p, 3 * PAGE));

  SECTION("mmap errors");
  SHOWP(map_anon(0, PROT_READ), MAP_FAILED);
  SHOWP(mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0), MAP_FAILED);
  SHOWP(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, -1, 0), MAP_FAILED);
  SHOWP(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 99, 0), MAP_FAILED);
  SHOWP(mmap((void *)(0x10000000 + 7), PAGE, PROT_READ,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
        MAP_FAILED);
  SHOWP(map_anon(-PAGE, PROT_READ), MAP_FAILED);
  SHOWP(map_anon(1L << 47, PROT_READ), MAP_FAILED);
  SHOW(munmap((void *)(0x10000000 + 7), PAGE));
  SHOW(munmap((void *)0x10000000, 0));
  SHOW(syscall(SYS_mprotect, 0x10000000 + 7, PAGE, PROT_READ));
}

static void test_fixed(void) {
  SECTION("MAP_FIXED/MAP_FIXED_NOREPLACE");
  char *base = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  memset(base, 'o', 4 * PAGE);
  char *q = mmap(base + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0);
  FACT(q == base + PAGE);
  FACT(q[0] == 0 && base[0] == 'o' && base[2 * PAGE] == 'o'); /* replaced just one page */
  SHOWP(mmap(base + 2 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
             -1, 0),
        MAP_FAILED);
  munmap(base + 3 * PAGE, PAGE);
  q = mmap(base + 3 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
           0);
  FACT(q == base + 3 * PAGE);
  /* a hint that is free is honoured without MAP_FIXED */
  munmap(base, 4 * PAGE);
  q = map_anon(PAGE, PROT_READ);
  munmap(q, PAGE);
  char *hinted = mmap(q, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  FACT(hinted == q);
  munmap(hinted, PAGE);
}

static void test_protect(void) {
  SECTION("mprotect/PROT_NONE");
  char *p = map_anon(3 * PAGE, PROT_READ | PROT_WRITE);
  p[0] = 'r';
  SHOW(mprotect(p, PAGE, PROT_READ));
  FACT(p[0] == 'r');
  expect_fault("write read-only page", write_byte, p + 10, p + 10);
  SHOW(mprotect(p + PAGE, PAGE, PROT_NONE));
  expect_fault("read PROT_NONE guard page", read_byte, p + PAGE + 1, p + PAGE + 1);
  expect_fault("write PROT_NONE guard page", write_byte, p + 2 * PAGE - 1, p + 2 * PAGE - 1);
  p[2 * PAGE] = 'w'; /* the page after the guard still works */
  FACT(p[2 * PAGE] == 'w');
  SHOW(mprotect(p, 2 * PAGE, PROT_READ | PROT_WRITE));
  p[10] = 'n';
  p[PAGE + 1] = 'n';
  FACT(p[10] == 'n' && p[PAGE + 1] == 'n');
  char *none = map_anon(PAGE, PROT_NONE);
  expect_fault("read PROT_NONE mapping", read_byte, none, none);
  SHOW(mprotect(p, PAGE, 0x100));
  munmap(p, 3 * PAGE);
  SHOW(mprotect(p, PAGE, PROT_READ)); /* unmapped */
  munmap(none, PAGE);

  SECTION("syscalls on bad memory");
  char *ro = map_anon(PAGE, PROT_READ);
  int fd = open("/dev/zero", O_RDONLY);
  SHOW(read(fd, ro, 16));
  SHOW(read(fd, p, 16));
  SHOW(write(1, p, 16));
  SHOW(read(fd, ro, 0));
  close(fd);
  munmap(ro, PAGE);
}

static void test_reservation(void) {
  SECTION("a huge PROT_NONE reservation (Go, V8, libc-test's oom tests)");
  long big = 1L << 46; /* 64 TiB: once 16384 engine regions, 10 s to map */
  char *p = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  FACT(p != MAP_FAILED);
  expect_fault("read the reservation", read_byte, p + 12345, p + 12345);
  char *q = p + (1L << 40);
  SHOW(mprotect(q, 16 * PAGE, PROT_READ | PROT_WRITE));
  strcpy(q + PAGE, "committed");
  FACT(strcmp(q + PAGE, "committed") == 0);
  SHOW(mprotect(q, 16 * PAGE, PROT_NONE));
  expect_fault("read it after PROT_NONE again", read_byte, q + PAGE, q + PAGE);
  SHOW(mprotect(q, 16 * PAGE, PROT_READ));
  FACT(strcmp(q + PAGE, "committed") == 0);
  char *r = mmap(p, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  r[5] = 7;
  FACT(r == p && r[5] == 7);
  SHOW(munmap(p, big));
}

static void test_mremap(void) {
  SECTION("mremap");
  char *p = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
  for (long i = 0; i < 2 * PAGE; i++) p[i] = (char)(i * 7);
  char *block = map_anon(PAGE, PROT_READ); /* something to block growth */
  char *q = mremap(p, 2 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
  FACT(q != MAP_FAILED);
  int same = 1;
  for (long i = 0; i < 2 * PAGE; i++) same &= q[i] == (char)(i * 7);
  printf("contents kept: %s\n", same ? "true" : "false");
  FACT(all_bytes(q + 2 * PAGE, 62 * PAGE, 0));
  q[64 * PAGE - 1] = 1;
  char *r = mremap(q, 64 * PAGE, PAGE, 0);
  FACT(r == q);
  expect_fault("read past shrunk mapping", read_byte, q + PAGE, q + PAGE);
  /* growing in place over a mapped neighbour fails without MREMAP_MAYMOVE */
  char *two = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
  munmap(two + PAGE, PAGE);
  char *neighbour = mmap(two + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  FACT(neighbour == two + PAGE);
  SHOWP(mremap(two, PAGE, 2 * PAGE, 0), MAP_FAILED);
  /* MREMAP_FIXED moves to a chosen address */
  char *target = map_anon(PAGE, PROT_READ);
  two[0] = 'm';
  char *moved = mremap(two, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  FACT(moved == target && moved[0] == 'm');
  expect_fault("read old address after move", read_byte, two, two);
  SHOWP(mremap(r, PAGE, PAGE, 0x80), MAP_FAILED);
  SHOWP(mremap(r + 1, PAGE, PAGE, 0), MAP_FAILED);
  SHOWP(mremap(r, PAGE, 0, MREMAP_MAYMOVE), MAP_FAILED);
  munmap(r, PAGE);
  munmap(neighbour, PAGE);
  munmap(moved, PAGE);
  munmap(block, PAGE);
}

static void test_madvise_mincore(void) {
  SECTION("madvise/mincore");
  char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  memset(p, 'd', 4 * PAGE);
  SHOW(madvise(p, 2 * PAGE, MADV_DONTNEED));
  FACT(all_bytes(p, 2 * PAGE, 0));
  FACT(all_bytes(p + 2 * PAGE, 2 * PAGE, 'd'));
  SHOW(madvise(p, 4 * PAGE, MADV_WILLNEED));
  SHOW(madvise(p, 4 * PAGE, MADV_NORMAL));
  SHOW(madvise(p + 1, PAGE, MADV_DONTNEED));
  SHOW(madvise(p, PAGE, 12345));
  unsigned char vec[4];
  SHOW(mincore(p, 4 * PAGE, vec));
  FACT((vec[2] & 1) && (vec[3] & 1));
  SHOW(mincore(p + 1, PAGE, vec));
  munmap(p, 4 * PAGE);
  SHOW(mincore(p, PAGE, vec));
}

static void test_file_mappings(void) {
  SECTION("file mappings");
  int fd = open("mapped.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
  char page[PAGE];
  memset(page, '.', PAGE);
  memcpy(page, "original", 8);
  write(fd, page, PAGE);
  char buf[16] = {0};

  char *priv = SHOWP(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), MAP_FAILED);
  FACT(memcmp(priv, "original", 8) == 0);
  memcpy(priv, "PRIVATE!", 8);
  pread(fd, buf, 8, 0);
  print_quoted("file after private write", buf, 8);

  char *shared = SHOWP(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
  memcpy(shared, "SHARED!!", 8);
  SHOW(msync(shared, PAGE, MS_SYNC));
  pread(fd, buf, 8, 0);
  print_quoted("file after shared write", buf, 8);
  pwrite(fd, "written!", 8, 0);
  print_quoted("shared mapping after pwrite", shared, 8);
  print_quoted("private mapping (copied page)", priv, 8);
  SHOW(msync(shared, PAGE, MS_ASYNC));
  SHOW(msync(shared + 1, PAGE, MS_SYNC));
  SHOW(msync(shared, PAGE, MS_SYNC | MS_ASYNC));

  char *offset = SHOWP(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE), MAP_FAILED);
  SHOWP(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 100), MAP_FAILED);
  int rd = open("mapped.txt", O_RDONLY);
  SHOWP(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, rd, 0), MAP_FAILED);
  char *ro_private = SHOWP(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, rd, 0), MAP_FAILED);
  ro_private[0] = 'p';
  FACT(ro_private[0] == 'p');
  int wr = open("mapped.txt", O_WRONLY);
  SHOWP(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, wr, 0), MAP_FAILED);
  int dir = open(".", O_RDONLY);
  SHOWP(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, dir, 0), MAP_FAILED);
  expect_fault("read mapping beyond end of file", read_byte, offset, offset);
  close(rd);
  close(wr);
  close(dir);
  munmap(priv, PAGE);
  munmap(shared, PAGE);
  munmap(offset, PAGE);
  munmap(ro_private, PAGE);
  close(fd);
}

static void test_malloc(void) {
  SECTION("malloc/free");
  unsigned long seed = 12345, checksum = 0;
  enum { SLOTS = 256 };
  unsigned char *slot[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  for (int round = 0; round < 6000; round++) {
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    int i = (seed >> 33) % SLOTS;
    if (slot[i]) {
      for (size_t k = 0; k < size[i]; k += 61) checksum = checksum * 31 + slot[i][k];
      free(slot[i]);
      slot[i] = NULL;
      continue;
    }
    size[i] = (seed >> 40) % ((seed >> 20) % 10 == 0 ? 100000 : 2000) + 1;
    slot[i] = malloc(size[i]);
    for (size_t k = 0; k < size[i]; k++) slot[i][k] = (unsigned char)(k + i);
  }
  for (int i = 0; i < SLOTS; i++) free(slot[i]);
  printf("checksum = %lu\n", checksum);
  char *big = malloc(64 << 20);
  FACT(big != NULL);
  memset(big, 1, 64 << 20);
  big = realloc(big, 128 << 20);
  FACT(big[(64 << 20) - 1] == 1);
  free(big);
  void *p = calloc(1000, 1000);
  FACT(p && all_bytes(p, 1000000, 0));
  free(p);
  errno = 0;
  SHOWP(malloc(~(size_t)0 >> 1), NULL);
}

int main(void) {
  test_brk();
  test_anonymous();
  test_fixed();
  test_protect();
  test_reservation();
  test_mremap();
  test_madvise_mincore();
  test_file_mappings();
  test_malloc();
  return 0;
}
