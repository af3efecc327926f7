using System.Net;
using Membrane.Agent.Policy;
using Membrane.Datapath;
using Membrane.Datapath.Policy;

namespace Membrane.Agent.Tests;

/// <summary>
/// A test double of the kernel's policy state: per-ifindex entries as the agent last wrote
/// them, enforcement flags, the ipcache, the node's addresses; fails on demand.
/// </summary>
public sealed class FakePolicyDatapath : IPolicyDatapath
{
    private readonly Lock _lock = new();

    /// <summary>The "tries": ifindex → entries.</summary>
    public Dictionary<int, List<PolicyMapEntry>> Entries { get; } = [];

    /// <summary>The endpoint entries' flags: ifindex → (ingress, egress).</summary>
    public Dictionary<int, (bool Ingress, bool Egress)> Flags { get; } = [];

    /// <summary>The "ipcache".</summary>
    public Dictionary<IPNetwork, uint> Ipcache { get; } = [];

    /// <summary>What ListNodeAddresses answers.</summary>
    public List<IPAddress> NodeAddresses { get; } = [IPAddress.Parse("198.19.255.1"), IPAddress.Parse("198.18.0.1"), IPAddress.Parse("fe80::1")];

    /// <summary>When set, every write throws it.</summary>
    public Exception? FailWrites { get; set; }

    /// <summary>How many ReplacePolicy calls were made.</summary>
    public int Replacements { get; private set; }

    public PolicyUpdateResult ReplacePolicy(int ifindex, IReadOnlyList<PolicyMapEntry> entries)
    {
        lock (_lock)
        {
            Fail();
            Replacements++;
            Assert.All(entries, e => Assert.Equal(ifindex, e.Endpoint));
            // Encodable as the real datapath encodes them.
            Assert.All(entries, e => Assert.NotEmpty(e.Keys()));
            if (entries.Count == 0)
            {
                Entries.Remove(ifindex);
            }
            else
            {
                Entries[ifindex] = [.. entries];
            }
            return new PolicyUpdateResult(entries.Count, 0, 0);
        }
    }

    public void SetPolicyFlags(int ifindex, bool ingress, bool egress)
    {
        lock (_lock)
        {
            Fail();
            Flags[ifindex] = (ingress, egress);
        }
    }

    public (bool Ingress, bool Egress)? GetPolicyFlags(int ifindex)
    {
        lock (_lock)
        {
            return Flags.TryGetValue(ifindex, out var f) ? f : null;
        }
    }

    public IReadOnlyList<(PolicyKey Key, bool Deny, uint Rule)> ListPolicy(int? ifindex)
    {
        lock (_lock)
        {
            return [.. Entries.Where(kv => ifindex is null || kv.Key == ifindex)
                .SelectMany(kv => kv.Value).SelectMany(e => e.Keys().Select(k => (k, e.Deny, e.Rule)))];
        }
    }

    public void UpsertIpcache(IPNetwork prefix, uint identity)
    {
        lock (_lock)
        {
            Fail();
            Ipcache[prefix] = identity;
        }
    }

    public bool DeleteIpcache(IPNetwork prefix)
    {
        lock (_lock)
        {
            Fail();
            return Ipcache.Remove(prefix);
        }
    }

    public IReadOnlyList<(IPNetwork Prefix, uint Identity)> ListIpcache()
    {
        lock (_lock)
        {
            return [.. Ipcache.Select(kv => (kv.Key, kv.Value))];
        }
    }

    public IReadOnlyList<IPAddress> ListNodeAddresses() =>
        FailNodeAddresses ? throw new IOException("netlink says no") : [.. NodeAddresses];

    /// <summary>Makes ListNodeAddresses fail.</summary>
    public bool FailNodeAddresses { get; set; }

    /// <summary>The entries of <paramref name="ifindex"/> as sorted text: "ingress 256 6 8080-8080 allow".</summary>
    public IReadOnlyList<string> Describe(int ifindex)
    {
        lock (_lock)
        {
            return Entries.TryGetValue(ifindex, out var list)
                ? [.. list.Select(e => $"{e.Direction.ToString().ToLowerInvariant()} {e.PeerIdentity} {e.Protocol} {e.FromPort}-{e.ToPort} {(e.Deny ? "deny" : "allow")}").Order(StringComparer.Ordinal)]
                : [];
        }
    }

    private void Fail()
    {
        if (FailWrites is { } e)
        {
            throw e;
        }
    }
}
