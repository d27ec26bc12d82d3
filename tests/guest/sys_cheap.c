// Small syscalls: kcmp (files, vm, fs across fork), vmsplice (into and out of a pipe,
// SPLICE_F_NONBLOCK on a full pipe, errors), ustat, reboot's checks (never a valid
// command: natively they would act on the machine), futex_waitv.
// cflags: -pthread
#include "check.h"
#define FUTEX_WAKE_PRIVATE 129 /* musl has no linux/futex.h */
#include <pthread.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#ifndef SYS_kcmp
#define SYS_kcmp 312
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

static long kcmp(pid_t a, pid_t b, int type, unsigned long i1, unsigned long i2) {
  return syscall(SYS_kcmp, a, b, type, i1, i2);
}

static void test_kcmp(void) {
  printf("-- kcmp\n");
  int spare = open("/dev/null", O_RDONLY);
  int a = open("k1", O_RDWR | O_CREAT, 0600);
  int b = dup(a);
  int c = open("k1", O_RDWR);
  pid_t me = getpid();
  SHOW(kcmp(me, me, 0, a, b));          // KCMP_FILE: one description
  FACT(kcmp(me, me, 0, a, c) > 0);      // two: ordered, not equal
  SHOW(kcmp(me, me, 0, a, 999));
  SHOW(kcmp(me, me, 1, 0, 0));          // KCMP_VM
  SHOW(kcmp(me, me, 8, 0, 0));
  SHOW(kcmp(me, me, -1, 0, 0));
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    int d = open("k1", O_RDONLY);
    int ok = kcmp(me, getpid(), 0, a, a) == 0 && kcmp(me, getpid(), 0, b, a) == 0 &&
             kcmp(me, getpid(), 0, a, d) != 0 && kcmp(me, getpid(), 1, 0, 0) != 0;
    _exit(ok ? 0 : 1);
  }
  int st;
  waitpid(child, &st, 0);
  SHOW(WEXITSTATUS(st));
  SHOW(kcmp(me, child, 0, a, a));       // reaped: ESRCH
  close(a);
  close(b);
  close(c);
  close(spare);
}

static void test_vmsplice(void) {
  printf("-- vmsplice\n");
  int p[2];
  pipe(p);
  static char buf[70000], back[70000];
  for (unsigned i = 0; i < sizeof buf; i++) buf[i] = i * 7;
  struct iovec v = {buf, 1000};
  SHOW(vmsplice(p[1], &v, 1, 0));
  struct iovec r = {back, 4000};
  SHOW(vmsplice(p[0], &r, 1, 0));       // out of the pipe into memory
  SHOW(memcmp(back, buf, 1000));
  SHOW(vmsplice(p[0], &r, 1, SPLICE_F_NONBLOCK));
  int file = open("vf", O_WRONLY | O_CREAT, 0600);
  SHOW(vmsplice(file, &v, 1, 0));
  SHOW(vmsplice(-1, &v, 1, 0));
  SHOW(vmsplice(p[1], &v, 1025, 0));
  SHOW(vmsplice(p[1], &v, 0, 0));
  int size = fcntl(p[1], F_GETPIPE_SZ);
  struct iovec big = {buf, size};
  long n = vmsplice(p[1], &big, 1, 0);         // fills it (a page a slot)
  FACT(n > 0 && n <= size);
  SHOW(vmsplice(p[1], &v, 1, SPLICE_F_NONBLOCK));
  SHOW(read(p[0], back, size) == n);
  SHOW(memcmp(back, buf, n) == 0);
  close(file);
  close(p[0]);
  close(p[1]);
}

struct ustat_ {
  int f_tfree;
  unsigned long f_tinode;
  char f_fname[6], f_fpack[6];
};

static void test_ustat(void) {
  printf("-- ustat\n");
  struct stat st;
  stat("/", &st);
  struct ustat_ u;
  SHOW(syscall(SYS_ustat, (unsigned)st.st_dev, &u));
  SHOW(syscall(SYS_ustat, (unsigned)-1, &u));
  SHOW(syscall(SYS_ustat, (unsigned)st.st_dev, (void *)8));
}

static void test_reboot(void) {
  printf("-- reboot\n");
  int root = geteuid() == 0;
  long r1 = syscall(SYS_reboot, 0x12345678, 672274793, 0x89ABCDEF, 0);
  int e1 = errno;
  long r2 = syscall(SYS_reboot, 0xfee1dead, 672274793, 100, 0);
  int e2 = errno;
  printf("bad magic: %ld %s\n", r1, e1 == (root ? EINVAL : EPERM) ? "as expected" : errname(e1));
  printf("bad command: %ld %s\n", r2, e2 == (root ? EINVAL : EPERM) ? "as expected" : errname(e2));
}

struct waitv {
  uint64_t val, uaddr;
  uint32_t flags, reserved;
};

static uint32_t fut[2];

static void *waker(void *arg) {
  (void)arg;
  usleep(50000);
  fut[1] = 1;
  syscall(SYS_futex, &fut[1], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  return NULL;
}

static long waitv(struct waitv *w, unsigned n, unsigned flags, struct timespec *ts, int clk) {
  return syscall(SYS_futex_waitv, w, n, flags, ts, clk);
}

static void test_futex_waitv(void) {
  printf("-- futex_waitv\n");
  struct waitv w[2] = {{0, (uintptr_t)&fut[0], 2 | 128, 0}, {0, (uintptr_t)&fut[1], 2 | 128, 0}};
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += 20000000;
  if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
  SHOW(waitv(w, 2, 0, &ts, CLOCK_MONOTONIC));   // nobody wakes: ETIMEDOUT
  fut[0] = 5;
  SHOW(waitv(w, 2, 0, NULL, CLOCK_MONOTONIC));  // a value differs: EAGAIN
  fut[0] = 0;
  pthread_t th;
  pthread_create(&th, NULL, waker, NULL);
  SHOW(waitv(w, 2, 0, NULL, CLOCK_MONOTONIC));  // woken: the index
  pthread_join(th, NULL);
  fut[1] = 0;
  SHOW(waitv(w, 2, 1, NULL, CLOCK_MONOTONIC));
  SHOW(waitv(w, 0, 0, NULL, CLOCK_MONOTONIC));
  SHOW(waitv(NULL, 1, 0, NULL, CLOCK_MONOTONIC));
  SHOW(waitv(w, 1, 0, &ts, CLOCK_TAI));
  SHOW(waitv((void *)8, 1, 0, NULL, CLOCK_MONOTONIC));
  w[0].flags = 128;
  SHOW(waitv(w, 1, 0, NULL, CLOCK_MONOTONIC));
  w[0].flags = 2;
  w[0].uaddr = 1;
  SHOW(waitv(w, 1, 0, NULL, CLOCK_MONOTONIC));
  w[0].uaddr = 0;
  SHOW(waitv(w, 1, 0, NULL, CLOCK_MONOTONIC));
}

/* The pid fork returns is in /proc at once (vmsplice04 waits there for its child). */
static void test_fork_proc(void) {
  printf("-- fork and /proc\n");
  int p[2];
  pipe(p);
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    char c;
    close(p[1]);
    read(p[0], &c, 1);
    _exit(0);
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)child);
  SHOW(access(path, R_OK));
  close(p[1]);
  waitpid(child, NULL, 0);
  close(p[0]);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  test_fork_proc();
  test_kcmp();
  test_vmsplice();
  test_ustat();
  test_reboot();
  test_futex_waitv();
  return 0;
}
