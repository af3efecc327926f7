using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using Membrane.Datapath.Conntrack;
using Membrane.Packets;

namespace Membrane.Datapath.Tests;

/// <summary>
/// The operator's view of the real ct4/ct6 maps (Datapath.Conntrack.cs): entries written into
/// the kernel's tables are listed back field by field, garbage collection removes exactly the
/// expired ones (across several lookup batches), and a flush empties both tables.
/// </summary>
[Collection("kernel")]
public sealed class ConntrackTableTests : IDisposable
{
    private const uint TableSize = 65_536; // room for the bulk tests without LRU eviction

    private readonly DatapathTestScope _scope = new();
    private readonly Datapath _datapath;

    public ConntrackTableTests() => _datapath = Datapath.Open(_scope.Options with { ConntrackMaxEntries = TableSize });

    public void Dispose()
    {
        _datapath.Dispose();
        _scope.Dispose();
    }

    private static CtKey4 Key4(string src, ushort sport, string dst, ushort dport, byte proto) => new()
    {
        SourceAddress = BinaryPrimitives.ReadUInt32LittleEndian(IPAddress.Parse(src).GetAddressBytes()), // wire bytes as they lie in memory
        DestinationAddress = BinaryPrimitives.ReadUInt32LittleEndian(IPAddress.Parse(dst).GetAddressBytes()),
        SourcePortBe = BinaryPrimitives.ReverseEndianness(sport),
        DestinationPortBe = BinaryPrimitives.ReverseEndianness(dport),
        Protocol = proto,
    };

    private static CtKey6 Key6(string src, ushort sport, string dst, ushort dport, byte proto)
    {
        var key = new CtKey6
        {
            SourcePortBe = BinaryPrimitives.ReverseEndianness(sport),
            DestinationPortBe = BinaryPrimitives.ReverseEndianness(dport),
            Protocol = proto,
        };
        IPAddress.Parse(src).GetAddressBytes().CopyTo((Span<byte>)key.SourceAddress);
        IPAddress.Parse(dst).GetAddressBytes().CopyTo((Span<byte>)key.DestinationAddress);
        return key;
    }

    private static string Hex<T>(T key) where T : unmanaged =>
        Convert.ToHexString(System.Runtime.InteropServices.MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in key)));

    private static CtEntry Entry(uint lifetime, CtState state = CtState.Established) => new()
    {
        Lifetime = lifetime,
        Created = lifetime - 100,
        LastSeen = lifetime - 10,
        State = state,
        Origin = CtOrigin.FromPod,
        PacketsOriginal = 1,
        BytesOriginal = 60,
    };

    [SkippableFact]
    public void ListDecodesEveryFieldOfIpv4Ipv6TcpUdpAndIcmpEntries()
    {
        var now = Datapath.ConntrackNow();
        _datapath.Conntrack4.Update(Key4("198.18.0.2", 40000, "198.18.0.3", 80, IpProtocols.Tcp), new CtEntry
        {
            PacketsOriginal = 5,
            BytesOriginal = 400,
            PacketsReply = 4,
            BytesReply = 3000,
            Created = now - 30,
            LastSeen = now - 2,
            Lifetime = now + 21598,
            SourceIdentity = 300,
            ReverseNatIndex = 7,
            State = CtState.Established,
            Origin = CtOrigin.FromPod,
            TcpFlagsOriginal = 0x12 | 0x08, // SYN ACK PSH
            TcpFlagsReply = 0x12,
            Flags = CtEntryFlags.ReplySeen,
        });
        // An ICMP echo keeps the request's identifier in the source port (conntrack-spec: Keys).
        _datapath.Conntrack4.Update(Key4("198.18.0.2", 0x1234, "198.18.0.4", 0, IpProtocols.Icmp), Entry(now + 50, CtState.Unreplied));
        _datapath.Conntrack6.Update(Key6("fd00:198:18::2", 5353, "fd00:198:18::3", 53, IpProtocols.Udp), new CtEntry
        {
            PacketsOriginal = 1,
            BytesOriginal = 90,
            Created = now,
            LastSeen = now,
            Lifetime = now - 1, // expired, not yet collected: still listed
            State = CtState.Unreplied,
            Origin = CtOrigin.ToPod,
        });
        _datapath.Conntrack6.Update(Key6("fd00:198:18::2", 77, "fd00:198:18::5", 0, IpProtocols.Icmpv6), Entry(now + 60, CtState.Replied));

        var all = _datapath.ListConntrack();
        Assert.Equal(4, all.Count);

        var tcp = Assert.Single(all, e => e.Protocol == IpProtocols.Tcp);
        Assert.Equal(ConntrackFamily.IPv4, tcp.Family);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), tcp.Source);
        Assert.Equal(40000, tcp.SourcePort);
        Assert.Equal(IPAddress.Parse("198.18.0.3"), tcp.Destination);
        Assert.Equal(80, tcp.DestinationPort);
        Assert.Equal(CtState.Established, tcp.State);
        Assert.Equal(CtOrigin.FromPod, tcp.Origin);
        Assert.Equal((5ul, 400ul, 4ul, 3000ul), (tcp.PacketsOriginal, tcp.BytesOriginal, tcp.PacketsReply, tcp.BytesReply));
        Assert.Equal((0x1a, 0x12), (tcp.TcpFlagsOriginal, tcp.TcpFlagsReply));
        Assert.True(tcp.ReplySeen);
        Assert.Equal(300u, tcp.SourceIdentity);
        Assert.Equal(7, tcp.ReverseNatIndex);
        Assert.Null(tcp.IcmpId);
        // Relative times are taken against the second of the read, which may be one later.
        Assert.InRange(tcp.Age.TotalSeconds, 30, 31);
        Assert.InRange(tcp.Idle.TotalSeconds, 2, 3);
        Assert.InRange(tcp.ExpiresIn.TotalSeconds, 21597, 21598);
        Assert.False(tcp.Expired);

        var icmp = Assert.Single(all, e => e.Protocol == IpProtocols.Icmp);
        Assert.Equal((ushort?)0x1234, icmp.IcmpId);
        Assert.Equal(IPAddress.Parse("198.18.0.4"), icmp.Destination);
        Assert.Equal(CtState.Unreplied, icmp.State);
        Assert.False(icmp.ReplySeen);

        var udp = Assert.Single(all, e => e.Protocol == IpProtocols.Udp);
        Assert.Equal(ConntrackFamily.IPv6, udp.Family);
        Assert.Equal(IPAddress.Parse("fd00:198:18::2"), udp.Source);
        Assert.Equal(5353, udp.SourcePort);
        Assert.Equal(IPAddress.Parse("fd00:198:18::3"), udp.Destination);
        Assert.Equal(53, udp.DestinationPort);
        Assert.Equal(CtOrigin.ToPod, udp.Origin);
        Assert.True(udp.Expired);
        Assert.True(udp.ExpiresIn < TimeSpan.Zero);

        var icmp6 = Assert.Single(all, e => e.Protocol == IpProtocols.Icmpv6);
        Assert.Equal((ushort?)77, icmp6.IcmpId);
        Assert.Equal(IPAddress.Parse("fd00:198:18::5"), icmp6.Destination);
        Assert.Equal(CtState.Replied, icmp6.State);
    }

    [SkippableFact]
    public void ListFiltersByFamilyProtocolAddressAndPort()
    {
        var now = Datapath.ConntrackNow();
        _datapath.Conntrack4.Update(Key4("198.18.0.2", 40000, "198.18.0.3", 80, IpProtocols.Tcp), Entry(now + 100));
        _datapath.Conntrack4.Update(Key4("198.18.0.9", 40001, "198.18.0.2", 53, IpProtocols.Udp), Entry(now + 100));
        _datapath.Conntrack4.Update(Key4("198.18.0.7", 40002, "198.18.0.8", 80, IpProtocols.Tcp), Entry(now + 100));
        _datapath.Conntrack6.Update(Key6("fd00:198:18::2", 40003, "fd00:198:18::3", 80, IpProtocols.Tcp), Entry(now + 100));

        static int[] Ports(IEnumerable<ConntrackEntry> entries) => [.. entries.Select(e => (int)e.SourcePort).Order()];

        Assert.Equal([40000, 40001, 40002, 40003], Ports(_datapath.ListConntrack()));
        Assert.Equal([40000, 40001, 40002], Ports(_datapath.ListConntrack(new ConntrackFilter { Family = ConntrackFamily.IPv4 })));
        Assert.Equal([40003], Ports(_datapath.ListConntrack(new ConntrackFilter { Family = ConntrackFamily.IPv6 })));
        Assert.Equal([40000, 40002, 40003], Ports(_datapath.ListConntrack(new ConntrackFilter { Protocol = IpProtocols.Tcp })));
        // Either end; an IPv4 address never matches the IPv6 table.
        Assert.Equal([40000, 40001], Ports(_datapath.ListConntrack(new ConntrackFilter { Address = IPAddress.Parse("198.18.0.2") })));
        Assert.Equal([40003], Ports(_datapath.ListConntrack(new ConntrackFilter { Address = IPAddress.Parse("fd00:198:18::3") })));
        Assert.Equal([40000, 40002, 40003], Ports(_datapath.ListConntrack(new ConntrackFilter { Port = 80 })));
        Assert.Equal([40002], Ports(_datapath.ListConntrack(new ConntrackFilter { Port = 80, Address = IPAddress.Parse("198.18.0.8"), Protocol = IpProtocols.Tcp })));
        Assert.Empty(_datapath.ListConntrack(new ConntrackFilter { Family = ConntrackFamily.IPv6, Address = IPAddress.Parse("198.18.0.2") }));
    }

    [SkippableFact]
    public void GarbageCollectionRemovesExactlyTheExpiredEntriesAcrossBatches()
    {
        // 10,000 + 3,000 entries: several 4096-entry lookup batches in ct4. Expired: lifetime
        // before now; lifetime == now is still alive (ct_alive: lifetime - now >= 0).
        var now = Datapath.ConntrackNow();
        var keys4 = new CtKey4[10_000];
        var values4 = new CtEntry[keys4.Length];
        var alive4 = new HashSet<string>();
        for (var i = 0; i < keys4.Length; i++)
        {
            keys4[i] = Key4($"198.18.{i / 250}.{1 + (i % 250)}", (ushort)(1024 + i), "198.19.0.1", 443, IpProtocols.Tcp);
            var lifetime = (i % 3) switch { 0 => now - 1 - (uint)(i % 7), 1 => now + (uint)(i % 5), _ => now };
            values4[i] = Entry(lifetime);
            if (!Datapath.IsExpired(lifetime, now))
            {
                alive4.Add(Hex(keys4[i]));
            }
        }
        var keys6 = new CtKey6[3_000];
        var values6 = new CtEntry[keys6.Length];
        var alive6 = new HashSet<string>(); // as bytes: struct equality does not see inline arrays
        for (var i = 0; i < keys6.Length; i++)
        {
            keys6[i] = Key6($"fd00:198:18::{i + 1:x}", 0, "fd00:198:18:1::1", 0, 50 /* ESP: port-less */);
            var lifetime = i % 4 == 0 ? now + 3600 : now - 3600;
            values6[i] = Entry(lifetime, CtState.Unreplied);
            if (!Datapath.IsExpired(lifetime, now))
            {
                alive6.Add(Hex(keys6[i]));
            }
        }
        Assert.Equal(keys4.Length, _datapath.Conntrack4.UpdateBatch(keys4, values4));
        Assert.Equal(keys6.Length, _datapath.Conntrack6.UpdateBatch(keys6, values6));

        var result = _datapath.CollectConntrack(now);

        Assert.Equal(now, result.Now);
        Assert.Equal(
            [
                new ConntrackTableGc(ConntrackFamily.IPv4, keys4.Length, keys4.Length - alive4.Count, alive4.Count, (int)TableSize),
                new ConntrackTableGc(ConntrackFamily.IPv6, keys6.Length, keys6.Length - alive6.Count, alive6.Count, (int)TableSize),
            ],
            result.Tables);
        Assert.Equal(keys4.Length - alive4.Count + keys6.Length - alive6.Count, result.Deleted);
        Assert.True(alive4.SetEquals(_datapath.Conntrack4.Keys.Select(Hex)), "ct4 holds exactly the live entries");
        Assert.True(alive6.SetEquals(_datapath.Conntrack6.Keys.Select(Hex)), "ct6 holds exactly the live entries");
        Assert.Equal((double)alive4.Count / TableSize, result.Tables[0].Fill, 9);

        // A second run finds nothing more to do.
        var again = _datapath.CollectConntrack(now);
        Assert.Equal(0, again.Deleted);
        Assert.Equal(alive4.Count + alive6.Count, again.Scanned);
    }

    [SkippableFact]
    public void FlushEmptiesBothTablesAndCountsWhatItRemoved()
    {
        var now = Datapath.ConntrackNow();
        var keys = Enumerable.Range(0, 5000).Select(i => Key4("198.18.0.2", (ushort)(2000 + i), "198.18.0.3", 80, IpProtocols.Udp)).ToArray();
        _datapath.Conntrack4.UpdateBatch(keys, Enumerable.Repeat(Entry(now + 60, CtState.Unreplied), keys.Length).ToArray());
        _datapath.Conntrack6.Update(Key6("fd00:198:18::2", 1, "fd00:198:18::3", 2, IpProtocols.Tcp), Entry(now + 60));

        Assert.Equal(5001, _datapath.FlushConntrack());
        Assert.Empty(_datapath.Conntrack4.Keys);
        Assert.Empty(_datapath.Conntrack6.Keys);
        Assert.Empty(_datapath.ListConntrack());
        Assert.Equal(0, _datapath.FlushConntrack());
    }

    [SkippableFact]
    public void AnEntryTheDatapathMadeCarriesTheSecondConntrackNowReads()
    {
        // The agent judges lifetimes with ConntrackNow(); the datapath stamps them with the
        // coarse clock, read once per tick (ct_now). One UDP packet from a pod through from_pod
        // (BPF_PROG_TEST_RUN on loopback, ifindex 1, see FromPodTestRunTests) creates an entry
        // whose "created" must lie between two readings of ConntrackNow() around the run; the
        // coarse clock may trail by two ticks, so across a second boundary it may read one less.
        var mac = MacAddress.Parse("02:00:00:00:00:10");
        var hostMac = MacAddress.Parse("02:00:00:00:01:10");
        _datapath.UpsertEndpoint(new EndpointEntry(1, IPAddress.Parse("198.18.0.10"), null,
            PhysicalAddress.Parse(mac.ToString()), PhysicalAddress.Parse(hostMac.ToString()), 300));
        var buffer = new byte[128];
        var b = new PacketBuilder(buffer);
        b.Ethernet(hostMac, mac);
        b.Ipv4(Ipv4Address.Parse("198.18.0.10"), Ipv4Address.Parse("198.18.5.5"));
        b.Udp(40000, 53);
        b.Payload(10, 0xab);
        var packet = buffer[..b.Finish()];

        var before = Datapath.ConntrackNow();
        _datapath.Program.TestRun(packet, new byte[packet.Length + 64]);
        var after = Datapath.ConntrackNow();

        var entry = Assert.Single(_datapath.ListConntrack());
        Assert.Equal((IPAddress.Parse("198.18.0.10"), (ushort)40000, IPAddress.Parse("198.18.5.5"), (ushort)53, IpProtocols.Udp),
            (entry.Source, entry.SourcePort, entry.Destination, entry.DestinationPort, entry.Protocol));
        Assert.Equal((CtState.Unreplied, CtOrigin.FromPod, 300u, 1ul), (entry.State, entry.Origin, entry.SourceIdentity, entry.PacketsOriginal));
        Assert.InRange(entry.Created, before - 1, after);
        Assert.Equal(entry.Created + 60, entry.Lifetime); // the default non-TCP lifetime
    }

    [Theory]
    [InlineData(100u, 100u, false)] // lifetime == now: alive (ct_alive uses >= 0)
    [InlineData(99u, 100u, true)]
    [InlineData(101u, 100u, false)]
    [InlineData(5u, uint.MaxValue - 2, false)] // the lifetime wrapped past 2^32 ahead of now
    [InlineData(uint.MaxValue - 2, 5u, true)] // now wrapped past an old lifetime
    public void ExpiryFollowsTheDatapathsWrapSafeComparison(uint lifetime, uint now, bool expired) =>
        Assert.Equal(expired, Datapath.IsExpired(lifetime, now));
}
