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

    /// <summary>The compiled endpoint program (the build puts it at bin/bpf/from_pod.o beside the binaries).</summary>
    public string ObjectPath { get; init; } = Path.Combine(AppContext.BaseDirectory, "bpf", "from_pod.o");
}

/// <summary>The result of <see cref="Datapath.AttachEndpoint"/>.</summary>
/// <param name="LinkId">The tcx link's kernel id.</param>
/// <param name="ProgramId">The attached program's kernel id.</param>
/// <param name="Adopted">True when a pinned link that was already attached to the device was kept.</param>
public readonly record struct EndpointAttachment(uint LinkId, uint ProgramId, bool Adopted);

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
    /// <summary>The entry program's name (its C function) and pin name.</summary>
    public const string ProgramName = "from_pod";

    /// <summary>The maps pinned (and adopted) with the program.</summary>
    internal static readonly string[] PinnedMaps = ["endpoints", "endpoints_by_ip", "metrics", "events", "event_seq"];

    private const string LinksDirectory = "links";

    private Datapath(string pinDirectory, BpfProgram program, BpfMap endpoints, BpfMap endpointsByIp, BpfMap metrics, BpfMap events, BpfMap eventSeq, bool adopted, bool stale = false)
    {
        IsStale = stale;
        PinDirectory = pinDirectory;
        Program = program;
        Endpoints = new BpfMap<uint, EndpointInfo>(endpoints);
        EndpointsByIp = new BpfMap<EndpointIpKey, EndpointInfo>(endpointsByIp);
        Metrics = new BpfPerCpuMap<MetricsKey, MetricsValue>(metrics);
        EventsMap = events;
        EventSequence = eventSeq;
        Adopted = adopted;
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

    /// <summary>The "endpoints" map: host-side veth ifindex → endpoint.</summary>
    public BpfMap<uint, EndpointInfo> Endpoints { get; }

    /// <summary>The "endpoints_by_ip" map: pod address → endpoint.</summary>
    public BpfMap<EndpointIpKey, EndpointInfo> EndpointsByIp { get; }

    /// <summary>The per-CPU "metrics" map (bpf/lib/maps.h).</summary>
    public BpfPerCpuMap<MetricsKey, MetricsValue> Metrics { get; }

    private BpfMap EventsMap { get; }

    private BpfMap EventSequence { get; }

    /// <summary>
    /// Loads the datapath for <see cref="DatapathOptions.NodeName"/>, or adopts the one an
    /// earlier instance pinned. The program pin is written last, so it marks a complete
    /// datapath: map pins without it are the leftovers of a start that died half-way and are
    /// replaced.
    /// </summary>
    public static Datapath Open(DatapathOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ValidateNodeName(options.NodeName);
        var dir = Path.Combine(options.PinRoot, options.NodeName);
        if (!BpfFs.IsBpfFs(options.PinRoot))
        {
            throw new BpfException($"open datapath pins under {options.PinRoot}", Errno.ENOTSUP,
                new IOException($"{options.PinRoot} is not on a bpffs mount"));
        }
        Directory.CreateDirectory(dir);
        return File.Exists(Path.Combine(dir, ProgramName)) ? Adopt(dir, options.ObjectPath) : LoadAndPin(dir, options.ObjectPath);
    }

    private static Datapath Adopt(string dir, string objectPath)
    {
        var opened = new List<IDisposable>();
        try
        {
            var program = Track(opened, BpfProgram.OpenPinned(Path.Combine(dir, ProgramName)));
            var maps = PinnedMaps.Select(name => Track(opened, OpenPinnedMap(dir, name))).ToArray();
            var stale = TagOf(objectPath) != program.Tag;
            return new Datapath(dir, program, maps[0], maps[1], maps[2], maps[3], maps[4], adopted: true, stale);
        }
        catch
        {
            DisposeAll(opened);
            throw;
        }
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
        using var obj = BpfObject.Load(objectPath);
        using var program = obj.FindProgram(ProgramName);
        return program.Tag;
    }

    private static Datapath LoadAndPin(string dir, string objectPath)
    {
        foreach (var stale in PinnedMaps.Select(m => Path.Combine(dir, m)).Where(File.Exists))
        {
            BpfFs.Unpin(stale);
        }
        var opened = new List<IDisposable>();
        var pinned = new List<string>();
        try
        {
            using var obj = BpfObject.Load(objectPath);
            var program = Track(opened, obj.FindProgram(ProgramName));
            var maps = PinnedMaps.Select(name => Track(opened, obj.FindMap(name))).ToArray();
            for (var i = 0; i < maps.Length; i++)
            {
                var path = Path.Combine(dir, PinnedMaps[i]);
                maps[i].Pin(path);
                pinned.Add(path);
            }
            var programPath = Path.Combine(dir, ProgramName);
            program.Pin(programPath); // last: marks the datapath complete (see Open)
            pinned.Add(programPath);
            return new Datapath(dir, program, maps[0], maps[1], maps[2], maps[3], maps[4], adopted: false);
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

    /// <summary>Starts reading the drop records of the event ring buffer (decode them with <see cref="DatapathDrop.TryDecode"/>). The caller disposes the reader.</summary>
    public BpfRingBufferReader OpenEvents()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new BpfRingBufferReader(BpfMap.OpenPinned(Path.Combine(PinDirectory, "events")));
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
        Endpoints.Dispose();
        EndpointsByIp.Dispose();
        Metrics.Dispose();
        EventsMap.Dispose();
        EventSequence.Dispose();
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
