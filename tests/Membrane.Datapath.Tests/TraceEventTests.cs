using System.Net;
using System.Net.NetworkInformation;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;

namespace Membrane.Datapath.Tests;

/// <summary>
/// The trace records from_pod writes for forwarded packets (BPF_PROG_TEST_RUN, as in
/// <see cref="FromPodTestRunTests"/>): where the packet went, both ends' identities, what
/// conntrack said; which packets get one under each monitor aggregation; and the count of
/// records lost when the ring buffer is full.
/// </summary>
[Collection("kernel")]
public sealed class TraceEventTests : IDisposable
{
    private const int LoopbackIfindex = 1;
    private const uint SourceIdentity = 301;
    private const uint DestinationIdentity = 302;

    private static readonly MacAddress SourceMac = MacAddress.Parse("02:00:00:00:00:10");
    private static readonly MacAddress HostMac = MacAddress.Parse("02:00:00:00:01:10");
    private static readonly Ipv4Address Source4 = Ipv4Address.Parse("198.18.0.10");
    private static readonly Ipv4Address Destination4 = Ipv4Address.Parse("198.18.0.20");
    private static readonly Ipv4Address Outside4 = Ipv4Address.Parse("198.19.255.1");

    private readonly DatapathTestScope _scope = new();
    private readonly Datapath _datapath;

    public TraceEventTests()
    {
        _datapath = Datapath.Open(_scope.Options);
        _datapath.UpsertEndpoint(new EndpointEntry(LoopbackIfindex, IPAddress.Parse(Source4.ToString()), null,
            PhysicalAddress.Parse(SourceMac.ToString()), PhysicalAddress.Parse(HostMac.ToString()), SourceIdentity));
        _datapath.UpsertEndpoint(new EndpointEntry(4242, IPAddress.Parse(Destination4.ToString()), null,
            PhysicalAddress.Parse("02:00:00:00:00:20"), PhysicalAddress.Parse("02:00:00:00:01:20"), DestinationIdentity));
    }

    public void Dispose()
    {
        _datapath.Dispose();
        _scope.Dispose();
    }

    private static byte[] Tcp4(Ipv4Address dst, TcpFlags flags, ushort sourcePort = 40000)
    {
        var buffer = new byte[128];
        var b = new PacketBuilder(buffer);
        b.Ethernet(HostMac, SourceMac);
        b.Ipv4(Source4, dst);
        b.Tcp(sourcePort, 8080, sequenceNumber: 1, acknowledgmentNumber: flags.HasFlag(TcpFlags.Ack) ? 1u : 0u, flags: flags);
        return buffer[..b.Finish()];
    }

    /// <summary>The reply direction, as the node's stack hands it to to_pod.</summary>
    private static byte[] Reply4(TcpFlags flags)
    {
        var buffer = new byte[128];
        var b = new PacketBuilder(buffer);
        b.Ethernet(SourceMac, HostMac);
        b.Ipv4(Destination4, Source4);
        b.Tcp(8080, 40000, sequenceNumber: 1, acknowledgmentNumber: 2, flags: flags);
        return buffer[..b.Finish()];
    }

    private uint Run(byte[] packet, int repeat = 1) => _datapath.Program.TestRun(packet, new byte[packet.Length + 64], repeat).ReturnValue;

    private uint RunToPod(byte[] packet) => _datapath.ToPodProgram.TestRun(packet, new byte[packet.Length + 64]).ReturnValue;

    /// <summary>The trace records among what arrives within <paramref name="wait"/>.</summary>
    private static async Task<List<(TracePoint Point, uint Src, uint Dst, byte CtResult, byte TcpFlags, int Ifindex)>> Traces(BpfRingBufferReader events, TimeSpan wait)
    {
        var traces = new List<(TracePoint, uint, uint, byte, byte, int)>();
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            await foreach (var record in events.ReadAllAsync(timeout.Token))
            {
                Assert.True(DatapathEventReader.TryCreate(record.Span, out var reader, out var error, out _), error.ToString());
                Assert.True(reader.TryReadCommon(out var c, out error), error.ToString());
                if (c.Type == EventType.Trace)
                {
                    traces.Add(((TracePoint)c.Flags, c.Identity1, c.Identity2OrRule, c.ConntrackResult, c.TcpFlags, c.Ifindex));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        return traces;
    }

    [SkippableFact]
    public async Task ANewConnectionToALocalPodIsTracedToTheEndpointWithBothIdentities()
    {
        await using var events = _datapath.OpenEvents();
        Assert.Equal(DatapathObjects.TcActRedirect, Run(Tcp4(Destination4, TcpFlags.Syn)));
        var trace = Assert.Single(await Traces(events, TimeSpan.FromMilliseconds(400)));
        Assert.Equal(TracePoint.ToEndpoint, trace.Point);
        Assert.Equal(SourceIdentity, trace.Src);
        Assert.Equal(DestinationIdentity, trace.Dst);
        Assert.Equal((byte)Membrane.Datapath.Conntrack.CtResult.New, trace.CtResult);
        Assert.Equal(0x02, trace.TcpFlags);
        Assert.Equal(LoopbackIfindex, trace.Ifindex);
    }

    [SkippableFact]
    public async Task APacketForTheOutsideIsTracedToTheStackWithTheWorldIdentity()
    {
        await using var events = _datapath.OpenEvents();
        Assert.Equal(DatapathObjects.TcActOk, Run(Tcp4(Outside4, TcpFlags.Syn)));
        var trace = Assert.Single(await Traces(events, TimeSpan.FromMilliseconds(400)));
        Assert.Equal(TracePoint.ToStack, trace.Point);
        Assert.Equal(SourceIdentity, trace.Src);
        Assert.Equal(2u, trace.Dst); // reserved:world: the ipcache has no entry for it
    }

    [SkippableTheory]
    [InlineData(MonitorAggregation.Medium, 3)]  // SYN (new), SYN-ACK, FIN; not the plain ACKs
    [InlineData(MonitorAggregation.Maximum, 1)] // the SYN only
    [InlineData(MonitorAggregation.None, 6)]    // every packet
    public async Task TheMonitorAggregationDecidesWhichForwardedPacketsAreTraced(MonitorAggregation aggregation, int expected)
    {
        _datapath.MonitorAggregation = aggregation;
        Assert.Equal(aggregation, _datapath.MonitorAggregation);
        await using var events = _datapath.OpenEvents();
        // One connection: the pod's SYN (from_pod), the peer's SYN-ACK as the stack delivers it
        // (to_pod), then the pod's ACK, data, FIN and the peer's ACK.
        Assert.Equal(DatapathObjects.TcActRedirect, Run(Tcp4(Destination4, TcpFlags.Syn)));
        Assert.Equal(DatapathObjects.TcActOk, RunToPod(Reply4(TcpFlags.Syn | TcpFlags.Ack)));
        Assert.Equal(DatapathObjects.TcActRedirect, Run(Tcp4(Destination4, TcpFlags.Ack)));
        Assert.Equal(DatapathObjects.TcActRedirect, Run(Tcp4(Destination4, TcpFlags.Ack | TcpFlags.Psh)));
        Assert.Equal(DatapathObjects.TcActRedirect, Run(Tcp4(Destination4, TcpFlags.Fin | TcpFlags.Ack)));
        Assert.Equal(DatapathObjects.TcActOk, RunToPod(Reply4(TcpFlags.Ack)));
        var traces = await Traces(events, TimeSpan.FromMilliseconds(400));
        Assert.Equal(expected, traces.Count);
        Assert.Equal((byte)Membrane.Datapath.Conntrack.CtResult.New, traces[0].CtResult);
        if (expected > 1)
        {
            // The SYN-ACK: a reply, delivered into the pod, from the peer's identity.
            Assert.Equal((TracePoint.ToEndpoint, DestinationIdentity, SourceIdentity, (byte)Membrane.Datapath.Conntrack.CtResult.Reply, (byte)0x12),
                (traces[1].Point, traces[1].Src, traces[1].Dst, traces[1].CtResult, traces[1].TcpFlags));
        }
    }

    [SkippableFact]
    public async Task RecordsThatDoNotFitTheRingBufferAreCountedAsLost()
    {
        // 20,000 drops of 120 bytes (+8 of ring-buffer header each) are more than the 1 MiB
        // ring holds while nobody reads; every record either arrives or is counted lost.
        const int packets = 20_000;
        var spoofed = Tcp4(Destination4, TcpFlags.Syn);
        Ipv4Address.Parse("198.18.0.99").Write(spoofed.AsSpan(14 + 12));
        var lostBefore = _datapath.ReadEventsLost();
        Assert.Equal(DatapathObjects.TcActShot, Run(spoofed, packets));
        var lost = _datapath.ReadEventsLost() - lostBefore;
        Assert.True(lost > 0, "the ring buffer held 20,000 records: the test proves nothing");

        await using var events = _datapath.OpenEvents(slots: 16_384);
        var received = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await foreach (var record in events.ReadAllAsync(timeout.Token))
            {
                received++;
            }
        }
        catch (OperationCanceledException)
        {
        }
        Assert.Equal(0, events.RecordsLost);
        Assert.Equal((ulong)packets, (ulong)received + lost);
    }
}
