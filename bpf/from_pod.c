// SPDX-License-Identifier: GPL-2.0
/* The endpoint programs, one object so that they share every map:
 *   from_pod: tcx ingress on the HOST side of every pod's veth, i.e. every packet a pod sends;
 *   to_pod:   tcx egress there, i.e. every packet the node's stack sends into a pod (packets
 *             from another local pod arrive by bpf_redirect_peer and skip this hook).
 * One program of each for all endpoints: which pod sent the packet is found by ifindex in
 * the endpoints map (lib/endpoint.h).
 *
 * The steps follow DESIGN.md "Traffic from a pod":
 *   1. parse L2/L3/L4; find the source endpoint by ifindex        (here)
 *   2. drop a source IP or MAC that is not the endpoint's own      (here)
 *   3. service VIP -> backend, DNAT                                (later issue: lb.h)
 *   4. conntrack: classify and track the connection                (here: conntrack.h)
 *   5. the peer's identity: local endpoint, else ipcache, else world  (here: policy.h)
 *   6. egress policy of the source, ingress policy of a local destination (here: policy.h)
 *   7. forward: local pod -> bpf_redirect_peer; else the node's stack (here; VXLAN later)
 * The later steps slot into handle_ipv4/handle_ipv6 between the source check and
 * forward_ip(), where the comments "step N" mark them.
 *
 * ARP and IPv6 Neighbour Discovery: a pod has /32 and /128 addresses and an on-link
 * default route through its gateway, so the only neighbour it ever resolves is the
 * gateway, and the agent gives it a permanent neighbour entry for it (the host-side veth's
 * MAC). Should a pod resolve anyway (its entry removed, or a runtime that does not set
 * one), this program answers: every address but the pod's own is behind the host side,
 * so an ARP request or a Neighbour Solicitation for any other address is answered with
 * the host-side MAC, in place, and sent back with bpf_redirect() (Calico answers the same
 * way with proxy ARP; no gateway address needs to be configured anywhere). */
#include "lib/common.h"
#include "lib/arp.h"
#include "lib/conntrack.h"
#include "lib/drop_reasons.h"
#include "lib/endpoint.h"
#include "lib/fragments.h"
#include "lib/metrics.h"
#include "lib/ndisc.h"
#include "lib/parse.h"
#include "lib/policy.h"
#include "lib/redirect.h"
#include "lib/trace.h"

/* Where the programs run, as the metrics key and drop records name it: the ingress and
 * egress hooks of the host-side veth (common.h: directions are those of the device the
 * program is on). */
#define FROM_POD_DIR DIR_INGRESS
#define TO_POD_DIR DIR_EGRESS

/* A packet handed to the node's stack, traced as such. */
static __always_inline int forward_to_stack(struct __sk_buff *skb, const struct packet_info *info, const struct ct_ctx *ct,
					    const struct endpoint_info *src)
{
	if (trace_wanted(ct))
		trace_packet(skb, info, ct, TRACE_TO_STACK, src->identity, trace_identity(skb, info, true));
	return account_forward(skb, info, FROM_POD_DIR, TC_ACT_OK);
}

/* Step 7: a destination that is a pod on this node gets the packet straight through
 * bpf_redirect_peer; everything else (other nodes, the node itself, the outside world)
 * is routed by the node's stack. The trace record shows the frame as it is delivered
 * (rewritten MACs, decremented TTL). */
static __always_inline int forward_ip(struct __sk_buff *skb, const struct packet_info *info, const struct ct_ctx *ct,
				      const struct endpoint_info *src, const struct endpoint_info *dst)
{
	int ret;

	if (!dst)
		return forward_to_stack(skb, info, ct, src);
	ret = endpoint_rewrite(skb, info, dst);
	if (ret == DROP_TTL_EXCEEDED)
		/* Unchanged; the stack decrements to 0 and sends ICMP Time Exceeded (RFC 1812 5.3.1). */
		return forward_to_stack(skb, info, ct, src);
	if (ret)
		return account_drop(skb, info, FROM_POD_DIR, ret);
	if (trace_wanted(ct))
		trace_packet(skb, info, ct, TRACE_TO_ENDPOINT, src->identity, dst->identity);
	return account_forward(skb, info, FROM_POD_DIR, redirect_to_endpoint(dst));
}

/* Step 6: the first packet of a connection (and a later fragment, whose connection
 * conntrack cannot see) needs the source's egress policy and, for a local destination, the
 * destination's ingress policy. Returns 0 or the drop reason. */
static __always_inline int judge_new(struct __sk_buff *skb, const struct packet_info *info, const struct ct_ctx *ct,
				     const struct endpoint_info *src, const struct endpoint_info *dst)
{
	__u32 dst_identity;
	int ret;

	if (ct->v.result != CT_RESULT_NEW && !info->later_fragment)
		return 0;
	/* Step 5, only now: an established packet needs no identity. */
	if (dst)
		dst_identity = dst->identity;
	else if (info->l3 == 4)
		dst_identity = ipcache_identity(4, &ct->k4.daddr);
	else
		dst_identity = ipcache_identity(6, ct->k6.daddr);
	ret = policy_check_packet(skb, src, POLICY_EGRESS, dst_identity, info);
	if (!ret && dst)
		ret = policy_check_packet(skb, dst, POLICY_INGRESS, src->identity, info);
	return ret;
}

/* Steps 4 (what conntrack said), 6 and 7 for both families: an INVALID packet is dropped, a
 * first packet judged by policy, a NEW connection's entry written, the packet forwarded. */
static __always_inline int judge_and_forward(struct __sk_buff *skb, const struct packet_info *info, const struct ct_ctx *ct,
					     const struct endpoint_info *src, const struct endpoint_info *dst)
{
	int ret;

	if (ct->v.result == CT_RESULT_INVALID)
		return account_drop(skb, info, FROM_POD_DIR, DROP_CT_INVALID);
	ret = judge_new(skb, info, ct, src, dst);
	if (ret)
		return account_drop(skb, info, FROM_POD_DIR, ret);
	ret = ct_commit(info, ct, CT_ORIGIN_FROM_POD, src->identity);
	if (ret)
		return account_drop(skb, info, FROM_POD_DIR, ret);
	return forward_ip(skb, info, ct, src, dst);
}

static __always_inline int handle_ipv4(struct __sk_buff *skb, const struct packet_info *info,
				       const struct endpoint_info *src)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + info->l3_off;
	struct ct_ctx ct;
	int ret;

	if ((void *)(ip + 1) > data_end)
		return account_drop(skb, info, FROM_POD_DIR, DROP_INVALID_PACKET);
	/* Step 2: the pod may only send from its own address. */
	if (!(src->flags & ENDPOINT_F_IPV4) || ip->saddr != src->ipv4)
		return account_drop(skb, info, FROM_POD_DIR, DROP_SPOOFED_IP);

	/* Step 3 (service translation) goes here. */

	/* Step 4. */
	ret = ct_ipv4(skb, info, &ct);
	if (ret)
		return account_drop(skb, info, FROM_POD_DIR, ret);
	/* Step 5: a local destination (its identity, and the ipcache for others, in judge_new). */
	return judge_and_forward(skb, info, &ct, src, endpoint_by_ipv4(ip->daddr));
}

/* :: (RFC 4291 2.5.2, the source of DAD probes). */
static __always_inline bool ipv6_is_unspecified(const __be32 *addr)
{
	return (addr[0] | addr[1] | addr[2] | addr[3]) == 0;
}

/* fe80::/10 (RFC 4291 2.5.6) or ::. */
static __always_inline bool ipv6_is_link_local_or_unspecified(const __be32 *addr)
{
	if ((addr[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000))
		return true;
	return ipv6_is_unspecified(addr);
}

/* Answers a Neighbour Solicitation for any address but the pod's own (see the top of the
 * file). Returns true with the verdict in *verdict, or false when the packet is not such a
 * solicitation (then no helper has touched it and packet pointers stay valid). A DAD
 * probe (source ::, RFC 4862 5.4.2) is never answered: an answer would tell the pod its
 * address is taken. */
static __always_inline bool answer_neighbour_solicitation(struct __sk_buff *skb, const struct packet_info *info,
							  const struct endpoint_info *src, int *verdict)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + info->l3_off;
	struct nd_message *ns;
	struct nd_frame na;
	__u8 macs[2 * ETH_ALEN];

	if ((void *)(ip6 + 1) > data_end)
		return false;
	ns = nd_solicitation(data_end, ip6);
	if (!ns)
		return false;
	if (ipv6_is_unspecified(ip6->saddr.in6_u.u6_addr32))
		return false;
	if ((src->flags & ENDPOINT_F_IPV6) && ipv6_equal(ns->target, src->ipv6))
		return false;
	/* The option must speak for the sender (RFC 4861 7.2.3 records it as the sender's
	 * address); the frame's source was checked already. */
	if (!mac_equal(ns->opt_mac, src->mac)) {
		*verdict = account_drop(skb, info, FROM_POD_DIR, DROP_SPOOFED_MAC);
		return true;
	}

	nd_advertisement(&na, ip6, ns, src->host_mac);
	__builtin_memcpy(macs, src->mac, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, src->host_mac, ETH_ALEN);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0 ||
	    bpf_skb_store_bytes(skb, info->l3_off, &na, sizeof(na), 0) < 0)
		*verdict = account_drop(skb, info, FROM_POD_DIR, DROP_INVALID_PACKET);
	else
		*verdict = account_forward(skb, info, FROM_POD_DIR, bpf_redirect(skb->ifindex, 0));
	return true;
}

static __always_inline int handle_ipv6(struct __sk_buff *skb, const struct packet_info *info,
				       const struct endpoint_info *src)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + info->l3_off;
	struct ct_ctx ct;
	int ret;

	if ((void *)(ip6 + 1) > data_end)
		return account_drop(skb, info, FROM_POD_DIR, DROP_INVALID_PACKET);
	if (ip6->nexthdr == IPPROTO_ICMPV6) {
		int verdict;

		if (answer_neighbour_solicitation(skb, info, src, &verdict))
			return verdict;
		/* Neighbour/router discovery and MLD stay on the link (RFC 4861, RFC 3810: to a
		 * link-local or multicast address). Conntrack leaves them untracked and policy does
		 * not judge them, so one a pod addresses further away is dropped: it could carry
		 * anything past an egress policy. */
		if (ct_icmp6_kind(bpf_ntohs(info->sport) >> 8) == CT_ICMP_UNTRACKED &&
		    !ipv6_link_scope(ip6->daddr.in6_u.u6_addr32))
			return account_drop(skb, info, FROM_POD_DIR, DROP_INVALID_PACKET);
	}
	/* Link-scoped control traffic (Neighbour/Router Discovery, MLD, DAD) from the pod's
	 * link-local address: it may not leave the link (RFC 4291 2.5.6), so it is never
	 * delivered to another pod; the node's stack answers or discards it. */
	if (ipv6_is_link_local_or_unspecified(ip6->saddr.in6_u.u6_addr32)) {
		/* ... and only on the link: a link-local source toward a global address would
		 * reach the node's own services past conntrack and policy. */
		if (!ipv6_link_scope(ip6->daddr.in6_u.u6_addr32))
			return account_drop(skb, info, FROM_POD_DIR, DROP_INVALID_PACKET);
		return account_forward(skb, info, FROM_POD_DIR, TC_ACT_OK);
	}
	/* Step 2. */
	if (!(src->flags & ENDPOINT_F_IPV6) || !ipv6_equal(ip6->saddr.in6_u.u6_addr32, src->ipv6))
		return account_drop(skb, info, FROM_POD_DIR, DROP_SPOOFED_IP);

	/* Step 3 (service translation) goes here. */

	/* Step 4. */
	ret = ct_ipv6(skb, info, &ct);
	if (ret)
		return account_drop(skb, info, FROM_POD_DIR, ret);
	/* Step 5. */
	return judge_and_forward(skb, info, &ct, src, endpoint_by_ipv6(ip6->daddr.in6_u.u6_addr32));
}

/* An ARP packet must speak for the pod itself: sender MAC and IP are the endpoint's (an
 * ARP probe's sender IP is 0.0.0.0, RFC 5227 2.1.1). Anything else would poison the
 * neighbour tables of whoever hears it. */
static __always_inline int handle_arp(struct __sk_buff *skb, const struct packet_info *info,
				      const struct endpoint_info *src)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arp_eth_ipv4 *arp = parse_arp(data, data_end, info->l3_off);
	__be32 sender;

	if (!arp || (void *)(eth + 1) > data_end)
		return account_drop(skb, info, FROM_POD_DIR, DROP_INVALID_PACKET);
	if (!mac_equal(arp->sender_mac, src->mac))
		return account_drop(skb, info, FROM_POD_DIR, DROP_SPOOFED_MAC);
	sender = arp_ipv4(arp->sender_ip);
	if (sender != 0 && (!(src->flags & ENDPOINT_F_IPV4) || sender != src->ipv4))
		return account_drop(skb, info, FROM_POD_DIR, DROP_SPOOFED_IP);
	/* A request for another address (not a probe, not gratuitous ARP for its own):
	 * answered in place with the host-side MAC and sent back to the pod. */
	if (arp->op == bpf_htons(ARP_OP_REQUEST) && sender != 0 && arp_ipv4(arp->target_ip) != sender) {
		arp_reply_in_place(eth, arp, src->host_mac);
		return account_forward(skb, info, FROM_POD_DIR, bpf_redirect(skb->ifindex, 0));
	}
	return account_forward(skb, info, FROM_POD_DIR, TC_ACT_OK);
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	struct packet_info info;
	struct endpoint_info *src;
	struct ethhdr *eth;
	void *data, *data_end;
	int ret;

	/* Step 1. */
	ret = parse_packet(skb, &info);
	if (ret)
		return account_drop(skb, &info, FROM_POD_DIR, ret);
	fragments_track(skb, &info);
	src = endpoint_by_ifindex(skb->ifindex);
	if (!src)
		return account_drop(skb, &info, FROM_POD_DIR, DROP_UNKNOWN_ENDPOINT);

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return account_drop(skb, &info, FROM_POD_DIR, DROP_INVALID_PACKET);
	/* Step 2, layer 2. */
	if (!mac_equal(eth->h_source, src->mac))
		return account_drop(skb, &info, FROM_POD_DIR, DROP_SPOOFED_MAC);
	/* Pods get untagged veths: a VLAN tag would be forwarded into another pod as is. */
	if (info.l3_off != sizeof(struct ethhdr))
		return account_drop(skb, &info, FROM_POD_DIR, DROP_UNSUPPORTED_L3);

	switch (info.ethertype) {
	case bpf_htons(ETH_P_IP):
		return handle_ipv4(skb, &info, src);
	case bpf_htons(ETH_P_IPV6):
		return handle_ipv6(skb, &info, src);
	case bpf_htons(ETH_P_ARP):
		return handle_arp(skb, &info, src);
	default:
		return account_drop(skb, &info, FROM_POD_DIR, DROP_UNSUPPORTED_L3);
	}
}

/* What the node's stack sends into a pod: replies to the pod's own connections, and
 * connections the node (or, routed by it, the world) opens toward the pod. Only conntrack
 * (and, with the policy issue, the pod's ingress policy) happens here; the stack has
 * already routed the packet and set its MACs (the neighbour entry of the pod). */
SEC("tc")
int to_pod(struct __sk_buff *skb)
{
	struct packet_info info;
	struct endpoint_info *ep, *opener;
	struct ct_ctx ct;
	__u32 peer = IDENTITY_UNKNOWN;
	int ret;

	ret = parse_packet(skb, &info);
	if (ret)
		return account_drop(skb, &info, TO_POD_DIR, ret);
	fragments_track(skb, &info);
	if (info.l3 == 4)
		ret = ct_ipv4(skb, &info, &ct);
	else if (info.l3 == 6)
		ret = ct_ipv6(skb, &info, &ct);
	else
		/* ARP and the like: the stack's own business with the pod. */
		return account_forward(skb, &info, TO_POD_DIR, TC_ACT_OK);
	if (ret)
		return account_drop(skb, &info, TO_POD_DIR, ret);
	if (ct.v.result == CT_RESULT_INVALID)
		return account_drop(skb, &info, TO_POD_DIR, DROP_CT_INVALID);
	/* The endpoint's ingress policy, for the opener's identity (the node, world, ...). */
	if (ct.v.result == CT_RESULT_NEW || info.later_fragment) {
		ep = endpoint_by_ifindex(skb->ifindex);
		/* A local pod's packet can come this way too (a Service DNAT in the node's stack
		 * keeps the pod's source): its own identity, else the ipcache's. */
		opener = info.l3 == 4 ? endpoint_by_ipv4(ct.k4.saddr) : endpoint_by_ipv6(ct.k6.saddr);
		if (opener)
			peer = opener->identity;
		else
			peer = info.l3 == 4 ? ipcache_identity(4, &ct.k4.saddr) : ipcache_identity(6, ct.k6.saddr);
		if (ep) {
			ret = policy_check_packet(skb, ep, POLICY_INGRESS, peer, &info);
			if (ret)
				return account_drop(skb, &info, TO_POD_DIR, ret);
		}
	}
	ret = ct_commit(&info, &ct, CT_ORIGIN_TO_POD, peer);
	if (ret)
		return account_drop(skb, &info, TO_POD_DIR, ret);
	if (trace_wanted(&ct)) {
		ep = endpoint_by_ifindex(skb->ifindex);
		if (peer == IDENTITY_UNKNOWN)
			peer = trace_identity(skb, &info, false);
		trace_packet(skb, &info, &ct, TRACE_TO_ENDPOINT, peer, ep ? ep->identity : IDENTITY_UNKNOWN);
	}
	return account_forward(skb, &info, TO_POD_DIR, TC_ACT_OK);
}

char LICENSE[] SEC("license") = "GPL";
