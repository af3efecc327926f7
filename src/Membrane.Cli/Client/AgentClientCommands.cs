using System.CommandLine;
using System.Globalization;
using Membrane.Api;

namespace Membrane.Cli.Client;

/// <summary><c>membrane status</c>, <c>endpoint list|get|labels</c>, <c>identity list|get</c>, <c>policy …</c>, <c>bpf endpoint list</c>, <c>bpf metrics</c>, <c>bpf ct …</c>, <c>bpf policy get</c>.</summary>
internal static class AgentClientCommands
{
    public static IEnumerable<Command> Create() => [Status(), Endpoint(), IdentityCommands.Identity(), PolicyCommands.Create(), Bpf(), ObserveCommand.Create(), MonitorCommand.Create()];

    private static Command Status()
    {
        var output = ClientCommand.Output();
        var command = new Command("status", "Show the agent's node, pod CIDRs, endpoints and datapath") { output };
        command.SetClientAction(async (client, parse, ct) =>
        {
            var status = await client.StatusAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(status, ApiJsonContext.Default.StatusResponse);
                return 0;
            }
            Console.WriteLine($"Node:        {status.NodeName}");
            Console.WriteLine($"Version:     {status.Version}");
            Console.WriteLine($"Pod CIDRs:   {string.Join(", ", status.PodCidrs)}");
            Console.WriteLine($"Endpoints:   {status.Endpoints}");
            Console.WriteLine($"Datapath:    {status.Datapath}");
            Console.WriteLine($"BPF pins:    {status.BpfPinPath}");
            Console.WriteLine($"State dir:   {status.StateDir}");
            Console.WriteLine($"Uptime:      {TimeSpan.FromSeconds(Math.Round(status.UptimeSeconds))}");
            return 0;
        });
        return command;
    }

    private static Command Endpoint()
    {
        var endpoint = new Command("endpoint", "The agent's endpoints (one per pod interface)");

        var listOutput = ClientCommand.Output();
        var list = new Command("list", "List endpoints") { listOutput };
        list.SetClientAction(async (client, parse, ct) =>
        {
            var endpoints = await client.EndpointsAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(listOutput) == "json")
            {
                ClientCommand.WriteJson(endpoints, ApiJsonContext.Default.ListEndpointInfo);
                return 0;
            }
            var table = new TableWriter("ID", "POD", "IFNAME", "IPV4", "IPV6", "IDENTITY", "LABELS", "STATE");
            foreach (var e in endpoints)
            {
                table.Add(e.Id.ToString(CultureInfo.InvariantCulture), PodName(e), e.IfName, e.Ipv4, e.Ipv6,
                    e.Identity.ToString(CultureInfo.InvariantCulture), string.Join(",", e.Labels), e.State);
            }
            table.Write(Console.Out);
            return 0;
        });

        var id = new Argument<long>("ID") { Description = "The endpoint's numeric id (see endpoint list)" };
        var getOutput = ClientCommand.Output();
        var get = new Command("get", "Show one endpoint") { id, getOutput };
        get.SetClientAction(async (client, parse, ct) =>
        {
            var e = await client.EndpointAsync(parse.GetValue(id), ct).ConfigureAwait(false);
            if (parse.GetValue(getOutput) == "json")
            {
                ClientCommand.WriteJson(e, ApiJsonContext.Default.EndpointInfo);
                return 0;
            }
            Console.WriteLine($"ID:            {e.Id}");
            Console.WriteLine($"Pod:           {PodName(e)}");
            Console.WriteLine($"Container:     {e.ContainerId}");
            Console.WriteLine($"Interface:     {e.IfName} (host side {e.HostInterface}, ifindex {e.HostIfIndex})");
            Console.WriteLine($"Netns:         {e.NetNs}");
            Console.WriteLine($"IPv4:          {e.Ipv4}");
            Console.WriteLine($"IPv6:          {e.Ipv6}");
            Console.WriteLine($"MAC:           {e.Mac}");
            Console.WriteLine($"Identity:      {e.Identity}");
            Console.WriteLine($"Labels:        {string.Join(", ", e.Labels)}");
            Console.WriteLine($"State:         {e.State}");
            return 0;
        });

        endpoint.Subcommands.Add(list);
        endpoint.Subcommands.Add(get);
        endpoint.Subcommands.Add(IdentityCommands.EndpointLabels());
        return endpoint;
    }

    private static Command Bpf()
    {
        var bpf = new Command("bpf", "What the kernel's datapath maps hold");

        var epOutput = ClientCommand.Output();
        var epList = new Command("list", "List the entries of the endpoint map") { epOutput };
        epList.SetClientAction(async (client, parse, ct) =>
        {
            var entries = await client.BpfEndpointsAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(epOutput) == "json")
            {
                ClientCommand.WriteJson(entries, ApiJsonContext.Default.ListBpfEndpointEntry);
                return 0;
            }
            var table = new TableWriter("IFINDEX", "ENDPOINT", "IPV4", "IPV6", "MAC", "HOST MAC", "IDENTITY", "FLAGS");
            foreach (var e in entries)
            {
                table.Add(e.IfIndex.ToString(CultureInfo.InvariantCulture), e.EndpointId?.ToString(CultureInfo.InvariantCulture),
                    e.Ipv4, e.Ipv6, e.Mac, e.HostMac, e.Identity.ToString(CultureInfo.InvariantCulture), $"0x{e.Flags:x}");
            }
            table.Write(Console.Out);
            return 0;
        });
        var ep = new Command("endpoint", "The datapath's endpoint map");
        ep.Subcommands.Add(epList);

        var metricsOutput = ClientCommand.Output();
        var metrics = new Command("metrics", "Packet and byte counters of the datapath by reason and direction") { metricsOutput };
        metrics.SetClientAction(async (client, parse, ct) =>
        {
            var entries = await client.BpfMetricsAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(metricsOutput) == "json")
            {
                ClientCommand.WriteJson(entries, ApiJsonContext.Default.ListBpfMetricEntry);
                return 0;
            }
            var table = new TableWriter("REASON", "DIRECTION", "PACKETS", "BYTES");
            foreach (var m in entries.OrderBy(m => m.ReasonCode).ThenBy(m => m.Direction, StringComparer.Ordinal))
            {
                table.Add(m.Reason, m.Direction, m.Packets.ToString(CultureInfo.InvariantCulture), m.Bytes.ToString(CultureInfo.InvariantCulture));
            }
            table.Write(Console.Out);
            return 0;
        });

        bpf.Subcommands.Add(ep);
        bpf.Subcommands.Add(metrics);
        bpf.Subcommands.Add(ConntrackCommands.Create());
        bpf.Subcommands.Add(PolicyCommands.Bpf());
        return bpf;
    }

    private static string PodName(EndpointInfo e) =>
        e.PodName is null ? "" : $"{e.PodNamespace ?? "default"}/{e.PodName}";
}
