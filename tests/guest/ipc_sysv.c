// ipc_sysv: System V shared memory (attach placement, SHM_RND/RDONLY/REMAP, shmdt,
// sharing across fork), semaphores (SETALL/GETALL, IPC_NOWAIT, timeouts, blocking,
// SEM_UNDO) and message queues (types, E2BIG/MSG_NOERROR, ENOMSG, EINTR).
// The objects are created by the parent, the tests run in a child, and the parent
// removes every object afterwards, whatever happened to the child.
#include "check.h"
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>

#define PAGE 4096L

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
  struct seminfo *info;
};

static int shm, shm2, sem, msq;

static long nattch(int id) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) < 0) return -1;
  return (long)ds.shm_nattch;
}

static void test_shm(void) {
  SECTION("shm");
  struct shmid_ds ds;
  SHOW(shmctl(shm, IPC_STAT, &ds));
  printf("segsz=%ld nattch=%ld mode=%o cpid_is_me=%d\n", (long)ds.shm_segsz,
         (long)ds.shm_nattch, ds.shm_perm.mode & 0777, ds.shm_cpid == getpid());
  char *a = SHOWP(shmat(shm, NULL, 0), (void *)-1);
  FACT((uintptr_t)a % PAGE == 0);
  FACT(a[0] == 0 && a[9999] == 0);
  strcpy(a, "first attachment");
  char *b = SHOWP(shmat(shm, NULL, 0), (void *)-1);
  FACT(a != b);
  printf("b sees: %s\n", b);
  printf("nattch=%ld\n", nattch(shm));
  b[PAGE + 1] = 'z';
  FACT(a[PAGE + 1] == 'z');
  /* the last page is whole: 10000 bytes round up to 3 pages */
  a[3 * PAGE - 1] = 'e';
  FACT(b[3 * PAGE - 1] == 'e');
  SHOW(shmdt(b));
  printf("nattch=%ld\n", nattch(shm));
  SHOW(shmdt(b));
  SHOW(shmdt(a + 1));
  SHOW(shmdt(a + PAGE));

  SECTION("read-only attachment");
  char *r = SHOWP(shmat(shm, NULL, SHM_RDONLY), (void *)-1);
  printf("r sees: %s\n", r);
  expect_fault("write to SHM_RDONLY", write_byte, r, r);
  SHOW(mprotect(r, PAGE, PROT_READ | PROT_WRITE));
  SHOW(mprotect(r, PAGE, PROT_NONE));
  expect_fault("read after PROT_NONE", read_byte, r, r);
  SHOW(mprotect(r, PAGE, PROT_READ));
  FACT(r[0] == 'f');
  SHOW(shmdt(r));

  SECTION("placement");
  char *spot = mmap(NULL, 8 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  SHOW(munmap(spot + 4 * PAGE, 4 * PAGE));
  char *f = SHOWP(shmat(shm, spot + 4 * PAGE, 0), (void *)-1);
  FACT(f == spot + 4 * PAGE);
  FACT(f[0] == 'f');
  SHOWP(shmat(shm, spot + 4 * PAGE, 0), (void *)-1);  /* occupied */
  SHOWP(shmat(shm, spot, 0), (void *)-1);              /* overlaps the mmap */
  char *g = SHOWP(shmat(shm, spot, SHM_REMAP), (void *)-1);
  FACT(g == spot);
  FACT(g[0] == 'f');
  SHOWP(shmat(shm, spot + 5, 0), (void *)-1);
  SHOWP(shmat(shm, NULL, SHM_REMAP), (void *)-1);
  SHOWP(shmat(shm, (void *)5, SHM_RND | SHM_REMAP), (void *)-1);
  char *h = SHOWP(shmat(shm, spot + 5, SHM_RND | SHM_REMAP), (void *)-1);
  FACT(h == spot);
  printf("nattch=%ld\n", nattch(shm));
  /* munmap of an attachment detaches it, like shmdt */
  SHOW(munmap(f, 3 * PAGE));
  printf("nattch=%ld\n", nattch(shm));
  SHOW(shmdt(h));
  printf("nattch=%ld\n", nattch(shm));
  SHOWP(shmat(-1, NULL, 0), (void *)-1);
  SHOWP(shmat(0x7ffffff0, NULL, 0), (void *)-1);

  SECTION("partial detach");
  char *p = SHOWP(shmat(shm, NULL, 0), (void *)-1);
  SHOW(munmap(p, PAGE));          /* the rest stays attached */
  printf("nattch=%ld\n", nattch(shm));
  FACT(p[PAGE] == 'z');
  SHOW(shmdt(p));                 /* not the start of an attachment any more */
  SHOW(munmap(p + PAGE, 2 * PAGE));
  printf("nattch=%ld\n", nattch(shm));

  SECTION("fork");
  char *s = SHOWP(shmat(shm, NULL, 0), (void *)-1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    printf("child sees: %s nattch=%ld\n", s, nattch(shm));
    strcpy(s, "written by the child");
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  printf("parent sees: %s nattch=%ld\n", s, nattch(shm));

  SECTION("IPC_RMID while attached");
  SHOW(shmctl(shm2, IPC_RMID, NULL));
  SHOWP(shmat(shm2, NULL, 0), (void *)-1);
  char *q = SHOWP(shmat(shm, NULL, 0), (void *)-1);
  SHOW(shmctl(shm, IPC_RMID, NULL));
  SHOW(shmctl(shm, IPC_STAT, &ds));
  FACT((ds.shm_perm.mode & SHM_DEST) != 0);
  printf("q sees: %s nattch=%ld\n", q, (long)ds.shm_nattch);
  SHOW(shmdt(q));
  SHOW(shmdt(s));
  SHOW(shmctl(shm, IPC_STAT, &ds));

  SECTION("shmctl");
  struct shminfo info;
  FACT(shmctl(0, IPC_INFO, (struct shmid_ds *)&info) >= 0);
  FACT(info.shmmni > 0 && info.shmmax > 0);
  struct shm_info sinfo;
  FACT(shmctl(0, SHM_INFO, (struct shmid_ds *)&sinfo) >= 0);
  SHOW(shmctl(shm, 12345, NULL));
  SHOW(shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600));
}

static long semval(int n) { return semctl(sem, n, GETVAL); }

static void on_alarm(int sig) { (void)sig; }

static void test_sem(void) {
  SECTION("sem");
  unsigned short init[3] = {1, 2, 3}, out[3] = {0};
  SHOW(semctl(sem, 0, SETALL, (union semun){.array = init}));
  SHOW(semctl(sem, 0, GETALL, (union semun){.array = out}));
  printf("values %d %d %d\n", out[0], out[1], out[2]);
  SHOW(semctl(sem, 1, SETVAL, (union semun){.val = 7}));
  SHOW(semval(1));
  FACT(semctl(sem, 1, GETPID) == getpid());
  struct semid_ds ds;
  SHOW(semctl(sem, 0, IPC_STAT, (union semun){.buf = &ds}));
  printf("nsems=%ld mode=%o\n", (long)ds.sem_nsems, ds.sem_perm.mode & 0777);
  SHOW(semctl(sem, 5, GETVAL));
  SHOW(semctl(sem, 0, SETVAL, (union semun){.val = -1}));

  struct sembuf down = {0, -1, IPC_NOWAIT};
  SHOW(semop(sem, &down, 1));
  SHOW(semval(0));
  SHOW(semop(sem, &down, 1));
  struct sembuf two[2] = {{1, -2, 0}, {2, 1, 0}};
  SHOW(semop(sem, two, 2));
  printf("values %ld %ld %ld\n", semval(0), semval(1), semval(2));
  SHOW(semop(sem, two, 0));
  SHOW(semop(sem, two, 100000));
  SHOW(semop(sem, (struct sembuf *)8, 1));
  struct sembuf bad = {9, 1, 0};
  SHOW(semop(sem, &bad, 1));
  struct timespec ts = {0, 20 * 1000 * 1000};
  struct sembuf wait0 = {0, -1, 0};
  SHOW(semtimedop(sem, &wait0, 1, &ts));

  /* blocks until a child raises it */
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(50 * 1000);
    struct sembuf up = {0, 1, 0};
    semop(sem, &up, 1);
    _exit(0);
  }
  SHOW(semop(sem, &wait0, 1));
  waitpid(pid, NULL, 0);

  /* a handler interrupts it: EINTR even with SA_RESTART */
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  ualarm(30 * 1000, 0);
  SHOW(semop(sem, &wait0, 1));

  /* SEM_UNDO: undone when the child exits */
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    struct sembuf up = {2, 5, SEM_UNDO};
    semop(sem, &up, 1);
    printf("child: value %ld\n", semval(2));
    fflush(stdout);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  SHOW(semval(2));
  struct seminfo si;
  FACT(semctl(0, 0, SEM_INFO, (union semun){.info = &si}) >= 0);
  FACT(si.semmsl > 0);
  SHOW(semget(IPC_PRIVATE, -1, IPC_CREAT | 0600));
}

struct msg {
  long mtype;
  char mtext[64];
};

static void test_msg(void) {
  SECTION("msg");
  struct msg m = {1, "hello"};
  SHOW(msgsnd(msq, &m, 6, 0));
  m.mtype = 2;
  strcpy(m.mtext, "world!");
  SHOW(msgsnd(msq, &m, 7, 0));
  struct msqid_ds ds;
  SHOW(msgctl(msq, IPC_STAT, &ds));
  printf("qnum=%ld cbytes=%ld lspid_is_me=%d\n", (long)ds.msg_qnum, (long)ds.__msg_cbytes,
         ds.msg_lspid == getpid());
  struct msg r = {0};
  SHOW(msgrcv(msq, &r, sizeof r.mtext, 2, 0));
  printf("got type %ld: %s\n", r.mtype, r.mtext);
  SHOW(msgrcv(msq, &r, 3, 0, 0));
  memset(&r, 0, sizeof r);
  SHOW(msgrcv(msq, &r, 3, 0, MSG_NOERROR));
  printf("got type %ld: %.3s\n", r.mtype, r.mtext);
  SHOW(msgrcv(msq, &r, sizeof r.mtext, 0, IPC_NOWAIT));
  m.mtype = 0;
  SHOW(msgsnd(msq, &m, 6, 0));
  m.mtype = 1;
  SHOW(msgsnd(msq, &m, 1 << 30, 0));
  SHOW(msgsnd(msq, (void *)8, 6, 0));
  SHOW(msgsnd(msq, &m, -1, 0));
  SHOW(msgrcv(msq, &r, -1, 0, 0));
  SHOW(msgrcv(-1, &r, 8, 0, 0));

  /* a blocked receive, woken by a child's send */
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(50 * 1000);
    struct msg c = {5, "from the child"};
    msgsnd(msq, &c, 15, 0);
    _exit(0);
  }
  memset(&r, 0, sizeof r);
  SHOW(msgrcv(msq, &r, sizeof r.mtext, 5, 0));
  printf("got type %ld: %s\n", r.mtype, r.mtext);
  waitpid(pid, NULL, 0);

  ualarm(30 * 1000, 0);
  SHOW(msgrcv(msq, &r, sizeof r.mtext, 0, 0));

  struct msginfo mi;
  FACT(msgctl(0, MSG_INFO, (struct msqid_ds *)&mi) >= 0);
  ds.msg_qbytes = 1000;
  SHOW(msgctl(msq, IPC_SET, &ds));
  SHOW(msgctl(msq, IPC_STAT, &ds));
  printf("qbytes=%ld\n", (long)ds.msg_qbytes);
  SHOW(msgctl(msq, IPC_RMID, NULL));
  SHOW(msgsnd(msq, &m, 6, IPC_NOWAIT));
}

int main(void) {
  shm = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
  shm2 = shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600);
  sem = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
  msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  FACT(shm >= 0 && shm2 >= 0 && sem >= 0 && msq >= 0);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    test_shm();
    test_sem();
    test_msg();
    fflush(stdout);
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  shmctl(shm, IPC_RMID, NULL);
  shmctl(shm2, IPC_RMID, NULL);
  semctl(sem, 0, IPC_RMID);
  msgctl(msq, IPC_RMID, NULL);
  printf("\ntests exited %d, status %d\n", WIFEXITED(st), WEXITSTATUS(st));
  return 0;
}
