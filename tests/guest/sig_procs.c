// sig_procs: signals between processes: sigqueue values, SIGCHLD's siginfo for
// exited/killed/stopped/continued children, SIGPIPE, EINTR vs SA_RESTART, sigsuspend.
#include "check.h"
#include <sys/wait.h>
#include <time.h>

static volatile sig_atomic_t got_count;
static volatile int got_values[16], got_codes[16], got_from_parent[16];
static pid_t parent_pid;

static void on_rt(int sig, siginfo_t *si, void *ctx) {
  (void)sig;
  (void)ctx;
  int n = got_count;
  if (n < 16) {
    got_values[n] = si->si_value.sival_int;
    got_codes[n] = si->si_code;
    got_from_parent[n] = si->si_pid == parent_pid;
  }
  got_count = n + 1;
}

static void test_sigqueue(void) {
  SECTION("sigqueue to a child");
  parent_pid = getpid();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGRTMIN);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  sigprocmask(SIG_BLOCK, &block, &old); /* the child starts with them blocked */
  int report[2], ready[2];
  pipe(report);
  pipe(ready);
  pid_t pid = fork();
  if (pid == 0) {
    close(ready[0]);
    close(ready[1]); /* tell the parent we run */
    /* wait until all are queued: SIGUSR2, sent last, says so */
    sigset_t w;
    sigemptyset(&w);
    sigaddset(&w, SIGUSR2);
    int s;
    sigwait(&w, &s);
    sigprocmask(SIG_SETMASK, &old, NULL); /* now they are all delivered */
    char line[512];
    int len = 0;
    len += snprintf(line + len, sizeof line - len, "child got %d:", (int)got_count);
    for (int i = 0; i < got_count && i < 16; i++)
      len += snprintf(line + len, sizeof line - len, " %d/%s/%s", got_values[i],
                      got_codes[i] == SI_QUEUE ? "SI_QUEUE" : got_codes[i] == SI_USER ? "SI_USER" : "other",
                      got_from_parent[i] ? "parent" : "someone");
    line[len++] = '\n';
    write(report[1], line, len);
    _exit(0);
  }
  close(ready[1]);
  char c;
  read(ready[0], &c, 1);
  close(ready[0]);
  for (int i = 1; i <= 5; i++) {
    union sigval v = {.sival_int = i * 11};
    sigqueue(pid, SIGRTMIN, v); /* realtime: all five queue, in order */
  }
  union sigval v = {.sival_int = 99};
  sigqueue(pid, SIGUSR1, v);
  sigqueue(pid, SIGUSR1, v); /* standard: coalesces */
  kill(pid, SIGUSR2);
  close(report[1]);
  char line[512] = {0};
  int got = 0, n;
  while ((n = read(report[0], line + got, sizeof line - 1 - got)) > 0) got += n;
  printf("%s", line);
  waitpid(pid, NULL, 0);
  close(report[0]);
  sigprocmask(SIG_SETMASK, &old, NULL);
  SHOW(sigqueue(pid, SIGUSR1, v)); /* reaped */
}

/* ---- SIGCHLD ---- */
static volatile sig_atomic_t chld_count;
static volatile int chld_codes[8], chld_status[8], chld_pid_ok[8];
static volatile pid_t chld_expect;

static void on_chld(int sig, siginfo_t *si, void *ctx) {
  (void)sig;
  (void)ctx;
  int n = chld_count;
  if (n < 8) {
    chld_codes[n] = si->si_code;
    chld_status[n] = si->si_status;
    chld_pid_ok[n] = si->si_pid == chld_expect;
  }
  chld_count = n + 1;
}

static const char *cldname(int code) {
  switch (code) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_KILLED"; /* the core limit decides */
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
  }
  return "other";
}

static void wait_chld(const char *label, int n) {
  sigset_t none;
  sigemptyset(&none);
  while (chld_count < n) sigsuspend(&none); /* SIGCHLD is blocked outside */
  int i = n - 1;
  printf("%s: SIGCHLD %s status=%d%s pid-ok=%d (count %d)\n", label, cldname(chld_codes[i]),
         chld_codes[i] == CLD_EXITED ? chld_status[i] : 0, chld_codes[i] == CLD_EXITED ? "" : "",
         chld_pid_ok[i], (int)chld_count);
  if (chld_codes[i] != CLD_EXITED) printf("  signal in si_status: %s\n", signame(chld_status[i]));
}

static pid_t spawn_blocked(void) {
  int ready[2];
  pipe(ready);
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    close(ready[0]);
    close(ready[1]);
    for (;;) pause();
  }
  chld_expect = pid;
  close(ready[1]);
  char c;
  read(ready[0], &c, 1);
  close(ready[0]);
  return pid;
}

static void test_sigchld(void) {
  SECTION("SIGCHLD siginfo");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_chld;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int st;
  int n = 0;

  pid_t pid = fork();
  if (pid == 0) _exit(23);
  chld_expect = pid;
  wait_chld("exit 23", ++n);
  waitpid(pid, &st, 0);

  pid = spawn_blocked();
  kill(pid, SIGTERM);
  wait_chld("killed", ++n);
  waitpid(pid, &st, 0);

  pid = spawn_blocked();
  kill(pid, SIGSTOP);
  wait_chld("stopped", ++n);
  waitpid(pid, &st, WUNTRACED);
  kill(pid, SIGCONT);
  wait_chld("continued", ++n);
  waitpid(pid, &st, WCONTINUED);
  kill(pid, SIGTSTP);
  wait_chld("tstp", ++n);
  waitpid(pid, &st, WUNTRACED);
  kill(pid, SIGKILL);
  wait_chld("killed while stopped", ++n);
  waitpid(pid, &st, 0);

  /* SA_NOCLDSTOP: no SIGCHLD for stop/continue */
  sa.sa_flags |= SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  pid = spawn_blocked();
  kill(pid, SIGSTOP);
  waitpid(pid, &st, WUNTRACED);
  kill(pid, SIGCONT);
  waitpid(pid, &st, WCONTINUED);
  kill(pid, SIGKILL);
  wait_chld("SA_NOCLDSTOP, stop+cont+kill", ++n);
  waitpid(pid, &st, 0);

  /* SIG_IGN for SIGCHLD: children are reaped automatically, wait gets ECHILD */
  signal(SIGCHLD, SIG_IGN);
  sigprocmask(SIG_UNBLOCK, &chld, NULL);
  pid = fork();
  if (pid == 0) _exit(1);
  SHOW(waitpid(pid, &st, 0));
  /* SA_NOCLDWAIT likewise */
  sa.sa_flags = SA_SIGINFO | SA_NOCLDWAIT;
  sigaction(SIGCHLD, &sa, NULL);
  pid = fork();
  if (pid == 0) _exit(1);
  SHOW(waitpid(pid, &st, 0));
  signal(SIGCHLD, SIG_DFL);
}

/* ---- SIGPIPE ---- */
/* The child writes only once the parent has closed the pipe's read end: `go` reaches
   EOF when the parent closes its end of it, after p[0]. */
static pid_t fork_writer(int p[2], int go[2]) {
  pipe(p);
  pipe(go);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(p[0]);
    close(go[1]);
    read(go[0], &c, 1);
    return 0;
  }
  close(p[0]);
  close(p[1]);
  close(go[0]);
  close(go[1]);
  return pid;
}

static void test_sigpipe(void) {
  SECTION("SIGPIPE");
  int p[2], go[2], st;
  pid_t pid = fork_writer(p, go);
  if (pid == 0) {
    write(p[1], "x", 1);
    _exit(0);
  }
  waitpid(pid, &st, 0);
  printf("default disposition: %s\n", WIFSIGNALED(st) ? signame(WTERMSIG(st)) : "exited");
  fflush(stdout);
  pid = fork_writer(p, go);
  if (pid == 0) {
    signal(SIGPIPE, SIG_IGN);
    ssize_t r = write(p[1], "x", 1);
    printf("ignored: write = %zd %s\n", r, errname(errno));
    _exit(0);
  }
  waitpid(pid, &st, 0);
  pid = fork_writer(p, go);
  if (pid == 0) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigprocmask(SIG_BLOCK, &s, NULL);
    ssize_t r = write(p[1], "x", 1);
    sigset_t pend;
    sigpending(&pend);
    printf("blocked: write = %zd %s, pending=%d\n", r, errname(errno), sigismember(&pend, SIGPIPE));
    _exit(0);
  }
  waitpid(pid, &st, 0);
}

/* ---- EINTR vs SA_RESTART ---- */
static volatile sig_atomic_t alarms;
static void on_alarm(int sig) {
  (void)sig;
  alarms++;
}

static void test_restart(void) {
  SECTION("EINTR and SA_RESTART");
  int p[2];
  pipe(p);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  char c;
  alarm(1);
  ssize_t r = read(p[0], &c, 1);
  printf("no SA_RESTART: read = %zd %s, alarms=%d\n", r, errname(errno), (int)alarms);

  /* with SA_RESTART the read goes on; a child writes after the alarm */
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(1500000);
    write(p[1], "w", 1);
    _exit(0);
  }
  alarm(1);
  r = read(p[0], &c, 1);
  printf("SA_RESTART: read = %zd '%c', alarms=%d\n", r, r == 1 ? c : '?', (int)alarms);
  waitpid(pid, NULL, 0);

  /* nanosleep is never restarted: EINTR with the time left */
  alarm(1);
  struct timespec req = {3, 0}, rem = {0, 0};
  int s = nanosleep(&req, &rem);
  printf("nanosleep with SA_RESTART: %d %s, remaining 1..2 s: %s\n", s, errname(errno),
         rem.tv_sec >= 1 && rem.tv_sec <= 2 ? "yes" : "no");
  close(p[0]);
  close(p[1]);
}

/* ---- sigsuspend ---- */
static volatile sig_atomic_t usr_seen;
static void on_usr(int sig) { usr_seen = sig; }

static void test_sigsuspend(void) {
  SECTION("sigsuspend");
  signal(SIGUSR1, on_usr);
  signal(SIGUSR2, on_usr);
  sigset_t block, old, wait_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  sigprocmask(SIG_BLOCK, &block, &old);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    kill(parent, SIGUSR2); /* blocked in sigsuspend's mask: stays pending */
    usleep(100000);
    kill(parent, SIGUSR1);
    _exit(0);
  }
  wait_mask = old;
  sigaddset(&wait_mask, SIGUSR2);
  sigdelset(&wait_mask, SIGUSR1);
  int r = sigsuspend(&wait_mask);
  printf("sigsuspend = %d %s, woken by %s\n", r, errname(errno), signame(usr_seen));
  sigset_t pend, now;
  sigpending(&pend);
  sigprocmask(SIG_BLOCK, NULL, &now);
  printf("after: SIGUSR2 pending=%d, mask restored=%d\n", sigismember(&pend, SIGUSR2),
         sigismember(&now, SIGUSR1) && sigismember(&now, SIGUSR2));
  sigprocmask(SIG_SETMASK, &old, NULL);
  printf("after unblocking: last handled %s\n", signame(usr_seen));
  waitpid(pid, NULL, 0);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  test_sigqueue();
  test_sigchld();
  test_sigpipe();
  test_restart();
  test_sigsuspend();
  return 0;
}
