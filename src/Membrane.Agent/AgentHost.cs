using System.Runtime.InteropServices;
using Membrane.Agent.Conntrack;
using Membrane.Agent.Endpoints;
using Membrane.Agent.Flows;
using Membrane.Agent.Identities;
using Membrane.Agent.Ipam;
using Membrane.Agent.Policy;
using Membrane.Agent.Server;
using Membrane.Agent.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Membrane.Agent;

/// <summary>
/// The agent process's life: opens the state, restores the endpoints, serves the API on the
/// unix socket, collects unused identities, and on stop (cancellation, SIGINT, SIGTERM) closes
/// everything in reverse. <c>membrane agent</c> builds the options and the datapath and calls
/// <see cref="RunAsync"/>.
/// </summary>
/// <remarks>
/// The datapath is the caller's: it is loaded (and its routes installed) before the host
/// starts and outlives it, because pinned programs must keep forwarding while the agent is down.
/// </remarks>
public sealed class AgentHost : IAsyncDisposable
{
    private const string LockFileName = "agent.lock";

    // Records that may wait between the ring-buffer reader's thread and the observer: a burst's
    // worth (the kernel's 1 MiB ring holds ~7,700), so that the reader rarely has to drop one.
    private const int EventReaderSlots = 16_384;

    private readonly AgentOptions _options;
    private readonly IEndpointDatapath _datapath;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private FileStream? _stateLock;
    private AgentStore? _store;
    private WebApplication? _app;
    private CancellationTokenSource? _background;
    private Task _identityCollector = Task.CompletedTask;
    private readonly IConntrackDatapath? _conntrackDatapath;
    private readonly IPolicyDatapath? _policyDatapath;
    private Task _conntrackLoop = Task.CompletedTask;
    private readonly IFlowDatapath? _flowDatapath;
    private Task _flowLoop = Task.CompletedTask;
    private AgentMetrics? _metrics;

    /// <summary>Creates a host; nothing happens until <see cref="StartAsync"/> or <see cref="RunAsync"/>.</summary>
    /// <param name="options">The command line.</param>
    /// <param name="datapath">The kernel half of endpoints.</param>
    /// <param name="loggerFactory">Where the agent logs.</param>
    /// <param name="time">The clock (tests pass a fake one).</param>
    /// <param name="conntrack">
    /// The datapath's conntrack tables, garbage-collected by the agent and served under
    /// /v1/bpf/ct; null when the datapath has none (the routes then say so).
    /// </param>
    /// <param name="policy">
    /// The datapath's policy maps and ipcache, which the agent's <see cref="PolicyManager"/>
    /// writes; null when the datapath has none (policies are kept and resolved, not enforced).
    /// </param>
    /// <param name="flows">
    /// The datapath's event records, which the agent's <see cref="FlowObserver"/> reads and
    /// serves under /v1/flows; null when the datapath has none.
    /// </param>
    public AgentHost(AgentOptions options, IEndpointDatapath datapath, ILoggerFactory? loggerFactory = null, TimeProvider? time = null,
        IConntrackDatapath? conntrack = null, IPolicyDatapath? policy = null, IFlowDatapath? flows = null)
    {
        options.Validate();
        _options = options;
        _datapath = datapath;
        _conntrackDatapath = conntrack;
        _policyDatapath = policy;
        _flowDatapath = flows;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<AgentHost>();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The endpoint manager, once started.</summary>
    public EndpointManager? Endpoints { get; private set; }

    /// <summary>The identity allocator, once started.</summary>
    public IdentityAllocator? Identities { get; private set; }

    /// <summary>The policy manager, once started.</summary>
    public PolicyManager? Policy { get; private set; }

    /// <summary>The IP allocator, once started.</summary>
    public IpamAllocator? Ipam { get; private set; }

    /// <summary>The conntrack garbage collector, once started (null without conntrack tables).</summary>
    public ConntrackCollector? Conntrack { get; private set; }

    /// <summary>The flow observer, once started (null without datapath records).</summary>
    public FlowObserver? Flows { get; private set; }

    /// <summary>
    /// Runs until <paramref name="ct"/> is cancelled or, with <see cref="AgentOptions.HandleSignals"/>,
    /// the process gets SIGINT or SIGTERM; then stops cleanly.
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var registrations = new List<PosixSignalRegistration>();
        if (_options.HandleSignals)
        {
            foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
            {
                registrations.Add(PosixSignalRegistration.Create(signal, context =>
                {
                    // Cancel keeps the runtime from terminating the process at once: the
                    // agent stops on its own and closes the store.
                    context.Cancel = true;
                    _logger.LogInformation("received {Signal}, stopping", context.Signal);
                    stop.Cancel();
                }));
            }
        }
        try
        {
            await StartAsync(stop.Token).ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
        }
        finally
        {
            foreach (var registration in registrations)
            {
                registration.Dispose();
            }
            await StopAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Opens the state, restores endpoints and starts listening; returns once the API answers.</summary>
    /// <exception cref="AgentException">The state dir is in use by another agent, the database cannot be opened, or the socket is taken.</exception>
    public async Task StartAsync(CancellationToken ct)
    {
        if (_store is not null)
        {
            throw new InvalidOperationException("failed to start the agent: it is already started");
        }
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("failed to start the agent: it runs on Linux only");
        }
        var startedAt = _time.GetUtcNow();
        try
        {
            LockStateDir();
            _store = AgentStore.Open(_options.StateDir);
            Identities = new IdentityAllocator(_store, _options.IdentityGracePeriod, _time, _loggerFactory.CreateLogger<IdentityAllocator>());
            Ipam = new IpamAllocator(_store, _options.PodCidrs, _time, _loggerFactory.CreateLogger<IpamAllocator>());
            Policy = new PolicyManager(_store, Identities, _policyDatapath, _options.PodCidrs, _time, _loggerFactory.CreateLogger<PolicyManager>(),
                new Membrane.Policy.Evaluation.PolicyOptions(_options.AllowLocalhost));
            Endpoints = new EndpointManager(_store, Ipam, Identities, _datapath, _time, _loggerFactory.CreateLogger<EndpointManager>(), Policy);
            await Endpoints.RestoreAsync(ct).ConfigureAwait(false);
            // After the endpoints: a rebuilt endpoint's new ifindex is the one its policy goes to.
            var store = _store;
            Policy.Restore(store.Read(tx => tx.ListEndpoints()));
            if (_conntrackDatapath is not null)
            {
                Conntrack = new ConntrackCollector(_conntrackDatapath, _options.Conntrack.GcInterval, _time,
                    _loggerFactory.CreateLogger<ConntrackCollector>());
            }
            if (_flowDatapath is not null)
            {
                var endpoints = Endpoints;
                Flows = new FlowObserver(_flowDatapath.OpenEvents(EventReaderSlots), _options.FlowBufferSize,
                    endpoints.List, _time, _loggerFactory.CreateLogger<FlowObserver>());
            }

            if (_options.MetricsListen is { } listen)
            {
                _metrics = new AgentMetrics(Endpoints, Identities, Policy, Conntrack, Flows);
                try
                {
                    await _metrics.StartAsync(listen, _loggerFactory, ct).ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    throw new AgentException(Api.ErrorCodes.IoFailure, $"failed to serve metrics on {listen}: {e.Message}", inner: e);
                }
            }

            try
            {
                UnixSocketPath.Prepare(_options.SocketPath);
                _app = BuildApp(new StatusFacts(_options, startedAt, _time));
                await _app.StartAsync(ct).ConfigureAwait(false);
                // Kestrel creates the socket with the process umask; narrow it before anyone is
                // told the agent is up. (A client racing the chmod could connect during that
                // moment only if the umask allowed it; the agent normally runs with 022 as root,
                // so others could not write to it anyway: connect(2) needs write permission.)
                File.SetUnixFileMode(_options.SocketPath, _options.SocketMode);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new AgentException(Api.ErrorCodes.IoFailure, $"failed to listen on {_options.SocketPath}: {e.Message}", inner: e);
            }

            _background = new CancellationTokenSource();
            _identityCollector = CollectIdentitiesAsync(_background.Token);
            if (Conntrack is not null)
            {
                _conntrackLoop = Conntrack.RunAsync(_background.Token);
            }
            if (Flows is not null)
            {
                _flowLoop = Task.Run(() => Flows.RunAsync(_background!.Token));
            }
            _logger.LogInformation("agent {Node} listening on {Socket} (state {StateDir}, pod CIDRs {Cidrs}, datapath {Datapath})",
                _options.NodeName, _options.SocketPath, _options.StateDir, string.Join(",", _options.PodCidrs), _datapath.Description);
        }
        catch
        {
            await StopAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Stops listening, ends background work and closes the state. Safe to call twice.</summary>
    public async Task StopAsync()
    {
        if (_background is not null)
        {
            await _background.CancelAsync().ConfigureAwait(false);
            await _identityCollector.ConfigureAwait(false);
            await _conntrackLoop.ConfigureAwait(false);
            _conntrackLoop = Task.CompletedTask;
            await _flowLoop.ConfigureAwait(false);
            _flowLoop = Task.CompletedTask;
            _background.Dispose();
            _background = null;
        }
        if (_app is not null)
        {
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _app.StopAsync(grace.Token).ConfigureAwait(false);
            }
            finally
            {
                await _app.DisposeAsync().ConfigureAwait(false);
                _app = null;
                // Only this agent can have bound the path (Prepare refuses a live socket).
                File.Delete(_options.SocketPath);
            }
        }
        if (_metrics is not null)
        {
            await _metrics.DisposeAsync().ConfigureAwait(false);
            _metrics = null;
        }
        _store?.Dispose();
        _store = null;
        Endpoints = null;
        Policy = null;
        Conntrack?.Dispose();
        Conntrack = null;
        Flows?.Dispose();
        Flows = null;
        Identities = null;
        Ipam = null;
        _stateLock?.Dispose();
        _stateLock = null;
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => new(StopAsync());

    private void LockStateDir()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("failed to start the agent: it runs on Linux only");
        }
        Directory.CreateDirectory(_options.StateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var path = Path.Combine(_options.StateDir, LockFileName);
        try
        {
            // FileShare.None is an exclusive flock(2) on Unix: a second agent on the same state
            // dir fails here instead of sharing the database and the kernel objects.
            _stateLock = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new AgentException(Api.ErrorCodes.IoFailure,
                $"failed to lock the state dir {_options.StateDir}: another agent uses it ({e.Message})", inner: e);
        }
    }

    private WebApplication BuildApp(StatusFacts facts)
    {
        // The empty builder reads no configuration files or ASPNETCORE_* variables: the
        // agent listens on its socket and nowhere else.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "membrane-agent" });
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = AgentApi.MaxRequestBodyBytes;
            kestrel.ListenUnixSocket(_options.SocketPath, listen => listen.Protocols = HttpProtocols.Http1);
        });
        builder.Services.AddRoutingCore();
        builder.Services.AddLogging();
        builder.Services.AddSingleton<ILoggerFactory>(new FrameworkLogFilter(_loggerFactory));
        builder.Services.AddSingleton<IHostLifetime, ExternalLifetime>();
        var app = builder.Build();
        if (_metrics is { } metrics)
        {
            app.Use(metrics.ObserveRequestAsync);
        }
        AgentApi.Map(app, Endpoints!, Identities!, Policy!, facts, Conntrack, _loggerFactory.CreateLogger("Membrane.Agent.Api"));
        AgentApi.MapFlows(app, Flows, new FlowConverter(_options.NodeName, IdentityLabels), _flowDatapath?.MonitorAggregation ?? "");
        return app;
    }

    // Labels of an identity that is no local endpoint's (a pod's since gone, a CIDR's): the
    // policy resolver knows every identity it matches, the allocator the rest.
    private IReadOnlyList<string>? IdentityLabels(uint id) =>
        Policy?.Identity(id) is { } known ? known.Labels.Labels.Select(l => l.Value.Length == 0 ? $"{l.Source}:{l.Key}" : l.ToString()).ToArray()
        : Identities?.Lookup(id) is { } info ? FlowConverter.DisplayLabels(info.Labels.ToStrings()) : null;

    private async Task CollectIdentitiesAsync(CancellationToken ct)
    {
        var period = TimeSpan.FromTicks(Math.Clamp(_options.IdentityGracePeriod.Ticks / 2, TimeSpan.TicksPerSecond, TimeSpan.TicksPerMinute));
        using var timer = new PeriodicTimer(period, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    if (Identities?.CollectUnused() is { Count: > 0 })
                    {
                        Policy?.IdentitiesChanged();
                    }
                    // Kernel writes that failed earlier are retried here at the latest.
                    Policy?.Reconcile();
                }
                catch (Exception e) when (e is AgentException or Microsoft.Data.Sqlite.SqliteException)
                {
                    _logger.LogError(e, "failed to collect unused identities");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The host's lifetime is the agent's: signals are handled by <see cref="RunAsync"/>, not by the framework.</summary>
    private sealed class ExternalLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
