using System.Net;
using System.Net.Sockets;
using Membrane.Agent.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Membrane.Agent.Ipam;

/// <summary>One address given to a container interface.</summary>
/// <param name="Address">The address.</param>
/// <param name="Cidr">The pod CIDR it came from (its prefix length is the interface's).</param>
/// <param name="Gateway">The gateway of that CIDR.</param>
public sealed record IpAssignment(IPAddress Address, IPNetwork Cidr, IPAddress Gateway)
{
    /// <summary>The address with the CIDR's prefix length: <c>198.18.0.2/24</c>.</summary>
    public string AddressWithPrefix => $"{Address}/{Cidr.PrefixLength}";

    /// <summary>
    /// Reads back an <see cref="AddressWithPrefix"/> string. The gateway is the CIDR's first
    /// usable address, as <see cref="IpPool"/> defines it.
    /// </summary>
    /// <exception cref="FormatException">Not ADDRESS/PREFIX.</exception>
    public static IpAssignment Parse(string addressWithPrefix)
    {
        var slash = addressWithPrefix.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !IPAddress.TryParse(addressWithPrefix.AsSpan(0, slash), out var address) ||
            !int.TryParse(addressWithPrefix.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var prefix) ||
            prefix > (address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
        {
            throw new FormatException($"failed to parse address '{addressWithPrefix}': expected ADDRESS/PREFIX");
        }
        var cidr = new IPNetwork(IpPool.Mask(address, prefix), prefix);
        return new IpAssignment(address, cidr, IpPool.FirstUsable(cidr));
    }
}

/// <summary>Who holds an allocation: a CNI attachment, as in the CNI spec's GC (containerId + ifName).</summary>
public readonly record struct AllocationOwner(string ContainerId, string IfName)
{
    /// <inheritdoc/>
    public override string ToString() => $"{ContainerId}/{IfName}";
}

/// <summary>
/// The node's IP address manager: hands out addresses of the node's pod CIDRs (one IPv4 and,
/// when configured, one IPv6 address per container interface), never the same one twice,
/// and records every allocation in the store.
/// </summary>
/// <remarks>
/// <para>Every operation takes the caller's <see cref="StoreTransaction"/>: the allocation rows
/// commit in the same transaction as the endpoint that uses them, and the in-memory bitmap
/// changes are undone if that transaction rolls back. So an address is taken in memory only
/// while a committed (or committing) row says so, and a crash between the two cannot leak one.</para>
/// <para>At start the bitmaps are rebuilt from the stored rows; allocation then never reads
/// the table. Allocations outside the configured CIDRs (the node's CIDR changed) are kept
/// and can be released, but no new address comes from there.</para>
/// </remarks>
public sealed class IpamAllocator
{
    private readonly Lock _lock = new();
    private readonly IpPool[] _pools;
    private readonly TimeProvider _time;

    /// <summary>Builds the pools of <paramref name="cidrs"/> and marks the addresses the store holds.</summary>
    /// <exception cref="ArgumentException">No CIDR, or one too small to give an address.</exception>
    public IpamAllocator(AgentStore store, IEnumerable<IPNetwork> cidrs, TimeProvider? time = null, ILogger<IpamAllocator>? logger = null)
    {
        _pools = CreatePools(cidrs);
        _time = time ?? TimeProvider.System;
        logger ??= NullLogger<IpamAllocator>.Instance;
        var foreign = 0;
        foreach (var row in store.Read(tx => tx.ListAllocations()))
        {
            var address = IPAddress.Parse(row.Address);
            var pool = PoolOf(address);
            if (pool is null)
            {
                foreign++;
                logger.LogWarning("allocation {Address} of {Owner} lies outside the pod CIDRs; it is kept until released",
                    row.Address, new AllocationOwner(row.ContainerId, row.IfName));
            }
            else if (!pool.TryMarkAllocated(address))
            {
                throw new AgentException(Api.ErrorCodes.IoFailure,
                    $"failed to restore IP allocation {row.Address}: it is a reserved address of {pool.Cidr} or stored twice");
            }
        }
        logger.LogInformation("IPAM ready: {Pools} ({Foreign} allocations outside them)",
            string.Join(", ", _pools.Select(p => $"{p.Cidr} {p.InUse}/{p.Capacity} in use")), foreign);
    }

    /// <summary>
    /// Checks that <paramref name="cidrs"/> can serve as the node's pod CIDRs: at least one,
    /// each with room for a pod, none overlapping another.
    /// </summary>
    /// <exception cref="ArgumentException">What is wrong.</exception>
    public static void Validate(IEnumerable<IPNetwork> cidrs) => CreatePools(cidrs);

    private static IpPool[] CreatePools(IEnumerable<IPNetwork> cidrs)
    {
        var pools = cidrs.Select(c => new IpPool(c)).ToArray();
        if (pools.Length == 0)
        {
            throw new ArgumentException("failed to create the IP allocator: no pod CIDR given", nameof(cidrs));
        }
        for (var i = 0; i < pools.Length; i++)
        {
            for (var j = 0; j < i; j++)
            {
                if (pools[i].Family == pools[j].Family &&
                    (pools[i].Cidr.Contains(pools[j].Cidr.BaseAddress) || pools[j].Cidr.Contains(pools[i].Cidr.BaseAddress)))
                {
                    throw new ArgumentException($"failed to create the IP allocator: pod CIDRs {pools[j].Cidr} and {pools[i].Cidr} overlap", nameof(cidrs));
                }
            }
        }
        return pools;
    }

    /// <summary>The pools, in the order given.</summary>
    public IReadOnlyList<IpPool> Pools => _pools;

    /// <summary>True when an IPv6 pod CIDR is configured.</summary>
    public bool HasIpv6 => _pools.Any(p => p.Family == AddressFamily.InterNetworkV6);

    /// <summary>
    /// Gives <paramref name="owner"/> one address of each configured family, recording them in
    /// <paramref name="tx"/>. Idempotent: an owner that already holds an address of a family
    /// keeps it. Undone if <paramref name="tx"/> rolls back.
    /// </summary>
    /// <exception cref="IpamExhaustedException">A family has no free address.</exception>
    public IReadOnlyList<IpAssignment> Allocate(StoreTransaction tx, AllocationOwner owner)
    {
        var held = tx.AllocationsOf(owner.ContainerId, owner.IfName);
        var result = new List<IpAssignment>();
        lock (_lock)
        {
            foreach (var family in _pools.Select(p => p.Family).Distinct())
            {
                var existing = held
                    .Select(r => (Row: r, Address: IPAddress.Parse(r.Address)))
                    .FirstOrDefault(r => r.Address.AddressFamily == family);
                if (existing.Row is not null)
                {
                    var pool = PoolOf(existing.Address);
                    if (pool is not null)
                    {
                        result.Add(new IpAssignment(existing.Address, pool.Cidr, pool.Gateway));
                        continue;
                    }
                    // Held in a CIDR the node no longer has: a fresh address follows below.
                }
                result.Add(AllocateFrom(tx, family, owner));
            }
        }
        return result;
    }

    /// <summary>The addresses <paramref name="owner"/> holds.</summary>
    public IReadOnlyList<IpAllocationRecord> Lookup(StoreTransaction tx, AllocationOwner owner) =>
        tx.AllocationsOf(owner.ContainerId, owner.IfName);

    /// <summary>
    /// Releases every address <paramref name="owner"/> holds and returns them; nothing (and no
    /// error) when it holds none. Undone if <paramref name="tx"/> rolls back.
    /// </summary>
    public IReadOnlyList<IpAllocationRecord> Release(StoreTransaction tx, AllocationOwner owner)
    {
        var rows = tx.AllocationsOf(owner.ContainerId, owner.IfName);
        lock (_lock)
        {
            foreach (var row in rows)
            {
                ReleaseRow(tx, row);
            }
        }
        return rows;
    }

    /// <summary>
    /// CNI GC: releases every allocation whose owner is not in <paramref name="valid"/> (the
    /// runtime's <c>cni.dev/valid-attachments</c>) and returns the owners released.
    /// </summary>
    public IReadOnlyList<AllocationOwner> GarbageCollect(StoreTransaction tx, IReadOnlySet<AllocationOwner> valid)
    {
        var released = new List<AllocationOwner>();
        lock (_lock)
        {
            foreach (var row in tx.ListAllocations())
            {
                var owner = new AllocationOwner(row.ContainerId, row.IfName);
                if (!valid.Contains(owner))
                {
                    ReleaseRow(tx, row);
                    if (released.Count == 0 || released[^1] != owner)
                    {
                        released.Add(owner); // rows come ordered by owner
                    }
                }
            }
        }
        return released;
    }

    private IpAssignment AllocateFrom(StoreTransaction tx, AddressFamily family, AllocationOwner owner)
    {
        foreach (var pool in _pools)
        {
            if (pool.Family != family || !pool.TryAllocate(out var address))
            {
                continue;
            }
            // Undo first, then write: if the insert throws, the rollback frees the bit.
            tx.OnRollback(() =>
            {
                lock (_lock)
                {
                    pool.Free(address);
                }
            });
            tx.InsertAllocation(new IpAllocationRecord(address.ToString(), pool.Cidr.ToString(), owner.ContainerId, owner.IfName, _time.GetUtcNow()));
            return new IpAssignment(address, pool.Cidr, pool.Gateway);
        }
        var pools = _pools.Where(p => p.Family == family).ToList();
        throw new IpamExhaustedException(pools[0].FamilyName, pools.Select(p => p.Cidr.ToString()).ToList(),
            pools.Sum(p => p.InUse), pools.Sum(p => p.Capacity));
    }

    private void ReleaseRow(StoreTransaction tx, IpAllocationRecord row)
    {
        tx.DeleteAllocation(row.Address);
        var address = IPAddress.Parse(row.Address);
        if (PoolOf(address) is { } pool && pool.Free(address))
        {
            tx.OnRollback(() =>
            {
                lock (_lock)
                {
                    pool.TryMarkAllocated(address);
                }
            });
        }
    }

    private IpPool? PoolOf(IPAddress address) => _pools.FirstOrDefault(p => p.Contains(address));

    /// <summary>Parses a pod CIDR (<c>198.18.0.0/24</c>); the address must be the network's own.</summary>
    /// <exception cref="ArgumentException">Not a CIDR, or host bits set.</exception>
    public static IPNetwork ParseCidr(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var address) ||
            !int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var prefix) ||
            prefix > (address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
        {
            throw new ArgumentException($"failed to parse pod CIDR '{text}': expected ADDRESS/PREFIX, e.g. 198.18.0.0/24");
        }
        // IPNetwork.Parse quietly clears such bits; a typo like 198.18.0.1/24 should be refused instead.
        var network = IpPool.Mask(address, prefix);
        if (!network.Equals(address))
        {
            throw new ArgumentException($"failed to parse pod CIDR '{text}': the address has bits set past the /{prefix} prefix (did you mean {network}/{prefix}?)");
        }
        return new IPNetwork(network, prefix);
    }
}
