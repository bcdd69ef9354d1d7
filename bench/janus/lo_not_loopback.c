/* LD_PRELOAD shim for benchmarks: Janus skips interfaces flagged
 * IFF_LOOPBACK when it gathers ICE candidates, so inside a loopback-only
 * network namespace it would offer nothing. Clear the flag on the way out
 * of getifaddrs(). Never use this outside a test namespace. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = 0;
    if (!real)
        real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    if (!real)
        return -1;
    int r = real(ifap);
    if (r == 0) {
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next)
            i->ifa_flags &= ~IFF_LOOPBACK;
    }
    return r;
}
