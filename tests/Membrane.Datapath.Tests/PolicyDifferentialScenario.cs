using System.Globalization;
using System.Net;
using System.Text;
using Membrane.Datapath.Policy;
using Membrane.Packets;
using Membrane.Policy.Evaluation;
using Membrane.Policy.Identities;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Parsing;
using Membrane.Policy.Repository;
using Membrane.Policy.Resolution;

namespace Membrane.Datapath.Tests.Policy;

/// <summary>A pod of a generated scenario: its labels (with the namespace's), identity, addresses and MACs.</summary>
internal sealed record DiffPod(int Index, string Name, LabelSet Labels, uint Identity, IPAddress Address, IPAddress Address6, MacAddress Mac, MacAddress HostMac)
{
    /// <summary>The host-side veth ifindex the pod's policy entries are written under when it is not the one under test.</summary>
    public int HomeIfindex => 100 + Index;

    public override string ToString() => $"{Name} ({Address}, {Address6}, identity {Identity}, [{Labels}])";
}

/// <summary>What a party of a cell is: a local pod, an address outside the cluster, the node, another node.</summary>
internal enum DiffPeerKind
{
    Pod,
    World,
    Host,
    RemoteNode,
}

/// <summary>One end of a cell, with its IPv4 and its IPv6 address.</summary>
internal sealed record DiffPeer(string Name, DiffPeerKind Kind, IPAddress Address, IPAddress Address6, DiffPod? Pod = null)
{
    /// <summary>The address of <paramref name="family"/> (4 or 6).</summary>
    public IPAddress AddressOf(int family) => family == 4 ? Address : Address6;

    public override string ToString() => Pod?.ToString() ?? $"{Name} ({Address}, {Address6})";
}

/// <summary>One cell of the matrix: the first packet of a connection from source to destination, over IPv4 or IPv6.</summary>
internal sealed record DiffCell(int Family, DiffPeer Source, DiffPeer Destination, byte Protocol, int Port)
{
    /// <summary>The pod whose program runs the packet: the source pod (from_pod), else the destination pod (to_pod).</summary>
    public DiffPod UnderTest => Source.Pod ?? Destination.Pod!;

    /// <summary>Whether the packet runs through from_pod (a pod sends it) rather than to_pod.</summary>
    public bool FromPod => Source.Pod is not null;

    /// <summary>Whether the packet is an ICMP or ICMPv6 echo request (the port is its type).</summary>
    public bool IsIcmp => Protocol is IpProtocol.Icmp or IpProtocol.IcmpV6;

    public override string ToString() =>
        $"IPv{Family} {Source.Name} {Source.AddressOf(Family)} -> {Destination.Name} {Destination.AddressOf(Family)} {IpProtocol.Name(Protocol)}{(IsIcmp ? " type " : "/")}{Port}";
}

/// <summary>How a cell ended: forwarded, or dropped and why.</summary>
internal enum CellVerdict
{
    Allowed,
    /// <summary>DROP_POLICY_DENIED: an enforced direction and no allow matched.</summary>
    PolicyDenied,
    /// <summary>DROP_POLICY_DENY: a deny rule matched.</summary>
    PolicyDeny,
    /// <summary>Dropped for a reason that is not policy (never expected).</summary>
    OtherDrop,
}

/// <summary>
/// One generated scenario of the policy differential test (issue 6, "Agreement"): pods with
/// label sets in two namespaces (hence identities, some shared), addresses outside the
/// cluster straddling every CIDR and except boundary the rules can name, the node and another
/// node, and a set of CiliumNetworkPolicy and NetworkPolicy documents written as YAML and read
/// by the real parser. From a seed, always the same scenario.
/// </summary>
internal sealed class PolicyDifferentialScenario
{
    /// <summary>Node-local (CIDR) identities start where the agent's do (PolicyManager.FirstLocalIdentity, Cilium's local scope).</summary>
    public const uint FirstCidrIdentity = 1u << 24;

    private static readonly string[] s_namespaces = ["default", "team-a"];

    /// <summary>Each namespace's own labels, carried by its pods as Cilium does (<c>io.cilium.k8s.namespace.labels.team</c>).</summary>
    private static readonly Dictionary<string, string> s_namespaceTeam = new() { ["default"] = "blue", ["team-a"] = "red" };

    private static readonly string[] s_apps = ["web", "api", "db"];

    /// <summary>CIDR blocks a rule may name, each with the excepts it may carry (prefixes inside it).</summary>
    private static readonly (string Cidr, string[][] Excepts)[] s_cidrs =
    [
        ("198.19.0.0/16", [[], ["198.19.7.0/24"], ["198.19.7.128/25", "198.19.64.0/18"]]),
        ("198.19.7.0/24", [[], ["198.19.7.128/25"]]),
        ("198.18.0.0/15", [[], ["198.19.0.0/16"], ["198.18.128.0/17"]]),
        ("198.18.128.0/17", [[]]),
        ("198.19.7.7/32", [[]]),
        ("198.18.255.254/32", [[]]), // exactly the node's address: the host stays the host
        ("0.0.0.0/0", [[], ["198.19.0.0/16"]]),
        ("fd00:198:18::/48", [[], ["fd00:198:18:7::/64"], ["fd00:198:18:70::/60", "fd00:198:18:7:8000::/65"]]),
        ("fd00:198:18:7::/64", [[], ["fd00:198:18:7:8000::/65"]]),
        ("fd00:198:18:7::7/128", [[]]),
        ("fd00:198:18:ffff::fe/128", [[]]), // exactly the node's IPv6 address
        ("::/0", [[], ["fd00:198:18:7::/64"]]),
    ];

    /// <summary>
    /// Addresses outside the cluster, IPv4 and IPv6 in pairs: inside and outside each block and
    /// except above.
    /// </summary>
    private static readonly (string V4, string V6)[] s_world =
    [
        ("198.19.7.7", "fd00:198:18:7::7"), ("198.19.7.200", "fd00:198:18:7:8000::1"), ("198.19.70.1", "fd00:198:18:70::1"),
        ("198.19.200.9", "fd00:198:18:ff::9"), ("198.18.200.1", "fd00:198:18:7::200"), ("198.18.64.3", "fd00:198:18:71::3"),
    ];

    /// <summary>The node's own addresses (ipcache: host) and another node's (ipcache: remote-node).</summary>
    public static readonly IPAddress HostAddress = IPAddress.Parse("198.18.255.254");
    public static readonly IPAddress HostAddress6 = IPAddress.Parse("fd00:198:18:ffff::fe");
    public static readonly IPAddress RemoteNodeAddress = IPAddress.Parse("198.19.7.1");
    public static readonly IPAddress RemoteNodeAddress6 = IPAddress.Parse("fd00:198:18:7::1");

    /// <summary>Port ranges rules use (endPort when First != Last).</summary>
    private static readonly (int First, int Last)[] s_portRanges =
        [(53, 53), (80, 80), (443, 443), (5432, 5432), (8080, 8080), (8000, 8080), (80, 81), (1024, 2047), (30000, 32767)];

    /// <summary>Destination ports probed: every range's edges and their neighbours, and the ends of the port space.</summary>
    public static readonly int[] TcpPorts = [1, 52, 53, 54, 79, 80, 81, 82, 443, 1023, 1024, 2047, 2048, 5432, 7999, 8000, 8080, 8081, 29999, 30000, 32767, 32768, 65535];
    public static readonly int[] UdpPorts = [53, 54, 80, 82, 1024, 2047, 2048, 8000, 8081, 30000, 65535];

    /// <summary>ICMP echo request (RFC 792): policy matches ICMP by type, carried in the port field.</summary>
    public const int EchoRequestType = 8;

    /// <summary>ICMPv6 echo request (RFC 4443 4.1).</summary>
    public const int EchoRequestType6 = 128;

    public int Seed { get; }

    /// <summary>Cilium's --allow-localhost (the agent's default) in odd seeds, plain default deny in even ones.</summary>
    public PolicyOptions Options { get; private init; } = PolicyOptions.Default;

    /// <summary>The YAML of the policies in force, one document per policy.</summary>
    public string Yaml => string.Join("---\n", _documents.Values.Select(d => d.Yaml));

    public IReadOnlyList<DiffPod> Pods { get; private set; } = [];

    /// <summary>Every peer: the pods, then the world addresses, the host and the remote node.</summary>
    public IReadOnlyList<DiffPeer> Peers { get; private set; } = [];

    /// <summary>The policies in force.</summary>
    public PolicySnapshot Policies => _repository.Current;

    /// <summary>The node-local identity of every prefix the rules name, given as the agent gives them (PolicyManager.SyncCidrIdentities).</summary>
    public IReadOnlyDictionary<IPNetwork, uint> CidrIdentities => _cidrIdentities;

    /// <summary>The resolver's map of every pod, keyed by pod index.</summary>
    public IReadOnlyDictionary<ulong, EndpointPolicyMap> Maps => _resolver.Maps;

    private readonly Random _random;
    private readonly PolicyRepository _repository = new();
    private readonly Dictionary<IPNetwork, uint> _cidrIdentities = [];
    private readonly SortedDictionary<int, (string Namespace, string Yaml)> _documents = [];
    private PolicyResolver _resolver = new();
    private uint _nextCidrIdentity = FirstCidrIdentity;
    private int _imports;

    private PolicyDifferentialScenario(int seed, Random random)
    {
        Seed = seed;
        _random = random;
    }

    /// <summary>Generates, parses and resolves the scenario of <paramref name="seed"/>.</summary>
    public static PolicyDifferentialScenario Generate(int seed)
    {
        var random = new Random(seed);
        var s = new PolicyDifferentialScenario(seed, random)
        {
            Options = new PolicyOptions(AllowLocalhost: seed % 2 == 1),
        };
        s.Pods = GeneratePods(random);
        s.GeneratePolicies();
        var peers = new List<DiffPeer>(s.Pods.Select(p => new DiffPeer(p.Name, DiffPeerKind.Pod, p.Address, p.Address6, p)));
        peers.AddRange(s_world.Select((a, i) => new DiffPeer($"world{i}", DiffPeerKind.World, IPAddress.Parse(a.V4), IPAddress.Parse(a.V6))));
        peers.Add(new DiffPeer("host", DiffPeerKind.Host, HostAddress, HostAddress6));
        peers.Add(new DiffPeer("remote-node", DiffPeerKind.RemoteNode, RemoteNodeAddress, RemoteNodeAddress6));
        s.Peers = peers;

        // The agent's order: the endpoints and their identities exist, then the policy import
        // comes with the CIDR identities it needs, in one resolver update.
        s._resolver = new PolicyResolver(null, s.Pods.DistinctBy(p => p.Identity).Select(p => new PolicyIdentity(p.Identity, p.Labels)),
            s.Pods.Select(p => new PolicyEndpoint((ulong)p.Index, p.Labels)), s.Options);
        s.Import(s._documents.Keys, []);
        return s;
    }

    /// <summary>
    /// A second step, as an operator's next <c>policy import</c> and <c>policy delete</c>: one
    /// policy is rewritten, one added and (with three or more) one deleted. The resolver updates
    /// incrementally; returns the pods whose maps changed (what the agent rewrites) and checks
    /// that the incremental maps equal a resolution from scratch.
    /// </summary>
    public IReadOnlyList<DiffPod> Update()
    {
        var keys = _documents.Keys.ToList();
        var rewritten = keys[_random.Next(keys.Count)];
        var added = keys.Max() + 1;
        var deleted = keys.Count >= 3 ? keys.Where(k => k != 0 && k != rewritten).OrderBy(_ => _random.Next()).First() : (int?)null;
        _documents[rewritten] = Document(rewritten, _documents[rewritten].Namespace);
        _documents[added] = Document(added, null);
        var diff = Import([rewritten, added], deleted is { } d ? [d] : []);
        var scratch = PolicyResolver.ResolveAll(Policies, Identities(), Pods.Select(p => new PolicyEndpoint((ulong)p.Index, p.Labels)), Options);
        foreach (var pod in Pods)
        {
            if (!scratch[(ulong)pod.Index].Equals(Maps[(ulong)pod.Index]))
            {
                throw new InvalidOperationException($"failed to update the scenario of seed {Seed}: the incremental map of {pod.Name} differs from a resolution from scratch");
            }
        }
        return [.. diff.Endpoints.Select(e => Pods[(int)e.EndpointId])];
    }

    private IEnumerable<PolicyIdentity> Identities() =>
        Pods.DistinctBy(p => p.Identity).Select(p => new PolicyIdentity(p.Identity, p.Labels))
            .Concat(_cidrIdentities.Select(kv => PolicyIdentity.ForCidr(kv.Value, kv.Key)));

    /// <summary>
    /// Parses the documents <paramref name="changed"/> as one import, deletes
    /// <paramref name="deleted"/>, and updates the CIDR identities and the resolver in one step,
    /// as the agent does (PolicyManager: SyncCidrIdentities then SetPolicies in a Batch).
    /// </summary>
    private PolicyMapDiff Import(IEnumerable<int> changed, IEnumerable<int> deleted)
    {
        var name = $"seed-{Seed}-import-{++_imports}.yaml";
        var text = string.Join("---\n", changed.Select(i => _documents[i].Yaml));
        var import = new PolicyDocumentParser().Parse(name, text);
        if (!import.Succeeded)
        {
            throw new InvalidOperationException($"failed to parse the generated policy {name}: {import.ErrorText}\n{text}");
        }
        _repository.Apply(import);
        foreach (var i in deleted)
        {
            Assert.True(_repository.Delete(new Membrane.Policy.Model.PolicyKey(_documents[i].Namespace, $"p{i}"), out _), $"failed to delete policy p{i}: not there");
            _documents.Remove(i);
        }
        var snapshot = _repository.Current;
        var wanted = snapshot.CidrPrefixes.ToHashSet();
        var stale = _cidrIdentities.Where(kv => !wanted.Contains(kv.Key)).ToList();
        var fresh = new List<PolicyIdentity>();
        foreach (var prefix in snapshot.CidrPrefixes.Where(p => !_cidrIdentities.ContainsKey(p)))
        {
            _cidrIdentities[prefix] = _nextCidrIdentity;
            fresh.Add(PolicyIdentity.ForCidr(_nextCidrIdentity++, prefix));
        }
        foreach (var (prefix, _) in stale)
        {
            _cidrIdentities.Remove(prefix);
        }
        return _resolver.Batch(r =>
        {
            fresh.ForEach(i => r.UpsertIdentity(i));
            r.SetPolicies(snapshot);
            stale.ForEach(kv => r.RemoveIdentity(kv.Value));
        });
    }

    /// <summary>
    /// Every cell: each pod to every other peer (through from_pod), and each peer outside the
    /// pods to every pod (through to_pod), over IPv4 and IPv6, for TCP and UDP on
    /// <see cref="TcpPorts"/> and <see cref="UdpPorts"/> and for an ICMP (ICMPv6) echo request.
    /// </summary>
    public IEnumerable<DiffCell> Cells()
    {
        foreach (var family in new[] { 4, 6 })
        {
            foreach (var source in Peers)
            {
                foreach (var destination in Peers)
                {
                    if (source == destination || (source.Pod is null && destination.Pod is null))
                    {
                        continue;
                    }
                    foreach (var port in TcpPorts)
                    {
                        yield return new DiffCell(family, source, destination, IpProtocol.Tcp, port);
                    }
                    foreach (var port in UdpPorts)
                    {
                        yield return new DiffCell(family, source, destination, IpProtocol.Udp, port);
                    }
                    yield return family == 4
                        ? new DiffCell(family, source, destination, IpProtocol.Icmp, EchoRequestType)
                        : new DiffCell(family, source, destination, IpProtocol.IcmpV6, EchoRequestType6);
                }
            }
        }
    }

    /// <summary>The reference evaluator's verdict for a cell.</summary>
    public PolicyVerdict Evaluate(DiffCell cell) =>
        PolicyEvaluator.Evaluate(Policies, PeerOf(cell.Source, cell.Family), PeerOf(cell.Destination, cell.Family), cell.Protocol, cell.Port, Options);

    /// <summary>
    /// What the datapath must do given the evaluator's verdict: the sender's egress is judged
    /// first (its drop reason wins), then the receiver's ingress.
    /// </summary>
    public static CellVerdict Expected(PolicyVerdict verdict) =>
        !verdict.Egress.Allowed ? Reason(verdict.Egress.Outcome)
        : !verdict.Ingress.Allowed ? Reason(verdict.Ingress.Outcome)
        : CellVerdict.Allowed;

    private static CellVerdict Reason(DirectionOutcome outcome) =>
        outcome == DirectionOutcome.DeniedByRule ? CellVerdict.PolicyDeny : CellVerdict.PolicyDenied;

    /// <summary>
    /// The verdict of the resolved maps, looked up as the datapath must (EndpointPolicyMap.Lookup):
    /// the source pod's egress map for the destination's identity, then a destination pod's
    /// ingress map for the source's identity.
    /// </summary>
    public CellVerdict Resolved(DiffCell cell)
    {
        if (cell.Source.Pod is { } src)
        {
            var egress = Judge(src, IdentityOf(cell.Destination, cell.Family), cell, TrafficDirection.Egress);
            if (egress != CellVerdict.Allowed)
            {
                return egress;
            }
        }
        return cell.Destination.Pod is { } dst ? Judge(dst, IdentityOf(cell.Source, cell.Family), cell, TrafficDirection.Ingress) : CellVerdict.Allowed;
    }

    private CellVerdict Judge(DiffPod pod, uint peer, DiffCell cell, TrafficDirection direction) =>
        Decide(pod, peer, cell, direction, out _);

    private CellVerdict Decide(DiffPod pod, uint peer, DiffCell cell, TrafficDirection direction, out PolicyMapKey? decidedBy)
    {
        var map = Maps[(ulong)pod.Index];
        if (map.Lookup(peer, cell.Protocol, cell.Port, direction, out decidedBy) == PolicyMapAction.Allow)
        {
            return CellVerdict.Allowed;
        }
        return decidedBy is null ? CellVerdict.PolicyDenied : CellVerdict.PolicyDeny;
    }

    /// <summary>
    /// The identity the datapath gives a peer: a pod's own; for any other address the longest
    /// ipcache prefix (the node and the remote node as /32 host entries written after the CIDR
    /// identities, so they win an exactly named prefix), else world.
    /// </summary>
    public uint IdentityOf(DiffPeer peer, int family) => peer.Pod?.Identity ?? Ipcache()
        .Where(e => e.Prefix.Contains(peer.AddressOf(family)))
        .OrderByDescending(e => e.Prefix.PrefixLength)
        .Select(e => e.Identity)
        .DefaultIfEmpty(ReservedIdentities.World)
        .First();

    /// <summary>
    /// What the ipcache holds, in the order it is written: every CIDR prefix with its identity,
    /// then the node's address as host and the other node's as remote-node (the agent writes
    /// host addresses over a CIDR rule's identical prefix: CIDR rules apply to world only).
    /// </summary>
    public IReadOnlyList<(IPNetwork Prefix, uint Identity)> Ipcache()
    {
        var entries = new Dictionary<IPNetwork, uint>();
        foreach (var (prefix, id) in CidrIdentities)
        {
            entries[prefix] = id;
        }
        entries[new IPNetwork(HostAddress, 32)] = ReservedIdentities.Host;
        entries[new IPNetwork(HostAddress6, 128)] = ReservedIdentities.Host;
        entries[new IPNetwork(RemoteNodeAddress, 32)] = ReservedIdentities.RemoteNode;
        entries[new IPNetwork(RemoteNodeAddress6, 128)] = ReservedIdentities.RemoteNode;
        return [.. entries.Select(kv => (kv.Key, kv.Value))];
    }

    /// <summary>
    /// A pod's resolved map as datapath entries under <paramref name="ifindex"/>, and which
    /// directions to enforce, as the agent writes them (PolicyManager.Entries): a direction is
    /// enforced unless its entries are exactly the resolver's wildcard allow.
    /// </summary>
    public IReadOnlyList<PolicyMapEntry> KernelEntries(DiffPod pod, int ifindex, out bool ingress, out bool egress)
    {
        var map = Maps[(ulong)pod.Index];
        var entries = new List<PolicyMapEntry>();
        var rule = 1u;
        foreach (var (key, action) in map.Entries)
        {
            entries.Add(new PolicyMapEntry(ifindex,
                key.Direction == TrafficDirection.Ingress ? PolicyDirection.Ingress : PolicyDirection.Egress,
                key.Identity, key.Protocol, key.Ports.First, key.Ports.Last, action == PolicyMapAction.Deny, rule++));
        }
        ingress = map.IsEnforced(TrafficDirection.Ingress);
        egress = map.IsEnforced(TrafficDirection.Egress);
        return entries;
    }

    private static PolicyPeer PeerOf(DiffPeer peer, int family) => peer.Kind switch
    {
        DiffPeerKind.Pod => new PolicyPeer(peer.Pod!.Labels, peer.AddressOf(family)),
        DiffPeerKind.World => PolicyPeer.World(peer.AddressOf(family)),
        DiffPeerKind.Host => new PolicyPeer(ReservedIdentities.LabelsOf(ReservedIdentities.Host), peer.AddressOf(family)),
        _ => new PolicyPeer(ReservedIdentities.LabelsOf(ReservedIdentities.RemoteNode), peer.AddressOf(family)),
    };

    /// <summary>The scenario as text for a failure message: options, pods, ipcache, the YAML.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"seed {Seed}, allow-localhost {Options.AllowLocalhost}\npods:\n");
        foreach (var pod in Pods)
        {
            sb.Append(CultureInfo.InvariantCulture, $"  {pod}\n");
        }
        sb.Append("ipcache:\n");
        foreach (var (prefix, id) in Ipcache())
        {
            sb.Append(CultureInfo.InvariantCulture, $"  {prefix} -> {id}\n");
        }
        sb.Append("policy YAML:\n").Append(Yaml);
        return sb.ToString();
    }

    /// <summary>
    /// The resolved entries of <paramref name="pod"/> a cell's packet hits in one direction
    /// (for a failure message): what the kernel should have found.
    /// </summary>
    public string DescribeMatchingEntries(DiffPod pod, TrafficDirection direction, DiffCell cell)
    {
        var peer = IdentityOf(direction == TrafficDirection.Egress ? cell.Destination : cell.Source, cell.Family);
        var hits = Maps[(ulong)pod.Index].Entries.Where(e => e.Key.Matches(peer, cell.Protocol, cell.Port, direction))
            .Select(e => $"{e.Key} -> {e.Value}").ToList();
        return $"{pod.Name} {direction} entries for peer {peer}: {(hits.Count == 0 ? "none" : string.Join("; ", hits))}";
    }

    // --- generation ---

    private static IReadOnlyList<DiffPod> GeneratePods(Random random)
    {
        // Five to seven pods: two namespaces, label sets drawn from a small space so that some
        // pods share a label set (and so an identity) and some match no selector.
        var count = random.Next(5, 8);
        var pods = new List<DiffPod>();
        var identities = new Dictionary<LabelSet, uint>();
        for (var i = 0; i < count; i++)
        {
            var ns = i < 3 ? "default" : Pick(random, s_namespaces);
            var labels = new List<string>
            {
                $"k8s:{WellKnownLabels.PodNamespace}={ns}",
                $"k8s:{WellKnownLabels.NamespaceLabelsPrefix}team={s_namespaceTeam[ns]}",
                $"app={Pick(random, s_apps)}",
            };
            if (random.Next(2) == 0)
            {
                labels.Add($"tier={(random.Next(2) == 0 ? "front" : "back")}");
            }
            if (random.Next(3) == 0)
            {
                labels.Add("env=prod");
            }
            var set = LabelSet.Parse([.. labels]);
            if (!identities.TryGetValue(set, out var identity))
            {
                identity = ReservedIdentities.FirstAllocated + (uint)identities.Count;
                identities[set] = identity;
            }
            pods.Add(new DiffPod(i, $"pod{i}", set, identity, IPAddress.Parse($"198.18.0.{10 + i}"), IPAddress.Parse($"fd00:198:18::{0x10 + i:x}"),
                MacAddress.Parse($"02:00:00:00:00:{0x10 + i:x2}"), MacAddress.Parse($"02:00:00:00:01:{0x10 + i:x2}")));
        }
        return pods;
    }

    private void GeneratePolicies()
    {
        var more = _random.Next(1, 4);
        for (var i = 0; i <= more; i++)
        {
            _documents[i] = Document(i, null);
        }
    }

    /// <summary>
    /// Policy p<paramref name="index"/> in <paramref name="ns"/> (or a drawn namespace). p0
    /// always selects the first pod and has an allow section and a deny section whose first
    /// rule names an entity the matrix has peers of, so that every seed has cells of all three
    /// outcomes; the others are drawn freely.
    /// </summary>
    private (string Namespace, string Yaml) Document(int index, string? ns)
    {
        YamlMap document;
        if (index == 0)
        {
            Pods[0].Labels.TryGetValue(LabelSource.K8s, "app", out var app);
            document = Cilium(_random, 0, forcedApp: app, ns);
        }
        else
        {
            document = _random.Next(10) < 6 ? Cilium(_random, index, forcedApp: null, ns) : NetworkPolicy(_random, index, ns);
        }
        var metadata = (YamlMap)document.Find("metadata")!;
        return ((string)metadata.Find("namespace")!, PolicyDifferentialYaml.Write(document));
    }

    private static YamlMap Metadata(Random random, int index, string? ns = null) => new()
    {
        { "name", $"p{index}" },
        { "namespace", ns ?? (random.Next(4) == 0 ? "team-a" : "default") },
    };

    private static YamlMap Cilium(Random random, int index, string? forcedApp, string? ns)
    {
        var forceDeny = forcedApp is not null;
        var spec = new YamlMap
        {
            { "endpointSelector", forcedApp is null ? Selector(random, cilium: true) : new YamlMap { { "matchLabels", new YamlMap { { "app", forcedApp } } } } },
        };
        string[] sections = ["ingress", "ingressDeny", "egress", "egressDeny"];
        var chosen = sections.Where(_ => random.Next(2) == 0).ToList();
        if (forceDeny)
        {
            chosen = [random.Next(2) == 0 ? "ingress" : "egress", random.Next(2) == 0 ? "ingressDeny" : "egressDeny"];
        }
        else if (chosen.Count == 0)
        {
            chosen.Add(Pick(random, sections));
        }
        foreach (var section in sections.Where(chosen.Contains))
        {
            var ingress = section.StartsWith("ingress", StringComparison.Ordinal);
            var rules = new YamlList();
            if (forceDeny && section.EndsWith("Deny", StringComparison.Ordinal))
            {
                var rule = new YamlMap { { ingress ? "fromEntities" : "toEntities", new YamlList([Pick(random, ["all", "world", "cluster"])]) } };
                if (random.Next(2) == 0)
                {
                    rule.Add("toPorts", new YamlList([new YamlMap { { "ports", new YamlList([CiliumPort(random, icmp: false)]) } }]));
                }
                rules.Add(rule);
            }
            var n = random.Next(1, 4);
            for (var i = 0; i < n; i++)
            {
                rules.Add(CiliumRule(random, ingress));
            }
            spec.Add(section, rules);
        }
        if (!forceDeny && random.Next(8) == 0)
        {
            // Cilium 1.15's enableDefaultDeny: rules that add to a direction without closing it.
            spec.Add("enableDefaultDeny", new YamlMap { { random.Next(2) == 0 ? "ingress" : "egress", false } });
        }
        return new YamlMap
        {
            { "apiVersion", "cilium.io/v2" },
            { "kind", "CiliumNetworkPolicy" },
            { "metadata", Metadata(random, index, forceDeny ? "default" : ns) },
            { "spec", spec },
        };
    }

    private static YamlMap CiliumRule(Random random, bool ingress)
    {
        var p = ingress ? "from" : "to";
        var rule = new YamlMap();
        switch (random.Next(6))
        {
            case 0:
            case 1:
                var selectors = new YamlList();
                var n = random.Next(1, 3);
                for (var i = 0; i < n; i++)
                {
                    selectors.Add(PeerSelector(random));
                }
                rule.Add($"{p}Endpoints", selectors);
                break;
            case 2:
                rule.Add($"{p}Entities", new YamlList(Enumerable.Range(0, random.Next(1, 3))
                    .Select(_ => (object)Pick(random, ["world", "host", "all", "cluster", "remote-node"])).Distinct()));
                break;
            case 3:
                rule.Add($"{p}CIDR", new YamlList(Enumerable.Range(0, random.Next(1, 3)).Select(_ => (object)Pick(random, s_cidrs).Cidr).Distinct()));
                break;
            case 4:
                var (cidr, excepts) = Pick(random, s_cidrs);
                var block = new YamlMap { { "cidr", cidr } };
                var except = Pick(random, excepts);
                if (except.Length > 0)
                {
                    block.Add("except", new YamlList(except));
                }
                rule.Add($"{p}CIDRSet", new YamlList([block]));
                break;
            default:
                break; // no L3 part: with ports, every peer; without, the empty rule that allows nothing
        }
        switch (random.Next(6))
        {
            case 0:
            case 1:
                break; // every protocol and port
            case 2:
                // ICMP by type: the echo request (number or name), or echo reply (no request
                // matches), of one family or both.
                var fields = new YamlList();
                if (random.Next(3) != 0)
                {
                    fields.Add(new YamlMap { { "type", random.Next(3) switch { 0 => "8", 1 => "EchoRequest", _ => "0" } }, { "family", "IPv4" } });
                }
                if (fields.Count == 0 || random.Next(2) == 0)
                {
                    fields.Add(new YamlMap { { "type", random.Next(3) switch { 0 => "128", 1 => "EchoRequest", _ => "EchoReply" } }, { "family", "IPv6" } });
                }
                rule.Add("icmps", new YamlList([new YamlMap { { "fields", fields } }]));
                break;
            default:
                var ports = new YamlList();
                var n = random.Next(1, 3);
                for (var i = 0; i < n; i++)
                {
                    ports.Add(CiliumPort(random, icmp: true));
                }
                rule.Add("toPorts", new YamlList([new YamlMap { { "ports", ports } }]));
                break;
        }
        return rule;
    }

    private static YamlMap CiliumPort(Random random, bool icmp)
    {
        var protocol = random.Next(icmp ? 10 : 8) switch { < 4 => "TCP", < 6 => "UDP", 6 => "ANY", 7 => null, 8 => "ICMP", _ => "ICMPv6" };
        var port = new YamlMap();
        if (protocol is "ICMP" or "ICMPv6")
        {
            // The type in the port field; 0 is every type.
            port.Add("port", random.Next(2) == 0 ? (protocol == "ICMP" ? "8" : "128") : "0");
            port.Add("protocol", protocol);
            return port;
        }
        if (random.Next(8) == 0)
        {
            port.Add("port", "0"); // every port of the protocol
        }
        else
        {
            var (first, last) = Pick(random, s_portRanges);
            port.Add("port", first.ToString(CultureInfo.InvariantCulture)); // a string in Cilium's API
            if (last != first)
            {
                port.Add("endPort", last);
            }
        }
        if (protocol is not null)
        {
            port.Add("protocol", protocol);
        }
        return port;
    }

    private static YamlMap NetworkPolicy(Random random, int index, string? ns)
    {
        var spec = new YamlMap { { "podSelector", Selector(random, cilium: false) } };
        var types = random.Next(4) switch { 0 => null, 1 => new[] { "Ingress" }, 2 => new[] { "Egress" }, _ => new[] { "Ingress", "Egress" } };
        if (types is not null)
        {
            spec.Add("policyTypes", new YamlList(types));
        }
        foreach (var (field, peers) in new[] { ("ingress", "from"), ("egress", "to") })
        {
            if (random.Next(3) == 0)
            {
                continue;
            }
            var rules = new YamlList();
            var n = random.Next(1, 3);
            for (var i = 0; i < n; i++)
            {
                var rule = new YamlMap();
                if (random.Next(4) != 0)
                {
                    var list = new YamlList();
                    var m = random.Next(1, 3);
                    for (var j = 0; j < m; j++)
                    {
                        list.Add(NetworkPolicyPeer(random));
                    }
                    rule.Add(peers, list);
                }
                if (random.Next(3) != 0)
                {
                    var ports = new YamlList();
                    var m = random.Next(1, 3);
                    for (var j = 0; j < m; j++)
                    {
                        var port = new YamlMap();
                        var (first, last) = Pick(random, s_portRanges);
                        if (random.Next(2) == 0)
                        {
                            port.Add("protocol", random.Next(2) == 0 ? "TCP" : "UDP");
                        }
                        if (random.Next(6) != 0)
                        {
                            port.Add("port", first);
                            if (last != first)
                            {
                                port.Add("endPort", last);
                            }
                        }
                        ports.Add(port);
                    }
                    rule.Add("ports", ports);
                }
                rules.Add(rule);
            }
            spec.Add(field, rules);
        }
        return new YamlMap
        {
            { "apiVersion", "networking.k8s.io/v1" },
            { "kind", "NetworkPolicy" },
            { "metadata", Metadata(random, index, ns) },
            { "spec", spec },
        };
    }

    private static YamlMap NetworkPolicyPeer(Random random)
    {
        switch (random.Next(5))
        {
            case 0:
            case 1:
                return new YamlMap { { "podSelector", Selector(random, cilium: false) } };
            case 2:
                return new YamlMap { { "namespaceSelector", NamespaceSelector(random) } };
            case 3:
                return new YamlMap { { "namespaceSelector", NamespaceSelector(random) }, { "podSelector", Selector(random, cilium: false) } };
            default:
                var (cidr, excepts) = Pick(random, s_cidrs);
                var block = new YamlMap { { "cidr", cidr } };
                var except = Pick(random, excepts);
                if (except.Length > 0)
                {
                    block.Add("except", new YamlList(except));
                }
                return new YamlMap { { "ipBlock", block } };
        }
    }

    private static YamlMap NamespaceSelector(Random random) => random.Next(3) switch
    {
        0 => [],
        1 => new YamlMap { { "matchLabels", new YamlMap { { WellKnownLabels.NamespaceName, Pick(random, s_namespaces) } } } },
        _ => new YamlMap { { "matchLabels", new YamlMap { { "team", Pick(random, ["blue", "red"]) } } } },
    };

    /// <summary>A peer selector of a CiliumNetworkPolicy: sometimes naming a namespace, which lifts the policy's namespace scope.</summary>
    private static YamlMap PeerSelector(Random random)
    {
        var selector = Selector(random, cilium: true);
        if (random.Next(4) == 0)
        {
            var ns = Pick(random, s_namespaces);
            if (selector.Find("matchLabels") is YamlMap labels)
            {
                labels.Add($"k8s:{WellKnownLabels.PodNamespace}", ns);
            }
            else
            {
                selector.Add("matchLabels", new YamlMap { { $"k8s:{WellKnownLabels.PodNamespace}", ns } });
            }
        }
        return selector;
    }

    /// <summary>A label selector over the pods' labels: empty, matchLabels, matchExpressions with every operator.</summary>
    private static YamlMap Selector(Random random, bool cilium)
    {
        // In a CNP a key may carry its source; NetworkPolicy keys may not.
        var app = cilium && random.Next(4) == 0 ? "k8s:app" : "app";
        string[] apps = [.. s_apps.OrderBy(_ => random.Next()).Take(2)];
        return random.Next(8) switch
        {
            0 => [],
            1 or 2 => new YamlMap { { "matchLabels", new YamlMap { { app, apps[0] } } } },
            3 => new YamlMap { { "matchLabels", new YamlMap { { app, apps[0] }, { "tier", random.Next(2) == 0 ? "front" : "back" } } } },
            4 => new YamlMap { { "matchExpressions", new YamlList([Expression(app, "In", apps)]) } },
            5 => new YamlMap { { "matchExpressions", new YamlList([Expression(app, "NotIn", [apps[0]])]) } },
            6 => new YamlMap { { "matchExpressions", new YamlList([Expression("env", "Exists", null)]) } },
            _ => new YamlMap
            {
                { "matchLabels", new YamlMap { { "tier", "front" } } },
                { "matchExpressions", new YamlList([Expression("env", "DoesNotExist", null)]) },
            },
        };
    }

    private static YamlMap Expression(string key, string op, string[]? values)
    {
        var e = new YamlMap { { "key", key }, { "operator", op } };
        if (values is not null)
        {
            e.Add("values", new YamlList(values));
        }
        return e;
    }

    private static T Pick<T>(Random random, IReadOnlyList<T> items) => items[random.Next(items.Count)];
}

/// <summary>An ordered YAML mapping for the generator (keys in insertion order).</summary>
internal sealed class YamlMap : List<(string Key, object Value)>
{
    public void Add(string key, object value) => Add((key, value));

    public object? Find(string key) => this.FirstOrDefault(e => e.Key == key).Value;
}

/// <summary>A YAML sequence for the generator.</summary>
internal sealed class YamlList : List<object>
{
    public YamlList()
    {
    }

    public YamlList(IEnumerable<object> items) : base(items)
    {
    }
}

/// <summary>
/// Writes generated documents as block-style YAML as people write them for kubectl: strings
/// double-quoted, numbers and booleans plain, empty mappings as <c>{}</c>.
/// </summary>
internal static class PolicyDifferentialYaml
{
    public static string Write(YamlMap document)
    {
        var sb = new StringBuilder();
        WriteMap(sb, document, 0);
        return sb.ToString();
    }

    private static void WriteMap(StringBuilder sb, YamlMap map, int indent)
    {
        foreach (var (key, value) in map)
        {
            sb.Append(' ', indent).Append(Key(key)).Append(':');
            WriteValue(sb, value, indent);
        }
    }

    private static void WriteValue(StringBuilder sb, object value, int indent)
    {
        switch (value)
        {
            case YamlMap { Count: 0 }:
                sb.Append(" {}\n");
                break;
            case YamlList { Count: 0 }:
                sb.Append(" []\n");
                break;
            case YamlMap map:
                sb.Append('\n');
                WriteMap(sb, map, indent + 2);
                break;
            case YamlList list:
                sb.Append('\n');
                WriteList(sb, list, indent);
                break;
            default:
                sb.Append(' ').Append(Scalar(value)).Append('\n');
                break;
        }
    }

    private static void WriteList(StringBuilder sb, YamlList list, int indent)
    {
        foreach (var item in list)
        {
            if (item is YamlMap { Count: > 0 } map)
            {
                // The first key goes on the dash's line: write at indent + 2, then put the dash in.
                var inner = new StringBuilder();
                WriteMap(inner, map, indent + 2);
                sb.Append(' ', indent).Append("- ").Append(inner.ToString(indent + 2, inner.Length - indent - 2));
            }
            else if (item is YamlMap or YamlList { Count: 0 })
            {
                sb.Append(' ', indent).Append(item is YamlMap ? "- {}\n" : "- []\n");
            }
            else
            {
                sb.Append(' ', indent).Append("- ").Append(Scalar(item)).Append('\n');
            }
        }
    }

    private static string Key(string key) => key.Any(c => c is ':' or '/' or ' ') ? Quote(key) : key;

    private static string Scalar(object value) => value switch
    {
        string s => Quote(s),
        bool b => b ? "true" : "false",
        int i => i.ToString(CultureInfo.InvariantCulture),
        _ => throw new ArgumentException($"failed to write YAML scalar {value}: unsupported type {value.GetType()}"),
    };

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
