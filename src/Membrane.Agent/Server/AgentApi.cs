using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Membrane.Agent.Conntrack;
using Membrane.Agent.Endpoints;
using Membrane.Agent.Identities;
using Membrane.Agent.Policy;
using Membrane.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Membrane.Agent.Server;

/// <summary>What GET /v1/status reports besides the endpoints.</summary>
internal sealed record StatusFacts(AgentOptions Options, DateTimeOffset StartedAt, TimeProvider Time);

/// <summary>
/// The routes of the agent's API (Membrane.Api's contract: MembraneClient calls them) and the
/// middleware around them: request logging, and every error as an <see cref="ApiError"/> body.
/// Handlers take the <see cref="HttpContext"/> and use the source-generated
/// <see cref="ApiJsonContext"/> directly: no reflection, and a malformed body gets a precise
/// answer (code 6, what is wrong and where) instead of the framework's empty 400.
/// </summary>
internal static partial class AgentApi
{
    /// <summary>The largest request body accepted (a GC with tens of thousands of attachments fits).</summary>
    public const long MaxRequestBodyBytes = 4 << 20;

    // Requests are decoded strictly: a null where the contract has a non-nullable member
    // ("labels": null, a label without "value") is a decode failure (code 6) naming the member,
    // not a NullReferenceException later. Answers use the shared context as it is.
    private static readonly ApiJsonContext s_strict = new(new JsonSerializerOptions
    {
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    });

    public static void Map(WebApplication app, EndpointManager endpoints, IdentityAllocator identities, PolicyManager policy, StatusFacts facts,
        ConntrackCollector? conntrack, ILogger logger)
    {
        app.Use((ctx, next) => LogRequestAsync(ctx, next, logger));
        app.Use((ctx, next) => TranslateErrorsAsync(ctx, next, logger));
        // Whatever ends in an error status without a body (no route: 404, wrong method: 405)
        // gets an ApiError body too, so a client can always decode one.
        app.UseStatusCodePages(StatusCodeBodyAsync);

        app.MapGet("/v1/status", ctx => WriteAsync(ctx, Status(endpoints, facts), ApiJsonContext.Default.StatusResponse));
        app.MapPost("/v1/cni/add", async ctx =>
        {
            var request = await ReadAsync(ctx, s_strict.CniAddRequest, "add").ConfigureAwait(false);
            var response = await endpoints.AddAsync(request, ctx.RequestAborted).ConfigureAwait(false);
            await WriteAsync(ctx, response, ApiJsonContext.Default.CniAddResponse).ConfigureAwait(false);
        });
        app.MapPost("/v1/cni/del", async ctx =>
        {
            var request = await ReadAsync(ctx, s_strict.CniDelRequest, "del").ConfigureAwait(false);
            await endpoints.DeleteAsync(request, ctx.RequestAborted).ConfigureAwait(false);
            ctx.Response.StatusCode = StatusCodes.Status204NoContent;
        });
        app.MapPost("/v1/cni/check", async ctx =>
        {
            var request = await ReadAsync(ctx, s_strict.CniCheckRequest, "check").ConfigureAwait(false);
            await endpoints.CheckAsync(request, ctx.RequestAborted).ConfigureAwait(false);
            ctx.Response.StatusCode = StatusCodes.Status204NoContent;
        });
        app.MapPost("/v1/cni/gc", async ctx =>
        {
            var request = await ReadAsync(ctx, s_strict.CniGcRequest, "gc").ConfigureAwait(false);
            var response = await endpoints.GarbageCollectAsync(request, ctx.RequestAborted).ConfigureAwait(false);
            await WriteAsync(ctx, response, ApiJsonContext.Default.CniGcResponse).ConfigureAwait(false);
        });
        app.MapGet("/v1/endpoints", ctx => WriteAsync(ctx, endpoints.List().ToList(), ApiJsonContext.Default.ListEndpointInfo));
        app.MapGet("/v1/bpf/endpoints", ctx => BpfEndpointsAsync(ctx, endpoints));
        app.MapGet("/v1/bpf/metrics", ctx => BpfMetricsAsync(ctx, endpoints.Datapath));
        MapConntrack(app, conntrack, endpoints.Datapath.Description);
        MapIdentities(app, endpoints, identities);
        MapPolicy(app, endpoints, policy);
        app.MapGet("/v1/endpoints/{id}", ctx =>
        {
            var text = (string?)ctx.Request.RouteValues["id"] ?? "";
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                throw new AgentException(ErrorCodes.InvalidRequest, $"failed to get endpoint '{text}': an endpoint id is a number");
            }
            var info = endpoints.Get(id) ?? throw new AgentException(ErrorCodes.UnknownContainer, $"failed to get endpoint {id}: there is no such endpoint");
            return WriteAsync(ctx, info, ApiJsonContext.Default.EndpointInfo);
        });
    }

    /// <summary>The HTTP status for an error code.</summary>
    public static int HttpStatus(int code) => code switch
    {
        ErrorCodes.IncompatibleVersion or ErrorCodes.UnsupportedField or ErrorCodes.InvalidEnvironment or ErrorCodes.DecodeFailure
            or ErrorCodes.InvalidNetworkConfig or ErrorCodes.InvalidRequest => StatusCodes.Status400BadRequest,
        ErrorCodes.UnknownContainer or ErrorCodes.NotFound => StatusCodes.Status404NotFound,
        // Exhaustion and "busy" pass once addresses are released or the operation finished.
        ErrorCodes.AddressesExhausted or ErrorCodes.TryAgainLater => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    private static StatusResponse Status(EndpointManager endpoints, StatusFacts facts) => new()
    {
        NodeName = facts.Options.NodeName,
        Version = Version,
        PodCidrs = facts.Options.PodCidrs.Select(c => c.ToString()).ToList(),
        Endpoints = endpoints.Count,
        Datapath = endpoints.Datapath.Description,
        BpfPinPath = endpoints.Datapath.PinPath,
        StateDir = Path.GetFullPath(facts.Options.StateDir),
        UptimeSeconds = Math.Round((facts.Time.GetUtcNow() - facts.StartedAt).TotalSeconds, 3),
    };

    private static async Task BpfEndpointsAsync(HttpContext ctx, EndpointManager endpoints)
    {
        var entries = await Kernel(() => endpoints.ListMapEndpointsAsync(ctx.RequestAborted), "list the datapath's endpoint map").ConfigureAwait(false);
        await WriteAsync(ctx, entries.ToList(), ApiJsonContext.Default.ListBpfEndpointEntry).ConfigureAwait(false);
    }

    private static async Task BpfMetricsAsync(HttpContext ctx, IEndpointDatapath datapath)
    {
        var metrics = await Kernel(() => datapath.ReadMetricsAsync(ctx.RequestAborted), "read the datapath's counters").ConfigureAwait(false);
        await WriteAsync(ctx, metrics.ToList(), ApiJsonContext.Default.ListBpfMetricEntry).ConfigureAwait(false);
    }

    /// <summary>Runs a datapath read; a failure is the kernel's (code 101), not the agent's.</summary>
    private static async Task<T> Kernel<T>(Func<Task<T>> read, string what)
    {
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not AgentException and not OperationCanceledException)
        {
            throw new AgentException(ErrorCodes.KernelFailure, $"failed to {what}: {e.Message}", e.GetType().Name, e);
        }
    }

    private static string Version { get; } =
        typeof(AgentApi).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    private static async Task<T> ReadAsync<T>(HttpContext ctx, JsonTypeInfo<T> type, string what)
    {
        T? value;
        try
        {
            value = await JsonSerializer.DeserializeAsync(ctx.Request.Body, type, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            // The message names the problem and e.Path/LineNumber/BytePositionInLine where it is,
            // e.g. "JSON deserialization for type '…' was missing required properties including: 'netns'."
            throw new AgentException(ErrorCodes.DecodeFailure, $"failed to decode the {what} request: {e.Message}", e.Path, e);
        }
        return value ?? throw new AgentException(ErrorCodes.DecodeFailure, $"failed to decode the {what} request: the body is null, an object is required");
    }

    private static Task WriteAsync<T>(HttpContext ctx, T value, JsonTypeInfo<T> type) =>
        ctx.Response.WriteAsJsonAsync(value, type, contentType: null, ctx.RequestAborted);

    private static Task WriteErrorAsync(HttpContext ctx, int status, ApiError error)
    {
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(error, ApiJsonContext.Default.ApiError, contentType: null, ctx.RequestAborted);
    }

    private static async Task TranslateErrorsAsync(HttpContext ctx, Func<Task> next, ILogger logger)
    {
        try
        {
            await next().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
        }
        catch (AgentException e)
        {
            logger.LogWarning("{Method} {Path}: {Code} {Message}", ctx.Request.Method, ctx.Request.Path, e.Code, e.Message);
            if (!ctx.Response.HasStarted)
            {
                await WriteErrorAsync(ctx, HttpStatus(e.Code), e.ToApiError()).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            logger.LogError(e, "{Method} {Path} failed", ctx.Request.Method, ctx.Request.Path);
            if (!ctx.Response.HasStarted)
            {
                await WriteErrorAsync(ctx, StatusCodes.Status500InternalServerError,
                    new ApiError(ErrorCodes.Internal, $"failed to serve {ctx.Request.Method} {ctx.Request.Path}: {e.Message}", e.GetType().FullName)).ConfigureAwait(false);
            }
        }
    }

    private static Task StatusCodeBodyAsync(StatusCodeContext context)
    {
        var ctx = context.HttpContext;
        var status = ctx.Response.StatusCode;
        var error = status switch
        {
            StatusCodes.Status404NotFound => new ApiError(ErrorCodes.InvalidRequest, $"failed to route {ctx.Request.Method} {ctx.Request.Path}: no such API path"),
            StatusCodes.Status405MethodNotAllowed => new ApiError(ErrorCodes.InvalidRequest, $"failed to route {ctx.Request.Method} {ctx.Request.Path}: the path does not take {ctx.Request.Method}"),
            _ => new ApiError(ErrorCodes.InvalidRequest, $"failed to serve {ctx.Request.Method} {ctx.Request.Path}: HTTP {status}"),
        };
        return ctx.Response.WriteAsJsonAsync(error, ApiJsonContext.Default.ApiError, contentType: null, ctx.RequestAborted);
    }

    private static async Task LogRequestAsync(HttpContext ctx, Func<Task> next, ILogger logger)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next().ConfigureAwait(false);
        }
        finally
        {
            logger.LogInformation("{Method} {Path} -> {Status} in {Elapsed:0.0} ms", ctx.Request.Method, ctx.Request.Path,
                ctx.Response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }
}
