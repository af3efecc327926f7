using Membrane.Api;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>What a node holds, read from the agent, the datapath maps and the node's kernel: for "left nothing behind" checks.</summary>
internal sealed record NodeState(int Endpoints, int MapEntries, IReadOnlyList<string> Links, IReadOnlyList<string> PodRoutes)
{
    public static async Task<NodeState> ReadAsync(TestNode node)
    {
        var endpoints = await node.Client.EndpointsAsync();
        var map = await node.Client.BpfEndpointsAsync();
        var links = node.Node.Netlink.GetLinks().Select(l => l.Name).Where(n => n != "lo").ToList();
        // Routes into the pod CIDR other than the agent's own unreachable one are host routes to pods.
        var (_, routes, _) = Tools.Run("ip", ["-n", node.Name, "-4", "route", "show"]);
        var (_, routes6, _) = Tools.Run("ip", ["-n", node.Name, "-6", "route", "show"]);
        var podRoutes = (routes + routes6).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(r => r.StartsWith("198.18.", StringComparison.Ordinal) || r.StartsWith("fd00:198:18:", StringComparison.Ordinal))
            .ToList();
        return new NodeState(endpoints.Count, map.Count, links, podRoutes);
    }

    public static ulong Packets(IEnumerable<BpfMetricEntry> metrics, string reason) =>
        metrics.Where(m => m.Reason == reason).Aggregate(0ul, (s, m) => s + m.Packets);
}
