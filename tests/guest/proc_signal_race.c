// proc_signal_race: signals sent to a fork child at once (before it runs any
// code of its own) and just as it blocks in read() must reach it, and only it.
#include "check.h"
#include <sys/wait.h>

static void round_trip(const char *label, int sig, int wait_ready, int rounds) {
  int wrong = 0;
  for (int i = 0; i < rounds; i++) {
    int p[2], ready[2];
    if (pipe(p) || pipe(ready)) abort();
    pid_t pid = fork();
    if (pid == 0) {
      char c;
      close(p[1]);
      close(ready[0]);
      close(ready[1]);
      read(p[0], &c, 1);
      _exit(0);
    }
    close(p[0]);
    close(ready[1]);
    if (wait_ready) {
      char c;
      read(ready[0], &c, 1);
    }
    close(ready[0]);
    kill(pid, sig);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != sig) wrong++;
    close(p[1]);
  }
  printf("%s %s x%d: wrong statuses=%d\n", label, signame(sig), rounds, wrong);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  static const int sigs[] = {SIGINT, SIGHUP, SIGUSR2};
  for (int i = 0; i < 3; i++) round_trip("right after fork", sigs[i], 0, 100);
  for (int i = 0; i < 3; i++) round_trip("blocked in read", sigs[i], 1, 100);
  printf("parent survived\n");
  return 0;
}
