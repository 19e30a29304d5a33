/* vnflab proxy VNF: pure packet logic (no I/O, no allocation).
 *
 * The rewrite is stateless and equivalent to the Docker proxy's two iptables DNAT rules plus the
 * conntrack reverse translation of their replies (Algorithm 1 of the paper, both directions):
 *
 *   rule          arrives from  source  destination  rewrite
 *   A_TO_PA       side A        A       PA           destination := B
 *   B_REPLY       side B        B       A            source      := PA   (reply routed via proxy)
 *   B_TO_PB       side B        B       PB           destination := A
 *   A_REPLY       side A        A       B            source      := PB   (reply to a B-initiated flow)
 *
 * Anything else is dropped. The IPv4 header checksum is recomputed; the TCP/UDP checksum is
 * updated incrementally (RFC 1624) in the first fragment only (offset 0), a UDP checksum of zero
 * (none) stays zero; ICMP checksums do not cover addresses and are left alone. Fragments are
 * rewritten one by one; the IP ID and fragment fields are kept.
 *
 * Addresses in struct vp_config are in network byte order (as in struct in_addr).
 */
#ifndef VNFLAB_PROXY_REWRITE_H
#define VNFLAB_PROXY_REWRITE_H

#include <stddef.h>
#include <stdint.h>

#define VP_IPPROTO_ICMP 1
#define VP_IPPROTO_TCP 6
#define VP_IPPROTO_UDP 17

struct vp_config {
    uint32_t host_a;  /* network byte order */
    uint32_t host_b;
    uint32_t proxy_a; /* the proxy's address on the A side */
    uint32_t proxy_b; /* the proxy's address on the B side (may equal proxy_a) */
};

/* The interface a packet arrived on. VP_SIDE_ANY: one interface serves both sides (then only the
 * addresses decide, as in the paper's single-eth0 proxy). */
enum vp_side { VP_SIDE_A = 0, VP_SIDE_B = 1, VP_SIDE_ANY = 2 };

enum vp_action { VP_DROP = 0, VP_FORWARD = 1 };

enum vp_rule {
    VP_RULE_NONE = 0,
    VP_RULE_A_TO_PA, /* dst PA -> B */
    VP_RULE_B_REPLY, /* src B -> PA (B answering A through the proxy) */
    VP_RULE_B_TO_PB, /* dst PB -> A */
    VP_RULE_A_REPLY, /* src A -> PB (A answering B through the proxy) */
};

enum vp_drop_reason {
    VP_OK = 0,
    VP_DROP_SHORT,      /* fewer than 20 bytes, or shorter than the header / total length says */
    VP_DROP_NOT_IPV4,   /* version != 4 */
    VP_DROP_BAD_HEADER, /* IHL < 5, total length < header, or header checksum wrong */
    VP_DROP_L4_SHORT,   /* first TCP/UDP fragment too short to hold the checksum field */
    VP_DROP_NO_RULE,    /* not one of the four flows */
};

struct vp_result {
    enum vp_rule rule;
    enum vp_drop_reason reason;
    size_t ip_len;  /* bytes to send: the IPv4 total length (link padding excluded) */
    uint32_t daddr; /* destination after the rewrite, network byte order (for sendto) */
};

/* Rewrite the IPv4 packet ip[0..len) in place. len may include link-layer padding beyond the
 * IPv4 total length. Returns VP_FORWARD or VP_DROP; details in *res when res is not NULL. */
enum vp_action vp_rewrite(uint8_t *ip, size_t len, const struct vp_config *cfg, enum vp_side from,
                          struct vp_result *res);

/* Complete a TCP/UDP checksum that the sender left to offload (Linux CHECKSUM_PARTIAL: the field
 * holds only the pseudo-header sum). Computes it in full over pseudo-header and segment. Only for
 * unfragmented packets; returns 0 if done, -1 if not applicable (fragment, other protocol, short).
 * Call before vp_rewrite. A UDP result of 0 is sent as 0xffff (RFC 768). */
int vp_complete_l4_checksum(uint8_t *ip, size_t len);

/* Checksum helpers (all values as stored in the packet, i.e. network byte order in memory). */

/* One's complement sum of data (16-bit big-endian words, odd byte padded) added to sum;
 * not folded, not complemented. */
uint32_t vp_csum_add(uint32_t sum, const uint8_t *data, size_t len);
/* Fold a 32-bit accumulator to 16 bits with end-around carry. */
uint16_t vp_csum_fold(uint32_t sum);
/* Internet checksum of data: ~fold(sum). */
uint16_t vp_ip_checksum(const uint8_t *data, size_t len);

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). check points at the 2-byte checksum field; old and
 * new are 16-bit words as read big-endian from the packet. */
void vp_csum_update16(uint8_t *check, uint16_t old_word, uint16_t new_word);
/* The same for a 4-byte field (an IPv4 address), given as the 4 bytes old[] and new[]. */
void vp_csum_update32(uint8_t *check, const uint8_t old_bytes[4], const uint8_t new_bytes[4]);

/* Full TCP/UDP checksum over the IPv4 pseudo-header and l4[0..l4_len) with the checksum field
 * counted as stored (zero it first to compute, keep it to verify: a valid segment gives 0). */
uint16_t vp_l4_checksum(const uint8_t *ip, const uint8_t *l4, size_t l4_len);

const char *vp_rule_name(enum vp_rule rule);
const char *vp_drop_name(enum vp_drop_reason reason);

#endif
