/* vnflab proxy VNF: pure packet logic. See rewrite.h. */
#include "rewrite.h"

#include <string.h>

#define IP_OFF_VER_IHL 0
#define IP_OFF_TOT_LEN 2
#define IP_OFF_FRAG 6
#define IP_OFF_PROTO 9
#define IP_OFF_CHECK 10
#define IP_OFF_SADDR 12
#define IP_OFF_DADDR 16
#define IP_MIN_HLEN 20
#define IP_FRAG_OFFSET_MASK 0x1fff
#define IP_FLAG_MF 0x2000
#define UDP_OFF_CHECK 6
#define TCP_OFF_CHECK 16

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)(v & 0xff);
}

uint32_t vp_csum_add(uint32_t sum, const uint8_t *data, size_t len)
{
    /* 64-bit accumulator: no fold needed inside the loop for any IPv4 length. */
    uint64_t acc = sum;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        acc += (uint32_t)((data[i] << 8) | data[i + 1]);
    if (i < len)
        acc += (uint32_t)(data[i] << 8);
    while (acc >> 32)
        acc = (acc & 0xffffffffu) + (acc >> 32);
    return (uint32_t)acc;
}

uint16_t vp_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

uint16_t vp_ip_checksum(const uint8_t *data, size_t len)
{
    return (uint16_t)~vp_csum_fold(vp_csum_add(0, data, len));
}

void vp_csum_update16(uint8_t *check, uint16_t old_word, uint16_t new_word)
{
    /* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') */
    uint32_t sum = (uint16_t)~get16(check);
    sum += (uint16_t)~old_word;
    sum += new_word;
    put16(check, (uint16_t)~vp_csum_fold(sum));
}

void vp_csum_update32(uint8_t *check, const uint8_t old_bytes[4], const uint8_t new_bytes[4])
{
    uint32_t sum = (uint16_t)~get16(check);
    sum += (uint16_t)~get16(old_bytes);
    sum += (uint16_t)~get16(old_bytes + 2);
    sum += get16(new_bytes);
    sum += get16(new_bytes + 2);
    put16(check, (uint16_t)~vp_csum_fold(sum));
}

uint16_t vp_l4_checksum(const uint8_t *ip, const uint8_t *l4, size_t l4_len)
{
    uint8_t pseudo[12];
    memcpy(pseudo, ip + IP_OFF_SADDR, 8); /* source and destination */
    pseudo[8] = 0;
    pseudo[9] = ip[IP_OFF_PROTO];
    put16(pseudo + 10, (uint16_t)l4_len);
    uint32_t sum = vp_csum_add(0, pseudo, sizeof pseudo);
    sum = vp_csum_add(sum, l4, l4_len);
    return (uint16_t)~vp_csum_fold(sum);
}

/* Offset of the TCP/UDP checksum field within the L4 header, or -1 for other protocols. */
static int l4_check_offset(uint8_t proto)
{
    if (proto == VP_IPPROTO_UDP)
        return UDP_OFF_CHECK;
    if (proto == VP_IPPROTO_TCP)
        return TCP_OFF_CHECK;
    return -1;
}

/* Validate the IPv4 header; on success *hlen and *tot_len are set. */
static enum vp_drop_reason check_ipv4(const uint8_t *ip, size_t len, size_t *hlen, size_t *tot_len)
{
    if (len < IP_MIN_HLEN)
        return VP_DROP_SHORT;
    if ((ip[IP_OFF_VER_IHL] >> 4) != 4)
        return VP_DROP_NOT_IPV4;
    size_t h = (size_t)(ip[IP_OFF_VER_IHL] & 0x0f) * 4;
    size_t t = get16(ip + IP_OFF_TOT_LEN);
    if (h < IP_MIN_HLEN || t < h)
        return VP_DROP_BAD_HEADER;
    if (h > len || t > len)
        return VP_DROP_SHORT;
    if (vp_ip_checksum(ip, h) != 0)
        return VP_DROP_BAD_HEADER;
    *hlen = h;
    *tot_len = t;
    return VP_OK;
}

int vp_complete_l4_checksum(uint8_t *ip, size_t len)
{
    size_t hlen, tot_len;
    if (check_ipv4(ip, len, &hlen, &tot_len) != VP_OK)
        return -1;
    uint16_t frag = get16(ip + IP_OFF_FRAG);
    if (frag & (IP_FLAG_MF | IP_FRAG_OFFSET_MASK))
        return -1;
    int off = l4_check_offset(ip[IP_OFF_PROTO]);
    if (off < 0 || tot_len - hlen < (size_t)off + 2)
        return -1;
    uint8_t *l4 = ip + hlen;
    put16(l4 + off, 0);
    uint16_t check = vp_l4_checksum(ip, l4, tot_len - hlen);
    if (check == 0 && ip[IP_OFF_PROTO] == VP_IPPROTO_UDP)
        check = 0xffff;
    put16(l4 + off, check);
    return 0;
}

static enum vp_rule match_rule(uint32_t saddr, uint32_t daddr, const struct vp_config *cfg, enum vp_side from)
{
    int side_a = from == VP_SIDE_A || from == VP_SIDE_ANY;
    int side_b = from == VP_SIDE_B || from == VP_SIDE_ANY;
    if (side_a && saddr == cfg->host_a) {
        if (daddr == cfg->proxy_a)
            return VP_RULE_A_TO_PA;
        if (daddr == cfg->host_b)
            return VP_RULE_A_REPLY;
    }
    if (side_b && saddr == cfg->host_b) {
        if (daddr == cfg->proxy_b)
            return VP_RULE_B_TO_PB;
        if (daddr == cfg->host_a)
            return VP_RULE_B_REPLY;
    }
    return VP_RULE_NONE;
}

enum vp_action vp_rewrite(uint8_t *ip, size_t len, const struct vp_config *cfg, enum vp_side from,
                          struct vp_result *res)
{
    struct vp_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof *res);

    size_t hlen, tot_len;
    res->reason = check_ipv4(ip, len, &hlen, &tot_len);
    if (res->reason != VP_OK)
        return VP_DROP;

    uint32_t saddr, daddr;
    memcpy(&saddr, ip + IP_OFF_SADDR, 4);
    memcpy(&daddr, ip + IP_OFF_DADDR, 4);
    res->rule = match_rule(saddr, daddr, cfg, from);

    size_t field; /* offset of the address that changes */
    uint32_t new_addr;
    switch (res->rule) {
    case VP_RULE_A_TO_PA:
        field = IP_OFF_DADDR;
        new_addr = cfg->host_b;
        break;
    case VP_RULE_B_REPLY:
        field = IP_OFF_SADDR;
        new_addr = cfg->proxy_a;
        break;
    case VP_RULE_B_TO_PB:
        field = IP_OFF_DADDR;
        new_addr = cfg->host_a;
        break;
    case VP_RULE_A_REPLY:
        field = IP_OFF_SADDR;
        new_addr = cfg->proxy_b;
        break;
    default:
        res->reason = VP_DROP_NO_RULE;
        return VP_DROP;
    }

    /* TCP/UDP: the first fragment (offset 0) carries the header and its checksum. */
    uint16_t frag = get16(ip + IP_OFF_FRAG);
    int off = l4_check_offset(ip[IP_OFF_PROTO]);
    uint8_t *l4_check = NULL;
    if (off >= 0 && (frag & IP_FRAG_OFFSET_MASK) == 0) {
        if (tot_len - hlen < (size_t)off + 2) {
            res->rule = VP_RULE_NONE;
            res->reason = VP_DROP_L4_SHORT;
            return VP_DROP;
        }
        l4_check = ip + hlen + off;
        if (ip[IP_OFF_PROTO] == VP_IPPROTO_UDP && get16(l4_check) == 0)
            l4_check = NULL; /* no UDP checksum: stays zero */
    }

    uint8_t old_bytes[4];
    memcpy(old_bytes, ip + field, 4);
    memcpy(ip + field, &new_addr, 4);
    if (l4_check != NULL) {
        vp_csum_update32(l4_check, old_bytes, ip + field);
        if (ip[IP_OFF_PROTO] == VP_IPPROTO_UDP && get16(l4_check) == 0)
            put16(l4_check, 0xffff); /* RFC 768: a computed zero is sent as all ones */
    }
    put16(ip + IP_OFF_CHECK, 0);
    put16(ip + IP_OFF_CHECK, vp_ip_checksum(ip, hlen));

    memcpy(&res->daddr, ip + IP_OFF_DADDR, 4);
    res->ip_len = tot_len;
    return VP_FORWARD;
}

const char *vp_rule_name(enum vp_rule rule)
{
    switch (rule) {
    case VP_RULE_A_TO_PA:
        return "a-to-pa";
    case VP_RULE_B_REPLY:
        return "b-reply";
    case VP_RULE_B_TO_PB:
        return "b-to-pb";
    case VP_RULE_A_REPLY:
        return "a-reply";
    default:
        return "none";
    }
}

const char *vp_drop_name(enum vp_drop_reason reason)
{
    switch (reason) {
    case VP_OK:
        return "ok";
    case VP_DROP_SHORT:
        return "short";
    case VP_DROP_NOT_IPV4:
        return "not-ipv4";
    case VP_DROP_BAD_HEADER:
        return "bad-header";
    case VP_DROP_L4_SHORT:
        return "l4-short";
    case VP_DROP_NO_RULE:
        return "no-rule";
    }
    return "unknown";
}
