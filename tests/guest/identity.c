// identity: ids, uname, resource limits and usage, sysinfo, scheduling, prctl, getrandom, arch_prctl.
#include "check.h"
#include <sched.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#define K_ARCH_SET_GS 0x1001
#define K_ARCH_GET_FS 0x1003
#define K_ARCH_GET_GS 0x1004

static long tid(void) { return syscall(SYS_gettid); }

static void test_ids(void) {
  SECTION("process and user ids");
  FACT(getpid() == getpid());
  FACT(getpid() > 1);
  FACT(getppid() > 0 && getppid() != getpid());
  FACT(tid() == getpid());
  FACT(syscall(SYS_getpid) == getpid());
  FACT(getuid() == geteuid());
  FACT(getgid() == getegid());
  uid_t r, e, s;
  SHOW(getresuid(&r, &e, &s));
  FACT(r == getuid() && e == geteuid() && s == geteuid());
  gid_t gr, ge, gs;
  SHOW(getresgid(&gr, &ge, &gs));
  FACT(gr == getgid() && ge == getegid() && gs == getegid());
  FACT(getpgrp() == getpgid(0));
  FACT(getsid(0) > 0);
  SHOW(getpgid(-1));
  int n = getgroups(0, NULL);
  FACT(n >= 0);
  gid_t groups[256];
  FACT(getgroups(256, groups) == n);
  SHOW(getgroups(-1, groups));
  SHOW(setuid(getuid()));
  SHOW(setgid(getgid()));
}

static void test_uname(void) {
  SECTION("uname");
  struct utsname u;
  SHOW(uname(&u));
  printf("sysname = %s\n", u.sysname);
  printf("machine = %s\n", u.machine);
  FACT(strlen(u.nodename) > 0);
  FACT(strlen(u.release) > 0 && u.release[0] >= '2' && u.release[0] <= '9');
  FACT(strlen(u.version) > 0);
  SHOW(syscall(SYS_uname, (void *)8));
}

static void test_limits(void) {
  SECTION("getrlimit/setrlimit/prlimit64");
  struct rlimit rl, saved;
  SHOW(getrlimit(RLIMIT_NOFILE, &saved));
  FACT(saved.rlim_cur <= saved.rlim_max);
  FACT(saved.rlim_cur >= 64);
  rl = saved;
  rl.rlim_cur = 64;
  SHOW(setrlimit(RLIMIT_NOFILE, &rl));
  SHOW(getrlimit(RLIMIT_NOFILE, &rl));
  printf("  soft = %lu\n", (unsigned long)rl.rlim_cur);
  int opened = 0;
  while (dup(0) >= 0) opened++;
  printf("  dup until failure: %d more fds, then %s\n", opened, errname(errno));
  for (int fd = 3; fd < 64; fd++) close(fd);
  struct rlimit inverted = {100, 50};
  SHOW(setrlimit(RLIMIT_NOFILE, &inverted));
  struct rlimit old;
  SHOW(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &saved, &old));
  printf("  prlimit64 old soft = %lu\n", (unsigned long)old.rlim_cur);
  SHOW(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &old));
  FACT(old.rlim_cur == saved.rlim_cur && old.rlim_max == saved.rlim_max);
  SHOW(syscall(SYS_prlimit64, 0, 999, NULL, &old));
  SHOW(getrlimit(999, &rl));
  SHOW(getrlimit(RLIMIT_STACK, &rl));
  FACT(rl.rlim_cur >= 128 * 1024);
  SHOW(getrlimit(RLIMIT_CORE, &rl));
  printf("  core soft = %lu\n", (unsigned long)rl.rlim_cur);
  SHOW(getrlimit(RLIMIT_AS, &rl));
  SHOW(getrlimit(RLIMIT_DATA, &rl));
}

static void test_usage(void) {
  SECTION("getrusage/sysinfo");
  volatile unsigned long x = 0;
  for (unsigned long i = 0; i < 2000000; i++) x += i;
  struct rusage ru;
  SHOW(getrusage(RUSAGE_SELF, &ru));
  FACT(ru.ru_utime.tv_sec >= 0 && ru.ru_utime.tv_usec >= 0 && ru.ru_utime.tv_usec < 1000000);
  FACT(ru.ru_maxrss > 0);
  SHOW(getrusage(RUSAGE_CHILDREN, &ru));
  FACT(ru.ru_utime.tv_sec == 0 && ru.ru_utime.tv_usec == 0);
  SHOW(getrusage(RUSAGE_THREAD, &ru));
  SHOW(getrusage(12345, &ru));
  struct sysinfo si;
  SHOW(sysinfo(&si));
  FACT(si.uptime > 0);
  FACT(si.mem_unit > 0);
  FACT(si.totalram > 0 && si.freeram <= si.totalram);
  FACT(si.procs > 0);
  SHOW(syscall(SYS_sysinfo, (void *)8));
}

static void test_scheduling(void) {
  SECTION("sched");
  cpu_set_t set;
  CPU_ZERO(&set);
  long r = sched_getaffinity(0, sizeof set, &set);
  printf("sched_getaffinity = %s\n", r == 0 ? "0" : errname(errno));
  FACT(CPU_COUNT(&set) >= 1);
  long bytes = syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
  FACT(bytes > 0 && bytes % 8 == 0);
  CHECK("raw sched_getaffinity with 1 byte", syscall(SYS_sched_getaffinity, 0, 1, &set));
  SHOW(sched_yield());
  SHOW(syscall(SYS_sched_getscheduler, 0)); /* musl's wrapper is a stub */
  SHOW(sched_get_priority_max(SCHED_FIFO));
  SHOW(sched_get_priority_min(SCHED_FIFO));
  unsigned cpu = 99999, node = 99999;
  SHOW(syscall(SYS_getcpu, &cpu, &node, NULL));
  FACT(cpu < 4096 && node < 4096);
  FACT(sysconf(_SC_NPROCESSORS_ONLN) >= 1);
  FACT(sysconf(_SC_PAGESIZE) == 4096);
  /* NULL and negative pids: EINVAL, checked before the pointer is read. */
  SHOW(syscall(SYS_sched_getparam, 0, NULL));
  SHOW(syscall(SYS_sched_setparam, 0, NULL));
  SHOW(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
  SHOW(syscall(SYS_sched_getparam, -1, (void *)8));
  SHOW(syscall(SYS_sched_setattr, 0, NULL, 0));
  SHOW(syscall(SYS_sched_getattr, 0, NULL, 48, 0));
  struct sched_param sp = {0};
  SHOW(syscall(SYS_sched_getparam, 0, &sp));
  SHOW(sp.sched_priority);
  SHOW(syscall(SYS_sched_getparam, 0, (void *)8));
}

static void test_prctl(void) {
  SECTION("prctl");
  char name[32] = {0};
  SHOW(prctl(PR_SET_NAME, "blinkroot-test"));
  SHOW(prctl(PR_GET_NAME, name));
  printf("  name = \"%s\"\n", name);
  SHOW(prctl(PR_SET_NAME, "a-name-longer-than-sixteen-bytes"));
  SHOW(prctl(PR_GET_NAME, name));
  printf("  name = \"%s\"\n", name);
  SHOW(prctl(PR_GET_DUMPABLE));
  SHOW(prctl(PR_SET_PDEATHSIG, 0));
  int sig = -1;
  SHOW(prctl(PR_GET_PDEATHSIG, &sig));
  printf("  pdeathsig = %d\n", sig);
  SHOW(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  SHOW(prctl(123456, 0, 0, 0, 0));
}

static void test_getrandom(void) {
  SECTION("getrandom");
  unsigned char buf[64] = {0};
  SHOW(getrandom(buf, 32, 0));
  SHOW(getrandom(buf, 32, GRND_NONBLOCK));
  SHOW(getrandom(buf, 0, 0));
  SHOW(getrandom(buf, 16, 0x1000));
  SHOW(syscall(SYS_getrandom, (void *)8, 16, 0));
  unsigned any = 0;
  for (int i = 0; i < 32; i++) any |= buf[i];
  FACT(any != 0);
}

static void test_arch(void) {
  SECTION("arch_prctl/set_tid_address/set_robust_list");
  unsigned long fs = 0, gs = 1, self;
  SHOW(syscall(SYS_arch_prctl, K_ARCH_GET_FS, &fs));
  FACT(fs != 0);
  __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
  FACT(self == fs); /* both libcs keep the thread pointer at %fs:0 */
  SHOW(syscall(SYS_arch_prctl, K_ARCH_GET_GS, &gs));
  printf("  gs = %lu\n", gs);
  SHOW(syscall(SYS_arch_prctl, 0x9999, &fs));
  SHOW(syscall(SYS_arch_prctl, K_ARCH_GET_FS, (void *)8));
  static int clear_me;
  FACT(syscall(SYS_set_tid_address, &clear_me) == tid());
  static long robust_head[3];
  SHOW(syscall(SYS_set_robust_list, robust_head, sizeof robust_head));
  SHOW(syscall(SYS_set_robust_list, robust_head, 1));
  SHOW(syscall(SYS_set_robust_list, robust_head, 3 * sizeof(long)));
}

int main(void) {
  test_ids();
  test_uname();
  test_limits();
  test_usage();
  test_scheduling();
  test_prctl();
  test_getrandom();
  test_arch();
  return 0;
}
