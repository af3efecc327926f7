using Membrane.Linux;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;

namespace Membrane.Datapath;

/// <summary>Where the datapath's object comes from and where it is pinned.</summary>
public sealed record DatapathOptions
{
    /// <summary>The default pin root: /sys/fs/bpf/membrane (DESIGN.md: /sys/fs/bpf/membrane/&lt;node&gt;/).</summary>
    public static readonly string DefaultPinRoot = Path.Combine(BpfFs.DefaultRoot, "membrane");

    /// <summary>The node's name: the pin directory below <see cref="PinRoot"/>.</summary>
    public required string NodeName { get; init; }

    /// <summary>A directory on bpffs under which the node's directory is made (tests use a private one).</summary>
    public string PinRoot { get; init; } = DefaultPinRoot;

    /// <summary>The compiled endpoint programs (the build puts them at bin/bpf/from_pod.o beside the binaries).</summary>
    public string ObjectPath { get; init; } = Path.Combine(AppContext.BaseDirectory, "bpf", "from_pod.o");

    /// <summary>
    /// Entries of each conntrack table (ct4 and ct6), fixed when the datapath is loaded (an
    /// adopted datapath keeps the size it was made with). Default 262,144, Cilium's
    /// bpf-ct-global-any-max: about 32 MiB of kernel memory per table.
    /// </summary>
    public uint ConntrackMaxEntries { get; init; } = DefaultConntrackMaxEntries;

    /// <summary>The default of <see cref="ConntrackMaxEntries"/>.</summary>
    public const uint DefaultConntrackMaxEntries = 262_144;

    /// <summary>Conntrack lifetimes, written to the datapath at every <see cref="Datapath.Open"/>.</summary>
    public Conntrack.ConntrackTimeouts ConntrackTimeouts { get; init; } = new();

    /// <summary>Which forwarded packets get a trace record, written to the datapath at every <see cref="Datapath.Open"/>.</summary>
    public MonitorAggregation MonitorAggregation { get; init; } = MonitorAggregation.Medium;

    /// <summary>Tests only: the conntrack tables' map type (a plain hash fills up instead of evicting).</summary>
    internal BpfMapType? ConntrackMapType { get; init; }
}

/// <summary>The result of <see cref="Datapath.AttachEndpoint"/>.</summary>
/// <param name="LinkId">The from_pod (tcx ingress) link's kernel id.</param>
/// <param name="ProgramId">The from_pod program's kernel id.</param>
/// <param name="Adopted">True when pinned links that were already attached to the device were kept (both of them).</param>
/// <param name="ToPodLinkId">The to_pod (tcx egress) link's kernel id.</param>
public readonly record struct EndpointAttachment(uint LinkId, uint ProgramId, bool Adopted, uint ToPodLinkId);

/// <summary>
/// The node's endpoint datapath: from_pod.o loaded once and shared by every endpoint, its
/// maps and program pinned under <c>&lt;pin root&gt;/&lt;node&gt;/</c>, the endpoints' tcx
/// links pinned under <c>links/</c> there. A second <see cref="Open"/> (a restarted agent)
/// reopens the pinned program and maps instead of loading new ones, so the endpoints, their
/// counters and their attachments carry on untouched. Disposing closes this process's
/// descriptors only: pins, and with them the forwarding, stay; <see cref="RemovePins"/>
/// takes the node's datapath down.
/// </summary>
/// <remarks>
/// Attach and detach resolve ifindexes in the calling thread's network namespace: call them
/// on a thread inside the node's namespace (KERNEL-NOTES: DANGER). Map operations are
/// namespace-free.
/// </remarks>
public sealed partial class Datapath : IDisposable
{
    /// <summary>The pod-egress program's name (its C function) and pin name: tcx ingress of the host-side veth.</summary>
    public const string ProgramName = "from_pod";

    /// <summary>The pod-ingress program's name and pin name: tcx egress of the host-side veth.</summary>
    public const string ToPodProgramName = "to_pod";

    /// <summary>The maps pinned (and adopted) with the programs, in the order the constructor takes them.</summary>
    internal static readonly string[] PinnedMaps = ["endpoints", "endpoints_by_ip", "metrics", "events", "event_state", "ct4", "ct6", "ct_config", "policy_allow", "policy_deny", "ipcache", "monitor_config", "policy_exact", "policy_config", "endpoint_slots", "endpoint_prefix"];

    /// <summary>The conntrack tables, which the options size before the object is loaded.</summary>
    private static readonly string[] ConntrackMaps = ["ct4", "ct6"];

    private const string LinksDirectory = "links";

    private readonly BpfMap[] _maps;

    private Datapath(string pinDirectory, BpfProgram program, BpfProgram toPod, BpfMap[] maps, bool adopted, bool stale = false)
    {
        IsStale = stale;
        PinDirectory = pinDirectory;
        Program = program;
        ToPodProgram = toPod;
        _maps = maps;
        Adopted = adopted;
        Endpoints = new BpfMap<uint, EndpointInfo>(maps[0]);
        EndpointsByIp = new BpfMap<EndpointIpKey, EndpointInfo>(maps[1]);
        Metrics = new BpfPerCpuMap<uint, MetricsValue>(maps[2]);
        EventsMap = maps[3];
        EventState = new BpfPerCpuMap<uint, EventState>(maps[4]);
        MonitorConfig = new BpfMap<uint, MonitorConfig>(maps[11]);
        PolicyExact = new BpfMap<Policy.PolicyKey, Policy.PolicyExact>(maps[12]);
        PolicyConfig = new BpfMap<uint, Policy.PolicyConfig>(maps[13]);
        Conntrack4 = new BpfMap<Conntrack.CtKey4, Conntrack.CtEntry>(maps[5]);
        Conntrack6 = new BpfMap<Conntrack.CtKey6, Conntrack.CtEntry>(maps[6]);
        ConntrackConfig = new BpfMap<uint, Conntrack.CtConfig>(maps[7]);
        PolicyAllow = new BpfMap<Policy.PolicyKey, Policy.PolicyEntry>(maps[8]);
        PolicyDeny = new BpfMap<Policy.PolicyKey, Policy.PolicyEntry>(maps[9]);
        Ipcache = new BpfMap<Policy.IpcacheKey, Policy.IpcacheEntry>(maps[10]);
        EndpointSlots = new BpfMap<uint, EndpointInfo>(maps[14]);
        EndpointPrefixes = new BpfMap<uint, EndpointPrefix>(maps[15]);
    }

    /// <summary>The node's pin directory (&lt;pin root&gt;/&lt;node&gt;).</summary>
    public string PinDirectory { get; }

    /// <summary>True when this instance reopened pins left by an earlier one instead of loading the object.</summary>
    public bool Adopted { get; }

    /// <summary>
    /// True when the adopted program is not the one the object file holds (its kernel tag,
    /// a hash of the instructions with map references blanked, differs): the pins come from
    /// another build. The adopted program keeps forwarding; loading the new one without
    /// losing the maps' state needs libbpf's map reuse (bpf_map__reuse_fd), which
    /// Membrane.Linux does not offer yet, so for now <see cref="RemovePins"/> and a fresh
    /// start (which re-creates every endpoint) is the way to upgrade.
    /// </summary>
    public bool IsStale { get; }

    /// <summary>The from_pod program (attach it with <see cref="AttachEndpoint"/>; test-run it in tests).</summary>
    public BpfProgram Program { get; }

    /// <summary>The to_pod program (attached by <see cref="AttachEndpoint"/> too).</summary>
    public BpfProgram ToPodProgram { get; }

    /// <summary>The "endpoints" map: host-side veth ifindex → endpoint.</summary>
    public BpfMap<uint, EndpointInfo> Endpoints { get; }

    /// <summary>The "endpoint_slots" array: the endpoints map's direct-mapped copy (slot ifindex % 65,536), kept by <see cref="UpsertEndpoint"/>.</summary>
    public BpfMap<uint, EndpointInfo> EndpointSlots { get; }

    /// <summary>The "endpoint_prefix" array: the prefixes that hold every endpoint address, kept by <see cref="UpsertEndpoint"/>.</summary>
    public BpfMap<uint, EndpointPrefix> EndpointPrefixes { get; }

    /// <summary>The "endpoints_by_ip" map: pod address → endpoint.</summary>
    public BpfMap<EndpointIpKey, EndpointInfo> EndpointsByIp { get; }

    /// <summary>The per-CPU "metrics" array (bpf/lib/maps.h), indexed by <see cref="MetricsKey.ToSlot"/>.</summary>
    public BpfPerCpuMap<uint, MetricsValue> Metrics { get; }

    /// <summary>The IPv4 conntrack table (bpf/lib/conntrack.h).</summary>
    public BpfMap<Conntrack.CtKey4, Conntrack.CtEntry> Conntrack4 { get; }

    /// <summary>The IPv6 conntrack table.</summary>
    public BpfMap<Conntrack.CtKey6, Conntrack.CtEntry> Conntrack6 { get; }

    /// <summary>The "ct_config" array: the lifetimes the datapath gives entries.</summary>
    public BpfMap<uint, Conntrack.CtConfig> ConntrackConfig { get; }

    /// <summary>The "policy_exact" hash (bpf/lib/policy.h): entries for one port, a whole protocol or every protocol; write it with <see cref="ReplacePolicy"/>.</summary>
    public BpfMap<Policy.PolicyKey, Policy.PolicyExact> PolicyExact { get; }

    /// <summary>The "policy_config" array: whether deny and range entries exist anywhere (kept by <see cref="ReplacePolicy"/>).</summary>
    public BpfMap<uint, Policy.PolicyConfig> PolicyConfig { get; }

    /// <summary>The "policy_allow" LPM trie (bpf/lib/policy.h): allow entries for port ranges; write it with <see cref="ReplacePolicy"/>.</summary>
    public BpfMap<Policy.PolicyKey, Policy.PolicyEntry> PolicyAllow { get; }

    /// <summary>The "policy_deny" LPM trie.</summary>
    public BpfMap<Policy.PolicyKey, Policy.PolicyEntry> PolicyDeny { get; }

    /// <summary>The "ipcache" LPM trie: CIDR → identity for peers that are not local endpoints.</summary>
    public BpfMap<Policy.IpcacheKey, Policy.IpcacheEntry> Ipcache { get; }

    private BpfMap EventsMap { get; }

    /// <summary>
    /// Loads the datapath for <see cref="DatapathOptions.NodeName"/>, or adopts the one an
    /// earlier instance pinned. The from_pod pin is written last, so it marks a complete
    /// datapath: other pins without it are the leftovers of a start that died half-way and
    /// are replaced. Either way the options' conntrack lifetimes are written.
    /// </summary>
    public static Datapath Open(DatapathOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ValidateNodeName(options.NodeName);
        var timeouts = options.ConntrackTimeouts.ToConfig(); // validates before anything is touched
        var dir = Path.Combine(options.PinRoot, options.NodeName);
        if (!BpfFs.IsBpfFs(options.PinRoot))
        {
            throw new BpfException($"open datapath pins under {options.PinRoot}", Errno.ENOTSUP,
                new IOException($"{options.PinRoot} is not on a bpffs mount"));
        }
        Directory.CreateDirectory(dir);
        var datapath = File.Exists(Path.Combine(dir, ProgramName)) ? Adopt(dir, options.ObjectPath) : LoadAndPin(dir, options);
        datapath.ConntrackConfig.Update(0, timeouts);
        datapath.MonitorAggregation = options.MonitorAggregation;
        return datapath;
    }

    private static Datapath Adopt(string dir, string objectPath)
    {
        var opened = new List<IDisposable>();
        try
        {
            var program = Track(opened, BpfProgram.OpenPinned(Path.Combine(dir, ProgramName)));
            var toPod = Track(opened, OpenPinnedProgram(dir, ToPodProgramName));
            var maps = PinnedMaps.Select(name => Track(opened, OpenPinnedMap(dir, name))).ToArray();
            var stale = TagOf(objectPath) != program.Tag;
            return new Datapath(dir, program, toPod, maps, adopted: true, stale);
        }
        catch
        {
            DisposeAll(opened);
            throw;
        }
    }

    private static BpfProgram OpenPinnedProgram(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        if (!File.Exists(path))
        {
            throw new BpfException($"adopt the datapath pinned in {dir}", Errno.ENOENT,
                new FileNotFoundException($"{ProgramName} is pinned but {name} is not (pins of an older build: remove them with the node's pods stopped)", path));
        }
        return BpfProgram.OpenPinned(path);
    }

    private static BpfMap OpenPinnedMap(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        if (!File.Exists(path))
        {
            throw new BpfException($"adopt the datapath pinned in {dir}", Errno.ENOENT,
                new FileNotFoundException($"the program is pinned but map {name} is not", path));
        }
        return BpfMap.OpenPinned(path);
    }

    /// <summary>
    /// The kernel tag the object's program gets when loaded. Costs one load of the object
    /// (maps created and freed again), once per agent start.
    /// </summary>
    private static string TagOf(string objectPath)
    {
        using var obj = BpfObject.OpenFile(objectPath);
        foreach (var map in ConntrackMaps)
        {
            obj.SetMapMaxEntries(map, 1); // the tag does not depend on map sizes; keep the load cheap
        }
        obj.Load();
        using var program = obj.FindProgram(ProgramName);
        return program.Tag;
    }

    private static Datapath LoadAndPin(string dir, DatapathOptions options)
    {
        foreach (var stale in PinnedMaps.Append(ToPodProgramName).Select(m => Path.Combine(dir, m)).Where(File.Exists))
        {
            BpfFs.Unpin(stale);
        }
        var opened = new List<IDisposable>();
        var pinned = new List<string>();
        try
        {
            using var obj = BpfObject.OpenFile(options.ObjectPath);
            foreach (var map in ConntrackMaps)
            {
                obj.SetMapMaxEntries(map, options.ConntrackMaxEntries);
                if (options.ConntrackMapType is { } type)
                {
                    obj.SetMapType(map, type);
                }
            }
            obj.Load();
            var program = Track(opened, obj.FindProgram(ProgramName));
            var toPod = Track(opened, obj.FindProgram(ToPodProgramName));
            var maps = PinnedMaps.Select(name => Track(opened, obj.FindMap(name))).ToArray();
            for (var i = 0; i < maps.Length; i++)
            {
                var path = Path.Combine(dir, PinnedMaps[i]);
                maps[i].Pin(path);
                pinned.Add(path);
            }
            var toPodPath = Path.Combine(dir, ToPodProgramName);
            toPod.Pin(toPodPath);
            pinned.Add(toPodPath);
            var programPath = Path.Combine(dir, ProgramName);
            program.Pin(programPath); // last: marks the datapath complete (see Open)
            pinned.Add(programPath);
            var datapath = new Datapath(dir, program, toPod, maps, adopted: false);
            datapath.EndpointPrefixes.Update(0, EndpointPrefix.Empty); // no endpoint yet (all zero would cover every address)
            return datapath;
        }
        catch
        {
            foreach (var path in pinned)
            {
                BpfFs.Unpin(path);
            }
            DisposeAll(opened);
            throw;
        }
    }

    /// <summary>
    /// Removes every pin of the node's datapath (endpoint links included, which detaches the
    /// program from every device) and the node's directory. Missing pins are fine.
    /// </summary>
    public static void RemovePins(DatapathOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ValidateNodeName(options.NodeName);
        var dir = Path.Combine(options.PinRoot, options.NodeName);
        if (!Directory.Exists(dir))
        {
            return;
        }
        var links = Path.Combine(dir, LinksDirectory);
        if (Directory.Exists(links))
        {
            foreach (var pin in Directory.GetFiles(links))
            {
                BpfFs.Unpin(pin);
            }
            Directory.Delete(links);
        }
        foreach (var pin in Directory.GetFiles(dir))
        {
            BpfFs.Unpin(pin);
        }
        Directory.Delete(dir);
    }

    private bool _disposed;

    /// <summary>Closes this instance's descriptors; the pinned datapath keeps running.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Program.Dispose();
        ToPodProgram.Dispose();
        foreach (var map in _maps)
        {
            map.Dispose();
        }
    }

    private static T Track<T>(List<IDisposable> opened, T item) where T : IDisposable
    {
        opened.Add(item);
        return item;
    }

    private static void DisposeAll(List<IDisposable> opened)
    {
        foreach (var d in opened)
        {
            d.Dispose();
        }
    }

    private static void ValidateNodeName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('/') || name is "." or ".." || name.Contains('\0'))
        {
            throw new ArgumentException($"invalid node name '{name}': it must be one path component", nameof(name));
        }
    }
}
