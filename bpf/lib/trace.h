/* Trace records: the forwarded packets the agent's observer turns into flows (events.h
 * struct trace_event). Which packets get one is the monitor aggregation's choice
 * (trace_wanted); the identities of both ends are looked up only for those, so established
 * traffic pays one array lookup here and nothing more. */
#ifndef MEMBRANE_TRACE_H
#define MEMBRANE_TRACE_H

#include "common.h"
#include "conntrack.h"
#include "endpoint.h"
#include "events.h"
#include "parse.h"
#include "policy.h"

/* True when the packet conntrack classified as *ct gets a trace record. */
static __always_inline bool trace_wanted(const struct ct_ctx *ct)
{
	__u32 zero = 0;
	struct monitor_config *cfg;

	switch (ct->v.result) {
	case CT_RESULT_NEW:
	case CT_RESULT_RELATED:
		return true;
	case CT_RESULT_ESTABLISHED:
	case CT_RESULT_REPLY:
		break;
	default:
		/* Untracked packets (later fragments, link-scoped ICMPv6) carry no connection facts. */
		return false;
	}
	cfg = bpf_map_lookup_elem(&monitor_config, &zero);
	if (cfg && cfg->aggregation == MONITOR_AGG_NONE)
		return true;
	if (cfg && cfg->aggregation == MONITOR_AGG_MAXIMUM)
		return false;
	return ct->pkt.proto == IPPROTO_TCP && (ct->pkt.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST));
}

/* The identity of the packet's source or destination address: a local endpoint's, else the
 * ipcache's (world when nothing matches). Read from the packet, not from the conntrack key,
 * which holds the originator's tuple also for replies. */
static __always_inline __u32 trace_identity(struct __sk_buff *skb, const struct packet_info *info, bool destination)
{
	__be32 addr[4] = {};
	struct endpoint_info *ep;

	if (info->l3 == 4) {
		/* struct iphdr: saddr at 12, daddr at 16 (RFC 791 3.1). */
		if (bpf_skb_load_bytes(skb, info->l3_off + (destination ? 16 : 12), addr, 4) < 0)
			return IDENTITY_UNKNOWN;
		ep = endpoint_by_ipv4(addr[0]);
		return ep ? ep->identity : ipcache_identity(4, addr);
	}
	/* struct ipv6hdr: saddr at 8, daddr at 24 (RFC 8200 3). */
	if (bpf_skb_load_bytes(skb, info->l3_off + (destination ? 24 : 8), addr, 16) < 0)
		return IDENTITY_UNKNOWN;
	ep = endpoint_by_ipv6(addr);
	return ep ? ep->identity : ipcache_identity(6, addr);
}

static __always_inline void trace_packet(struct __sk_buff *skb, const struct packet_info *info, const struct ct_ctx *ct,
					 __u8 point, __u32 src_identity, __u32 dst_identity)
{
	trace_emit(skb, point | (__u32)ct->v.result << 8 | (__u32)info->l4_proto << 16 | (__u32)ct->pkt.tcp_flags << 24,
		   src_identity, dst_identity);
}

#endif /* MEMBRANE_TRACE_H */
