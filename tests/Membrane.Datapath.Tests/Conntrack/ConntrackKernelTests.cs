using Membrane.Datapath.Conntrack;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;
using static Membrane.Datapath.Tests.Conntrack.ConntrackKernelHarness;

namespace Membrane.Datapath.Tests.Conntrack;

/// <summary>
/// What the differential test does not reach: the kernel side's lifetimes from the agent's
/// options, expiry on the real clock, a table that cannot take another entry, and the drop
/// accounting of conntrack's verdicts.
/// </summary>
[Collection("kernel")]
public sealed class ConntrackKernelTests
{
    [SkippableFact]
    public void TheOptionsLifetimesReachTheDatapathAndAreGivenToEntries()
    {
        var timeouts = new ConntrackTimeouts
        {
            TcpSyn = TimeSpan.FromSeconds(7),
            TcpEstablished = TimeSpan.FromMinutes(3),
            TcpClose = TimeSpan.FromSeconds(4),
            Other = TimeSpan.FromSeconds(9),
        };
        using var kernel = new ConntrackKernelHarness(o => o with { ConntrackTimeouts = timeouts });
        var config = kernel.Datapath.ConntrackConfig[0];
        Assert.Equal((7u, 180u, 4u, 9u), (config.TcpSyn, config.TcpEstablished, config.TcpClose, config.Other));

        Assert.Equal(TcActOk, kernel.Run(Tcp(4, true, 40000, 80, TcpFlags.Syn), fromPod: true));
        Assert.Equal(TcActOk, kernel.Run(Udp(6, true, 5000, 53), fromPod: true));
        var rows = kernel.Table();
        Assert.Equal(7ul, rows.Single(r => r.Key.Protocol == IpProtocols.Tcp).LifetimeAfterLastPacket);
        Assert.Equal(9ul, rows.Single(r => r.Key.Protocol == IpProtocols.Udp).LifetimeAfterLastPacket);
        Assert.Equal(TcActOk, kernel.Run(Tcp(4, false, 40000, 80, TcpFlags.Syn | TcpFlags.Ack), fromPod: false));
        Assert.Equal(TcActOk, kernel.Run(Tcp(4, true, 40000, 80, TcpFlags.Ack), fromPod: true));
        Assert.Equal(180ul, kernel.Table().Single(r => r.Key.Protocol == IpProtocols.Tcp).LifetimeAfterLastPacket);
        Assert.Equal(TcActOk, kernel.Run(Tcp(4, false, 40000, 80, TcpFlags.Rst), fromPod: false));
        Assert.Equal(4ul, kernel.Table().Single(r => r.Key.Protocol == IpProtocols.Tcp).LifetimeAfterLastPacket);
    }

    [SkippableFact]
    public void AnExpiredEntryIsGoneForThePacketsThatComeAfterIt()
    {
        var timeouts = new ConntrackTimeouts { Other = TimeSpan.FromSeconds(1) };
        using var kernel = new ConntrackKernelHarness(o => o with { ConntrackTimeouts = timeouts });
        Assert.Equal(TcActOk, kernel.Run(Udp(4, true, 5000, 53), fromPod: true));
        Assert.Equal(TcActOk, kernel.Run(Udp(4, true, 5000, 53), fromPod: true));
        Assert.Equal(2ul, kernel.Table().Single().PacketsOriginal);
        var key = kernel.Datapath.Conntrack4.Keys.Single();
        var created = kernel.Datapath.Conntrack4[key].Created;

        // Lifetime is the last second alive: two more whole seconds and it has passed.
        Thread.Sleep(TimeSpan.FromSeconds(2.2));
        // The peer's "reply" now finds nothing: it opens a connection of its own.
        Assert.Equal(TcActOk, kernel.Run(Udp(4, false, 5000, 53), fromPod: false));
        var rows = kernel.Table();
        var opened = rows.Single(r => r.Key.Source == new IpAddress(Peer4));
        Assert.Equal((1ul, 0ul, CtState.Unreplied), (opened.PacketsOriginal, opened.PacketsReply, opened.State));
        // And the pod's next packet is a reply to it, not a packet of the expired entry.
        Assert.Equal(TcActOk, kernel.Run(Udp(4, true, 5000, 53), fromPod: true));
        opened = kernel.Table().Single(r => r.Key.Source == new IpAddress(Peer4));
        Assert.Equal((1ul, 1ul, CtState.Replied), (opened.PacketsOriginal, opened.PacketsReply, opened.State));
        Assert.True(kernel.Datapath.Conntrack4.TryLookup(key, out var stale));
        Assert.Equal(created, stale.Created); // left for the agent's GC, never used again
    }

    [SkippableFact]
    public void AFullTableDropsNewConnectionsWithItsOwnReasonAndKeepsTheOnesItHas()
    {
        // A plain hash of 4 entries fills up where the product's LRU would evict; the
        // program's failed-insert path is the same either way.
        using var kernel = new ConntrackKernelHarness(o => o with { ConntrackMaxEntries = 4, ConntrackMapType = BpfMapType.Hash });
        for (ushort port = 1; port <= 4; port++)
        {
            Assert.Equal(TcActOk, kernel.Run(Udp(4, true, port, 53), fromPod: true));
        }
        var before = kernel.Table();
        Assert.Equal(4, before.Count);

        Assert.Equal(TcActShot, kernel.Run(Udp(4, true, 5, 53), fromPod: true));
        Assert.Equal(TcActShot, kernel.Run(Tcp(4, false, 40000, 80, TcpFlags.Syn), fromPod: false));
        Assert.Equal(1ul, Drops(kernel, DropReason.ConntrackMapFull, Direction.Ingress)); // from_pod
        Assert.Equal(1ul, Drops(kernel, DropReason.ConntrackMapFull, Direction.Egress)); // to_pod
        Assert.Equal(before, kernel.Table()); // nothing overwritten, nothing half-written

        // The tracked connections carry on.
        Assert.Equal(TcActOk, kernel.Run(Udp(4, false, 1, 53), fromPod: false));
        Assert.Equal(CtState.Replied, kernel.Table().Single(r => r.Key.SourcePort == 1).State);
    }

    private static ulong Drops(ConntrackKernelHarness kernel, DropReason reason, Direction direction) =>
        kernel.Datapath.ReadMetrics().Where(m => m.Reason == (int)reason && m.Direction == direction).Aggregate(0ul, (sum, m) => sum + m.Packets);

    [SkippableFact]
    public void InvalidPacketsAreDroppedAndCountedUnderTheirReason()
    {
        using var kernel = new ConntrackKernelHarness();
        Assert.Equal(TcActShot, kernel.Run(Tcp(4, true, 40000, 80, TcpFlags.Syn | TcpFlags.Ack), fromPod: true));
        Assert.Equal(TcActShot, kernel.Run(Tcp(6, false, 40000, 80, TcpFlags.Fin), fromPod: false));
        Assert.Equal(TcActShot, kernel.Run(Echo(4, false, request: false, 5), fromPod: false));
        Assert.Empty(kernel.Table());
        Assert.Equal(3ul, kernel.Datapath.PacketsFor((int)DropReason.ConntrackInvalid));
        Assert.Equal("ct-invalid", DatapathReasons.Name((int)DropReason.ConntrackInvalid));
        Assert.Equal("ct-map-full", DatapathReasons.Name((int)DropReason.ConntrackMapFull));
    }

    [SkippableFact]
    public void AnAdoptedDatapathKeepsItsEntriesAndTakesTheNewLifetimes()
    {
        using var kernel = new ConntrackKernelHarness();
        Assert.Equal(TcActOk, kernel.Run(Udp(4, true, 5000, 53), fromPod: true));
        var options = kernel.Datapath.PinDirectory;
        var nodeName = Path.GetFileName(options);
        var pinRoot = Path.GetDirectoryName(options)!;
        using var again = Datapath.Open(new DatapathOptions
        {
            NodeName = nodeName,
            PinRoot = pinRoot,
            ObjectPath = DatapathObjects.FromPod,
            ConntrackTimeouts = new ConntrackTimeouts { Other = TimeSpan.FromSeconds(33) },
        });
        Assert.True(again.Adopted);
        Assert.Single(again.Conntrack4.Keys);
        Assert.Equal(33u, again.ConntrackConfig[0].Other);
    }

    [Fact]
    public void LifetimesThatTheDatapathCannotHoldAreRefusedBeforeAnythingIsTouched()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ConntrackTimeouts { TcpSyn = TimeSpan.FromMilliseconds(1500) }.ToConfig());
        Assert.Contains("tcp-syn", error.Message, StringComparison.Ordinal);
        var options = new DatapathOptions { NodeName = "never-opened", PinRoot = "/nonexistent", ConntrackTimeouts = new ConntrackTimeouts { Other = TimeSpan.Zero } };
        Assert.Throws<ArgumentOutOfRangeException>(() => Datapath.Open(options));
    }
}
