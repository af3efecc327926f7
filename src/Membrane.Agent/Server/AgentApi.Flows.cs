using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Membrane.Agent.Flows;
using Membrane.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Membrane.Agent.Server;

internal static partial class AgentApi
{
    private const int FlowBatch = 256;

    /// <summary>
    /// POST /v1/flows (the buffered flows that match, then with follow the new ones: one JSON
    /// object a line, flushed as they come), GET /v1/monitor (raw records as they arrive) and
    /// GET /v1/flows/status.
    /// </summary>
    public static void MapFlows(WebApplication app, FlowObserver? observer, FlowConverter converter, string aggregation)
    {
        app.MapPost("/v1/flows", async ctx =>
        {
            var request = await ReadAsync(ctx, s_strict.ObserveRequest, "observe").ConfigureAwait(false);
            var matcher = Validate(request);
            await StreamFlowsAsync(ctx, Require(observer), converter, request, matcher).ConfigureAwait(false);
        });
        app.MapGet("/v1/monitor", ctx => StreamMonitorAsync(ctx, Require(observer)));
        app.MapGet("/v1/flows/status", ctx =>
        {
            var o = Require(observer);
            return WriteAsync(ctx, new FlowStatusResponse
            {
                NumFlows = o.Ring.Count,
                MaxFlows = o.Ring.Capacity,
                SeenFlows = (ulong)o.Seen,
                LostKernel = o.LostInKernel,
                LostAgent = o.LostInReader,
                Undecodable = (ulong)o.Undecodable,
                MonitorAggregation = aggregation,
            }, ApiJsonContext.Default.FlowStatusResponse);
        });
    }

    private static FlowObserver Require(FlowObserver? observer) => observer ??
        throw new AgentException(ErrorCodes.NotFound, "failed to observe flows: this agent's datapath writes no records");

    private static FlowMatcher Validate(ObserveRequest request)
    {
        if (request.Number < 0)
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to observe flows: number {request.Number} is negative");
        }
        if (request.Since is { } since && request.Until is { } until && until < since)
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to observe flows: until {until:O} is before since {since:O}");
        }
        try
        {
            return new FlowMatcher(request.Whitelist, request.Blacklist);
        }
        catch (ArgumentException e)
        {
            throw new AgentException(ErrorCodes.InvalidRequest, e.Message);
        }
    }

    private static async Task StreamFlowsAsync(HttpContext ctx, FlowObserver observer, FlowConverter converter, ObserveRequest request, FlowMatcher matcher)
    {
        var ct = ctx.RequestAborted;
        ctx.Response.ContentType = "application/x-ndjson";
        var ring = observer.Ring;
        var entries = new List<FlowEntry>(FlowBatch);

        // The buffer first: every matching flow, or the last N of them.
        var next = ring.Next;
        var backlog = new List<FlowLine>();
        if (!request.Follow || request.Number > 0)
        {
            for (var from = Math.Max(0, next - ring.Capacity); from < next; from += FlowBatch)
            {
                entries.Clear();
                ring.Read(from, (int)Math.Min(FlowBatch, next - from), entries);
                foreach (var entry in entries)
                {
                    if (Line(entry, converter, request, matcher) is { } line)
                    {
                        backlog.Add(line);
                    }
                }
            }
        }
        var skip = request.Number > 0 ? Math.Max(0, backlog.Count - request.Number) : 0;
        await WriteLinesAsync(ctx, backlog.Skip(skip), ApiJsonContext.Default.FlowLine).ConfigureAwait(false);
        if (!request.Follow)
        {
            return;
        }

        // Then new flows as they come, until the client goes or `until` has passed.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (request.Until is { } until)
        {
            var left = until - DateTimeOffset.UtcNow;
            stop.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
        }
        try
        {
            while (true)
            {
                await ring.WaitForAsync(next, stop.Token).ConfigureAwait(false);
                entries.Clear();
                var missed = ring.Read(next, FlowBatch, entries);
                var lines = new List<FlowLine>(entries.Count + 1);
                if (missed > 0)
                {
                    // This stream fell a whole buffer behind: say so, as Hubble does.
                    lines.Add(new FlowLine { LostEvents = new LostEvents { Source = FlowObserver.LostInAgentSource, NumEventsLost = (ulong)missed } });
                }
                foreach (var entry in entries)
                {
                    if (Line(entry, converter, request, matcher) is { } line)
                    {
                        lines.Add(line);
                    }
                }
                next = entries.Count > 0 ? entries[^1].Sequence + 1 : next + missed;
                await WriteLinesAsync(ctx, lines, ApiJsonContext.Default.FlowLine).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            // `until` has passed: the stream ends normally.
        }
    }

    private static FlowLine? Line(in FlowEntry entry, FlowConverter converter, ObserveRequest request, FlowMatcher matcher)
    {
        if (request.Since is { } since && entry.Time < since || request.Until is { } until && entry.Time >= until)
        {
            return null;
        }
        if (entry.IsLostNotice)
        {
            return new FlowLine { LostEvents = new LostEvents { Source = entry.LostSource!, NumEventsLost = entry.Lost }, Time = entry.Time };
        }
        var flow = converter.ToFlow(entry, request.IncludePacket);
        return flow is not null && matcher.Matches(flow) ? new FlowLine { Flow = flow, NodeName = flow.NodeName, Time = flow.Time } : null;
    }

    private static async Task StreamMonitorAsync(HttpContext ctx, FlowObserver observer)
    {
        var ct = ctx.RequestAborted;
        ctx.Response.ContentType = "application/x-ndjson";
        await ctx.Response.StartAsync(ct).ConfigureAwait(false);
        await ctx.Response.Body.FlushAsync(ct).ConfigureAwait(false);
        var ring = observer.Ring;
        var next = ring.Next;
        var entries = new List<FlowEntry>(FlowBatch);
        try
        {
            while (true)
            {
                await ring.WaitForAsync(next, ct).ConfigureAwait(false);
                entries.Clear();
                var missed = ring.Read(next, FlowBatch, entries);
                next = entries.Count > 0 ? entries[^1].Sequence + 1 : next + missed;
                await WriteLinesAsync(ctx, entries.Select(e => FlowConverter.ToMonitorRecord(e)).OfType<MonitorRecord>(),
                    ApiJsonContext.Default.MonitorRecord).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private static async Task WriteLinesAsync<T>(HttpContext ctx, IEnumerable<T> lines, JsonTypeInfo<T> type)
    {
        var body = ctx.Response.BodyWriter;
        await using (var writer = new Utf8JsonWriter(body))
        {
            foreach (var line in lines)
            {
                JsonSerializer.Serialize(writer, line, type);
                await writer.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
                writer.Reset();
                body.Write("\n"u8);
            }
        }
        await body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }
}
