using System.CommandLine;
using Membrane.Agent;
using Membrane.Agent.Conntrack;
using Membrane.Agent.Kernel;
using Microsoft.Extensions.Logging;

namespace Membrane.Cli;

/// <summary>
/// <c>membrane agent --state-dir DIR --socket PATH --pod-cidr CIDR4[,CIDR6] [--node-name NAME] [--ct-…]</c>:
/// the per-node agent, in the foreground until SIGINT/SIGTERM, logging to stderr, in whatever
/// network namespace it was started in.
/// </summary>
internal static class AgentCommand
{
    public static Command Create()
    {
        var stateDir = new Option<string>("--state-dir") { Description = "Folder of the agent's state (SQLite)", Required = true };
        var socket = new Option<string>("--socket") { Description = "Unix socket the API listens on (mode 0600)", DefaultValueFactory = _ => Api.MembraneClient.DefaultSocketPath };
        var podCidr = new Option<string>("--pod-cidr") { Description = "The node's pod CIDRs: CIDR4[,CIDR6]", Required = true };
        var nodeName = new Option<string>("--node-name") { Description = "The node's name (default: the host name); pins live under /sys/fs/bpf/membrane/<node-name>/", DefaultValueFactory = _ => Environment.MachineName };
        var bpfRoot = new Option<string?>("--bpf-root") { Description = "bpffs folder for the pins (default /sys/fs/bpf/membrane)" };
        var ctMaxEntries = new Option<string?>("--ct-max-entries") { Description = $"Entries of each conntrack table, IPv4 and IPv6 (default {Datapath.DatapathOptions.DefaultConntrackMaxEntries}; a datapath adopted from pins keeps its size)" };
        var ctTcpSyn = new Option<string?>("--ct-timeout-tcp-syn") { Description = "Lifetime of a TCP connection in its handshake: SYN_SENT, SYN_RECV (default 60s)" };
        var ctTcpEstablished = new Option<string?>("--ct-timeout-tcp-established") { Description = "Lifetime of an idle established or half-closed TCP connection (default 6h)" };
        var ctTcpClose = new Option<string?>("--ct-timeout-tcp-close") { Description = "Lifetime of a closing TCP connection: LAST_ACK, TIME_WAIT, CLOSE (default 10s)" };
        var ctOther = new Option<string?>("--ct-timeout-other") { Description = "Lifetime of an idle UDP, ICMP or other flow (default 60s)" };
        var ctGcInterval = new Option<string?>("--ct-gc-interval") { Description = "A fixed conntrack garbage-collection interval (default: adaptive, 10s to 5m, shorter when tables are fuller)" };
        var allowLocalhost = new Option<bool>("--allow-localhost")
        {
            Description = "Let the node itself reach its pods whatever their ingress policy says (Kubernetes NetworkPolicy semantics; kubelet probes); a deny rule naming the host still wins",
            DefaultValueFactory = _ => true,
        };
        var flowBufferSize = new Option<int>("--flow-buffer-size")
        {
            Description = $"Flows kept in memory for `membrane observe` (1 to {AgentOptions.MaxFlowBufferSize})",
            DefaultValueFactory = _ => AgentOptions.DefaultFlowBufferSize,
        };
        var monitorAggregation = new Option<string>("--monitor-aggregation")
        {
            Description = "Which forwarded packets become trace flows: medium (a connection's first packet and TCP SYN/FIN/RST), none (every packet), maximum (first packets only). Drops and policy verdicts are always reported",
            DefaultValueFactory = _ => "medium",
        }.AcceptOnlyFromAmong("medium", "none", "maximum");
        var metricsListen = new Option<string?>("--metrics-listen")
        {
            Description = "Serve Prometheus metrics at http://ADDRESS:PORT/metrics (e.g. 127.0.0.1:9962); off when not given",
        };
        var podGsoMaxSize = new Option<int>("--pod-gso-max-size")
        {
            Description = $"Largest GSO/GRO packet of pod veths in bytes, {Datapath.EndpointPlumber.LegacyGsoMaxSize} (no BIG TCP) to {Datapath.EndpointPlumber.MaxGsoMaxSize}; applies to pods added afterwards",
            DefaultValueFactory = _ => Datapath.EndpointPlumber.DefaultGsoMaxSize,
        };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Least severe log level written to stderr", DefaultValueFactory = _ => LogLevel.Information };

        var command = new Command("agent", "Run the node agent: IPAM, endpoints, datapath and the API (foreground)")
        {
            stateDir, socket, podCidr, nodeName, bpfRoot, ctMaxEntries, ctTcpSyn, ctTcpEstablished, ctTcpClose, ctOther, ctGcInterval, allowLocalhost, flowBufferSize, monitorAggregation, metricsListen, podGsoMaxSize, logLevel,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var loggers = LoggerFactory.Create(b => b
                .SetMinimumLevel(parse.GetValue(logLevel))
                .AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.TimestampFormat = "HH:mm:ss.fff ";
                })
                .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
            var log = loggers.CreateLogger("membrane.agent");
            AgentOptions options;
            try
            {
                options = new AgentOptions
                {
                    StateDir = Path.GetFullPath(parse.GetValue(stateDir)!),
                    SocketPath = Path.GetFullPath(parse.GetValue(socket)!),
                    PodCidrs = AgentOptions.ParsePodCidrs(parse.GetValue(podCidr)!),
                    NodeName = parse.GetValue(nodeName)!,
                    AllowLocalhost = parse.GetValue(allowLocalhost),
                    FlowBufferSize = parse.GetValue(flowBufferSize),
                    PodGsoMaxSize = parse.GetValue(podGsoMaxSize),
                    MetricsListen = parse.GetValue(metricsListen) is { } listen ? AgentOptions.ParseListen(listen) : null,
                    Conntrack = ConntrackSettings.FromFlags(parse.GetValue(ctMaxEntries), parse.GetValue(ctTcpSyn), parse.GetValue(ctTcpEstablished),
                        parse.GetValue(ctTcpClose), parse.GetValue(ctOther), parse.GetValue(ctGcInterval)),
                };
                options.Validate();
            }
            catch (ArgumentException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            try
            {
                using var datapath = KernelEndpointDatapath.Open(options.NodeName, options.PodCidrs, parse.GetValue(bpfRoot), options.Conntrack,
                    Enum.Parse<Datapath.MonitorAggregation>(parse.GetValue(monitorAggregation)!, ignoreCase: true), options.PodGsoMaxSize);
                log.LogInformation("datapath: {Description}, pinned at {Pins}", datapath.Description, datapath.PinPath);
                if (datapath.ConntrackMaxEntries != options.Conntrack.MaxEntries)
                {
                    log.LogWarning("the adopted conntrack tables hold {Actual} entries each, not the {Requested} of --ct-max-entries: the size applies once the node's pins are removed",
                        datapath.ConntrackMaxEntries, options.Conntrack.MaxEntries);
                }
                await using var host = new AgentHost(options, datapath, loggers, conntrack: datapath, policy: datapath, flows: datapath);
                await host.RunAsync(ct).ConfigureAwait(false);
                return 0;
            }
            catch (Exception e) when (e is AgentException or Linux.Bpf.BpfException or Linux.Netlink.NetlinkException or Datapath.EndpointPlumbingException or IOException)
            {
                log.LogCritical("{Message}", e.Message);
                return 1;
            }
        });
        return command;
    }
}
