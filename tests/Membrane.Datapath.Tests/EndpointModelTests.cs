using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.InteropServices;
using Membrane.Linux.Bpf.Datapath;

namespace Membrane.Datapath.Tests;

/// <summary>Plain unit tests of the endpoint model: encoding of map entries, names, record decoding.</summary>
public sealed class EndpointModelTests
{
    private static readonly EndpointEntry Sample = new(7, IPAddress.Parse("198.18.0.10"), IPAddress.Parse("fd00:198:18::10"),
        PhysicalAddress.Parse("02-00-00-00-00-10"), PhysicalAddress.Parse("02-00-00-00-01-10"), 0x123456);

    [Fact]
    public void AnEntryKeepsWireOrderForAddressesAndHostOrderForTheRest()
    {
        var info = Sample.ToInfo();
        var bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<EndpointInfo>(in info));
        Assert.Equal(new byte[] { 198, 18, 0, 10 }, bytes[..4].ToArray());
        Assert.Equal(IPAddress.Parse("fd00:198:18::10").GetAddressBytes(), bytes.Slice(4, 16).ToArray());
        Assert.Equal(new byte[] { 2, 0, 0, 0, 0, 0x10 }, bytes.Slice(20, 6).ToArray());
        Assert.Equal(new byte[] { 2, 0, 0, 0, 1, 0x10 }, bytes.Slice(26, 6).ToArray());
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(bytes[32..]));
        Assert.Equal(0x123456u, BinaryPrimitives.ReadUInt32LittleEndian(bytes[36..]));
        Assert.Equal((uint)(EndpointFlags.HasIpv4 | EndpointFlags.HasIpv6), BinaryPrimitives.ReadUInt32LittleEndian(bytes[40..]));
    }

    [Fact]
    public void AnEntryRoundTripsThroughTheMapValue()
    {
        var back = EndpointEntry.FromInfo(Sample.ToInfo());
        Assert.Equal(Sample.Ifindex, back.Ifindex);
        Assert.Equal(Sample.Ipv4, back.Ipv4);
        Assert.Equal(Sample.Ipv6, back.Ipv6);
        Assert.Equal(Sample.PodMac, back.PodMac);
        Assert.Equal(Sample.HostMac, back.HostMac);
        Assert.Equal(Sample.Identity, back.Identity);
    }

    [Fact]
    public void AMissingFamilyIsFlaggedAbsent()
    {
        var v6Only = Sample with { Ipv4 = null };
        var info = v6Only.ToInfo();
        Assert.Equal(EndpointFlags.HasIpv6, info.Flags);
        Assert.Equal(EndpointFlags.HasIpv6, v6Only.Flags);
        Assert.Null(EndpointEntry.FromInfo(info).Ipv4);
        Assert.Equal([v6Only.Ipv6!], v6Only.Addresses);
    }

    [Fact]
    public void WrongFamiliesAndMacLengthsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => (Sample with { Ipv4 = IPAddress.IPv6Loopback }).ToInfo());
        Assert.Throws<ArgumentException>(() => (Sample with { Ipv6 = IPAddress.Loopback }).ToInfo());
        Assert.Throws<ArgumentException>(() => (Sample with { PodMac = new PhysicalAddress([1, 2, 3]) }).ToInfo());
    }

    [Theory]
    [InlineData("198.18.0.10", 4)]
    [InlineData("fd00:198:18::10", 6)]
    [InlineData("::ffff:198.18.0.10", 6)]
    public void IpKeysCarryTheFamilyAndZeroTheRest(string text, byte family)
    {
        var address = IPAddress.Parse(text);
        var key = EndpointIpKey.For(address);
        var bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<EndpointIpKey>(in key));
        Assert.Equal(family, bytes[16]);
        Assert.True(bytes[17..].IndexOfAnyExcept((byte)0) < 0);
        if (family == 4)
        {
            Assert.True(bytes[4..16].IndexOfAnyExcept((byte)0) < 0);
        }
        Assert.Equal(address, key.ToAddress());
    }

    [Fact]
    public void HostInterfaceNamesAreStableShortAndDistinct()
    {
        var name = EndpointPlumber.HostInterfaceName("0123456789abcdef", "eth0");
        Assert.Equal(name, EndpointPlumber.HostInterfaceName("0123456789abcdef", "eth0"));
        Assert.Matches("^mb[0-9a-f]{10}$", name);
        Assert.True(name.Length <= 15);
        Assert.NotEqual(name, EndpointPlumber.HostInterfaceName("0123456789abcdef", "net1"));
        Assert.NotEqual(name, EndpointPlumber.HostInterfaceName("0123456789abcdeg", "eth0"));
    }

    [Fact]
    public void EveryReasonHasItsOwnName()
    {
        var reasons = Enum.GetValues<DropReason>().Select(r => (int)r).Concat(Enum.GetValues<EndpointDropReason>().Select(r => (int)r)).ToArray();
        var names = reasons.Select(DatapathReasons.Name).ToArray();
        Assert.Equal(names.Length, names.Distinct().Count());
        Assert.DoesNotContain(names, n => n.StartsWith("reason-", StringComparison.Ordinal));
        Assert.Equal("reason-200", DatapathReasons.Name(200));
        Assert.False(DatapathReasons.IsDrop(0));
        Assert.True(DatapathReasons.IsDrop((int)EndpointDropReason.SpoofedIp));
    }

    private static byte[] DropRecord()
    {
        var record = new byte[DropEvent.DataOffset + 4];
        record[0] = 0x11; // version 1, type drop
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(2), (ushort)record.Length);
        BinaryPrimitives.WriteUInt32BigEndian(record.AsSpan(4), 0x01000005);
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(8), (ushort)EndpointDropReason.SpoofedMac);
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(10), 4);
        BinaryPrimitives.WriteUInt32BigEndian(record.AsSpan(12), 9);
        BinaryPrimitives.WriteUInt32BigEndian(record.AsSpan(16), 60);
        record[20] = (byte)Direction.Ingress;
        record[21] = 17;
        record.AsSpan(DropEvent.DataOffset).Fill(0xaa);
        return record;
    }

    [Fact]
    public void ADropRecordDecodes()
    {
        Assert.True(DatapathDrop.TryDecode(DropRecord(), out var drop, out var error, out _));
        Assert.Equal(EventReadError.None, error);
        Assert.Equal(0x01000005u, drop!.Id);
        Assert.Equal("spoofed-source-mac", drop.ReasonName);
        Assert.Equal(9, drop.Ifindex);
        Assert.Equal(Direction.Ingress, drop.Direction);
        Assert.Equal(17, drop.L4Protocol);
        Assert.Equal(60, drop.PacketLength);
        Assert.Equal(new byte[] { 0xaa, 0xaa, 0xaa, 0xaa }, drop.Packet);
    }

    [Fact]
    public void EveryPrefixOfARecordFailsCleanly()
    {
        var record = DropRecord();
        for (var n = 0; n < record.Length; n++)
        {
            Assert.False(DatapathDrop.TryDecode(record.AsSpan(0, n), out var drop, out var error, out var offset));
            Assert.Null(drop);
            Assert.NotEqual(EventReadError.None, error);
            Assert.InRange(offset, 0, n);
        }
    }

    [Fact]
    public void ARecordOfAnotherTypeIsNotADrop()
    {
        var record = DropRecord();
        record[0] = 0x12; // trace
        Assert.False(DatapathDrop.TryDecode(record, out _, out var error, out _));
        Assert.Equal(EventReadError.WrongType, error);
    }

    [Theory]
    // One address: itself. Two: their longest common prefix. A third outside it: wider again.
    [InlineData(new[] { "198.18.0.10" }, "198.18.0.10", "255.255.255.255")]
    [InlineData(new[] { "198.18.0.10", "198.18.0.20" }, "198.18.0.0", "255.255.255.224")]
    [InlineData(new[] { "198.18.0.10", "198.18.0.20", "198.19.200.1" }, "198.18.0.0", "255.254.0.0")]
    [InlineData(new[] { "198.18.0.10", "198.18.0.10" }, "198.18.0.10", "255.255.255.255")]
    [InlineData(new[] { "198.18.0.1", "126.0.0.1" }, "0.0.0.0", "0.0.0.0")]
    public void ThePrefixIsTheLongestThatHoldsEveryIpv4Address(string[] addresses, string net, string mask)
    {
        var prefix = addresses.Select(IPAddress.Parse).Aggregate(EndpointPrefix.Empty, (p, a) => p.Widen(a));
        Assert.Equal(IPAddress.Parse(net).GetAddressBytes(), ((ReadOnlySpan<byte>)prefix.V4Net).ToArray());
        Assert.Equal(IPAddress.Parse(mask).GetAddressBytes(), ((ReadOnlySpan<byte>)prefix.V4Mask).ToArray());
        Assert.All(addresses, a => Assert.True(prefix.Covers(IPAddress.Parse(a)), $"{a} is outside the prefix"));
        // The IPv6 half still covers no endpoint.
        Assert.False(prefix.Covers(IPAddress.Parse("fd00:198:18::10")));
    }

    [Fact]
    public void ThePrefixHoldsEveryIpv6AddressAndNothingOutsideIt()
    {
        var prefix = EndpointPrefix.Empty.Widen(IPAddress.Parse("fd00:198:18::10")).Widen(IPAddress.Parse("fd00:198:18::1:20"));
        Assert.Equal(IPAddress.Parse("fd00:198:18::").GetAddressBytes(), ((ReadOnlySpan<byte>)prefix.V6Net).ToArray());
        Assert.Equal(IPAddress.Parse("ffff:ffff:ffff:ffff:ffff:ffff:fffe::").GetAddressBytes(), ((ReadOnlySpan<byte>)prefix.V6Mask).ToArray());
        Assert.True(prefix.Covers(IPAddress.Parse("fd00:198:18::1:ffff")));
        Assert.False(prefix.Covers(IPAddress.Parse("fd00:198:18::2:0")));
        Assert.False(prefix.Covers(IPAddress.Parse("fd00:198:19::10")));
        Assert.False(prefix.Covers(IPAddress.Parse("198.18.0.10")));
    }

    [Fact]
    public void AnEmptyPrefixCoversNoEndpointAndAZeroOneCoversEverything()
    {
        Assert.False(EndpointPrefix.Empty.Covers(IPAddress.Parse("198.18.0.10")));
        Assert.False(EndpointPrefix.Empty.Covers(IPAddress.Parse("fd00:198:18::10")));
        // What a never-written map holds: the program then asks the endpoints_by_ip map for every address.
        Assert.True(default(EndpointPrefix).Covers(IPAddress.Parse("198.51.100.7")));
        Assert.True(default(EndpointPrefix).Covers(IPAddress.Parse("2001:db8::7")));
    }

    [Theory]
    [InlineData("198.19.0.10", "198.19.0.20", "198.18.0.5")]
    [InlineData("fd00:198:18:ffff::10", "fd00:198:18:ffff::20", "fd00:198:18::1")]
    public void EveryMixOfOldAndNewBytesAWideningPassesThroughHoldsTheEndpointsAlreadyThere(string a, string b, string added)
    {
        // The program reads endpoint_prefix while the agent rewrites it in place, so it may see
        // any mix of the bytes before and after an update. Widening is two updates (the masks over
        // the old networks, then the networks): every mix along the way must hold a and b.
        var old = EndpointPrefix.Empty.Widen(IPAddress.Parse(a)).Widen(IPAddress.Parse(b));
        var final = old.Widen(IPAddress.Parse(added));
        var middle = final.WithNetworksOf(old);
        var random = new Random(5);
        foreach (var (from, to) in new[] { (old, middle), (middle, final) })
        {
            var x = MemoryMarshal.AsBytes(new ReadOnlySpan<EndpointPrefix>(in from)).ToArray();
            var y = MemoryMarshal.AsBytes(new ReadOnlySpan<EndpointPrefix>(in to)).ToArray();
            for (var trial = 0; trial < 20_000; trial++)
            {
                var mixed = new byte[x.Length];
                for (var i = 0; i < mixed.Length; i++)
                {
                    mixed[i] = random.Next(2) == 0 ? x[i] : y[i];
                }
                var seen = MemoryMarshal.Read<EndpointPrefix>(mixed);
                Assert.True(seen.Covers(IPAddress.Parse(a)) && seen.Covers(IPAddress.Parse(b)),
                    $"a reader seeing {Convert.ToHexString(mixed)} would miss an existing endpoint");
            }
        }
        Assert.True(final.Covers(IPAddress.Parse(added)));
        // Updating in one step instead would not be safe: the new network under the old mask misses them.
        Assert.False(old.WithNetworksOf(final).Covers(IPAddress.Parse(a)) && old.WithNetworksOf(final).Covers(IPAddress.Parse(b)));
    }
}
