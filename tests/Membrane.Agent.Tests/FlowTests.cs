using System.Buffers.Binary;
using System.Net;
using System.Threading.Channels;
using Membrane.Agent.Flows;
using Membrane.Api;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Membrane.Agent.Tests;

/// <summary>Datapath records the tests write: the layouts of bpf/lib/events.h, network byte order.</summary>
internal static class Records
{
    public const int ClientIfindex = 11;
    public const int ServerIfindex = 12;

    public static readonly IReadOnlyList<EndpointInfo> Endpoints =
    [
        new() { Id = 1, ContainerId = "c1", IfName = "eth0", State = "ready", Ipv4 = "198.18.0.2", HostIfIndex = ClientIfindex, HostInterface = "lxcclient", Identity = 256, PodName = "client", PodNamespace = "default", Labels = ["app=client", "k8s:io.kubernetes.pod.namespace=default"] },
        new() { Id = 2, ContainerId = "c2", IfName = "eth0", State = "ready", Ipv4 = "198.18.0.3", HostIfIndex = ServerIfindex, HostInterface = "lxcserver", Identity = 257, PodName = "server", PodNamespace = "default", Labels = ["app=server", "k8s:io.kubernetes.pod.namespace=default"] },
    ];

    public static byte[] Syn(string source, string destination, ushort sport = 40000, ushort dport = 8080, TcpFlags flags = TcpFlags.Syn)
    {
        var buffer = new byte[128];
        var b = new PacketBuilder(buffer);
        b.Ethernet(MacAddress.Parse("02:00:00:00:00:02"), MacAddress.Parse("02:00:00:00:00:01"));
        b.Ipv4(Ipv4Address.Parse(source), Ipv4Address.Parse(destination));
        b.Tcp(sport, dport, flags: flags);
        return buffer[..b.Finish()];
    }

    /// <summary>A record: header (type, flags, length, id), reason, captured, ifindex, packet length, the type's fields, the packet.</summary>
    private static byte[] Record(EventType type, byte flags, int dataOffset, ushort reason, int ifindex, byte[] packet, Action<Span<byte>> fields)
    {
        var length = dataOffset + DropEvent.CaptureLength;
        var r = new byte[length];
        r[0] = (byte)(0x10 | (byte)type);
        r[1] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(2), (ushort)length);
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(4), 0x01000007);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(8), reason);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(10), (ushort)Math.Min(packet.Length, DropEvent.CaptureLength));
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(12), (uint)ifindex);
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(16), (uint)packet.Length);
        fields(r);
        packet.AsSpan(0, Math.Min(packet.Length, DropEvent.CaptureLength)).CopyTo(r.AsSpan(dataOffset));
        return r;
    }

    public static byte[] Drop(ushort reason, int ifindex, Direction direction, byte[] packet) =>
        Record(EventType.Drop, 0, DropEvent.DataOffset, reason, ifindex, packet, r => { r[20] = (byte)direction; r[21] = 6; });

    public static byte[] Trace(TracePoint point, int ifindex, uint src, uint dst, byte ctResult, byte[] packet) =>
        Record(EventType.Trace, (byte)point, TraceEvent.DataOffset, 0, ifindex, packet, r =>
        {
            BinaryPrimitives.WriteUInt32BigEndian(r[20..], src);
            BinaryPrimitives.WriteUInt32BigEndian(r[24..], dst);
            r[28] = ctResult;
            r[29] = 6;
        });

    public static byte[] Verdict(byte direction, ushort reason, int ifindex, uint peer, byte match, byte[] packet) =>
        Record(EventType.PolicyVerdict, direction, TraceEvent.DataOffset, reason, ifindex, packet, r =>
        {
            BinaryPrimitives.WriteUInt32BigEndian(r[20..], peer);
            r[30] = 6;
            r[31] = match;
        });
}

/// <summary>Records fed to the agent by a test, with lost counts it sets.</summary>
internal sealed class FakeEvents : IFlowDatapath, IEventSource
{
    private readonly Channel<byte[]> _records = Channel.CreateUnbounded<byte[]>();

    public ulong LostInKernel { get; set; }

    public ulong LostInReader { get; set; }

    public string MonitorAggregation => "medium";

    public void Write(byte[] record) => _records.Writer.TryWrite(record);

    public IEventSource OpenEvents(int slots) => this;

    public async IAsyncEnumerable<ReadOnlyMemory<byte>> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var record in _records.Reader.ReadAllAsync(ct))
        {
            yield return record;
        }
    }

    public void Dispose()
    {
    }
}

/// <summary>
/// The observer and the converter without a kernel: which end of each record kind is which,
/// names and labels from the endpoints, lost-record notices, bad records, the bounded buffer.
/// </summary>
public sealed class FlowConverterTests
{
    private readonly FakeEvents _events = new();
    private readonly FlowObserver _observer;
    private readonly FlowConverter _converter = new("node-a", id => id == 300 ? ["k8s:app=gone"] : null);

    public FlowConverterTests()
    {
        _observer = new FlowObserver(_events, 8, () => Records.Endpoints, TimeProvider.System, NullLogger.Instance);
    }

    private Flow Last()
    {
        var entries = new List<FlowEntry>();
        _observer.Ring.Read(_observer.Ring.Next - 1, 1, entries);
        return _converter.ToFlow(entries.Single(), includePacket: true)!;
    }

    [Fact]
    public void ADropAtAPodsIngressHookNamesThatPodAsTheSource()
    {
        var packet = Records.Syn("198.18.0.2", "198.18.0.3");
        _observer.Ingest(Records.Drop((ushort)DropReason.PolicyDenied, Records.ClientIfindex, Direction.Ingress, packet));
        var flow = Last();
        Assert.Equal((FlowNames.Dropped, 8, "POLICY_DENIED", FlowNames.EventDrop, "EGRESS"),
            (flow.Verdict, flow.DropReason, flow.DropReasonDesc, flow.EventType.Type, flow.TrafficDirection));
        Assert.Equal(("client", "default", 256u, 1L), (flow.Source!.PodName, flow.Source.Namespace, flow.Source.Identity, flow.Source.ID));
        Assert.Equal(["k8s:app=client", "k8s:io.kubernetes.pod.namespace=default"], flow.Source.Labels);
        Assert.Equal("server", flow.Destination!.PodName);
        Assert.Equal(("198.18.0.2", "198.18.0.3", "IPv4"), (flow.IP!.Source, flow.IP.Destination, flow.IP.IpVersion));
        Assert.Equal((40000, 8080, true), (flow.L4!.TCP!.SourcePort, flow.L4.TCP.DestinationPort, flow.L4.TCP.Flags!.SYN == true));
        Assert.Equal(("TCP Flags: SYN", "lxcclient", Records.ClientIfindex), (flow.Summary, flow.Interface!.Name, flow.Interface.Index));
        Assert.Equal(packet, flow.PacketData);
        Assert.Equal(packet.Length, flow.PacketLength);
        Assert.Equal("node-a", flow.NodeName);
        Assert.NotNull(flow.Uuid);
    }

    [Fact]
    public void APolicyVerdictNamesTheEndpointWhosePolicyDecidedAndThePeerByIdentity()
    {
        // Egress of the client toward a peer that is no local pod (identity 300, known by labels only).
        _observer.Ingest(Records.Verdict(2, 0, Records.ClientIfindex, 300, 1, Records.Syn("198.18.0.2", "198.51.100.9")));
        var egress = Last();
        Assert.Equal((FlowNames.Forwarded, "EGRESS", "identity", false), (egress.Verdict, egress.TrafficDirection, egress.PolicyMatchType, egress.IsReply));
        Assert.Equal("client", egress.Source!.PodName);
        Assert.Equal((300u, "k8s:app=gone"), (egress.Destination!.Identity, egress.Destination.Labels.Single()));
        Assert.Null(egress.DropReasonDesc);

        // Ingress of the server, denied by default, from the world (a reserved identity's label).
        _observer.Ingest(Records.Verdict(1, (ushort)DropReason.PolicyDenied, Records.ServerIfindex, 2, 3, Records.Syn("198.51.100.9", "198.18.0.3")));
        var ingress = Last();
        Assert.Equal((FlowNames.Dropped, "POLICY_DENIED", "INGRESS", "default-deny"),
            (ingress.Verdict, ingress.DropReasonDesc, ingress.TrafficDirection, ingress.PolicyMatchType));
        Assert.Equal((2u, "reserved:world"), (ingress.Source!.Identity, ingress.Source.Labels.Single()));
        Assert.Equal("server", ingress.Destination!.PodName);
    }

    [Fact]
    public void ATraceOfAReplyIsMarkedAndKeepsTheConnectionsDirection()
    {
        // The server's SYN-ACK, delivered into the client by to_pod.
        _observer.Ingest(Records.Trace(TracePoint.ToEndpoint, Records.ClientIfindex, 257, 256, (byte)Datapath.Conntrack.CtResult.Reply,
            Records.Syn("198.18.0.3", "198.18.0.2", 8080, 40000, TcpFlags.Syn | TcpFlags.Ack)));
        var flow = Last();
        Assert.Equal((FlowNames.Forwarded, "TO_ENDPOINT", true, "EGRESS"), (flow.Verdict, flow.TraceObservationPoint, flow.IsReply, flow.TrafficDirection));
        Assert.Equal(("server", "client"), (flow.Source!.PodName, flow.Destination!.PodName));
        Assert.Equal("TCP Flags: SYN, ACK", flow.Summary);
        Assert.Equal((FlowNames.EventTrace, 0), (flow.EventType.Type, flow.EventType.SubType));
    }

    [Fact]
    public void UndecodableRecordsAreCountedAndKeptOut()
    {
        var good = Records.Drop(1, Records.ClientIfindex, Direction.Ingress, Records.Syn("198.18.0.2", "198.18.0.3"));
        var badVersion = (byte[])good.Clone();
        badVersion[0] = 0x21;
        var unknownType = (byte[])good.Clone();
        unknownType[0] = 0x1f;
        _observer.Ingest(badVersion);
        _observer.Ingest(good[..7]);
        _observer.Ingest(good[..20]); // the header says 120 bytes
        _observer.Ingest(unknownType);
        Assert.Equal((4L, 4L, 0L), (_observer.Seen, _observer.Undecodable, _observer.Ring.Next));
        _observer.Ingest(good);
        Assert.Equal((1L, 1L), (_observer.Ring.Next, _observer.Dropped));
    }

    [Fact]
    public void LostRecordsBecomeNoticesOnceEach()
    {
        Assert.False(_observer.ReportLost());
        _events.LostInKernel = 5;
        _events.LostInReader = 2;
        Assert.True(_observer.ReportLost());
        Assert.False(_observer.ReportLost());
        _events.LostInKernel = 7;
        Assert.True(_observer.ReportLost());
        var entries = new List<FlowEntry>();
        _observer.Ring.Read(0, 10, entries);
        Assert.Equal([(5ul, FlowObserver.LostInKernelSource), (2ul, FlowObserver.LostInAgentSource), (2ul, FlowObserver.LostInKernelSource)],
            entries.Select(e => (e.Lost, e.LostSource!)));
        Assert.All(entries, e => Assert.Null(_converter.ToFlow(e, false)));
    }

    [Fact]
    public void TheBufferKeepsItsSizeAndTellsAReaderWhatItMissed()
    {
        var record = Records.Drop(1, Records.ClientIfindex, Direction.Ingress, Records.Syn("198.18.0.2", "198.18.0.3"));
        for (var i = 0; i < 20; i++)
        {
            _observer.Ingest(record);
        }
        Assert.Equal((8, 8, 20L), (_observer.Ring.Count, _observer.Ring.Capacity, _observer.Ring.Next));
        var entries = new List<FlowEntry>();
        Assert.Equal(12, _observer.Ring.Read(0, 100, entries));
        Assert.Equal(Enumerable.Range(12, 8).Select(i => (long)i), entries.Select(e => e.Sequence));
    }

    [Fact]
    public void MonitorRecordsCarryTheHeaderAndTheBodyInHex()
    {
        var record = Records.Drop(8, Records.ServerIfindex, Direction.Egress, Records.Syn("198.18.0.2", "198.18.0.3"));
        _observer.Ingest(record);
        var entries = new List<FlowEntry>();
        _observer.Ring.Read(0, 1, entries);
        var monitor = FlowConverter.ToMonitorRecord(entries[0])!;
        Assert.Equal((1, "drop", 0, 120, 0x01000007u), (monitor.Type, monitor.TypeName, monitor.SubType, monitor.Length, monitor.Id));
        Assert.Equal(Convert.ToHexStringLower(record.AsSpan(8)), monitor.Body);
    }
}

/// <summary>POST /v1/flows, GET /v1/flows/status and /v1/monitor over the agent's socket, records from a test.</summary>
public sealed class FlowApiTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly FakeEvents _events = new();
    private AgentHost _host = null!;
    private MembraneClient _client = null!;

    private string Socket => _dir.File("agent.sock");

    public async Task InitializeAsync()
    {
        _host = new AgentHost(_dir.AgentOptions("node-a") with { FlowBufferSize = 16 }, new RecordingDatapath(), flows: _events);
        await _host.StartAsync(default);
        _client = new MembraneClient(Socket, TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
        _dir.Dispose();
    }

    private async Task<List<FlowLine>> Observe(ObserveRequest request)
    {
        var lines = new List<FlowLine>();
        await foreach (var line in _client.ObserveAsync(request))
        {
            lines.Add(line);
        }
        return lines;
    }

    private async Task Feed(int count)
    {
        for (var i = 0; i < count; i++)
        {
            _events.Write(Records.Drop((ushort)(i % 2 == 0 ? 8 : 9), Records.ClientIfindex, Direction.Ingress,
                Records.Syn("198.18.0.2", "198.18.0.3", dport: (ushort)(1000 + i))));
        }
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (_host.Flows!.Seen < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task TheBufferIsServedFilteredAndTheLastNOfIt()
    {
        await Feed(10);
        var all = await Observe(new ObserveRequest());
        Assert.Equal(Enumerable.Range(1000, 10), all.Select(l => l.Flow!.L4!.TCP!.DestinationPort));
        var deny = await Observe(new ObserveRequest { Number = 2, Whitelist = [new FlowFilter { DestinationPort = [1001, 1003, 1005, 1007] }] });
        Assert.Equal([1005, 1007], deny.Select(l => l.Flow!.L4!.TCP!.DestinationPort));
        Assert.All(deny, l => Assert.Equal("POLICY_DENY", l.Flow!.DropReasonDesc));
        var status = await _client.FlowStatusAsync();
        Assert.Equal((10, 16, 10ul, "medium"), (status.NumFlows, status.MaxFlows, status.SeenFlows, status.MonitorAggregation));
    }

    [Fact]
    public async Task AFollowStreamEndsWhenItsUntilHasPassed()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var lines = await Observe(new ObserveRequest { Follow = true, Until = DateTimeOffset.UtcNow.AddMilliseconds(500) });
        Assert.Empty(lines);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
    }

    [Theory]
    [InlineData("""{"number": -1}""", "number -1 is negative")]
    [InlineData("""{"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}""", "is before since")]
    [InlineData("""{"whitelist": [{"source_ip": ["198.18.0.300"]}]}""", "whitelist[0].source_ip[0]")]
    [InlineData("""{"blacklist": [{"event_type": ["trace:to-nowhere"]}]}""", "blacklist[0].event_type[0]")]
    [InlineData("""{"whitelist": [{"destination_port": [70000]}]}""", "port 70000")]
    [InlineData("""{"whitelist": [{"verdict": ["MAYBE"]}]}""", "'MAYBE' is not one of")]
    public async Task ABadRequestIsRefusedNamingWhatIsWrong(string body, string expected)
    {
        var (status, error, _) = await UnixSocketHttp.SendAsync(Socket, HttpMethod.Post, "v1/flows", body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(ErrorCodes.InvalidRequest, error!.Code);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task AMalformedBodyIsADecodeFailure()
    {
        var (status, error, _) = await UnixSocketHttp.SendAsync(Socket, HttpMethod.Post, "v1/flows", """{"number": "many"}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(ErrorCodes.DecodeFailure, error!.Code);
    }

    [Fact]
    public async Task TheMonitorStreamsRecordsAsTheyArrive()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var first = Task.Run(async () =>
        {
            await foreach (var record in _client.MonitorAsync(cts.Token))
            {
                return record;
            }
            return null;
        });
        await Task.Delay(200);
        await Feed(1);
        var record = await first.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        Assert.Equal(("drop", 120), (record!.TypeName, record.Length));
    }
}

/// <summary>An agent whose datapath writes no records says so.</summary>
public sealed class FlowApiWithoutRecordsTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private AgentHost _host = null!;

    public async Task InitializeAsync()
    {
        _host = new AgentHost(_dir.AgentOptions("node-b"), new RecordingDatapath());
        await _host.StartAsync(default);
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task ObservingIsANotFoundError()
    {
        var (status, error, _) = await UnixSocketHttp.SendAsync(_dir.File("agent.sock"), HttpMethod.Post, "v1/flows", "{}");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("writes no records", error!.Message);
    }
}
