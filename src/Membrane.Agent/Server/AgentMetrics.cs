using System.Diagnostics;
using System.Net;
using Membrane.Agent.Conntrack;
using Membrane.Agent.Endpoints;
using Membrane.Agent.Flows;
using Membrane.Agent.Identities;
using Membrane.Agent.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace Membrane.Agent.Server;

/// <summary>
/// The agent's Prometheus metrics (prometheus-net, a registry of its own) and the listener
/// that serves them on <c>--metrics-listen</c>, apart from the API socket: only GET /metrics is
/// reachable there. Datapath counters, map fill and counts are read when Prometheus scrapes;
/// API request latency is observed as requests happen. Names follow Cilium's where it has the
/// same metric (cilium_drop_count_total → membrane_drop_count_total).
/// </summary>
internal sealed class AgentMetrics : IAsyncDisposable
{
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Histogram _apiDuration;
    private WebApplication? _app;

    public AgentMetrics(EndpointManager endpoints, IdentityAllocator identities, PolicyManager policy, ConntrackCollector? conntrack, FlowObserver? flows)
    {
        var f = Metrics.WithCustomRegistry(_registry);
        _apiDuration = f.CreateHistogram("membrane_api_request_duration_seconds", "Time to answer an API request on the agent's socket",
            new HistogramConfiguration { LabelNames = ["method", "path", "return_code"], Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });
        var forwardCount = f.CreateCounter("membrane_forward_count_total", "Packets the datapath forwarded", "direction");
        var forwardBytes = f.CreateCounter("membrane_forward_bytes_total", "Bytes the datapath forwarded", "direction");
        var dropCount = f.CreateCounter("membrane_drop_count_total", "Packets the datapath dropped", "reason", "direction");
        var dropBytes = f.CreateCounter("membrane_drop_bytes_total", "Bytes the datapath dropped", "reason", "direction");
        var flowsProcessed = f.CreateCounter("membrane_flows_processed_total", "Flows the observer read from the datapath", "verdict");
        var lost = f.CreateCounter("membrane_events_lost_total", "Datapath records that never became flows", "source");
        var mapEntries = f.CreateGauge("membrane_bpf_map_entries", "Entries of a datapath map (conntrack: as of the last garbage collection)", "map_name");
        var mapCapacity = f.CreateGauge("membrane_bpf_map_capacity", "Size of a datapath map", "map_name");
        var endpointCount = f.CreateGauge("membrane_endpoint_count", "Endpoints on this node");
        var identityCount = f.CreateGauge("membrane_identity_count", "Security identities allocated on this node (reserved ones not counted)");

        _registry.AddBeforeCollectCallback(async ct =>
        {
            // The datapath's per-CPU counters, summed by reason and direction.
            var metrics = await endpoints.Datapath.ReadMetricsAsync(ct).ConfigureAwait(false);
            foreach (var group in metrics.GroupBy(m => (m.Reason, m.ReasonCode, m.Direction)))
            {
                var packets = group.Aggregate(0ul, (sum, m) => sum + m.Packets);
                var bytes = group.Aggregate(0ul, (sum, m) => sum + m.Bytes);
                if (group.Key.ReasonCode == 0)
                {
                    forwardCount.WithLabels(group.Key.Direction).IncTo(packets);
                    forwardBytes.WithLabels(group.Key.Direction).IncTo(bytes);
                }
                else
                {
                    dropCount.WithLabels(group.Key.Reason, group.Key.Direction).IncTo(packets);
                    dropBytes.WithLabels(group.Key.Reason, group.Key.Direction).IncTo(bytes);
                }
            }
            endpointCount.Set(endpoints.Count);
            identityCount.Set(identities.List().Count(i => i.ReservedName is null));
            mapEntries.WithLabels("policy").Set(policy.EntryCount);
            if (conntrack?.LastRun is { } run)
            {
                foreach (var table in run.Result.Tables)
                {
                    var name = "ct_" + ConntrackCollector.Name(table.Family);
                    mapEntries.WithLabels(name).Set(table.Alive);
                    mapCapacity.WithLabels(name).Set(table.MaxEntries);
                }
            }
            if (flows is not null)
            {
                flowsProcessed.WithLabels("FORWARDED").IncTo(flows.Forwarded);
                flowsProcessed.WithLabels("DROPPED").IncTo(flows.Dropped);
                lost.WithLabels("kernel_ring_buffer").IncTo(flows.LostInKernel);
                lost.WithLabels("agent_reader").IncTo(flows.LostInReader);
                mapEntries.WithLabels("flow_buffer").Set(flows.Ring.Count);
                mapCapacity.WithLabels("flow_buffer").Set(flows.Ring.Capacity);
            }
        });
    }

    /// <summary>Times one API request (middleware on the API's pipeline).</summary>
    public async Task ObserveRequestAsync(HttpContext ctx, Func<Task> next)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next().ConfigureAwait(false);
        }
        finally
        {
            // The route pattern, not the path: /v1/endpoints/{id} is one series, not one per id.
            var path = (ctx.GetEndpoint() as Microsoft.AspNetCore.Routing.RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
            _apiDuration.WithLabels(ctx.Request.Method, path, ctx.Response.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    /// <summary>Starts serving GET /metrics on <paramref name="endpoint"/>.</summary>
    public async Task StartAsync(IPEndPoint endpoint, ILoggerFactory loggers, CancellationToken ct)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "membrane-agent-metrics" });
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(endpoint, l => l.Protocols = HttpProtocols.Http1);
        });
        builder.Services.AddRoutingCore();
        builder.Services.AddLogging();
        builder.Services.AddSingleton<ILoggerFactory>(new FrameworkLogFilter(loggers)); // no framework line per scrape
        builder.Services.AddSingleton<IHostLifetime, NoLifetime>();
        var app = builder.Build();
        app.MapGet("/metrics", async ctx =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await _registry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted).ConfigureAwait(false);
        });
        await app.StartAsync(ct).ConfigureAwait(false);
        _app = app;
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync().ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
            _app = null;
        }
    }

    private sealed class NoLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
