// Linux interfaces that Swift's Glibc module does not include: epoll(7), and sock_diag(7) for
// the accept queue of a unix socket. Headers of glibc and the kernel: nothing to link.
#include <sys/epoll.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
