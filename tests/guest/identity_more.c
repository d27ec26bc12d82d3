// identity_more: capabilities, personality, more prctl, priorities, limits kept by the kernel.
#include "check.h"
#include <sched.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>

/* <linux/capability.h> is not in musl's include path: the ABI, spelled out. */
#define _LINUX_CAPABILITY_VERSION_1 0x19980330
#define _LINUX_CAPABILITY_VERSION_3 0x20080522
struct __user_cap_header_struct {
  unsigned version;
  int pid;
};
struct __user_cap_data_struct {
  unsigned effective, permitted, inheritable;
};

static void test_caps(void) {
  SECTION("capget/capset");
  struct __user_cap_header_struct hdr = {0, 0};
  struct __user_cap_data_struct data[2];
  SHOW(syscall(SYS_capget, &hdr, NULL));
  printf("  preferred version = %#x\n", hdr.version);
  hdr.version = 0x12345678;
  SHOW(syscall(SYS_capget, &hdr, data));
  printf("  version rewritten = %#x\n", hdr.version);
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  SHOW(syscall(SYS_capget, &hdr, data));
  FACT((data[0].effective & ~data[0].permitted) == 0);
  FACT((data[1].effective & ~data[1].permitted) == 0);
  struct __user_cap_data_struct again[2];
  hdr.pid = getpid();
  SHOW(syscall(SYS_capget, &hdr, again));
  FACT(memcmp(data, again, sizeof data) == 0);
  hdr.pid = -5;
  SHOW(syscall(SYS_capget, &hdr, data));
  hdr.pid = 0;
  SHOW(syscall(SYS_capget, (void *)8, data));
  SHOW(syscall(SYS_capget, &hdr, (void *)8));
  hdr.version = _LINUX_CAPABILITY_VERSION_1;
  SHOW(syscall(SYS_capget, &hdr, data));
  /* setting the same sets again changes nothing and is allowed */
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  SHOW(syscall(SYS_capget, &hdr, data));
  SHOW(syscall(SYS_capset, &hdr, data));
  hdr.version = 0x12345678;
  SHOW(syscall(SYS_capset, &hdr, data));
}

static void test_personality(void) {
  SECTION("personality");
  SHOW(personality(0xffffffff));
  SHOW(personality(PER_LINUX | ADDR_NO_RANDOMIZE));
  printf("  now = %#x\n", personality(0xffffffff));
  SHOW(personality(PER_LINUX));
  SHOW(personality(0xffffffff));
}

static void test_prctl_more(void) {
  SECTION("prctl");
  SHOW(prctl(PR_CAPBSET_READ, 0, 0, 0, 0));
  SHOW(prctl(PR_CAPBSET_READ, 1000, 0, 0, 0));
  SHOW(prctl(PR_SET_DUMPABLE, 2, 0, 0, 0));
  SHOW(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
  SHOW(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
  SHOW(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
  SHOW(prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
  SHOW(prctl(PR_SET_PDEATHSIG, 99, 0, 0, 0));
  SHOW(prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0));
  int sig = 0;
  SHOW(prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0));
  printf("  pdeathsig = %s\n", signame(sig));
  SHOW(prctl(PR_GET_PDEATHSIG, (void *)8, 0, 0, 0));
  SHOW(prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0));
  SHOW(prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0));
  SHOW(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  SHOW(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  SHOW(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
  int reaper = -1;
  SHOW(prctl(PR_GET_CHILD_SUBREAPER, &reaper, 0, 0, 0));
  printf("  subreaper = %d\n", reaper);
  FACT(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) > 0);
  SHOW(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
  SHOW(prctl(PR_SET_NAME, (void *)8, 0, 0, 0));
  char name[16];
  SHOW(prctl(PR_SET_NAME, "x", 0, 0, 0));
  SHOW(prctl(PR_GET_NAME, name, 0, 0, 0));
  printf("  name = \"%s\"\n", name);
}

static void test_priority(void) {
  SECTION("priority and scheduling");
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, 0);
  FACT(errno == 0 && nice >= -20 && nice <= 19);
  long raw = syscall(SYS_getpriority, PRIO_PROCESS, 0);
  FACT(raw == 20 - nice);
  SHOW(setpriority(PRIO_PROCESS, 0, nice));
  SHOW(syscall(SYS_getpriority, 99, 0));
  struct sched_param p = {-1};
  SHOW(sched_getparam(0, &p));
  printf("  priority = %d\n", p.sched_priority);
  SHOW(syscall(SYS_sched_getparam, 0, (void *)8));
  SHOW(syscall(SYS_sched_getscheduler, -1));
  SHOW(syscall(SYS_sched_get_priority_max, 12345));
  unsigned cpu = 99999;
  SHOW(syscall(SYS_getcpu, &cpu, NULL, NULL));
  FACT(cpu < 4096);
}

static void test_limits_more(void) {
  SECTION("limits kept for the guest");
  struct rlimit rl, saved;
  SHOW(getrlimit(RLIMIT_STACK, &saved));
  rl = saved;
  rl.rlim_cur = 1 << 20;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur) rl.rlim_cur = rl.rlim_max;
  SHOW(setrlimit(RLIMIT_STACK, &rl));
  SHOW(getrlimit(RLIMIT_STACK, &rl));
  printf("  stack soft = %lu\n", (unsigned long)rl.rlim_cur);
  SHOW(setrlimit(RLIMIT_STACK, &saved));
  struct rlimit as = {RLIM_INFINITY, RLIM_INFINITY};
  SHOW(getrlimit(RLIMIT_AS, &as));
  printf("  as infinite = %d\n", as.rlim_cur == RLIM_INFINITY);
  SHOW(getrlimit(RLIMIT_NOFILE, (void *)8));
  SHOW(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, (void *)8, NULL));
  struct rlimit old;
  SHOW(syscall(SYS_prlimit64, getpid(), RLIMIT_CORE, NULL, &old));
  SHOW(syscall(SYS_prlimit64, 1, RLIMIT_CORE, NULL, &old));
  struct rlimit core = {0, 0};
  SHOW(getrlimit(RLIMIT_CORE, &core));
  SHOW(setrlimit(RLIMIT_CORE, &core));
  SHOW(getrlimit(RLIMIT_CORE, &old));
  FACT(old.rlim_cur == core.rlim_cur);
}

static void test_random(void) {
  SECTION("getrandom flags");
  char buf[16];
  SHOW(getrandom(buf, sizeof buf, GRND_RANDOM));
  SHOW(getrandom(buf, sizeof buf, GRND_INSECURE));
  SHOW(getrandom(buf, sizeof buf, GRND_INSECURE | GRND_RANDOM));
  SHOW(getrandom((void *)8, 0, 0));
}

int main(void) {
  test_caps();
  test_personality();
  test_prctl_more();
  test_priority();
  test_limits_more();
  test_random();
  return 0;
}
