using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using Membrane.Datapath.Policy;
using Membrane.Datapath.Tests.Conntrack;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;
using static Membrane.Datapath.Tests.Conntrack.ConntrackKernelHarness;

namespace Membrane.Datapath.Tests.Policy;

/// <summary>
/// Policy in the kernel (bpf/lib/policy.h) through BPF_PROG_TEST_RUN: the pod P (ifindex 1,
/// identity 300) talks to X outside the node (through from_pod) and X to P (through to_pod);
/// a second local endpoint Q (identity 400) takes locally delivered packets. Entries are
/// written as the agent will write them (Datapath.ReplacePolicy, UpsertIpcache).
/// </summary>
[Collection("kernel")]
public sealed class PolicyTestRunTests : IDisposable
{
    private const uint TcActRedirect = DatapathObjects.TcActRedirect;
    private const int Pod = 1;
    private const int Local = 4242;
    private const uint PodIdentity = 300;
    private const uint LocalIdentity = 400;
    private static readonly Ipv4Address Local4 = Ipv4Address.Parse("198.18.0.20");
    private readonly ConntrackKernelHarness _kernel = new();

    public PolicyTestRunTests()
    {
        _kernel.Datapath.UpsertEndpoint(new EndpointEntry(Local, IPAddress.Parse(Local4.ToString()), null,
            PhysicalAddress.Parse("02-00-00-00-00-20"), PhysicalAddress.Parse("02-00-00-00-01-20"), LocalIdentity));
    }

    public void Dispose() => _kernel.Dispose();

    private Datapath Datapath => _kernel.Datapath;

    private void Enforce(int ifindex, bool ingress, bool egress)
    {
        Assert.True(Datapath.TryGetEndpoint(ifindex, out var entry));
        Datapath.UpsertEndpoint(entry with { IngressPolicy = ingress, EgressPolicy = egress });
    }

    private static PolicyMapEntry Allow(int ep, PolicyDirection dir, uint peer, byte proto, ushort from, ushort to, uint rule = 1) =>
        new(ep, dir, peer, proto, from, to, Deny: false, rule);

    private static PolicyMapEntry DenyEntry(int ep, PolicyDirection dir, uint peer, byte proto, ushort from, ushort to, uint rule = 2) =>
        new(ep, dir, peer, proto, from, to, Deny: true, rule);

    private ulong Drops(DropReason reason) => Datapath.PacketsFor((int)reason);

    private uint SynFromPod(ushort port) => _kernel.Run(Tcp(4, true, 40000, port, TcpFlags.Syn), fromPod: true);

    /// <summary>A SYN with no connection behind it (a repeated one is a retransmission that policy does not judge again).</summary>
    private uint FreshSynFromPod(ushort port)
    {
        _kernel.Flush();
        return SynFromPod(port);
    }

    [SkippableFact]
    public void AnEndpointNoRuleSelectsIsUnrestrictedAndASelectedDirectionIsDefaultDeny()
    {
        Assert.Equal(TcActOk, SynFromPod(80));
        Enforce(Pod, ingress: false, egress: true);
        Assert.Equal(TcActShot, SynFromPod(81));
        Assert.Equal(1ul, Drops(DropReason.PolicyDenied));
        // Only egress is enforced: the peer may still open connections toward the pod.
        Assert.Equal(TcActOk, _kernel.Run(Tcp(4, false, 22, 40000, TcpFlags.Syn), fromPod: false));
    }

    [SkippableFact]
    public void AllowEntriesMatchPeerProtocolAndPortRanges()
    {
        Enforce(Pod, ingress: false, egress: true);
        var world = (uint)WellKnownIdentity.World;
        Datapath.ReplacePolicy(Pod,
        [
            Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 80, 80),
            Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 8000, 8080),
            Allow(Pod, PolicyDirection.Egress, 0, IpProtocols.Udp, 53, 53),
        ]);
        Assert.Equal(TcActOk, SynFromPod(80));
        Assert.Equal(TcActShot, SynFromPod(81));
        Assert.Equal(TcActShot, SynFromPod(7999));
        Assert.Equal(TcActOk, SynFromPod(8000));
        Assert.Equal(TcActOk, SynFromPod(8047));
        Assert.Equal(TcActOk, SynFromPod(8080));
        Assert.Equal(TcActShot, SynFromPod(8081));
        Assert.Equal(TcActOk, _kernel.Run(Udp(4, true, 5353, 53), fromPod: true)); // any peer
        Assert.Equal(TcActShot, _kernel.Run(Udp(4, true, 5353, 54), fromPod: true));
        Assert.Equal(TcActShot, _kernel.Run(Echo(4, true, true, 9), fromPod: true)); // no ICMP entry
    }

    [SkippableFact]
    public void ExactEntriesGoToTheHashRangesToTheTriesAndTheFlagsSayWhatExists()
    {
        Enforce(Pod, ingress: false, egress: true);
        var world = (uint)WellKnownIdentity.World;
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 80, 80)]);
        Assert.Equal((1, 0, 0), (Datapath.PolicyExact.Keys.Count(), Datapath.PolicyAllow.Keys.Count(), Datapath.PolicyDeny.Keys.Count()));
        Assert.Equal(new PolicyConfig(), Datapath.PolicyConfig[0]);
        Assert.Equal(TcActOk, FreshSynFromPod(80));

        // A range and a deny elsewhere (the local endpoint's ingress) raise the flags; the pod's
        // verdicts are what its own entries say.
        Datapath.ReplacePolicy(Local, [Allow(Local, PolicyDirection.Ingress, 0, IpProtocols.Tcp, 8000, 8010), DenyEntry(Local, PolicyDirection.Ingress, world, IpProtocols.Udp, 53, 53)]);
        Assert.Equal(new PolicyConfig { Denies = 1, Ranges = 1 }, Datapath.PolicyConfig[0]);
        Assert.Equal(TcActOk, FreshSynFromPod(80));
        Assert.Equal(TcActShot, FreshSynFromPod(81));
        // One key holds both verdicts of the same port: deny wins, and taking the deny away leaves the allow.
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 80, 80, rule: 5), DenyEntry(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 80, 80, rule: 6)]);
        Assert.Equal(PolicyExactFlags.Allow | PolicyExactFlags.Deny, Datapath.PolicyExact.Keys.Where(k => k.Endpoint == Pod).Select(k => Datapath.PolicyExact[k].Flags).Single());
        Assert.Equal(TcActShot, FreshSynFromPod(80));
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 80, 80, rule: 5)]);
        Assert.Equal(TcActOk, FreshSynFromPod(80));
        Assert.Equal([(false, 5u)], Datapath.ListPolicy(Pod).Select(e => (e.Deny, e.Rule)));
        // The other endpoint's entries gone: the flags come down.
        Datapath.ReplacePolicy(Local, []);
        Assert.Equal(new PolicyConfig(), Datapath.PolicyConfig[0]);
    }

    [SkippableFact]
    public void DenyBeatsAllowHoweverSpecificTheAllowIs()
    {
        Enforce(Pod, ingress: false, egress: true);
        var world = (uint)WellKnownIdentity.World;
        Datapath.ReplacePolicy(Pod,
        [
            Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 443, 443),
            Allow(Pod, PolicyDirection.Egress, 0, 0, 0, ushort.MaxValue),
            DenyEntry(Pod, PolicyDirection.Egress, 0, IpProtocols.Tcp, 0, 1023),
        ]);
        Assert.Equal(TcActShot, SynFromPod(443));
        Assert.Equal(1ul, Drops(DropReason.PolicyDeny));
        Assert.Equal(TcActOk, SynFromPod(1024)); // allowed by the any-protocol entry
        Assert.Equal(TcActOk, _kernel.Run(Udp(4, true, 5353, 53), fromPod: true));
    }

    [SkippableFact]
    public void NarrowingAnEntryWritesTheNarrowKeyInsteadOfTakingTheWideOneForIt()
    {
        // An LPM lookup of the narrow key would find the wide one: the update must not be
        // fooled into keeping neither.
        Enforce(Pod, ingress: false, egress: true);
        var world = (uint)WellKnownIdentity.World;
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 0, ushort.MaxValue, rule: 5)]);
        Assert.Equal(TcActOk, SynFromPod(22));
        var narrowed = Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 8080, 8080, rule: 5)]);
        Assert.Equal(new PolicyUpdateResult(1, 1, 0), narrowed);
        Assert.Equal(TcActOk, SynFromPod(8080));
        Assert.Equal(TcActShot, SynFromPod(23));

        Datapath.ReplacePolicy(Pod,
        [
            Allow(Pod, PolicyDirection.Egress, 0, 0, 0, ushort.MaxValue),
            DenyEntry(Pod, PolicyDirection.Egress, world, 0, 0, ushort.MaxValue, rule: 6),
        ]);
        Assert.Equal(TcActShot, SynFromPod(24));
        Datapath.ReplacePolicy(Pod,
        [
            Allow(Pod, PolicyDirection.Egress, 0, 0, 0, ushort.MaxValue),
            DenyEntry(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 26, 26, rule: 6),
        ]);
        // (A port no earlier SYN used: conntrack would take a repeated SYN as established.)
        Assert.Equal(TcActShot, SynFromPod(26)); // the narrowed deny is in place
        Assert.Equal(TcActOk, SynFromPod(25));
        Assert.Equal(2, Datapath.ListPolicy(Pod).Count);
    }

    [SkippableFact]
    public void ARestartedAgentsDatapathReadsWhatTheTriesHoldBeforeReplacingIt()
    {
        Enforce(Pod, ingress: false, egress: true);
        var world = (uint)WellKnownIdentity.World;
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 80, 81), DenyEntry(Pod, PolicyDirection.Egress, world, IpProtocols.Udp, 53, 53)]);
        using var adopted = Datapath.Open(new DatapathOptions
        {
            NodeName = Path.GetFileName(Datapath.PinDirectory),
            PinRoot = Path.GetDirectoryName(Datapath.PinDirectory)!,
            ObjectPath = DatapathObjects.FromPod,
        });
        Assert.True(adopted.Adopted);
        // 80-81 is one prefix; keeping 80 alone writes one key and removes the /15 one and the deny.
        var result = adopted.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 80, 80)]);
        Assert.Equal(new PolicyUpdateResult(1, 2, 0), result);
        Assert.Equal(new PolicyUpdateResult(0, 0, 1), adopted.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, world, IpProtocols.Tcp, 80, 80)]));
        Assert.Equal(TcActOk, SynFromPod(80));
        Assert.Equal(TcActShot, SynFromPod(81));
    }

    [SkippableFact]
    public void EstablishedAndReplyTrafficIsNotJudgedAgain()
    {
        Enforce(Pod, ingress: true, egress: true);
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, 0, IpProtocols.Tcp, 80, 80)]);
        Assert.Equal(TcActOk, SynFromPod(80));
        // The pod's ingress allows nothing, yet the reply is part of the pod's connection.
        Assert.Equal(TcActOk, _kernel.Run(Tcp(4, false, 40000, 80, TcpFlags.Syn | TcpFlags.Ack), fromPod: false));
        var result = Datapath.ReplacePolicy(Pod, []);
        Assert.Equal(new PolicyUpdateResult(0, 1, 0), result);
        Assert.Equal(TcActOk, _kernel.Run(Tcp(4, true, 40000, 80, TcpFlags.Ack), fromPod: true)); // established
        Assert.Equal(TcActShot, SynFromPod(80 + 1)); // a new connection is judged by the new policy
        // And the peer cannot open a connection of its own.
        Assert.Equal(TcActShot, _kernel.Run(Tcp(4, false, 80, 40001, TcpFlags.Syn), fromPod: false));
    }

    [SkippableFact]
    public void TheIpcacheGivesPeersOutsideTheNodeTheirIdentity()
    {
        Enforce(Pod, ingress: true, egress: true);
        const uint cidrIdentity = 16_777_217;
        Datapath.UpsertIpcache(IPNetwork.Parse("198.19.7.0/24"), cidrIdentity);
        Datapath.UpsertIpcache(IPNetwork.Parse("198.19.0.0/16"), (uint)WellKnownIdentity.RemoteNode);
        Datapath.ReplacePolicy(Pod,
        [
            Allow(Pod, PolicyDirection.Egress, cidrIdentity, IpProtocols.Tcp, 80, 80),
            Allow(Pod, PolicyDirection.Ingress, (uint)WellKnownIdentity.RemoteNode, IpProtocols.Tcp, 22, 22),
        ]);
        Assert.Equal(TcActOk, SynFromPod(80)); // X = 198.19.7.7 is in the /24
        Assert.Equal(TcActShot, _kernel.Run(Tcp(4, false, 22, 40000, TcpFlags.Syn), fromPod: false)); // X is the /24's, not the /16's
        Assert.True(Datapath.DeleteIpcache(IPNetwork.Parse("198.19.7.0/24")));
        Assert.Equal(TcActOk, _kernel.Run(Tcp(4, false, 22, 40000, TcpFlags.Syn), fromPod: false)); // now the /16's
        Assert.Equal(TcActShot, SynFromPod(81));
        Assert.Equal([(IPNetwork.Parse("198.19.0.0/16"), (uint)WellKnownIdentity.RemoteNode)], Datapath.ListIpcache());
        // Without an entry a peer is world.
        Datapath.DeleteIpcache(IPNetwork.Parse("198.19.0.0/16"));
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Ingress, (uint)WellKnownIdentity.World, IpProtocols.Tcp, 23, 23)]);
        Assert.Equal(TcActOk, _kernel.Run(Tcp(4, false, 23, 40000, TcpFlags.Syn), fromPod: false));
    }

    [SkippableFact]
    public void ALocalDestinationsIngressPolicyIsJudgedByTheSendersProgram()
    {
        var toLocal = LocalSyn(5432);
        Enforce(Local, ingress: true, egress: false);
        Assert.Equal(TcActShot, _kernel.Run(toLocal, fromPod: true));
        Datapath.ReplacePolicy(Local, [Allow(Local, PolicyDirection.Ingress, PodIdentity, IpProtocols.Tcp, 5432, 5432)]);
        Assert.Equal(TcActRedirect, _kernel.Run(LocalSyn(5432), fromPod: true));
        Assert.Equal(TcActShot, _kernel.Run(LocalSyn(5433), fromPod: true));
        // The sender's egress must allow it too.
        Enforce(Pod, ingress: false, egress: true);
        Assert.Equal(TcActShot, _kernel.Run(Retarget(LocalSyn(5432), 40001), fromPod: true));
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, LocalIdentity, 0, 0, ushort.MaxValue)]);
        Assert.Equal(TcActRedirect, _kernel.Run(Retarget(LocalSyn(5432), 40002), fromPod: true));
    }

    [SkippableFact]
    public void ALocalPodComingThroughTheNodesStackIsJudgedByItsOwnIdentity()
    {
        // A Service DNAT in the node's stack keeps the client pod's source: to_pod must see
        // the pod's identity, not world.
        Enforce(Pod, ingress: true, egress: false);
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Ingress, LocalIdentity, IpProtocols.Tcp, 8080, 8080)]);
        Assert.Equal(TcActOk, _kernel.Run(FromLocal(8080, 41000), fromPod: false));
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Ingress, (uint)WellKnownIdentity.World, IpProtocols.Tcp, 8080, 8080)]);
        Assert.Equal(TcActShot, _kernel.Run(FromLocal(8080, 41001), fromPod: false));
    }

    [SkippableFact]
    public void LinkScopedTrafficThatAPodAddressesBeyondTheLinkIsDropped()
    {
        // Neighbour discovery is untracked and never judged: to a global address it could
        // carry anything past an egress policy, and a link-local source must not leave the link.
        Enforce(Pod, ingress: false, egress: true);
        Assert.Equal(TcActShot, _kernel.Run(Nd(Pod6, Peer6), fromPod: true));
        Assert.Equal(TcActShot, _kernel.Run(Nd(Ipv6Address.Parse("fe80::10"), Peer6), fromPod: true));
        Assert.Equal(TcActOk, _kernel.Run(Nd(Pod6, Ipv6Address.Parse("ff02::2")), fromPod: true)); // a router solicitation-like packet on the link
        Assert.Equal(TcActOk, _kernel.Run(Nd(Ipv6Address.Parse("fe80::10"), Ipv6Address.Parse("fe80::1")), fromPod: true));
        Assert.True(Drops(DropReason.InvalidPacket) >= 2);
    }

    private static byte[] FromLocal(ushort port, ushort sourcePort)
    {
        var buffer = new byte[128];
        var b = new PacketBuilder(buffer);
        b.Ethernet(PodMac, HostMac);
        b.Ipv4(Local4, Pod4);
        b.Tcp(sourcePort, port, sequenceNumber: 1, flags: TcpFlags.Syn);
        return buffer[..b.Finish()];
    }

    /// <summary>An ICMPv6 neighbour advertisement (type 136) with hop limit 255, padded.</summary>
    private static byte[] Nd(Ipv6Address source, Ipv6Address destination)
    {
        var buffer = new byte[256];
        var b = new PacketBuilder(buffer);
        b.Ethernet(HostMac, PodMac);
        b.Ipv6(source, destination, hopLimit: 255);
        b.Icmpv6(136, 0);
        b.Payload(64, 0x41);
        return buffer[..b.Finish()];
    }

    [SkippableFact]
    public void IcmpIsMatchedByItsTypeAndLaterFragmentsOnlyByAnyPortEntries()
    {
        Enforce(Pod, ingress: false, egress: true);
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, 0, IpProtocols.Icmp, 8, 8), Allow(Pod, PolicyDirection.Egress, 0, IpProtocols.Udp, 53, 53)]);
        Assert.Equal(TcActOk, _kernel.Run(Echo(4, true, true, 9), fromPod: true));
        Assert.Equal(TcActShot, _kernel.Run(LaterFragment4(true), fromPod: true)); // its port cannot be known
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, 0, IpProtocols.Udp, 0, ushort.MaxValue)]);
        Assert.Equal(TcActOk, _kernel.Run(LaterFragment4(true), fromPod: true));
    }

    [SkippableFact]
    public void EveryJudgedFirstPacketLeavesAPolicyVerdictRecord()
    {
        using var events = Datapath.OpenEvents();
        Enforce(Pod, ingress: false, egress: true);
        Datapath.ReplacePolicy(Pod, [Allow(Pod, PolicyDirection.Egress, (uint)WellKnownIdentity.World, IpProtocols.Tcp, 80, 80, rule: 77)]);
        Assert.Equal(TcActOk, SynFromPod(80));
        Assert.Equal(TcActShot, SynFromPod(81));
        var verdicts = new List<(ushort Reason, uint Peer, uint Rule, ushort Port, PolicyMatch Match, byte Flags)>();
        var buffer = new byte[256];
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (verdicts.Count < 2 && DateTime.UtcNow < deadline)
        {
            if (!events.TryRead(buffer, out var length))
            {
                Thread.Sleep(10);
                continue;
            }
            var record = buffer.AsSpan(0, length);
            if ((record[0] & 0x0f) != (byte)EventType.PolicyVerdict)
            {
                continue; // the drop record of the denied SYN
            }
            Assert.Equal(128, BinaryPrimitives.ReadUInt16BigEndian(record[2..]));
            verdicts.Add((BinaryPrimitives.ReadUInt16BigEndian(record[8..]), BinaryPrimitives.ReadUInt32BigEndian(record[20..]),
                BinaryPrimitives.ReadUInt32BigEndian(record[24..]), BinaryPrimitives.ReadUInt16BigEndian(record[28..]), (PolicyMatch)record[31], record[1]));
        }
        Assert.Equal(
            [(0, (uint)WellKnownIdentity.World, 77u, 80, PolicyMatch.Peer, (byte)PolicyDirection.Egress),
             ((ushort)DropReason.PolicyDenied, (uint)WellKnownIdentity.World, 0u, 81, PolicyMatch.Default, (byte)PolicyDirection.Egress)],
            verdicts);
    }

    [Fact]
    public void PortRangesBecomeTheFewestExactPrefixes()
    {
        Assert.Equal([(0, 0)], PolicyMapEntry.PortPrefixes(0, ushort.MaxValue));
        Assert.Equal([(80, 16)], PolicyMapEntry.PortPrefixes(80, 80));
        Assert.Equal([(8000, 10), (8064, 9), (8192, 12), (8208, 13)], PolicyMapEntry.PortPrefixes(8000, 8215).ToArray());
        for (var (from, to) = (1, 1023); from < 1100; from += 37, to += 53)
        {
            Assert.True(Covers(PolicyMapEntry.PortPrefixes((ushort)from, (ushort)to).ToArray(), from, to), $"{from}-{to}");
        }
        var entry = new PolicyMapEntry(1, PolicyDirection.Egress, 0, IpProtocols.Tcp, 1024, 65535, false, 1);
        Assert.Equal(6, entry.Keys().Count()); // 1024/6, 2048/5, 4096/4, 8192/3, 16384/2, 32768/1
        Assert.Throws<ArgumentException>(() => new PolicyMapEntry(1, PolicyDirection.Egress, 0, 0, 80, 80, false, 1).Keys().ToArray());
        Assert.Throws<ArgumentException>(() => new PolicyMapEntry(1, PolicyDirection.Egress, 0, 6, 81, 80, false, 1).Keys().ToArray());
    }

    /// <summary>True when the prefixes cover exactly [from, to], each port once.</summary>
    private static bool Covers((ushort Port, int Bits)[] prefixes, int from, int to)
    {
        var ports = prefixes.SelectMany(p => Enumerable.Range(p.Port, 1 << (16 - p.Bits))).ToArray();
        return ports.Length == to - from + 1 && ports.Order().SequenceEqual(Enumerable.Range(from, to - from + 1));
    }

    private static byte[] LocalSyn(ushort port)
    {
        var buffer = new byte[128];
        var b = new PacketBuilder(buffer);
        b.Ethernet(HostMac, PodMac);
        b.Ipv4(Pod4, Local4);
        b.Tcp(40000, port, sequenceNumber: 1, flags: TcpFlags.Syn);
        return buffer[..b.Finish()];
    }

    /// <summary>The same SYN from another source port: a new connection.</summary>
    private static byte[] Retarget(byte[] syn, ushort sourcePort)
    {
        var copy = syn.ToArray();
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(14 + 20), sourcePort);
        return copy;
    }
}
