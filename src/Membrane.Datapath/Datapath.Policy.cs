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
    /// Makes the policy maps hold exactly <paramref name="entries"/> for endpoint
    /// <paramref name="endpoint"/>: keys that are missing are written, keys the endpoint has
    /// and the entries lack are deleted, the rest is left alone, so that a change touches only
    /// what it changes (packets of the endpoint never see an empty policy in between). Keys for
    /// one port, a whole protocol or every protocol go to the policy_exact hash (both verdicts
    /// of a key in one value), port ranges to the allow and deny tries (bpf/lib/policy.h). The
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
                // The node-wide "some exist" flags go up before the entries and down after them:
                // the datapath skips denies and ranges while a flag is down.
                var denies = _denyKeys - haveDeny.Count + wantDeny.Count;
                var ranges = _rangeKeys - Ranges(haveAllow) - Ranges(haveDeny) + Ranges(wantAllow) + Ranges(wantDeny);
                WritePolicyConfig(denies > 0 || _denyKeys > 0, ranges > 0 || _rangeKeys > 0);
                var result = WritePolicy(haveAllow, haveDeny, wantAllow, wantDeny);
                (_denyKeys, _rangeKeys) = (denies, ranges);
                WritePolicyConfig(denies > 0, ranges > 0);
                if (wantAllow.Count + wantDeny.Count == 0)
                {
                    index.Remove((uint)endpoint);
                }
                else
                {
                    index[(uint)endpoint] = (wantAllow, wantDeny);
                }
                return result;
            }
            catch
            {
                _policyIndex = null; // half-written: read the kernel again next time
                throw;
            }
        }
    }

    private int _denyKeys, _rangeKeys; // node-wide, as the index has them
    private PolicyConfig? _configWritten;

    private static int Ranges(Dictionary<PolicyKey, PolicyEntry> keys) => keys.Keys.Count(k => !IsExact(k));

    private void WritePolicyConfig(bool denies, bool ranges)
    {
        var config = new PolicyConfig { Denies = denies ? 1u : 0u, Ranges = ranges ? 1u : 0u };
        if (_configWritten is { } written && written.Equals(config))
        {
            return;
        }
        PolicyConfig.Update(0, config);
        _configWritten = config;
    }

    /// <summary>True for a key the policy_exact hash holds: one port, every port of a protocol, every protocol.</summary>
    private static bool IsExact(in PolicyKey key) =>
        key.PrefixLength is (uint)PolicyPrefix.Full or (uint)PolicyPrefix.AnyPort or (uint)PolicyPrefix.AnyProtocol;

    /// <summary>The policy_exact value of <paramref name="key"/> for these allow and deny entries.</summary>
    private static PolicyExact ExactValue(Dictionary<PolicyKey, PolicyEntry> allow, Dictionary<PolicyKey, PolicyEntry> deny, PolicyKey key)
    {
        var value = new PolicyExact();
        if (allow.TryGetValue(key, out var a))
        {
            value.Flags |= PolicyExactFlags.Allow;
            value.AllowRule = a.Rule;
        }
        if (deny.TryGetValue(key, out var d))
        {
            value.Flags |= PolicyExactFlags.Deny;
            value.DenyRule = d.Rule;
        }
        return value;
    }

    /// <summary>
    /// Writes the difference between what an endpoint has and what it wants. Denies go in first
    /// and come out last, so that no moment has an allow without the deny that limits it (also
    /// when a write fails half-way: the retry finds the denies): range denies and exact keys
    /// keeping or gaining a deny, then the allows; then allows out, then denies out.
    /// </summary>
    private PolicyUpdateResult WritePolicy(Dictionary<PolicyKey, PolicyEntry> haveAllow, Dictionary<PolicyKey, PolicyEntry> haveDeny,
        Dictionary<PolicyKey, PolicyEntry> wantAllow, Dictionary<PolicyKey, PolicyEntry> wantDeny)
    {
        int added = 0, removed = 0, same = 0;
        var denyIn = new List<(PolicyKey, PolicyExact)>();
        var allowIn = new List<(PolicyKey, PolicyExact)>();
        var allowOut = new List<PolicyKey>();
        var denyOut = new List<(PolicyKey Key, PolicyExact Value)>(); // a value with no flags is a delete
        foreach (var key in haveAllow.Keys.Concat(haveDeny.Keys).Concat(wantAllow.Keys).Concat(wantDeny.Keys).Where(k => IsExact(k)).Distinct())
        {
            var old = ExactValue(haveAllow, haveDeny, key);
            var now = ExactValue(wantAllow, wantDeny, key);
            foreach (var (flag, oldRule, nowRule) in new[] { (PolicyExactFlags.Allow, old.AllowRule, now.AllowRule), (PolicyExactFlags.Deny, old.DenyRule, now.DenyRule) })
            {
                bool had = old.Flags.HasFlag(flag), has = now.Flags.HasFlag(flag);
                if (had && has && oldRule == nowRule)
                {
                    same++;
                }
                else if (has)
                {
                    added++;
                }
                else if (had)
                {
                    removed++;
                }
            }
            if (old.Equals(now))
            {
                continue;
            }
            if (old.Flags.HasFlag(PolicyExactFlags.Deny) && !now.Flags.HasFlag(PolicyExactFlags.Deny))
            {
                denyOut.Add((key, now));
            }
            else if (now.Flags == PolicyExactFlags.None)
            {
                allowOut.Add(key);
            }
            else
            {
                (now.Flags.HasFlag(PolicyExactFlags.Deny) ? denyIn : allowIn).Add((key, now));
            }
        }

        foreach (var (key, value) in denyIn)
        {
            PolicyExact.Update(key, value);
        }
        added += AddRanges(PolicyDeny, haveDeny, wantDeny, ref same);
        foreach (var (key, value) in allowIn)
        {
            PolicyExact.Update(key, value);
        }
        added += AddRanges(PolicyAllow, haveAllow, wantAllow, ref same);
        foreach (var key in allowOut)
        {
            PolicyExact.Delete(key);
        }
        removed += RemoveRanges(PolicyAllow, haveAllow, wantAllow);
        foreach (var (key, value) in denyOut)
        {
            if (value.Flags == PolicyExactFlags.None)
            {
                PolicyExact.Delete(key);
            }
            else
            {
                PolicyExact.Update(key, value);
            }
        }
        removed += RemoveRanges(PolicyDeny, haveDeny, wantDeny);
        return new PolicyUpdateResult(added, removed, same);
    }

    private readonly Lock _policyLock = new();

    /// <summary>What the policy maps hold, by endpoint; read from the kernel once (also from an adopted datapath's pins), then kept up to date by <see cref="ReplacePolicy"/>.</summary>
    private Dictionary<uint, (Dictionary<PolicyKey, PolicyEntry> Allow, Dictionary<PolicyKey, PolicyEntry> Deny)>? _policyIndex;

    /// <summary>
    /// The index, read from the kernel when there is none: one walk of each map instead of one
    /// per endpoint change (an import touching E endpoints walked the maps E times). A lookup
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
        foreach (var (key, deny, rule) in ReadPolicy(null))
        {
            if (!index.TryGetValue(key.Endpoint, out var entries))
            {
                entries = ([], []);
                index[key.Endpoint] = entries;
            }
            (deny ? entries.Deny : entries.Allow)[key] = new PolicyEntry { Rule = rule };
        }
        _denyKeys = index.Values.Sum(e => e.Deny.Count);
        _rangeKeys = index.Values.Sum(e => Ranges(e.Allow) + Ranges(e.Deny));
        _configWritten = null; // the kernel's may be anything: written again at the next change
        return _policyIndex = index;
    }

    private static int AddRanges(Linux.Bpf.BpfMap<PolicyKey, PolicyEntry> map, Dictionary<PolicyKey, PolicyEntry> have, Dictionary<PolicyKey, PolicyEntry> want, ref int same)
    {
        var added = 0;
        foreach (var (key, value) in want)
        {
            if (IsExact(key))
            {
                continue;
            }
            if (have.TryGetValue(key, out var current) && current.Rule == value.Rule)
            {
                same++;
                continue;
            }
            map.Update(key, value);
            added++;
        }
        return added;
    }

    private static int RemoveRanges(Linux.Bpf.BpfMap<PolicyKey, PolicyEntry> map, Dictionary<PolicyKey, PolicyEntry> have, Dictionary<PolicyKey, PolicyEntry> want) =>
        have.Keys.Where(k => !IsExact(k) && !want.ContainsKey(k)).Count(k => map.Delete(k));

    /// <summary>The policy keys of <paramref name="endpoint"/> (every endpoint when null), with deny flag and rule.</summary>
    public IReadOnlyList<(PolicyKey Key, bool Deny, uint Rule)> ListPolicy(int? endpoint = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return ReadPolicy(endpoint is null ? null : (uint)endpoint);
    }

    // Both tries and the exact hash, an exact key once for each verdict it holds.
    private List<(PolicyKey Key, bool Deny, uint Rule)> ReadPolicy(uint? endpoint)
    {
        var list = new List<(PolicyKey, bool, uint)>();
        foreach (var (map, deny) in new[] { (PolicyAllow, false), (PolicyDeny, true) })
        {
            foreach (var key in map.Keys.ToArray())
            {
                if ((endpoint is null || key.Endpoint == endpoint) && map.TryLookup(key, out var value))
                {
                    list.Add((key, deny, value.Rule));
                }
            }
        }
        foreach (var key in PolicyExact.Keys.ToArray())
        {
            if ((endpoint is null || key.Endpoint == endpoint) && PolicyExact.TryLookup(key, out var value))
            {
                if (value.Flags.HasFlag(PolicyExactFlags.Allow))
                {
                    list.Add((key, false, value.AllowRule));
                }
                if (value.Flags.HasFlag(PolicyExactFlags.Deny))
                {
                    list.Add((key, true, value.DenyRule));
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
