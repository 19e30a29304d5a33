/* vnflab-proxy: the proxy VNF of Algorithm 1 (paper Sec. III), one source for every platform:
 * a Linux microVM (built static), OSv (built as PIE, udp mode only) and a plain Linux process.
 * Packet logic is in rewrite.c; this file holds the command line, the sockets and the loop.
 * Static buffers only: nothing is allocated per packet.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rewrite.h"

#define BUF_SIZE 65536          /* any IPv4 packet / UDP payload (<= 65507) fits */
#define BIG_SOCKBUF (4 << 20)   /* room for a whole 65507-byte datagram's fragments, several times */
#define MIN_SOCKBUF (128 << 10) /* the least that holds one 65507-byte datagram (OSv counts mbufs) */
#define SOCKBUF_STEP (16 << 10) /* how close grow_to_largest gets to a cap that refuses larger sizes */
#define POLL_MS 500             /* bounds the exit delay if a signal lands just before poll() */
#define DEFAULT_UDP_PORT 7007

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

static const char USAGE[] =
    "usage: vnflab-proxy --mode raw|udp --host-a A --host-b B --proxy-a PA --proxy-b PB\n"
    "                    [--udp-port 7007] [--iface-a NAME --iface-b NAME] [--verbose]\n"
    "\n"
    "The proxy VNF of vnflab (Algorithm 1): traffic from Host A to the proxy's A-side address PA\n"
    "goes to Host B, and back. Prints 'vnflab-proxy: ready mode=...' on stdout once it serves;\n"
    "exits 0 on SIGTERM or SIGINT. Counters are printed on stderr at exit.\n"
    "\n"
    "--mode raw (Linux; root or CAP_NET_RAW):\n"
    "  Stateless IPv4 rewrite, equivalent to two iptables DNAT rules plus conntrack:\n"
    "    A -> PA  becomes A -> B      B -> A  (reply routed through the proxy) becomes PA -> A\n"
    "    B -> PB  becomes B -> A      A -> B  (reply to a B-initiated flow)     becomes A -> PB\n"
    "  anything else is dropped. IP header checksum recomputed, TCP/UDP checksums updated\n"
    "  incrementally (RFC 1624), fragments forwarded one by one (ID and offsets kept).\n"
    "  Receives with AF_PACKET (PACKET_HOST only) on the interface holding PA (side A) and the\n"
    "  one holding PB (side B), or on --iface-a/--iface-b; sends through a raw IP socket\n"
    "  (IP_HDRINCL), so the kernel routes and resolves ARP. Also binds UDP sockets on\n"
    "  PA:udp-port and PB:udp-port (never read) so the kernel does not answer proxied UDP with\n"
    "  port unreachable. The CALLER must configure, in the proxy's network namespace / VM:\n"
    "    PA and PB on the A-side and B-side interfaces (they may be one interface),\n"
    "    sysctl net.ipv4.ip_forward=0          (else the kernel forwards replies unchanged too)\n"
    "    sysctl net.ipv4.icmp_echo_ignore_all=1 (else the kernel answers pings to PA itself)\n"
    "  Host A routes B (or B's network) via PA, Host B routes A via PB. Both sides need the\n"
    "  same MTU (fragments are sent as they came). For TCP, also drop TCP to PA/PB in the\n"
    "  INPUT chain (AF_PACKET sees packets before netfilter) or the kernel answers with RST,\n"
    "  and turn TSO/GSO/GRO off on the path (a coalesced segment above the MTU is not sent).\n"
    "\n"
    "--mode udp (sockets only; the mode for OSv, which has no AF_PACKET):\n"
    "  UDP sockets bound on PA:udp-port and PB:udp-port. A datagram from A (any port) to PA is\n"
    "  sent from PB to B:udp-port; a datagram from B:udp-port to PB is sent from PA back to the\n"
    "  last A address and port seen (one A flow at a time, as the vnflab probe uses it).\n"
    "  Symmetrically, a datagram from B from another port to PB is sent from PA to A:udp-port,\n"
    "  and a datagram from A:udp-port to PA goes back to the last such B address and port.\n"
    "  ICMP is not relayed (the host answers pings to PA itself unless it ignores echo).\n"
    "  --iface-a/--iface-b are ignored. IP-level details (ID, TTL, fragments) are the kernel's.\n";

struct options {
    int mode_raw; /* 1: raw, 0: udp */
    struct vp_config cfg;
    unsigned udp_port;
    const char *iface_a;
    const char *iface_b;
    int verbose;
};

static volatile sig_atomic_t stop_signal;
static uint8_t packet_buf[BUF_SIZE];
static uint8_t control_buf[CMSG_SPACE(sizeof(struct tpacket_auxdata)) + 64];

struct counters {
    unsigned long long received, forwarded, dropped, send_errors;
};
static struct counters stats;

static void on_signal(int signum) { stop_signal = signum; }

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vnflab-proxy: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vnflab-proxy: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage_error(const char *msg)
{
    fprintf(stderr, "vnflab-proxy: %s\n\n%s", msg, USAGE);
    exit(2);
}

static uint32_t parse_addr(const char *name, const char *text)
{
    struct in_addr addr;
    if (text == NULL)
        usage_error(name); /* message: the missing option */
    if (inet_pton(AF_INET, text, &addr) != 1) {
        fprintf(stderr, "vnflab-proxy: %s: not an IPv4 address: %s\n", name, text);
        exit(2);
    }
    return addr.s_addr;
}

static const char *fmt_addr(uint32_t addr, char *buf)
{
    struct in_addr in = {.s_addr = addr};
    return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, 'm'},    {"host-a", required_argument, NULL, 'a'},
        {"host-b", required_argument, NULL, 'b'},  {"proxy-a", required_argument, NULL, 'A'},
        {"proxy-b", required_argument, NULL, 'B'}, {"udp-port", required_argument, NULL, 'p'},
        {"iface-a", required_argument, NULL, 'i'}, {"iface-b", required_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *mode = NULL, *ha = NULL, *hb = NULL, *pa = NULL, *pb = NULL;
    memset(opt, 0, sizeof *opt);
    opt->udp_port = DEFAULT_UDP_PORT;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            mode = optarg;
            break;
        case 'a':
            ha = optarg;
            break;
        case 'b':
            hb = optarg;
            break;
        case 'A':
            pa = optarg;
            break;
        case 'B':
            pb = optarg;
            break;
        case 'p': {
            char *end;
            errno = 0;
            unsigned long port = strtoul(optarg, &end, 10);
            if (errno || *optarg == '\0' || *end != '\0' || port < 1 || port > 65535)
                usage_error("--udp-port must be in 1..65535");
            opt->udp_port = (unsigned)port;
            break;
        }
        case 'i':
            opt->iface_a = optarg;
            break;
        case 'j':
            opt->iface_b = optarg;
            break;
        case 'v':
            opt->verbose = 1;
            break;
        case 'h':
            fputs(USAGE, stdout);
            exit(0);
        default:
            usage_error("bad arguments");
        }
    }
    if (optind < argc)
        usage_error("unexpected positional argument");
    if (mode == NULL)
        usage_error("--mode is required");
    if (strcmp(mode, "raw") == 0)
        opt->mode_raw = 1;
    else if (strcmp(mode, "udp") != 0)
        usage_error("--mode must be raw or udp");
    opt->cfg.host_a = parse_addr("--host-a is required", ha);
    opt->cfg.host_b = parse_addr("--host-b is required", hb);
    opt->cfg.proxy_a = parse_addr("--proxy-a is required", pa);
    opt->cfg.proxy_b = parse_addr("--proxy-b is required", pb);
    const struct vp_config *cfg = &opt->cfg;
    if (cfg->host_a == cfg->host_b)
        usage_error("--host-a and --host-b must differ");
    if (cfg->proxy_a == cfg->host_a || cfg->proxy_a == cfg->host_b || cfg->proxy_b == cfg->host_a ||
        cfg->proxy_b == cfg->host_b)
        usage_error("the proxy addresses must differ from the host addresses");
    if ((opt->iface_a == NULL) != (opt->iface_b == NULL))
        usage_error("give both --iface-a and --iface-b, or neither");
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static int set_buffer(int fd, int option, int size)
{
    return setsockopt(fd, SOL_SOCKET, option, &size, sizeof size) == 0;
}

/* The largest size <= BIG_SOCKBUF that setsockopt(option) accepts, 0 if none >= MIN_SOCKBUF.
 * Linux accepts any size and silently caps it at rmem_max/wmem_max, so the first try wins there.
 * OSv (FreeBSD's socket layer) refuses sizes over its cap (sb_max_adj, about 1.78 MiB with
 * SB_MAX = 2 MiB) with ENOBUFS and keeps the old size: halve until a size is accepted, then
 * bisect between the last refused and the accepted size, to end within SOCKBUF_STEP of the cap. */
static int grow_to_largest(int fd, int option, int *tries)
{
    int refused = 0, accepted = 0;
    for (int size = BIG_SOCKBUF; size >= MIN_SOCKBUF; size /= 2) {
        ++*tries;
        if (set_buffer(fd, option, size)) {
            accepted = size;
            break;
        }
        refused = size;
    }
    if (!accepted || !refused)
        return accepted;
    while (refused - accepted > SOCKBUF_STEP) {
        int mid = accepted + (refused - accepted) / 2;
        ++*tries;
        if (set_buffer(fd, option, mid))
            accepted = mid;
        else
            refused = mid;
    }
    if (!set_buffer(fd, option, accepted)) /* the last try may have been refused: set it again */
        return 0;
    return accepted;
}

/* Grows a socket buffer as far as the system allows and reports on stderr what it got (the
 * kernel's own value from getsockopt: Linux reports twice the size asked, for its bookkeeping).
 * force_option (SO_RCVBUFFORCE/SO_SNDBUFFORCE, Linux with CAP_NET_ADMIN) is tried first. */
static void grow_buffer(int fd, int option, int force_option)
{
    const char *name = option == SO_RCVBUF ? "SO_RCVBUF" : "SO_SNDBUF";
    int size = BIG_SOCKBUF, tries = 1;
    const char *how = "forced";
    if (force_option < 0 || !set_buffer(fd, force_option, size)) {
        how = "asked";
        tries = 0;
        size = grow_to_largest(fd, option, &tries);
    }
    int got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, option, &got, &len) != 0)
        got = -1;
    if (!size) {
        warn("%s: no size from %d down to %d accepted (%d tries); kept %d bytes: datagrams over "
             "that may be lost", name, BIG_SOCKBUF, MIN_SOCKBUF, tries, got);
        return;
    }
    fprintf(stderr, "vnflab-proxy: %s %s %d bytes (%d %s), kernel reports %d\n", name, how, size, tries,
            tries == 1 ? "try" : "tries", got);
    if (got >= 0 && got < MIN_SOCKBUF)
        warn("%s is %d bytes: datagrams over that may be lost", name, got);
}

static int udp_socket(uint32_t addr, unsigned port, int rcvbuf_min)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf_min) {
        int zero = 0; /* the kernel rounds up to its minimum */
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &zero, sizeof zero);
    } else {
        grow_buffer(fd, SO_RCVBUF, -1);
        grow_buffer(fd, SO_SNDBUF, -1);
    }
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = addr;
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static void print_ready(const struct options *opt, const char *extra)
{
    char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], pa[INET_ADDRSTRLEN], pb[INET_ADDRSTRLEN];
    printf("vnflab-proxy: ready mode=%s host-a=%s host-b=%s proxy-a=%s proxy-b=%s udp-port=%u%s\n",
           opt->mode_raw ? "raw" : "udp", fmt_addr(opt->cfg.host_a, a), fmt_addr(opt->cfg.host_b, b),
           fmt_addr(opt->cfg.proxy_a, pa), fmt_addr(opt->cfg.proxy_b, pb), opt->udp_port, extra);
    fflush(stdout);
}

static void print_exit(void)
{
    fprintf(stderr,
            "vnflab-proxy: exit on signal %d: received=%llu forwarded=%llu dropped=%llu send_errors=%llu\n",
            (int)stop_signal, stats.received, stats.forwarded, stats.dropped, stats.send_errors);
}

static int transient_errno(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EHOSTUNREACH ||
           err == ENETUNREACH || err == ECONNREFUSED || err == EPERM || err == EMSGSIZE || err == EINVAL ||
           err == EHOSTDOWN || err == ENETDOWN;
}

/* ---------------------------------------------------------------------------------------------- */
/* raw mode                                                                                       */

/* ifindex of the interface holding addr (getifaddrs), or 0. */
static unsigned iface_with_addr(uint32_t addr, char name[IF_NAMESIZE])
{
    struct ifaddrs *list, *it;
    unsigned index = 0;
    if (getifaddrs(&list) != 0)
        fail("getifaddrs: %s", strerror(errno));
    for (it = list; it != NULL; it = it->ifa_next) {
        if (it->ifa_addr == NULL || it->ifa_addr->sa_family != AF_INET)
            continue;
        if (((struct sockaddr_in *)it->ifa_addr)->sin_addr.s_addr == addr) {
            index = if_nametoindex(it->ifa_name);
            snprintf(name, IF_NAMESIZE, "%s", it->ifa_name);
            break;
        }
    }
    freeifaddrs(list);
    return index;
}

static unsigned resolve_iface(const char *given, uint32_t addr, const char *which, char name[IF_NAMESIZE])
{
    char text[INET_ADDRSTRLEN];
    if (given != NULL) {
        unsigned index = if_nametoindex(given);
        if (index == 0)
            fail("%s: no interface %s", which, given);
        snprintf(name, IF_NAMESIZE, "%s", given);
        return index;
    }
    unsigned index = iface_with_addr(addr, name);
    if (index == 0)
        fail("%s: no interface holds %s (configure it, or pass --iface-a/--iface-b)", which,
             fmt_addr(addr, text));
    return index;
}

static void check_sysctl(const char *path, char expected)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    int value = fgetc(f);
    fclose(f);
    if (value != EOF && value != expected)
        warn("%s is %c, raw mode expects %c (see --help)", path, value, expected);
}

static int packet_socket(unsigned ifindex)
{
    /* protocol 0 at creation: nothing is queued before bind() selects the interface */
    int fd = socket(AF_PACKET, SOCK_DGRAM, 0);
    if (fd < 0)
        fail("socket(AF_PACKET): %s", strerror(errno));
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) != 0)
        fail("PACKET_AUXDATA: %s", strerror(errno));
    (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one); /* Linux >= 4.20 */
    grow_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE);
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_IP);
    sll.sll_ifindex = (int)ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) != 0)
        fail("bind(AF_PACKET, ifindex %u): %s", ifindex, strerror(errno));
    return fd;
}

static void log_packet(const char *what, const uint8_t *ip, size_t len, const struct vp_result *res)
{
    char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
    uint32_t saddr = 0, daddr = 0;
    if (len >= 20) {
        memcpy(&saddr, ip + 12, 4);
        memcpy(&daddr, ip + 16, 4);
    }
    fprintf(stderr, "vnflab-proxy: %s %s -> %s proto %u len %zu rule %s reason %s\n", what,
            fmt_addr(saddr, s), fmt_addr(daddr, d), len >= 20 ? ip[9] : 0u, len, vp_rule_name(res->rule),
            vp_drop_name(res->reason));
}

/* Receive and forward everything queued on one packet socket. */
static void drain_packet_socket(int fd, enum vp_side side, int raw_out, const struct options *opt)
{
    for (;;) {
        struct sockaddr_ll from;
        struct iovec iov = {.iov_base = packet_buf, .iov_len = sizeof packet_buf};
        struct msghdr msg = {
            .msg_name = &from,
            .msg_namelen = sizeof from,
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = control_buf,
            .msg_controllen = sizeof control_buf,
        };
        ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                warn("recvmsg(AF_PACKET): %s", strerror(errno));
            return;
        }
        if (from.sll_pkttype != PACKET_HOST)
            continue; /* our own output, broadcast, multicast, other hosts' frames */
        stats.received++;
        struct vp_result res;
        if (msg.msg_flags & MSG_TRUNC) {
            stats.dropped++;
            continue;
        }
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_PACKET && cm->cmsg_type == PACKET_AUXDATA) {
                struct tpacket_auxdata aux;
                memcpy(&aux, CMSG_DATA(cm), sizeof aux);
                /* CHECKSUM_PARTIAL (veth, virtio, local senders): the TCP/UDP field holds only
                 * the pseudo-header sum; the raw socket sends as is, so complete it here. */
                if (aux.tp_status & TP_STATUS_CSUMNOTREADY)
                    (void)vp_complete_l4_checksum(packet_buf, (size_t)n);
            }
        }
        if (vp_rewrite(packet_buf, (size_t)n, &opt->cfg, side, &res) != VP_FORWARD) {
            stats.dropped++;
            if (opt->verbose)
                log_packet("drop", packet_buf, (size_t)n, &res);
            continue;
        }
        struct sockaddr_in to;
        memset(&to, 0, sizeof to);
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = res.daddr;
        if (sendto(raw_out, packet_buf, res.ip_len, 0, (struct sockaddr *)&to, sizeof to) < 0) {
            stats.send_errors++;
            if (!transient_errno(errno))
                fail("sendto(raw): %s", strerror(errno));
            if (opt->verbose)
                warn("sendto(raw): %s", strerror(errno));
            continue;
        }
        stats.forwarded++;
        if (opt->verbose)
            log_packet("forward", packet_buf, res.ip_len, &res);
    }
}

static int run_raw(const struct options *opt)
{
    char name_a[IF_NAMESIZE], name_b[IF_NAMESIZE], text[INET_ADDRSTRLEN];
    unsigned if_a = resolve_iface(opt->iface_a, opt->cfg.proxy_a, "A side", name_a);
    unsigned if_b = resolve_iface(opt->iface_b, opt->cfg.proxy_b, "B side", name_b);
    check_sysctl("/proc/sys/net/ipv4/ip_forward", '0');
    check_sysctl("/proc/sys/net/ipv4/icmp_echo_ignore_all", '1');

    int raw_out = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* implies IP_HDRINCL */
    if (raw_out < 0)
        fail("socket(SOCK_RAW, IPPROTO_RAW): %s", strerror(errno));
    grow_buffer(raw_out, SO_SNDBUF, SO_SNDBUFFORCE);

    /* Placeholders: proxied UDP to PA/PB:udp-port must not draw port unreachable from the kernel. */
    uint32_t placeholders[2] = {opt->cfg.proxy_a, opt->cfg.proxy_b};
    int nplaceholders = opt->cfg.proxy_a == opt->cfg.proxy_b ? 1 : 2;
    for (int i = 0; i < nplaceholders; i++)
        if (udp_socket(placeholders[i], opt->udp_port, 1) < 0)
            warn("cannot bind UDP %s:%u (%s): the kernel may answer proxied UDP with port unreachable",
                 fmt_addr(placeholders[i], text), opt->udp_port, strerror(errno));

    struct pollfd fds[2];
    enum vp_side sides[2];
    nfds_t nfds;
    if (if_a == if_b) {
        fds[0].fd = packet_socket(if_a);
        sides[0] = VP_SIDE_ANY;
        nfds = 1;
    } else {
        fds[0].fd = packet_socket(if_a);
        sides[0] = VP_SIDE_A;
        fds[1].fd = packet_socket(if_b);
        sides[1] = VP_SIDE_B;
        nfds = 2;
    }
    for (nfds_t i = 0; i < nfds; i++)
        fds[i].events = POLLIN;

    char extra[2 * IF_NAMESIZE + 32];
    snprintf(extra, sizeof extra, " iface-a=%s iface-b=%s", name_a, name_b);
    print_ready(opt, extra);

    while (!stop_signal) {
        int ready = poll(fds, nfds, POLL_MS);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fail("poll: %s", strerror(errno));
        }
        for (nfds_t i = 0; i < nfds; i++)
            if (fds[i].revents & (POLLIN | POLLERR))
                drain_packet_socket(fds[i].fd, sides[i], raw_out, opt);
    }
    print_exit();
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* udp mode                                                                                       */

struct peer {
    int known;
    struct sockaddr_in addr;
};

static void udp_send(int fd, size_t len, uint32_t addr, uint16_t port_be, const struct options *opt)
{
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = addr;
    to.sin_port = port_be;
    if (sendto(fd, packet_buf, len, 0, (struct sockaddr *)&to, sizeof to) < 0) {
        stats.send_errors++;
        if (!transient_errno(errno))
            fail("sendto(udp): %s", strerror(errno));
        if (opt->verbose)
            warn("sendto(udp): %s", strerror(errno));
        return;
    }
    stats.forwarded++;
}

/* Receive and relay everything queued on one UDP socket. fd_a/fd_b: the PA and PB sockets (the
 * same socket when PA == PB). */
static void drain_udp_socket(int fd, int fd_a, int fd_b, struct peer *client_a, struct peer *client_b,
                             const struct options *opt)
{
    const uint16_t port_be = htons((uint16_t)opt->udp_port);
    for (;;) {
        struct sockaddr_in from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(fd, packet_buf, sizeof packet_buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if (transient_errno(errno))
                continue; /* e.g. ECONNREFUSED left by an ICMP error: keep going */
            warn("recvfrom(udp): %s", strerror(errno));
            return;
        }
        stats.received++;
        char s[INET_ADDRSTRLEN];
        const char *what = "drop";
        if (fd == fd_a && from.sin_addr.s_addr == opt->cfg.host_a) {
            if (from.sin_port == port_be && client_b->known) { /* A answering a B-initiated flow */
                udp_send(fd_b, (size_t)n, client_b->addr.sin_addr.s_addr, client_b->addr.sin_port, opt);
                what = "a-reply";
            } else { /* A-initiated: to B:udp-port, remember the client */
                client_a->known = 1;
                client_a->addr = from;
                udp_send(fd_b, (size_t)n, opt->cfg.host_b, port_be, opt);
                what = "a-to-pa";
            }
        } else if (fd == fd_b && from.sin_addr.s_addr == opt->cfg.host_b) {
            if (from.sin_port == port_be && client_a->known) { /* B's server answering A */
                udp_send(fd_a, (size_t)n, client_a->addr.sin_addr.s_addr, client_a->addr.sin_port, opt);
                what = "b-reply";
            } else if (from.sin_port != port_be) { /* B-initiated: to A:udp-port */
                client_b->known = 1;
                client_b->addr = from;
                udp_send(fd_a, (size_t)n, opt->cfg.host_a, port_be, opt);
                what = "b-to-pb";
            } else {
                stats.dropped++; /* a reply from B:udp-port with no A client yet */
            }
        } else {
            stats.dropped++;
        }
        if (opt->verbose)
            fprintf(stderr, "vnflab-proxy: %s %s:%u len %zd\n", what, fmt_addr(from.sin_addr.s_addr, s),
                    ntohs(from.sin_port), n);
    }
}

static int run_udp(const struct options *opt)
{
    char text[INET_ADDRSTRLEN];
    int fd_a = udp_socket(opt->cfg.proxy_a, opt->udp_port, 0);
    if (fd_a < 0)
        fail("bind UDP %s:%u: %s", fmt_addr(opt->cfg.proxy_a, text), opt->udp_port, strerror(errno));
    int fd_b = fd_a;
    if (opt->cfg.proxy_b != opt->cfg.proxy_a) {
        fd_b = udp_socket(opt->cfg.proxy_b, opt->udp_port, 0);
        if (fd_b < 0)
            fail("bind UDP %s:%u: %s", fmt_addr(opt->cfg.proxy_b, text), opt->udp_port, strerror(errno));
    }
    struct pollfd fds[2] = {{.fd = fd_a, .events = POLLIN}, {.fd = fd_b, .events = POLLIN}};
    nfds_t nfds = fd_a == fd_b ? 1 : 2;
    struct peer client_a = {0}, client_b = {0};
    print_ready(opt, "");

    while (!stop_signal) {
        int ready = poll(fds, nfds, POLL_MS);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fail("poll: %s", strerror(errno));
        }
        for (nfds_t i = 0; i < nfds; i++)
            if (fds[i].revents & (POLLIN | POLLERR))
                drain_udp_socket(fds[i].fd, fd_a, fd_b, &client_a, &client_b, opt);
    }
    print_exit();
    return 0;
}

int main(int argc, char **argv)
{
    struct options opt;
    parse_options(argc, argv, &opt);
    install_signals();
    return opt.mode_raw ? run_raw(&opt) : run_udp(&opt);
}
