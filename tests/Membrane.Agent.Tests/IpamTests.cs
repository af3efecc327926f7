using System.Diagnostics;
using System.Net;
using Membrane.Agent.Ipam;
using Membrane.Agent.Store;
using Membrane.Api;

namespace Membrane.Agent.Tests;

public sealed class IpamTests : IDisposable
{
    private readonly TempDir _dir = new();
    private AgentStore _store;

    public IpamTests() => _store = AgentStore.Open(_dir.Path);

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }

    private IpamAllocator Ipam(params string[] cidrs) => new(_store, cidrs.Select(IpamAllocator.ParseCidr));

    private IReadOnlyList<IpAssignment> Allocate(IpamAllocator ipam, string cid, string ifName = "eth0") =>
        _store.Write(tx => ipam.Allocate(tx, new AllocationOwner(cid, ifName)));

    [Fact]
    public void ReservesNetworkGatewayAndBroadcastOfAnIpv4Cidr()
    {
        var ipam = Ipam("198.18.0.0/29");
        var pool = Assert.Single(ipam.Pools);
        Assert.Equal(IPAddress.Parse("198.18.0.1"), pool.Gateway);
        Assert.Equal(5, pool.Capacity);
        var given = Enumerable.Range(0, 5).Select(i => Assert.Single(Allocate(ipam, $"c{i}"))).ToList();
        Assert.Equal(["198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5", "198.18.0.6"], given.Select(a => a.Address.ToString()));
        Assert.All(given, a => Assert.Equal("198.18.0.1", a.Gateway.ToString()));
        Assert.Equal("198.18.0.2/29", given[0].AddressWithPrefix);
    }

    [Fact]
    public void ExhaustionIsATypedErrorWithAClearMessage()
    {
        var ipam = Ipam("198.18.0.0/29");
        for (var i = 0; i < 5; i++)
        {
            Allocate(ipam, $"c{i}");
        }
        var error = Assert.Throws<IpamExhaustedException>(() => Allocate(ipam, "c5"));
        Assert.Equal("failed to allocate an IPv4 address from 198.18.0.0/29: the range is exhausted (5 of 5 in use)", error.Message);
        Assert.Equal(ErrorCodes.AddressesExhausted, error.Code);
        Assert.Equal((5, 5), (error.InUse, error.Capacity));
        // The failed attempt wrote nothing.
        Assert.Equal(5, _store.Read(tx => tx.ListAllocations()).Count);
    }

    [Fact]
    public void GivesOneAddressOfEachFamilyAndUsesTheIpv6GatewayToo()
    {
        var ipam = Ipam("198.18.0.0/24", "fd00:198:18::/120");
        var lease = Allocate(ipam, "c1");
        Assert.Equal(2, lease.Count);
        Assert.Equal("198.18.0.2", lease[0].Address.ToString());
        Assert.Equal("fd00:198:18::2", lease[1].Address.ToString());
        Assert.Equal("fd00:198:18::1", lease[1].Gateway.ToString());
        Assert.Equal("fd00:198:18::2/120", lease[1].AddressWithPrefix);
        // IPv6 has no broadcast: a /126 (4 addresses) leaves 2 (::0 is the subnet-router anycast, ::1 the gateway).
        Assert.Equal(2, new IpPool(IpamAllocator.ParseCidr("fd00:198:18::/126")).Capacity);
        Assert.Equal(254 - 1, ipam.Pools[0].Capacity);
        Assert.Equal(256 - 2, ipam.Pools[1].Capacity);
    }

    [Fact]
    public void Ipv6ExhaustionNamesTheFamily()
    {
        var ipam = Ipam("198.18.0.0/24", "fd00:198:18::/126");
        Allocate(ipam, "c1");
        Allocate(ipam, "c2");
        var error = Assert.Throws<IpamExhaustedException>(() => Allocate(ipam, "c3"));
        Assert.Equal("failed to allocate an IPv6 address from fd00:198:18::/126: the range is exhausted (2 of 2 in use)", error.Message);
        // The IPv4 address taken before the IPv6 failure is gone with the transaction.
        Assert.Equal(2, ipam.Pools[0].InUse);
        Assert.Equal(4, _store.Read(tx => tx.ListAllocations()).Count);
    }

    [Fact]
    public void AllocationIsIdempotentPerOwnerAndLookupFindsIt()
    {
        var ipam = Ipam("198.18.0.0/24");
        var first = Allocate(ipam, "c1");
        var again = Allocate(ipam, "c1");
        Assert.Equal(first, again);
        Assert.Equal(1, ipam.Pools[0].InUse);
        var other = Allocate(ipam, "c1", "net1");
        Assert.NotEqual(first[0].Address, other[0].Address);
        var found = _store.Read(tx => ipam.Lookup(tx, new AllocationOwner("c1", "eth0")));
        Assert.Equal("198.18.0.2", Assert.Single(found).Address);
        Assert.Empty(_store.Read(tx => ipam.Lookup(tx, new AllocationOwner("nobody", "eth0"))));
    }

    [Fact]
    public void ReleaseFreesAndIsReusedOnlyAfterTheRestOfTheRange()
    {
        var ipam = Ipam("198.18.0.0/29");
        Allocate(ipam, "c1"); // .2
        Allocate(ipam, "c2"); // .3
        var released = _store.Write(tx => ipam.Release(tx, new AllocationOwner("c1", "eth0")));
        Assert.Equal("198.18.0.2", Assert.Single(released).Address);
        Assert.Empty(_store.Write(tx => ipam.Release(tx, new AllocationOwner("c1", "eth0")))); // idempotent
        Assert.Equal("198.18.0.4", Allocate(ipam, "c3")[0].Address.ToString());
        Assert.Equal("198.18.0.5", Allocate(ipam, "c4")[0].Address.ToString());
        Assert.Equal("198.18.0.6", Allocate(ipam, "c5")[0].Address.ToString());
        Assert.Equal("198.18.0.2", Allocate(ipam, "c6")[0].Address.ToString()); // wrapped around to the freed one
    }

    [Fact]
    public void ARolledBackAllocationFreesItsAddress()
    {
        var ipam = Ipam("198.18.0.0/29");
        Assert.Throws<InvalidOperationException>(() => _store.Write(tx =>
        {
            ipam.Allocate(tx, new AllocationOwner("c1", "eth0"));
            throw new InvalidOperationException("the endpoint row could not be written");
        }));
        Assert.Equal(0, ipam.Pools[0].InUse);
        Assert.Empty(_store.Read(tx => tx.ListAllocations()));
        // All five addresses are still there to give.
        for (var i = 0; i < 5; i++)
        {
            Allocate(ipam, $"c{i}");
        }
    }

    [Fact]
    public void ARolledBackReleaseKeepsTheAddress()
    {
        var ipam = Ipam("198.18.0.0/29");
        Allocate(ipam, "c1");
        Assert.Throws<InvalidOperationException>(() => _store.Write(tx =>
        {
            ipam.Release(tx, new AllocationOwner("c1", "eth0"));
            throw new InvalidOperationException("boom");
        }));
        Assert.Equal(1, ipam.Pools[0].InUse);
        Assert.True(ipam.Pools[0].IsTaken(IPAddress.Parse("198.18.0.2")));
        Assert.Single(_store.Read(tx => tx.ListAllocations()));
    }

    [Fact]
    public async Task TwoHundredParallelAllocationsGetDistinctAddresses()
    {
        var ipam = Ipam("198.18.0.0/24", "fd00:198:18::/64");
        var leases = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() => Allocate(ipam, $"container{i}"))));
        var v4 = leases.Select(l => l[0].Address).ToList();
        var v6 = leases.Select(l => l[1].Address).ToList();
        Assert.Equal(200, v4.Distinct().Count());
        Assert.Equal(200, v6.Distinct().Count());
        Assert.DoesNotContain(IPAddress.Parse("198.18.0.1"), v4);
        Assert.DoesNotContain(IPAddress.Parse("198.18.0.0"), v4);
        Assert.Equal(400, _store.Read(tx => tx.ListAllocations()).Select(a => a.Address).Distinct().Count());
        Assert.Equal(200, ipam.Pools[0].InUse);

        // Concurrent releases and allocations keep the bitmap and the table in step.
        await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() =>
        {
            if (i % 2 == 0)
            {
                _store.Write(tx => ipam.Release(tx, new AllocationOwner($"container{i}", "eth0")));
            }
            else
            {
                Allocate(ipam, $"late{i}");
            }
        })));
        var rows = _store.Read(tx => tx.ListAllocations());
        Assert.Equal(rows.Count, rows.Select(r => r.Address).Distinct().Count());
        Assert.Equal(rows.Count(r => !r.Address.Contains(':', StringComparison.Ordinal)), ipam.Pools[0].InUse);
    }

    [Fact]
    public void AllocationsPersistAcrossReopen()
    {
        var ipam = Ipam("198.18.0.0/29", "fd00:198:18::/125");
        var a = Allocate(ipam, "c1");
        Allocate(ipam, "c2");
        _store.Dispose();
        _store = AgentStore.Open(_dir.Path);
        var reopened = Ipam("198.18.0.0/29", "fd00:198:18::/125");
        Assert.Equal(2, reopened.Pools[0].InUse);
        Assert.Equal(2, reopened.Pools[1].InUse);
        Assert.Equal(a, Allocate(reopened, "c1")); // the owner keeps its addresses
        var fresh = Allocate(reopened, "c3");
        Assert.Equal("198.18.0.4", fresh[0].Address.ToString());
        Assert.Equal("fd00:198:18::4", fresh[1].Address.ToString());
    }

    [Fact]
    public void GarbageCollectionReleasesEverythingNotValid()
    {
        var ipam = Ipam("198.18.0.0/24", "fd00:198:18::/120");
        Allocate(ipam, "keep");
        Allocate(ipam, "gone1");
        Allocate(ipam, "gone2", "net1");
        Allocate(ipam, "keep", "net1");
        var valid = new HashSet<AllocationOwner> { new("keep", "eth0"), new("keep", "net1"), new("never-allocated", "eth0") };
        var released = _store.Write(tx => ipam.GarbageCollect(tx, valid));
        Assert.Equal([new AllocationOwner("gone1", "eth0"), new AllocationOwner("gone2", "net1")], released.OrderBy(o => o.ContainerId));
        Assert.Equal(["keep", "keep", "keep", "keep"], _store.Read(tx => tx.ListAllocations()).Select(r => r.ContainerId));
        Assert.Equal(2, ipam.Pools[0].InUse);
        Assert.Equal(2, ipam.Pools[1].InUse);
    }

    [Fact]
    public void ASixteenBitRangeAllocatesFastToTheLastAddress()
    {
        var ipam = Ipam("198.18.0.0/16");
        Assert.Equal(65533, ipam.Pools[0].Capacity);
        var clock = Stopwatch.StartNew();
        var seen = new HashSet<IPAddress>();
        // Many allocations per transaction keep the test about the allocator, not fsync.
        for (var batch = 0; batch < 65533 / 1000 + 1; batch++)
        {
            _store.Write(tx =>
            {
                for (var i = batch * 1000; i < Math.Min(65533, (batch + 1) * 1000); i++)
                {
                    Assert.True(seen.Add(ipam.Allocate(tx, new AllocationOwner($"c{i}", "eth0"))[0].Address));
                }
            });
        }
        Assert.Equal(65533, seen.Count);
        Assert.DoesNotContain(IPAddress.Parse("198.18.255.255"), seen);
        Assert.DoesNotContain(IPAddress.Parse("198.18.0.1"), seen);
        Assert.Throws<IpamExhaustedException>(() => Allocate(ipam, "one-too-many"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"65533 allocations took {clock.Elapsed}");

        // Rebuilding the bitmap from 65k rows at start is quick too.
        clock.Restart();
        var rebuilt = Ipam("198.18.0.0/16");
        Assert.Equal(65533, rebuilt.Pools[0].InUse);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"loading took {clock.Elapsed}");
    }

    [Theory]
    [InlineData("198.18.0.1/24", "bits set past the /24 prefix")]
    [InlineData("198.18.0.0", "expected ADDRESS/PREFIX")]
    [InlineData("198.18.0.0/33", "expected ADDRESS/PREFIX")]
    [InlineData("banana/24", "expected ADDRESS/PREFIX")]
    [InlineData("198.18.0.0/-1", "expected ADDRESS/PREFIX")]
    public void RejectsMalformedCidrs(string text, string why)
    {
        var error = Assert.Throws<ArgumentException>(() => IpamAllocator.ParseCidr(text));
        Assert.StartsWith($"failed to parse pod CIDR '{text}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("198.18.0.0/31")]
    [InlineData("198.18.0.0/32")]
    [InlineData("fd00:198:18::/127")]
    public void RejectsCidrsWithoutRoomForAPod(string cidr)
    {
        var error = Assert.Throws<ArgumentException>(() => Ipam(cidr));
        Assert.Contains("leaves no address for pods", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RejectsOverlappingCidrs()
    {
        var error = Assert.Throws<ArgumentException>(() => Ipam("198.18.0.0/16", "198.18.4.0/24"));
        Assert.Contains("overlap", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AllocationsOutsideTheCidrsAreKeptAndCanBeReleased()
    {
        Allocate(Ipam("198.18.0.0/24"), "old");
        var moved = Ipam("198.18.1.0/24");
        Assert.Equal(0, moved.Pools[0].InUse);
        // The owner gets an address of the current CIDR; the old one stays recorded until released.
        Assert.Equal("198.18.1.2", Allocate(moved, "old")[0].Address.ToString());
        Assert.Equal(2, _store.Read(tx => tx.ListAllocations()).Count);
        Assert.Equal(2, _store.Write(tx => moved.Release(tx, new AllocationOwner("old", "eth0"))).Count);
        Assert.Equal(0, moved.Pools[0].InUse);
    }

    [Fact]
    public void AVeryLargeIpv6PrefixIsUsedThroughItsFirstMillionAddresses()
    {
        var pool = new IpPool(IpamAllocator.ParseCidr("fd00:198:18::/48"));
        Assert.Equal(IpPool.MaxAddresses - 2, pool.Capacity);
        Assert.True(pool.TryAllocate(out var first));
        Assert.Equal("fd00:198:18::2", first.ToString());
        Assert.False(pool.Contains(IPAddress.Parse("fd00:198:18:1::2")));
    }

    [Fact]
    public void AssignmentsReadBackFromTheirText()
    {
        var a = IpAssignment.Parse("198.18.3.7/22");
        Assert.Equal(IPAddress.Parse("198.18.3.7"), a.Address);
        Assert.Equal(IpamAllocator.ParseCidr("198.18.0.0/22"), a.Cidr);
        Assert.Equal(IPAddress.Parse("198.18.0.1"), a.Gateway);
        var b = IpAssignment.Parse("fd00:198:18::42/64");
        Assert.Equal("fd00:198:18::1", b.Gateway.ToString());
        Assert.Throws<FormatException>(() => IpAssignment.Parse("198.18.3.7"));
    }
}
