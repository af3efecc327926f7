using System.Net;
using Membrane.Agent.Conntrack;
using Membrane.Agent.Ipam;
using Membrane.Datapath;

namespace Membrane.Agent;

/// <summary>What <c>membrane agent</c> is told on its command line.</summary>
public sealed record AgentOptions
{
    /// <summary>The default permissions of the API socket: owner read/write only (0600).</summary>
    public const UnixFileMode DefaultSocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>The folder of the state database (created 0700 when missing).</summary>
    public required string StateDir { get; init; }

    /// <summary>The unix socket the API listens on.</summary>
    public required string SocketPath { get; init; }

    /// <summary>The node's pod CIDRs: an IPv4 one and optionally an IPv6 one.</summary>
    public required IReadOnlyList<IPNetwork> PodCidrs { get; init; }

    /// <summary>The node's name (status; the bpffs pin folder is named after it).</summary>
    public string NodeName { get; init; } = Environment.MachineName;

    /// <summary>How long an identity no endpoint uses keeps its number.</summary>
    public TimeSpan IdentityGracePeriod { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The API socket's permissions.</summary>
    public UnixFileMode SocketMode { get; init; } = DefaultSocketMode;

    /// <summary>Conntrack table size, lifetimes and garbage-collection interval (the --ct-* flags).</summary>
    public ConntrackSettings Conntrack { get; init; } = new();

    /// <summary>
    /// Whether the node itself may always reach its pods, as Kubernetes documents for
    /// NetworkPolicy ("traffic to and from the node where a Pod is running is always
    /// allowed") and Cilium does by default: kubelet's probes keep working under default-deny
    /// ingress. A deny rule naming the host still wins.
    /// </summary>
    public bool AllowLocalhost { get; init; } = true;

    /// <summary>Flows the observer keeps in memory for <c>membrane observe</c> (--flow-buffer-size; Hubble's default 4,096).</summary>
    public int FlowBufferSize { get; init; } = DefaultFlowBufferSize;

    /// <summary>The default of <see cref="FlowBufferSize"/>.</summary>
    public const int DefaultFlowBufferSize = 4096;

    /// <summary>The largest <see cref="FlowBufferSize"/> (about 200 MiB of flows).</summary>
    public const int MaxFlowBufferSize = 1 << 20;

    /// <summary>
    /// The GSO/GRO limit of both ends of every new pod veth (--pod-gso-max-size): above 65,536
    /// bytes, BIG TCP. Traffic leaving the node through a device with a smaller limit is
    /// segmented by the kernel before that device.
    /// </summary>
    public int PodGsoMaxSize { get; init; } = EndpointPlumber.DefaultGsoMaxSize;

    /// <summary>Where Prometheus scrapes GET /metrics (--metrics-listen ADDRESS:PORT); null: no metrics listener.</summary>
    public IPEndPoint? MetricsListen { get; init; }

    /// <summary>Parses <c>--metrics-listen ADDRESS:PORT</c> (an IPv6 address in brackets).</summary>
    /// <exception cref="ArgumentException">Not an address with a port.</exception>
    public static IPEndPoint ParseListen(string text)
    {
        if (!IPEndPoint.TryParse(text.Trim(), out var endpoint) || endpoint.Port == 0 || !text.Contains(':', StringComparison.Ordinal))
        {
            throw new ArgumentException($"failed to parse --metrics-listen '{text}': expected ADDRESS:PORT, e.g. 127.0.0.1:9962 or [::1]:9962");
        }
        return endpoint;
    }

    /// <summary>
    /// Whether <see cref="AgentHost.RunAsync"/> stops on SIGINT/SIGTERM. True for the agent
    /// process; tests that host an agent in-process turn it off.
    /// </summary>
    public bool HandleSignals { get; init; } = true;

    /// <summary>Parses the <c>--pod-cidr CIDR4[,CIDR6]</c> argument.</summary>
    /// <exception cref="ArgumentException">Not a comma-separated list of CIDRs with the host bits clear.</exception>
    public static IReadOnlyList<IPNetwork> ParsePodCidrs(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            throw new ArgumentException("failed to parse --pod-cidr: no CIDR given (expected CIDR4[,CIDR6])");
        }
        return parts.Select(IpamAllocator.ParseCidr).ToList();
    }

    /// <summary>Checks the options; throws <see cref="ArgumentException"/> naming what is wrong.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(StateDir))
        {
            throw new ArgumentException("failed to start the agent: no state dir given");
        }
        if (string.IsNullOrWhiteSpace(SocketPath))
        {
            throw new ArgumentException("failed to start the agent: no socket path given");
        }
        if (PodCidrs.Count == 0)
        {
            throw new ArgumentException("failed to start the agent: no pod CIDR given");
        }
        IpamAllocator.Validate(PodCidrs);
        if (string.IsNullOrWhiteSpace(NodeName) || NodeName.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"failed to start the agent: invalid node name '{NodeName}'");
        }
        if (IdentityGracePeriod < TimeSpan.Zero)
        {
            throw new ArgumentException($"failed to start the agent: negative identity grace period {IdentityGracePeriod}");
        }
        if (FlowBufferSize is < 1 or > MaxFlowBufferSize)
        {
            throw new ArgumentException($"failed to start the agent: --flow-buffer-size {FlowBufferSize} is not between 1 and {MaxFlowBufferSize}");
        }
        if (!EndpointPlumber.IsValidGsoMaxSize(PodGsoMaxSize))
        {
            throw new ArgumentException($"failed to start the agent: --pod-gso-max-size {PodGsoMaxSize} is not between {EndpointPlumber.LegacyGsoMaxSize} (no BIG TCP) and {EndpointPlumber.MaxGsoMaxSize}");
        }
        Conntrack.Validate();
    }
}
