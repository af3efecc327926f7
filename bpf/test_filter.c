// SPDX-License-Identifier: GPL-2.0
/* The kernel layer's test program: parse, count, consult the verdict map, and on a drop
 * write a drop record to the ring buffer. It exercises every piece the real datapath
 * will use (parsing headers, per-CPU metrics, hash lookup, ring-buffer events, checksum
 * rewrite) in one small program. */
#include "lib/common.h"
#include "lib/drop_reasons.h"
#include "lib/parse.h"
#include "lib/maps.h"
#include "lib/events.h"

static __always_inline int drop(struct __sk_buff *skb, struct packet_info *info, __u8 reason, __u8 dir)
{
	metrics_count(reason, dir, info->l3, info->l4_proto, skb->len);
	emit_drop_event(skb, reason, dir, info->l4_proto);
	return TC_ACT_SHOT;
}

static __always_inline int filter(struct __sk_buff *skb, __u8 dir)
{
	struct packet_info info;
	struct verdict_value *v;
	__u8 action = ACTION_ALLOW;
	int ret;

	ret = parse_packet(skb, &info);
	if (ret)
		return drop(skb, &info, ret, dir);

	if (info.l3 != 0) {
		v = verdict_lookup(info.l4_proto, info.dport);
		if (v) {
			action = v->action;
			v->hits++;
		}
	}
	if (action == ACTION_DROP)
		return drop(skb, &info, DROP_POLICY, dir);
	if (action == ACTION_ROUTE) {
		if (info.l3 == 4)
			ret = ipv4_dec_ttl(skb, info.l3_off);
		else if (info.l3 == 6)
			ret = ipv6_dec_hoplimit(skb, info.l3_off);
		if (ret)
			return drop(skb, &info, ret, dir);
	}
	metrics_count(REASON_FORWARDED, dir, info.l3, info.l4_proto, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int test_filter_ingress(struct __sk_buff *skb)
{
	return filter(skb, DIR_INGRESS);
}

SEC("tc")
int test_filter_egress(struct __sk_buff *skb)
{
	return filter(skb, DIR_EGRESS);
}

char LICENSE[] SEC("license") = "GPL";
