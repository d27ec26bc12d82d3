// proc_wait: fork/wait status matrix: exit codes, deaths by signal, WNOHANG,
// WUNTRACED (SIGSTOP, SIGTSTP), WCONTINUED, waitid (P_PID, P_ALL, WNOWAIT), ECHILD.
#include "check.h"
#include <sys/wait.h>

static const char *sname(int sig) {
  if (sig == SIGTTIN) return "SIGTTIN";
  if (sig == SIGTTOU) return "SIGTTOU";
  return signame(sig);
}

static void describe(const char *label, int st) {
  if (WIFSIGNALED(st)) st &= ~0x80; /* WCOREDUMP depends on the core limit */
  printf("%s: raw=0x%04x", label, st);
  if (WIFCONTINUED(st))
    printf(" continued");
  else if (WIFEXITED(st))
    printf(" exited status=%d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    printf(" signaled sig=%s", sname(WTERMSIG(st)));
  else if (WIFSTOPPED(st))
    printf(" stopped sig=%s", sname(WSTOPSIG(st)));
  printf("\n");
}

/* A child that waits, blocked in read(), until its parent says what to do. */
static pid_t spawn_waiting(int *tell) {
  int p[2], ready[2];
  if (pipe(p) || pipe(ready)) abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(p[1]);
    close(ready[0]);
    setpgid(0, 0); /* its own group: never an orphaned group, so SIGTSTP stops it */
    close(ready[1]); /* running (proc_fork_race covers signals sent before this) */
    char c;
    for (;;) {
      ssize_t n = read(p[0], &c, 1);
      if (n == 1) _exit(c);
      if (n == 0) _exit(99);
    }
  }
  setpgid(pid, pid);
  close(p[0]);
  close(ready[1]);
  char c;
  read(ready[0], &c, 1);
  close(ready[0]);
  *tell = p[1];
  return pid;
}

static void reap(const char *label, pid_t pid, int options) {
  int st = 0;
  pid_t r = waitpid(pid, &st, options);
  if (r == -1)
    printf("%s: -1 %s\n", label, errname(errno));
  else if (r == 0)
    printf("%s: returned 0\n", label);
  else if (r == pid || pid == -1)
    describe(label, st);
  else
    printf("%s: returned another pid\n", label);
}

static void crash(void) { *(volatile int *)8 = 1; }

static void test_exits(void) {
  SECTION("exit codes and signals");
  static const int codes[] = {0, 1, 255, 256 + 7};
  for (int i = 0; i < 4; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(codes[i]);
    char label[32];
    snprintf(label, sizeof label, "_exit(%d)", codes[i]);
    reap(label, pid, 0);
  }
  pid_t pid = fork();
  if (pid == 0) exit(42); /* through atexit/stdio */
  reap("exit(42)", pid, 0);

  static const int sigs[] = {SIGTERM, SIGKILL, SIGINT, SIGUSR1};
  for (int i = 0; i < 4; i++) {
    int tell;
    pid = spawn_waiting(&tell);
    kill(pid, sigs[i]);
    char label[32];
    snprintf(label, sizeof label, "kill %s", signame(sigs[i]));
    reap(label, pid, 0);
    close(tell);
  }
  pid = fork();
  if (pid == 0) {
    crash();
    _exit(1);
  }
  reap("null write", pid, 0);
  pid = fork();
  if (pid == 0) {
    abort();
  }
  reap("abort()", pid, 0);
  pid = fork();
  if (pid == 0) {
    raise(SIGTERM);
    _exit(1);
  }
  reap("raise(SIGTERM)", pid, 0);
}

static void test_nohang(void) {
  SECTION("WNOHANG");
  int tell;
  pid_t pid = spawn_waiting(&tell);
  reap("WNOHANG, running", pid, WNOHANG);
  reap("WNOHANG any, running", -1, WNOHANG);
  write(tell, "\5", 1);
  reap("blocking", pid, 0);
  reap("WNOHANG, none left", -1, WNOHANG);
  close(tell);
}

static void test_stop_continue(void) {
  SECTION("WUNTRACED and WCONTINUED");
  static const int stops[] = {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU};
  for (int i = 0; i < 4; i++) {
    int tell;
    pid_t pid = spawn_waiting(&tell);
    char label[64];
    kill(pid, stops[i]);
    snprintf(label, sizeof label, "%s WUNTRACED", sname(stops[i]));
    reap(label, pid, WUNTRACED);
    reap("  again WUNTRACED|WNOHANG", pid, WUNTRACED | WNOHANG);
    kill(pid, SIGCONT);
    reap("  SIGCONT WCONTINUED", pid, WCONTINUED);
    reap("  again WCONTINUED|WNOHANG", pid, WCONTINUED | WNOHANG);
    write(tell, "\3", 1);
    reap("  exit", pid, 0);
    close(tell);
  }
  /* a stopped child is not reported without WUNTRACED; killing it while stopped */
  int tell;
  pid_t pid = spawn_waiting(&tell);
  kill(pid, SIGSTOP);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  SHOW(waitid(P_PID, pid, &si, WSTOPPED));
  printf("waitid stopped: code=%s status=%s pid-ok=%d\n",
         si.si_code == CLD_STOPPED ? "CLD_STOPPED" : "other", sname(si.si_status), si.si_pid == pid);
  reap("stopped, WNOHANG only", pid, WNOHANG);
  kill(pid, SIGKILL);
  reap("SIGKILL while stopped", pid, 0);
  close(tell);
}

static const char *cldname(int code) {
  switch (code) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_KILLED"; /* depends on the core limit */
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    case CLD_TRAPPED: return "CLD_TRAPPED";
  }
  return "other";
}

static void show_info(const char *label, int r, siginfo_t *si, pid_t pid) {
  if (r == -1) {
    printf("%s: -1 %s\n", label, errname(errno));
    return;
  }
  if (si->si_pid == 0) {
    printf("%s: 0, nothing\n", label);
    return;
  }
  printf("%s: %d signo=%s code=%s status=%d pid-ok=%d uid-ok=%d\n", label, r,
         signame(si->si_signo), cldname(si->si_code),
         si->si_code == CLD_EXITED ? si->si_status : 1000 + si->si_status, si->si_pid == pid,
         si->si_uid == getuid());
}

static void test_waitid(void) {
  SECTION("waitid");
  siginfo_t si;
  int tell;
  pid_t pid = spawn_waiting(&tell);
  memset(&si, 0, sizeof si);
  show_info("P_PID WEXITED|WNOHANG running", waitid(P_PID, pid, &si, WEXITED | WNOHANG), &si, pid);
  write(tell, "\x11", 1);
  memset(&si, 0, sizeof si);
  show_info("P_PID WEXITED|WNOWAIT", waitid(P_PID, pid, &si, WEXITED | WNOWAIT), &si, pid);
  memset(&si, 0, sizeof si);
  show_info("P_ALL WEXITED|WNOWAIT", waitid(P_ALL, 0, &si, WEXITED | WNOWAIT), &si, pid);
  memset(&si, 0, sizeof si);
  show_info("P_PGID WEXITED", waitid(P_PGID, pid, &si, WEXITED), &si, pid);
  memset(&si, 0, sizeof si);
  show_info("P_PID again", waitid(P_PID, pid, &si, WEXITED), &si, pid);
  close(tell);

  pid = spawn_waiting(&tell);
  kill(pid, SIGTERM);
  memset(&si, 0, sizeof si);
  show_info("P_ALL killed", waitid(P_ALL, 0, &si, WEXITED), &si, pid);
  close(tell);

  pid = spawn_waiting(&tell);
  kill(pid, SIGSTOP);
  memset(&si, 0, sizeof si);
  show_info("WSTOPPED", waitid(P_PID, pid, &si, WSTOPPED), &si, pid);
  kill(pid, SIGCONT);
  memset(&si, 0, sizeof si);
  show_info("WCONTINUED", waitid(P_PID, pid, &si, WCONTINUED), &si, pid);
  close(tell);
  memset(&si, 0, sizeof si);
  show_info("exit 99 on EOF", waitid(P_PID, pid, &si, WEXITED), &si, pid);
  memset(&si, 0, sizeof si);
  show_info("no options", waitid(P_ALL, 0, &si, 0), &si, pid);
}

static void test_echild(void) {
  SECTION("ECHILD");
  int st;
  SHOW(waitpid(-1, &st, 0));
  SHOW(waitpid(-1, &st, WNOHANG));
  SHOW(waitpid(1, &st, 0));
  SHOW(waitpid(getpid(), &st, 0));
  siginfo_t si;
  SHOW(waitid(P_ALL, 0, &si, WEXITED));
  SHOW(waitid(P_PID, 1, &si, WEXITED));
  SHOW(wait(&st));
  /* a grandchild is not our child */
  int p[2];
  pipe(p);
  pid_t child = fork();
  if (child == 0) {
    pid_t grandchild = fork();
    if (grandchild == 0) {
      pause();
      _exit(0);
    }
    write(p[1], &grandchild, sizeof grandchild);
    int r = waitpid(grandchild, &st, WNOHANG);
    kill(grandchild, SIGKILL);
    waitpid(grandchild, &st, 0);
    _exit(r == 0 ? 0 : 1);
  }
  pid_t grandchild;
  read(p[0], &grandchild, sizeof grandchild);
  SHOW(waitpid(grandchild, &st, WNOHANG));
  reap("intermediate", child, 0);
  close(p[0]);
  close(p[1]);
  /* many children, reaped in any order: count them */
  int total = 0;
  for (int i = 0; i < 20; i++)
    if (fork() == 0) _exit(i);
  pid_t r;
  while ((r = wait(&st)) > 0) total += WEXITSTATUS(st);
  printf("sum of 20 exit codes = %d, then %s\n", total, errname(errno));
}

static void test_procfs_of_new_child(void) {
  SECTION("/proc/CHILD right after fork, before the child ran");
  for (int round = 0; round < 3; round++) {
    pid_t pid = fork();
    if (pid == 0) {
      usleep(50000);
      _exit(7);
    }
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    FACT(fd >= 0);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    buf[n > 0 ? n : 0] = 0;
    if (fd >= 0) close(fd);
    char *rp = strrchr(buf, ')');
    char state = 0;
    int ppid = 0;
    if (rp) sscanf(rp + 2, "%c %d", &state, &ppid);
    FACT(state == 'R' || state == 'S');
    FACT(ppid == (int)getpid());
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY);
    n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    FACT(n > 0 && strstr(buf, "proc_wait") != NULL);
    if (fd >= 0) close(fd);
    reap("child", pid, 0);
  }
  /* An exited child not yet reaped: /proc/PID is there, in state Z. */
  pid_t pid = fork();
  if (pid == 0) _exit(3);
  siginfo_t si;
  waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
  char path[64], buf[512], state = 0;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  for (int i = 0; i < 200 && state != 'Z'; i++) {
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    buf[n > 0 ? n : 0] = 0;
    char *rp = strrchr(buf, ')');
    if (rp) state = rp[2];
    if (state != 'Z') usleep(10000);
  }
  printf("  zombie state = %c\n", state);
  reap("zombie", pid, 0);
  FACT(access(path, F_OK) != 0);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  test_exits();
  test_nohang();
  test_stop_continue();
  test_waitid();
  test_echild();
  test_procfs_of_new_child();
  return 0;
}
