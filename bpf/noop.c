// SPDX-License-Identifier: GPL-2.0
/* Baselines: programs that do nothing, so that every datapath figure has a zero to be
 * compared with (bench/), and attach tests have something harmless to attach. */
#include "lib/common.h"

SEC("tc")
int tc_noop(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("xdp")
int xdp_noop(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* A program array whose slot 0 can hold tc_noop: exercises tail-call maps from user space. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jump_table SEC(".maps");

SEC("tc")
int tc_tail(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jump_table, 0);
	/* Reached only when slot 0 is empty. */
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
