using Membrane.Datapath.Policy;
using Membrane.Datapath.Tests.Conntrack;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;
using static Membrane.Datapath.Tests.Conntrack.ConntrackKernelHarness;

namespace Membrane.Datapath.Tests.Policy;

/// <summary>
/// IP fragments under policy (bpf/lib/fragments.h), through BPF_PROG_TEST_RUN: a datagram's
/// later fragments carry no L4 header, so they take the ports its first fragment left and are
/// conntracked and judged as packets of that connection — in both directions, both families;
/// a later fragment whose first one was never seen is judged as the policy says for an
/// unknown port; and a fragment cannot borrow the ports of another datagram.
/// </summary>
[Collection("kernel")]
public sealed class FragmentTests : IDisposable
{
    private const int Pod = 1;
    private readonly ConntrackKernelHarness _kernel = new();

    public FragmentTests()
    {
        // The pod may send UDP to port 53 only, and nothing may reach it.
        Assert.True(Datapath.TryGetEndpoint(Pod, out var entry));
        Datapath.UpsertEndpoint(entry with { IngressPolicy = true, EgressPolicy = true });
        Datapath.ReplacePolicy(Pod, [new PolicyMapEntry(Pod, PolicyDirection.Egress, 0, IpProtocols.Udp, 53, 53, Deny: false, 1)]);
    }

    public void Dispose() => _kernel.Dispose();

    private Datapath Datapath => _kernel.Datapath;

    /// <summary>A fragment of a UDP datagram: the first (with the UDP header) or one at <paramref name="offset"/> (in 8-byte units).</summary>
    private static byte[] Fragment(int family, bool fromPod, uint id, ushort offset, bool more, ushort podPort = 5353, ushort peerPort = 53)
    {
        var buffer = new byte[512];
        var b = new PacketBuilder(buffer);
        b.Ethernet(fromPod ? HostMac : PodMac, fromPod ? PodMac : HostMac);
        var (src4, dst4, src6, dst6) = fromPod ? (Pod4, Peer4, Pod6, Peer6) : (Peer4, Pod4, Peer6, Pod6);
        if (family == 4)
        {
            b.Ipv4(src4, dst4, identification: (ushort)id, moreFragments: more, fragmentOffset: offset, protocol: IpProtocols.Udp);
        }
        else
        {
            b.Ipv6(src6, dst6);
            b.Ipv6Fragment(offset, more, id, nextHeader: IpProtocols.Udp);
        }
        if (offset == 0)
        {
            // The UDP header of the whole datagram; its length field speaks for all fragments.
            b.Udp(fromPod ? podPort : peerPort, fromPod ? peerPort : podPort);
        }
        b.Payload(64, 0x44);
        return buffer[..b.Finish()];
    }

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(6)]
    public void LaterFragmentsOfAnAllowedDatagramFollowItsFirstFragmentBothWays(int family)
    {
        // A query too big for one packet: allowed by port 53, tracked, and its tail too.
        Assert.Equal(TcActOk, _kernel.Run(Fragment(family, true, 0x1234, 0, more: true), fromPod: true));
        Assert.Equal(TcActOk, _kernel.Run(Fragment(family, true, 0x1234, 9, more: true), fromPod: true));
        Assert.Equal(TcActOk, _kernel.Run(Fragment(family, true, 0x1234, 18, more: false), fromPod: true));
        // The fragmented answer: a reply of the tracked connection, not judged by the ingress
        // policy that lets nothing in, fragments included.
        Assert.Equal(TcActOk, _kernel.Run(Fragment(family, false, 0x99, 0, more: true), fromPod: false));
        Assert.Equal(TcActOk, _kernel.Run(Fragment(family, false, 0x99, 9, more: false), fromPod: false));
        Assert.Equal(0ul, Datapath.PacketsFor((int)DropReason.PolicyDenied));
        // The fragments were counted on the connection: three out, two back.
        var entry = Assert.Single(_kernel.Table());
        Assert.Equal((3ul, 2ul), (entry.PacketsOriginal, entry.PacketsReply));
    }

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(6)]
    public void ALaterFragmentWithoutItsFirstIsJudgedAsAnUnknownPort(int family)
    {
        Assert.Equal(TcActShot, _kernel.Run(Fragment(family, true, 0x777, 9, more: false), fromPod: true));
        Assert.Equal(1ul, Datapath.PacketsFor((int)DropReason.PolicyDenied));
        // An entry for every UDP port covers the unknown one.
        Datapath.ReplacePolicy(Pod, [new PolicyMapEntry(Pod, PolicyDirection.Egress, 0, IpProtocols.Udp, 0, ushort.MaxValue, Deny: false, 1)]);
        Assert.Equal(TcActOk, _kernel.Run(Fragment(family, true, 0x777, 9, more: false), fromPod: true));
    }

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(6)]
    public void AFragmentCannotBorrowThePortsOfAnotherDatagram(int family)
    {
        // The first fragment of a denied datagram (port 54) is dropped; its later fragments
        // take port 54 too and are dropped as well, however the allowed datagram's id differs.
        Assert.Equal(TcActOk, _kernel.Run(Fragment(family, true, 0x100, 0, more: true), fromPod: true));
        Assert.Equal(TcActShot, _kernel.Run(Fragment(family, true, 0x200, 0, more: true, peerPort: 54), fromPod: true));
        Assert.Equal(TcActShot, _kernel.Run(Fragment(family, true, 0x200, 9, more: false), fromPod: true));
        Assert.Equal(2ul, Datapath.PacketsFor((int)DropReason.PolicyDenied));
        Assert.Equal(TcActOk, _kernel.Run(Fragment(family, true, 0x100, 9, more: false), fromPod: true));
    }
}
