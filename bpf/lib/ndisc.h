/* IPv6 Neighbour Discovery (RFC 4861): answering a Neighbour Solicitation with a Neighbour
 * Advertisement from BPF, the IPv6 counterpart of an ARP reply. */
#ifndef MEMBRANE_NDISC_H
#define MEMBRANE_NDISC_H

#include "common.h"
#include "l4.h"
#include <linux/if_ether.h>
#include <linux/ipv6.h>

#define ND_NEIGHBOUR_SOLICITATION 135 /* RFC 4861 4.3 */
#define ND_NEIGHBOUR_ADVERTISEMENT 136 /* RFC 4861 4.4 */
#define ND_OPT_SOURCE_LL_ADDR 1
#define ND_OPT_TARGET_LL_ADDR 2
#define ND_HOP_LIMIT 255 /* RFC 4861 7.1.1: anything else was forwarded and is invalid */

/* NA flags, the first word after the checksum (RFC 4861 4.4). */
#define ND_NA_FLAG_ROUTER 0x80000000
#define ND_NA_FLAG_SOLICITED 0x40000000
#define ND_NA_FLAG_OVERRIDE 0x20000000

/* An NS or NA with exactly one 8-byte link-layer address option: what Linux sends for
 * every NS whose source is not :: (net/ipv6/ndisc.c ndisc_send_ns), and the NA we answer
 * with. Same size both ways, so the reply is written over the request. */
struct nd_message {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 flags;        /* reserved (0) in an NS */
	__be32 target[4];
	__u8 opt_type;
	__u8 opt_len;        /* in units of 8 bytes: 1 */
	__u8 opt_mac[ETH_ALEN];
};

/* RFC 8200 8.1: the pseudo-header the upper-layer checksum covers. */
struct ipv6_pseudo_header {
	__be32 saddr[4];
	__be32 daddr[4];
	__be32 length;
	__be32 next_header;
};

/* The IPv6 header and message of an NA as it will go on the wire. */
struct nd_frame {
	struct ipv6hdr ip6;
	struct nd_message nd;
};

static __always_inline __sum16 csum_fold32(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

/* Returns the NS at ip6 when it is one we can answer in place: hop limit 255, ICMPv6 of
 * exactly sizeof(struct nd_message) bytes directly after the IPv6 header, code 0, a source
 * link-layer address option. NULL otherwise (the node's stack gets it). */
static __always_inline struct nd_message *nd_solicitation(void *data_end, struct ipv6hdr *ip6)
{
	struct nd_message *ns = (void *)(ip6 + 1);

	if ((void *)(ns + 1) > data_end)
		return NULL;
	if (ip6->nexthdr != IPPROTO_ICMPV6 || ip6->hop_limit != ND_HOP_LIMIT ||
	    ip6->payload_len != bpf_htons(sizeof(*ns)))
		return NULL;
	if (ns->type != ND_NEIGHBOUR_SOLICITATION || ns->code != 0 ||
	    ns->opt_type != ND_OPT_SOURCE_LL_ADDR || ns->opt_len != 1)
		return NULL;
	return ns;
}

/* Builds in *na the advertisement answering ns (which came from ip6): from the solicited
 * target to the solicitor, Router|Solicited|Override (RFC 4861 7.2.4; we are the pod's
 * router and the answer is authoritative), our MAC as the target link-layer address, and
 * the ICMPv6 checksum over the pseudo-header (RFC 4443 2.3). */
static __always_inline void nd_advertisement(struct nd_frame *na, const struct ipv6hdr *ip6,
					     const struct nd_message *ns, const __u8 *host_mac)
{
	struct ipv6_pseudo_header ph;
	__s64 sum;

	__builtin_memset(na, 0, sizeof(*na));
	na->ip6.version = 6;
	na->ip6.payload_len = bpf_htons(sizeof(na->nd));
	na->ip6.nexthdr = IPPROTO_ICMPV6;
	na->ip6.hop_limit = ND_HOP_LIMIT;
	__builtin_memcpy(&na->ip6.saddr, ns->target, 16);
	__builtin_memcpy(&na->ip6.daddr, &ip6->saddr, 16);
	na->nd.type = ND_NEIGHBOUR_ADVERTISEMENT;
	na->nd.flags = bpf_htonl(ND_NA_FLAG_ROUTER | ND_NA_FLAG_SOLICITED | ND_NA_FLAG_OVERRIDE);
	__builtin_memcpy(na->nd.target, ns->target, 16);
	na->nd.opt_type = ND_OPT_TARGET_LL_ADDR;
	na->nd.opt_len = 1;
	__builtin_memcpy(na->nd.opt_mac, host_mac, ETH_ALEN);

	__builtin_memcpy(ph.saddr, &na->ip6.saddr, 16);
	__builtin_memcpy(ph.daddr, &na->ip6.daddr, 16);
	ph.length = bpf_htonl(sizeof(na->nd));
	ph.next_header = bpf_htonl(IPPROTO_ICMPV6);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	if (sum < 0)
		sum = 0;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&na->nd, sizeof(na->nd), (__wsum)sum);
	if (sum < 0)
		sum = 0;
	na->nd.checksum = csum_fold32((__u64)(__u32)sum);
}

#endif /* MEMBRANE_NDISC_H */
