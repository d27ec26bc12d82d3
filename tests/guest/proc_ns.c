// /proc/self/ns and /proc/PID/ns: the links (the host's namespaces: the guest shares them),
// the nsfs files they open, and the NS_GET_* ioctls on them.
#include "check.h"
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define NS_GET_USERNS 0xb701
#define NS_GET_PARENT 0xb702
#define NS_GET_NSTYPE 0xb703
#define NS_GET_OWNER_UID 0xb704

int main(void) {
  const char *names[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};
  char path[64], text[128], other[128];
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
    ssize_t n = readlink(path, text, sizeof text - 1);
    if (n < 0) {
      printf("%s: %s\n", names[i], errname(errno));
      continue;
    }
    text[n] = 0;
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)getpid(), names[i]);
    n = readlink(path, other, sizeof other - 1);
    other[n > 0 ? n : 0] = 0;
    int fd = open(path, O_RDONLY);
    struct stat st, lst;
    fstat(fd, &st);
    lstat(path, &lst);
    unsigned long long id = 0;
    sscanf(strchr(text, '[') ? strchr(text, '[') + 1 : "", "%llu", &id);
    printf("%s: %.*s same as pid's: %d, ino is the id: %d, lstat link: %d, nstype %d\n",
           names[i], (int)(strchr(text, ':') - text), text, strcmp(text, other) == 0,
           st.st_ino == id, S_ISLNK(lst.st_mode), ioctl(fd, NS_GET_NSTYPE) > 0);
    close(fd);
  }
  int fd = open("/proc/self/ns/uts", O_RDONLY);
  uid_t uid = 12345;
  SHOW(ioctl(fd, NS_GET_OWNER_UID, &uid));      // not a user namespace
  int u = open("/proc/self/ns/user", O_RDONLY);
  SHOW(ioctl(u, NS_GET_OWNER_UID, &uid));
  FACT(uid == 0);
  SHOW(ioctl(u, NS_GET_USERNS));                // the initial one's owner: none
  SHOW(ioctl(u, NS_GET_PARENT));
  int owner = ioctl(fd, NS_GET_USERNS);         // uts's owner: the user namespace
  FACT(owner >= 0);
  struct stat a, b;
  fstat(owner, &a);
  fstat(u, &b);
  FACT(a.st_ino == b.st_ino);
  SHOW(fcntl(owner, F_GETFD));
  int p = open("/proc/self/ns/pid", O_RDONLY);
  SHOW(ioctl(p, NS_GET_PARENT));
  SHOW(open("/proc/self/ns/nonesuch", O_RDONLY));
  int dot = open(".", O_RDONLY);                // not nsfs: ENOTTY before EFAULT
  SHOW(ioctl(dot, NS_GET_OWNER_UID));
  SHOW(ioctl(dot, NS_GET_USERNS));
  SHOW(ioctl(u, NS_GET_OWNER_UID, (void *)8));
  DIR *d = opendir("/proc/self/ns");
  struct dirent *e;
  int count = 0, has_mnt = 0;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') count++, has_mnt |= strcmp(e->d_name, "mnt") == 0;
  FACT(count >= 8);
  SHOW(has_mnt);
  closedir(d);
  return 0;
}
