using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Serialization.Metadata;

namespace Membrane.Api;

/// <summary>The agent could not be reached on its socket (not running, wrong path, no permission).</summary>
public sealed class AgentUnreachableException(string socketPath, Exception inner)
    : Exception($"failed to reach the membrane agent at {socketPath}: {Describe(socketPath, inner)}", inner)
{
    // .NET reports a missing unix socket file as "Cannot assign requested address"; say what it means.
    private static string Describe(string socketPath, Exception inner) =>
        File.Exists(socketPath) ? inner.Message : "the socket does not exist (is the membrane agent running?)";

    /// <summary>The unix socket that was tried.</summary>
    public string SocketPath { get; } = socketPath;
}

/// <summary>The agent answered with an error.</summary>
public sealed class MembraneApiException(HttpStatusCode status, ApiError error)
    : Exception(error.Details is null ? error.Message : $"{error.Message}: {error.Details}")
{
    /// <summary>The HTTP status of the answer.</summary>
    public HttpStatusCode Status { get; } = status;

    /// <summary>The agent's error body (CNI-compatible code, message, details).</summary>
    public ApiError Error { get; } = error;
}

/// <summary>
/// A client of the agent's HTTP/1.1 + JSON API over its unix socket. One instance per
/// process is enough; it is safe to use from several threads.
/// </summary>
public sealed class MembraneClient : IDisposable
{
    /// <summary>Where the agent listens unless told otherwise.</summary>
    public const string DefaultSocketPath = "/var/run/membrane/membrane.sock";

    private readonly HttpClient _http;

    /// <summary>The socket this client talks to.</summary>
    public string SocketPath { get; }

    /// <summary>Creates a client for the agent listening on <paramref name="socketPath"/>.</summary>
    public MembraneClient(string socketPath, TimeSpan? timeout = null)
    {
        SocketPath = socketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            UseProxy = false,
        };
        // The host name is never resolved: every connection goes to the unix socket.
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://membrane/"), Timeout = timeout ?? TimeSpan.FromSeconds(60) };
    }

    /// <summary>The default socket: $MEMBRANE_SOCKET, else <see cref="DefaultSocketPath"/>.</summary>
    public static string DefaultSocket =>
        Environment.GetEnvironmentVariable("MEMBRANE_SOCKET") is { Length: > 0 } s ? s : DefaultSocketPath;

    public Task<StatusResponse> StatusAsync(CancellationToken ct = default) =>
        GetAsync("v1/status", ApiJsonContext.Default.StatusResponse, ct);

    public Task<CniAddResponse> CniAddAsync(CniAddRequest request, CancellationToken ct = default) =>
        PostAsync("v1/cni/add", request, ApiJsonContext.Default.CniAddRequest, ApiJsonContext.Default.CniAddResponse, ct);

    public Task CniDelAsync(CniDelRequest request, CancellationToken ct = default) =>
        PostAsync("v1/cni/del", request, ApiJsonContext.Default.CniDelRequest, ct);

    public Task CniCheckAsync(CniCheckRequest request, CancellationToken ct = default) =>
        PostAsync("v1/cni/check", request, ApiJsonContext.Default.CniCheckRequest, ct);

    public Task<CniGcResponse> CniGcAsync(CniGcRequest request, CancellationToken ct = default) =>
        PostAsync("v1/cni/gc", request, ApiJsonContext.Default.CniGcRequest, ApiJsonContext.Default.CniGcResponse, ct);

    public Task<List<EndpointInfo>> EndpointsAsync(CancellationToken ct = default) =>
        GetAsync("v1/endpoints", ApiJsonContext.Default.ListEndpointInfo, ct);

    public Task<EndpointInfo> EndpointAsync(long id, CancellationToken ct = default) =>
        GetAsync($"v1/endpoints/{id}", ApiJsonContext.Default.EndpointInfo, ct);

    /// <summary>
    /// PATCH /v1/endpoints/{id}/labels: removes <paramref name="remove"/> keys, then adds
    /// <paramref name="add"/>; the endpoint's identity follows its new label set.
    /// </summary>
    public async Task<EndpointLabelsResponse> EndpointLabelsAsync(long id, IReadOnlyList<Label> add, IReadOnlyList<string> remove, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Patch, $"v1/endpoints/{id}/labels")
        {
            Content = JsonBody(new EndpointLabelsRequest { Add = add, Remove = remove }, ApiJsonContext.Default.EndpointLabelsRequest),
        };
        using var response = await SendAsync(request, ct).ConfigureAwait(false);
        return await ReadAsync(response, ApiJsonContext.Default.EndpointLabelsResponse, ct).ConfigureAwait(false);
    }

    /// <summary>GET /v1/identities: the reserved identities, then the allocated ones, by number.</summary>
    public Task<List<IdentityEntry>> IdentitiesAsync(CancellationToken ct = default) =>
        GetAsync("v1/identities", ApiJsonContext.Default.ListIdentityEntry, ct);

    /// <summary>GET /v1/identities/{id}: one identity; an unknown number is a <see cref="MembraneApiException"/> with code <see cref="ErrorCodes.NotFound"/>.</summary>
    public Task<IdentityEntry> IdentityAsync(uint id, CancellationToken ct = default) =>
        GetAsync($"v1/identities/{id}", ApiJsonContext.Default.IdentityEntry, ct);

    /// <summary>
    /// POST /v1/policies: imports the files' policies, all or nothing. A rejected import is a
    /// <see cref="MembraneApiException"/> whose <see cref="ApiError.PolicyErrors"/> names every error.
    /// </summary>
    public Task<PolicyChangeResponse> PolicyImportAsync(IReadOnlyList<PolicyFile> files, CancellationToken ct = default) =>
        PostAsync("v1/policies", new PolicyImportRequest { Files = files }, ApiJsonContext.Default.PolicyImportRequest,
            ApiJsonContext.Default.PolicyChangeResponse, ct);

    /// <summary>GET /v1/policies: every policy, by namespace and name.</summary>
    public Task<List<PolicyInfo>> PoliciesAsync(CancellationToken ct = default) =>
        GetAsync("v1/policies", ApiJsonContext.Default.ListPolicyInfo, ct);

    /// <summary>GET /v1/policies/{namespace}/{name}: one policy (a one-element list); unknown is code <see cref="ErrorCodes.NotFound"/>.</summary>
    public Task<List<PolicyInfo>> PolicyAsync(string @namespace, string name, CancellationToken ct = default) =>
        GetAsync($"v1/policies/{Uri.EscapeDataString(@namespace)}/{Uri.EscapeDataString(name)}", ApiJsonContext.Default.ListPolicyInfo, ct);

    /// <summary>DELETE /v1/policies/{namespace}/{name}; unknown is code <see cref="ErrorCodes.NotFound"/>.</summary>
    public Task<PolicyChangeResponse> PolicyDeleteAsync(string @namespace, string name, CancellationToken ct = default) =>
        DeleteAsync($"v1/policies/{Uri.EscapeDataString(@namespace)}/{Uri.EscapeDataString(name)}", ApiJsonContext.Default.PolicyChangeResponse, ct);

    /// <summary>DELETE /v1/policies: deletes every policy.</summary>
    public Task<PolicyChangeResponse> PolicyDeleteAllAsync(CancellationToken ct = default) =>
        DeleteAsync("v1/policies", ApiJsonContext.Default.PolicyChangeResponse, ct);

    /// <summary>GET /v1/policy/selectors: the selector cache.</summary>
    public Task<List<PolicySelectorEntry>> PolicySelectorsAsync(CancellationToken ct = default) =>
        GetAsync("v1/policy/selectors", ApiJsonContext.Default.ListPolicySelectorEntry, ct);

    /// <summary>POST /v1/policy/trace: the reference evaluator's verdict for a new flow.</summary>
    public Task<PolicyTraceResponse> PolicyTraceAsync(PolicyTraceRequest request, CancellationToken ct = default) =>
        PostAsync("v1/policy/trace", request, ApiJsonContext.Default.PolicyTraceRequest, ApiJsonContext.Default.PolicyTraceResponse, ct);

    /// <summary>GET /v1/bpf/policy/{endpoint}: the endpoint's policy entries and flags in the kernel.</summary>
    public Task<BpfPolicyResponse> BpfPolicyAsync(long endpointId, CancellationToken ct = default) =>
        GetAsync($"v1/bpf/policy/{endpointId}", ApiJsonContext.Default.BpfPolicyResponse, ct);

    public Task<List<BpfEndpointEntry>> BpfEndpointsAsync(CancellationToken ct = default) =>
        GetAsync("v1/bpf/endpoints", ApiJsonContext.Default.ListBpfEndpointEntry, ct);

    public Task<List<BpfMetricEntry>> BpfMetricsAsync(CancellationToken ct = default) =>
        GetAsync("v1/bpf/metrics", ApiJsonContext.Default.ListBpfMetricEntry, ct);

    /// <summary>
    /// GET /v1/bpf/ct: the conntrack entries, optionally only those of one family ("ipv4",
    /// "ipv6"), one protocol ("tcp", "udp", "icmp", "icmpv6", "sctp" or a number), with an
    /// address or a port at either end.
    /// </summary>
    public Task<List<BpfConntrackEntry>> BpfConntrackAsync(string? family = null, string? protocol = null, string? address = null,
        int? port = null, CancellationToken ct = default)
    {
        var query = new List<string>();
        void Add(string name, string? value)
        {
            if (value is not null)
            {
                query.Add($"{name}={Uri.EscapeDataString(value)}");
            }
        }
        Add("family", family);
        Add("protocol", protocol);
        Add("address", address);
        Add("port", port?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var path = query.Count == 0 ? "v1/bpf/ct" : "v1/bpf/ct?" + string.Join('&', query);
        return GetAsync(path, ApiJsonContext.Default.ListBpfConntrackEntry, ct);
    }

    /// <summary>DELETE /v1/bpf/ct: removes every conntrack entry; the answer says how many.</summary>
    public Task<ConntrackFlushResponse> BpfConntrackFlushAsync(CancellationToken ct = default) =>
        DeleteAsync("v1/bpf/ct", ApiJsonContext.Default.ConntrackFlushResponse, ct);

    /// <summary>GET /v1/bpf/ct/stats: table fill and the garbage collector's last run.</summary>
    public Task<ConntrackStatsResponse> BpfConntrackStatsAsync(CancellationToken ct = default) =>
        GetAsync("v1/bpf/ct/stats", ApiJsonContext.Default.ConntrackStatsResponse, ct);

    /// <summary>POST /v1/bpf/ct/gc: runs a conntrack garbage collection now and returns what it did.</summary>
    public async Task<ConntrackGcRunInfo> BpfConntrackGcAsync(CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/bpf/ct/gc");
        using var response = await SendAsync(request, ct).ConfigureAwait(false);
        return await ReadAsync(response, ApiJsonContext.Default.ConntrackGcRunInfo, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Streams flows (POST /v1/flows): the buffer's matching flows, then with
    /// <see cref="ObserveRequest.Follow"/> new ones as they happen, until the agent ends the
    /// stream or <paramref name="ct"/> fires. A bad filter is a <see cref="MembraneApiException"/>
    /// before the first line.
    /// </summary>
    public IAsyncEnumerable<FlowLine> ObserveAsync(ObserveRequest request, CancellationToken ct = default) =>
        StreamAsync(new HttpRequestMessage(HttpMethod.Post, "v1/flows") { Content = JsonBody(request, ApiJsonContext.Default.ObserveRequest) },
            ApiJsonContext.Default.FlowLine, ct);

    /// <summary>Streams the datapath's raw records as they arrive (GET /v1/monitor) until <paramref name="ct"/> fires.</summary>
    public IAsyncEnumerable<MonitorRecord> MonitorAsync(CancellationToken ct = default) =>
        StreamAsync(new HttpRequestMessage(HttpMethod.Get, "v1/monitor"), ApiJsonContext.Default.MonitorRecord, ct);

    /// <summary>The flow observer's counters.</summary>
    public Task<FlowStatusResponse> FlowStatusAsync(CancellationToken ct = default) =>
        GetAsync("v1/flows/status", ApiJsonContext.Default.FlowStatusResponse, ct);

    // A stream of JSON values, one a line (the agent flushes after each).
    private async IAsyncEnumerable<T> StreamAsync<T>(HttpRequestMessage request, JsonTypeInfo<T> type,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        using (request)
        {
            using var response = await SendAsync(request, ct).ConfigureAwait(false);
            await ThrowIfErrorAsync(response, ct).ConfigureAwait(false);
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await foreach (var item in System.Text.Json.JsonSerializer.DeserializeAsyncEnumerable(body, type, topLevelValues: true, ct).ConfigureAwait(false))
            {
                if (item is not null)
                {
                    yield return item;
                }
            }
        }
    }

    /// <summary>GET <paramref name="path"/> and decode the answer.</summary>
    public async Task<T> GetAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken ct = default)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Get, path), ct).ConfigureAwait(false);
        return await ReadAsync(response, type, ct).ConfigureAwait(false);
    }

    /// <summary>POST a JSON body to <paramref name="path"/> and decode the answer.</summary>
    public async Task<TResponse> PostAsync<TRequest, TResponse>(string path, TRequest body, JsonTypeInfo<TRequest> requestType,
        JsonTypeInfo<TResponse> responseType, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonBody(body, requestType) };
        using var response = await SendAsync(request, ct).ConfigureAwait(false);
        return await ReadAsync(response, responseType, ct).ConfigureAwait(false);
    }

    /// <summary>POST a JSON body to <paramref name="path"/>; the answer's body is ignored.</summary>
    public async Task PostAsync<TRequest>(string path, TRequest body, JsonTypeInfo<TRequest> requestType, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonBody(body, requestType) };
        using var response = await SendAsync(request, ct).ConfigureAwait(false);
        await ThrowIfErrorAsync(response, ct).ConfigureAwait(false);
    }

    /// <summary>DELETE <paramref name="path"/>.</summary>
    public async Task DeleteAsync(string path, CancellationToken ct = default)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Delete, path), ct).ConfigureAwait(false);
        await ThrowIfErrorAsync(response, ct).ConfigureAwait(false);
    }

    /// <summary>DELETE <paramref name="path"/> and decode the answer.</summary>
    public async Task<T> DeleteAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken ct = default)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Delete, path), ct).ConfigureAwait(false);
        return await ReadAsync(response, type, ct).ConfigureAwait(false);
    }

    // Serialised up front so the request carries Content-Length rather than a chunked body.
    private static ByteArrayContent JsonBody<T>(T body, JsonTypeInfo<T> type)
    {
        var content = new ByteArrayContent(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(body, type));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        return content;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException or IOException || e.HttpRequestError == HttpRequestError.ConnectionError)
        {
            throw new AgentUnreachableException(SocketPath, e.InnerException ?? e);
        }
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, JsonTypeInfo<T> type, CancellationToken ct)
    {
        await ThrowIfErrorAsync(response, ct).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync(type, ct).ConfigureAwait(false)
            ?? throw new MembraneApiException(response.StatusCode, new ApiError(ErrorCodes.DecodeFailure, "failed to decode the agent's answer: empty body"));
    }

    private static async Task ThrowIfErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        ApiError? error = null;
        try
        {
            error = await response.Content.ReadFromJsonAsync(ApiJsonContext.Default.ApiError, ct).ConfigureAwait(false);
        }
        catch (System.Text.Json.JsonException)
        {
            // Not an agent error body (a proxy, a crash mid-answer): described below from the status alone.
        }
        throw new MembraneApiException(response.StatusCode,
            error ?? new ApiError(ErrorCodes.Internal, $"the agent answered {(int)response.StatusCode} {response.ReasonPhrase}"));
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();
}
