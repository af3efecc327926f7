using System.Globalization;
using System.Net;
using Membrane.Agent.Conntrack;
using Membrane.Api;
using Membrane.Datapath;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Membrane.Agent.Server;

internal static partial class AgentApi
{
    /// <summary>
    /// The conntrack routes: GET /v1/bpf/ct[?family=&amp;protocol=&amp;address=&amp;port=] lists
    /// entries, DELETE /v1/bpf/ct flushes both tables, GET /v1/bpf/ct/stats reports table
    /// pressure and the collector, POST /v1/bpf/ct/gc runs a collection now. Without conntrack
    /// tables (a datapath that has none) every one answers code 102 saying so.
    /// </summary>
    private static void MapConntrack(WebApplication app, ConntrackCollector? conntrack, string datapath)
    {
        ConntrackCollector Require(string what) => conntrack
            ?? throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {what}: the agent's datapath ({datapath}) has no conntrack tables");

        app.MapGet("/v1/bpf/ct", ctx => ListConntrackAsync(ctx, Require("list the conntrack tables")));
        app.MapDelete("/v1/bpf/ct", ctx => FlushConntrackAsync(ctx, Require("flush the conntrack tables")));
        app.MapGet("/v1/bpf/ct/stats", ctx => ConntrackStatsAsync(ctx, Require("report the conntrack tables")));
        app.MapPost("/v1/bpf/ct/gc", ctx => CollectConntrackAsync(ctx, Require("garbage-collect the conntrack tables")));
    }

    private static async Task ListConntrackAsync(HttpContext ctx, ConntrackCollector collector)
    {
        var filter = ConntrackFilterFrom(ctx.Request.Query);
        var entries = await Kernel(() => collector.Datapath.ListConntrackAsync(filter, ctx.RequestAborted), "list the conntrack tables").ConfigureAwait(false);
        // Hash order is arbitrary; operators and scripts want a stable one.
        var sorted = entries
            .OrderBy(e => e.Family).ThenBy(e => e.Protocol)
            .ThenBy(e => e.Source.GetAddressBytes(), ByteOrder.Instance).ThenBy(e => e.SourcePort)
            .ThenBy(e => e.Destination.GetAddressBytes(), ByteOrder.Instance).ThenBy(e => e.DestinationPort)
            .Select(ConntrackViews.ToApi)
            .ToList();
        await WriteAsync(ctx, sorted, ApiJsonContext.Default.ListBpfConntrackEntry).ConfigureAwait(false);
    }

    private static async Task FlushConntrackAsync(HttpContext ctx, ConntrackCollector collector)
    {
        var deleted = await Kernel(() => collector.FlushAsync(ctx.RequestAborted), "flush the conntrack tables").ConfigureAwait(false);
        await WriteAsync(ctx, new ConntrackFlushResponse(deleted), ApiJsonContext.Default.ConntrackFlushResponse).ConfigureAwait(false);
    }

    private static async Task ConntrackStatsAsync(HttpContext ctx, ConntrackCollector collector)
    {
        var timeouts = await Kernel(() => collector.Datapath.ReadConntrackTimeoutsAsync(ctx.RequestAborted), "read the conntrack lifetimes").ConfigureAwait(false);
        await WriteAsync(ctx, ConntrackViews.Stats(collector, timeouts), ApiJsonContext.Default.ConntrackStatsResponse).ConfigureAwait(false);
    }

    private static async Task CollectConntrackAsync(HttpContext ctx, ConntrackCollector collector)
    {
        var run = await Kernel(() => collector.CollectAsync(ConntrackGcTrigger.Request, ctx.RequestAborted), "garbage-collect the conntrack tables").ConfigureAwait(false);
        await WriteAsync(ctx, ConntrackViews.ToApi(run), ApiJsonContext.Default.ConntrackGcRunInfo).ConfigureAwait(false);
    }

    /// <summary>The list filter from the query string; a value that does not parse is a 400 naming the parameter.</summary>
    private static ConntrackFilter ConntrackFilterFrom(IQueryCollection query)
    {
        static string? One(IQueryCollection query, string name) =>
            query.TryGetValue(name, out var values) && values.Count > 0 ? values[^1] : null;
        static AgentException Bad(string name, string value, string expected) =>
            new(ErrorCodes.InvalidRequest, $"failed to list the conntrack tables: {name} '{value}' is not {expected}");

        var filter = new ConntrackFilter();
        if (One(query, "family") is { } family)
        {
            filter = filter with
            {
                Family = family.ToLowerInvariant() switch
                {
                    "ipv4" or "4" => ConntrackFamily.IPv4,
                    "ipv6" or "6" => ConntrackFamily.IPv6,
                    _ => throw Bad("family", family, "ipv4 or ipv6"),
                },
            };
        }
        if (One(query, "protocol") is { } protocol)
        {
            filter = filter with
            {
                Protocol = ConntrackViews.TryParseProtocol(protocol, out var p) ? p : throw Bad("protocol", protocol, "tcp, udp, icmp, icmpv6, sctp or a number 0-255"),
            };
        }
        if (One(query, "address") is { } address)
        {
            filter = filter with
            {
                // IPAddress.TryParse also takes "10" (0.0.0.10) and other shorthands a typo
                // produces: only the canonical dotted quad or an IPv6 text is an address here.
                Address = IPAddress.TryParse(address, out var a) && (address.Contains(':', StringComparison.Ordinal) || address.Count(c => c == '.') == 3)
                    ? a : throw Bad("address", address, "an IPv4 address a.b.c.d or an IPv6 address"),
            };
        }
        if (One(query, "port") is { } port)
        {
            filter = filter with
            {
                Port = ushort.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Bad("port", port, "a port number 0-65535"),
            };
        }
        return filter;
    }

    /// <summary>Orders addresses by their bytes, shorter ones first.</summary>
    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y)
        {
            ReadOnlySpan<byte> a = x, b = y;
            return a.Length != b.Length ? a.Length.CompareTo(b.Length) : a.SequenceCompareTo(b);
        }
    }
}
