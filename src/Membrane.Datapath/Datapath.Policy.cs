using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Membrane.Datapath.Policy;

namespace Membrane.Datapath;

/// <summary>
/// One resolved policy entry for the datapath (DESIGN.md: <c>{endpoint, peer identity,
/// protocol, port, direction} → allow | deny</c>).
/// </summary>
/// <param name="Endpoint">The endpoint's host-side veth ifindex.</param>
/// <param name="Direction">Ingress or egress of the endpoint.</param>
/// <param name="PeerIdentity">The peer's identity; 0 for any peer.</param>
/// <param name="Protocol">IPPROTO_*; 0 for any protocol (then the ports must be the whole range).</param>
/// <param name="FromPort">The first port (ICMP: type) of the range.</param>
/// <param name="ToPort">The last port of the range; 0–65535 is any port.</param>
/// <param name="Deny">A deny entry (deny beats allow) rather than an allow entry.</param>
/// <param name="Rule">The agent's number for the rule behind the entry (reported in verdict records).</param>
public sealed record PolicyMapEntry(int Endpoint, PolicyDirection Direction, uint PeerIdentity, byte Protocol, ushort FromPort, ushort ToPort, bool Deny, uint Rule)
{
    /// <summary>The LPM keys the entry becomes: one for any protocol or any port, else a port range cut into prefixes.</summary>
    public IEnumerable<PolicyKey> Keys()
    {
        if (FromPort > ToPort)
        {
            throw new ArgumentException($"failed to encode policy entry {this}: port range {FromPort}-{ToPort} is empty");
        }
        var key = new PolicyKey { Endpoint = checked((uint)Endpoint), Identity = PeerIdentity, Direction = Direction, Protocol = Protocol };
        if (Protocol == 0)
        {
            if (FromPort != 0 || ToPort != ushort.MaxValue)
            {
                throw new ArgumentException($"failed to encode policy entry {this}: ports need a protocol");
            }
            yield return key with { PrefixLength = (uint)PolicyPrefix.AnyProtocol };
            yield break;
        }
        foreach (var (port, bits) in PortPrefixes(FromPort, ToPort))
        {
            yield return key with { PrefixLength = (uint)PolicyPrefix.AnyPort + (uint)bits, PortBigEndian = BinaryPrimitives.ReverseEndianness(port) };
        }
    }

    /// <summary>The fewest (port, prefix bits) blocks that cover [from, to] exactly (0 bits: every port).</summary>
    public static IEnumerable<(ushort Port, int Bits)> PortPrefixes(ushort from, ushort to)
    {
        uint lo = from, hi = to;
        while (lo <= hi)
        {
            // The largest aligned block starting at lo that stays inside the range.
            var size = lo == 0 ? 1u << 16 : lo & (~lo + 1);
            while (lo + size - 1 > hi)
            {
                size >>= 1;
            }
            yield return ((ushort)lo, 16 - System.Numerics.BitOperations.Log2(size));
            lo += size;
        }
    }
}

/// <summary>What <see cref="Datapath.ReplacePolicy"/> changed.</summary>
/// <param name="Added">Keys written that were not there (or held another rule).</param>
/// <param name="Removed">Keys deleted.</param>
/// <param name="Unchanged">Keys already as wanted.</param>
public readonly record struct PolicyUpdateResult(int Added, int Removed, int Unchanged);

public sealed partial class Datapath
{
    /// <summary>
    /// Makes the policy tries hold exactly <paramref name="entries"/> for endpoint
    /// <paramref name="endpoint"/>: keys that are missing are written, keys the endpoint has
    /// and the entries lack are deleted, the rest is left alone, so that a change touches only
    /// what it changes (packets of the endpoint never see an empty policy in between). The
    /// endpoint's enforcement flags are set with <see cref="UpsertEndpoint"/>.
    /// </summary>
    public PolicyUpdateResult ReplacePolicy(int endpoint, IEnumerable<PolicyMapEntry> entries)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(entries);
        var wantAllow = new Dictionary<PolicyKey, PolicyEntry>();
        var wantDeny = new Dictionary<PolicyKey, PolicyEntry>();
        foreach (var e in entries)
        {
            if (e.Endpoint != endpoint)
            {
                throw new ArgumentException($"failed to replace the policy of endpoint {endpoint}: entry {e} is for endpoint {e.Endpoint}");
            }
            var target = e.Deny ? wantDeny : wantAllow;
            foreach (var key in e.Keys())
            {
                target[key] = new PolicyEntry { Rule = e.Rule };
            }
        }
        lock (_policyLock)
        {
            var index = PolicyIndex();
            var (haveAllow, haveDeny) = index.TryGetValue((uint)endpoint, out var had) ? had : ([], []);
            try
            {
                // Denies go in first and come out last, so that no moment has an allow without
                // the deny that limits it (also when a write fails half-way: the retry finds
                // the denies).
                var (addedDeny, sameDeny) = Add(PolicyDeny, haveDeny, wantDeny);
                var (addedAllow, sameAllow) = Add(PolicyAllow, haveAllow, wantAllow);
                var removed = Remove(PolicyAllow, haveAllow, wantAllow) + Remove(PolicyDeny, haveDeny, wantDeny);
                if (wantAllow.Count + wantDeny.Count == 0)
                {
                    index.Remove((uint)endpoint);
                }
                else
                {
                    index[(uint)endpoint] = (wantAllow, wantDeny);
                }
                return new PolicyUpdateResult(addedAllow + addedDeny, removed, sameAllow + sameDeny);
            }
            catch
            {
                _policyIndex = null; // half-written: read the kernel again next time
                throw;
            }
        }
    }

    private readonly Lock _policyLock = new();

    /// <summary>What the policy tries hold, by endpoint; read from the kernel once (also from an adopted datapath's pins), then kept up to date by <see cref="ReplacePolicy"/>.</summary>
    private Dictionary<uint, (Dictionary<PolicyKey, PolicyEntry> Allow, Dictionary<PolicyKey, PolicyEntry> Deny)>? _policyIndex;

    /// <summary>
    /// The index, read from the kernel when there is none: one walk of each trie instead of one
    /// per endpoint change (an import touching E endpoints walked both tries E times). A lookup
    /// in an LPM trie is a longest-prefix match, so whether a wanted key is there cannot be
    /// asked with a lookup (an any-port entry would answer for a one-port key); the walk gives
    /// the exact keys, and a lookup of a key that exists returns that key's own value.
    /// </summary>
    private Dictionary<uint, (Dictionary<PolicyKey, PolicyEntry> Allow, Dictionary<PolicyKey, PolicyEntry> Deny)> PolicyIndex()
    {
        if (_policyIndex is { } index)
        {
            return index;
        }
        index = [];
        foreach (var (map, deny) in new[] { (PolicyAllow, false), (PolicyDeny, true) })
        {
            foreach (var key in map.Keys.ToArray())
            {
                if (!map.TryLookup(key, out var value))
                {
                    continue;
                }
                if (!index.TryGetValue(key.Endpoint, out var entries))
                {
                    entries = ([], []);
                    index[key.Endpoint] = entries;
                }
                (deny ? entries.Deny : entries.Allow)[key] = value;
            }
        }
        return _policyIndex = index;
    }

    private static (int Added, int Same) Add(Linux.Bpf.BpfMap<PolicyKey, PolicyEntry> map, Dictionary<PolicyKey, PolicyEntry> have, Dictionary<PolicyKey, PolicyEntry> want)
    {
        int added = 0, same = 0;
        foreach (var (key, value) in want)
        {
            if (have.TryGetValue(key, out var current) && current.Rule == value.Rule)
            {
                same++;
                continue;
            }
            map.Update(key, value);
            added++;
        }
        return (added, same);
    }

    private static int Remove(Linux.Bpf.BpfMap<PolicyKey, PolicyEntry> map, Dictionary<PolicyKey, PolicyEntry> have, Dictionary<PolicyKey, PolicyEntry> want) =>
        have.Keys.Where(k => !want.ContainsKey(k)).Count(k => map.Delete(k));

    /// <summary>The policy keys of <paramref name="endpoint"/> (every endpoint when null), with deny flag and rule.</summary>
    public IReadOnlyList<(PolicyKey Key, bool Deny, uint Rule)> ListPolicy(int? endpoint = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var list = new List<(PolicyKey, bool, uint)>();
        foreach (var (map, deny) in new[] { (PolicyAllow, false), (PolicyDeny, true) })
        {
            foreach (var key in map.Keys.ToArray())
            {
                if ((endpoint is null || key.Endpoint == (uint)endpoint) && map.TryLookup(key, out var value))
                {
                    list.Add((key, deny, value.Rule));
                }
            }
        }
        return list;
    }

    /// <summary>Maps the addresses of <paramref name="prefix"/> to <paramref name="identity"/> in the ipcache (replacing what the prefix had).</summary>
    public void UpsertIpcache(IPNetwork prefix, uint identity)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Ipcache.Update(IpcacheKeyOf(prefix), new IpcacheEntry { Identity = identity });
    }

    /// <summary>Removes the ipcache entry of exactly <paramref name="prefix"/>; false when there was none.</summary>
    public bool DeleteIpcache(IPNetwork prefix)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Ipcache.Delete(IpcacheKeyOf(prefix));
    }

    /// <summary>The ipcache's entries.</summary>
    public IReadOnlyList<(IPNetwork Prefix, uint Identity)> ListIpcache()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var list = new List<(IPNetwork, uint)>();
        foreach (var key in Ipcache.Keys.ToArray())
        {
            if (Ipcache.TryLookup(key, out var value))
            {
                ReadOnlySpan<byte> bytes = key.Address;
                var address = new IPAddress(key.Family == 4 ? bytes[..4] : bytes);
                list.Add((new IPNetwork(address, (int)key.PrefixLength - 32), value.Identity));
            }
        }
        return list;
    }

    private static IpcacheKey IpcacheKeyOf(IPNetwork prefix)
    {
        var key = new IpcacheKey { Family = prefix.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? (byte)4 : (byte)6 };
        if (prefix.BaseAddress.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw new ArgumentException($"failed to encode ipcache prefix {prefix}: not IPv4 or IPv6", nameof(prefix));
        }
        prefix.BaseAddress.TryWriteBytes(key.Address, out _);
        key.PrefixLength = 32 + (uint)prefix.PrefixLength;
        return key;
    }
}
