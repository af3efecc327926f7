using System.Collections.Concurrent;
using Membrane.Agent.Endpoints;
using Membrane.Api;

namespace Membrane.Agent.Tests;

/// <summary>
/// A test double of the kernel half: records every call, keeps the "kernel" state as a set of
/// host interfaces, and fails on demand. Lives in the test project only.
/// </summary>
public sealed class RecordingDatapath : IEndpointDatapath
{
    private readonly ConcurrentDictionary<string, int> _ifindexes = new();
    private int _ifindex = 100;

    public string Description => "recording test double";

    public string PinPath => "/sys/fs/bpf/membrane/test";

    /// <summary>Every call, in order: "create lxc…", "delete lxc…", "check lxc…".</summary>
    public ConcurrentQueue<string> Calls { get; } = new();

    /// <summary>What exists "in the kernel": host interface → spec.</summary>
    public ConcurrentDictionary<string, EndpointSpec> Kernel { get; } = new();

    /// <summary>When set, CreateAsync builds a partial endpoint (it appears in <see cref="Kernel"/>) and then throws this.</summary>
    public Func<EndpointSpec, Exception?>? FailCreate { get; set; }

    /// <summary>When set, DeleteAsync throws this.</summary>
    public Exception? FailDelete { get; set; }

    /// <summary>When set, CheckAsync throws this.</summary>
    public Exception? FailCheck { get; set; }

    /// <summary>Delay inside CreateAsync, to let concurrent calls overlap.</summary>
    public TimeSpan CreateDelay { get; set; }

    public int CreateCount => Calls.Count(c => c.StartsWith("create ", StringComparison.Ordinal));

    public int DeleteCount => Calls.Count(c => c.StartsWith("delete ", StringComparison.Ordinal));

    public async Task<DatapathEndpoint> CreateAsync(EndpointSpec spec, CancellationToken ct)
    {
        Calls.Enqueue($"create {spec.HostInterface}");
        if (CreateDelay > TimeSpan.Zero)
        {
            await Task.Delay(CreateDelay, ct);
        }
        Kernel[spec.HostInterface] = spec;
        if (FailCreate?.Invoke(spec) is { } failure)
        {
            throw failure;
        }
        var index = Interlocked.Increment(ref _ifindex);
        _ifindexes[spec.HostInterface] = index;
        return new DatapathEndpoint(spec.HostInterface, index, $"02:00:00:00:{index >> 8:x2}:{index & 0xff:x2}", $"0a:00:00:00:{index >> 8:x2}:{index & 0xff:x2}");
    }

    public Task DeleteAsync(EndpointSpec spec, CancellationToken ct)
    {
        Calls.Enqueue($"delete {spec.HostInterface}");
        if (FailDelete is { } failure)
        {
            return Task.FromException(failure);
        }
        Kernel.TryRemove(spec.HostInterface, out _);
        return Task.CompletedTask;
    }

    /// <summary>The counters ReadMetricsAsync reports.</summary>
    public List<BpfMetricEntry> Metrics { get; } = [];

    /// <summary>When set, the map and counter reads throw this.</summary>
    public Exception? FailRead { get; set; }

    /// <summary>The "endpoint map": one entry per endpoint in <see cref="Kernel"/> with the ifindex CreateAsync gave it.</summary>
    public Task<IReadOnlyList<BpfEndpointEntry>> ListMapEndpointsAsync(CancellationToken ct)
    {
        if (FailRead is { } failure)
        {
            return Task.FromException<IReadOnlyList<BpfEndpointEntry>>(failure);
        }
        IReadOnlyList<BpfEndpointEntry> entries = _ifindexes
            .Where(kv => Kernel.TryGetValue(kv.Key, out _))
            .Select(kv => new BpfEndpointEntry
            {
                IfIndex = kv.Value,
                Ipv4 = Kernel[kv.Key].Addresses.FirstOrDefault(a => a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)?.Address.ToString(),
                Identity = Kernel[kv.Key].Identity,
            })
            .ToList();
        return Task.FromResult(entries);
    }

    public Task<IReadOnlyList<BpfMetricEntry>> ReadMetricsAsync(CancellationToken ct) =>
        FailRead is { } failure ? Task.FromException<IReadOnlyList<BpfMetricEntry>>(failure) : Task.FromResult<IReadOnlyList<BpfMetricEntry>>(Metrics);

    public Task<bool> HostInterfaceExistsAsync(EndpointSpec spec, CancellationToken ct) =>
        FailCheck is { } failure ? Task.FromException<bool>(failure) : Task.FromResult(Kernel.ContainsKey(spec.HostInterface));

    /// <summary>When set, SetIdentity throws this (after "writing" nothing).</summary>
    public Exception? FailSetIdentity { get; set; }

    /// <summary>Rewrites the identity of the "kernel" entry whose ifindex is <paramref name="current"/>'s.</summary>
    public uint SetIdentity(DatapathEndpoint current, uint identity)
    {
        Calls.Enqueue($"set-identity {current.HostInterface} {identity}");
        if (FailSetIdentity is { } failure)
        {
            throw failure;
        }
        if (!_ifindexes.TryGetValue(current.HostInterface, out var index) || index != current.HostIfIndex
            || !Kernel.TryGetValue(current.HostInterface, out var spec))
        {
            throw new AgentException(Api.ErrorCodes.KernelFailure, $"no endpoint entry for ifindex {current.HostIfIndex}");
        }
        Kernel[current.HostInterface] = spec with { Identity = identity };
        return spec.Identity;
    }

    public Task<IReadOnlyList<string>> CheckAsync(EndpointSpec spec, DatapathEndpoint current, CancellationToken ct)
    {
        Calls.Enqueue($"check {spec.HostInterface}");
        if (FailCheck is { } failure)
        {
            return Task.FromException<IReadOnlyList<string>>(failure);
        }
        // As the real check (EndpointPlumber.Check) does, the entry's identity must be the record's.
        IReadOnlyList<string> problems = !Kernel.TryGetValue(spec.HostInterface, out var made) ? [$"veth {spec.HostInterface} does not exist"]
            : made.Identity != spec.Identity ? [$"endpoint entry has identity {made.Identity}, expected {spec.Identity}"]
            : [];
        return Task.FromResult(problems);
    }
}
