using System.Text.Json;
using Membrane.Api;

namespace Membrane.Cni;

/// <summary>
/// The plugin: validates the runtime's call, asks the agent, and answers as the spec says.
/// It is thin on purpose (DESIGN.md): everything that touches the kernel or state happens in
/// the agent, which also undoes a failed ADD, so the plugin never has to clean up.
/// </summary>
internal static class CniPlugin
{
    /// <summary>Runs one CNI call; returns the process exit code (0, or 1 with an error object on stdout).</summary>
    public static async Task<int> RunAsync(Func<string, string?> env, Stream stdin, Stream stdout, TextWriter log)
    {
        // Errors are reported in the config's version when it could be read, else the newest.
        var version = CniVersion.Latest;
        try
        {
            var request = CniRequest.FromEnvironment(env);
            var input = await ReadAllAsync(stdin).ConfigureAwait(false);
            if (request.Command == CniCommand.Version)
            {
                CniOutput.WriteVersion(stdout, VersionOfVersionRequest(input));
                return 0;
            }
            var conf = NetConf.Parse(input, request.Command);
            version = conf.CniVersion;
            RequireVersion(request.Command, version);
            using var client = new MembraneClient(conf.Socket);
            switch (request.Command)
            {
                case CniCommand.Add:
                    var added = await client.CniAddAsync(new CniAddRequest
                    {
                        ContainerId = request.ContainerId!,
                        IfName = request.IfName!,
                        NetNs = request.NetNs!,
                        Network = conf.Name,
                        PodNamespace = request.Args.PodNamespace,
                        PodName = request.Args.PodName,
                        Labels = conf.Labels,
                        Mtu = conf.Mtu,
                    }).ConfigureAwait(false);
                    CniOutput.WriteAddResult(stdout, version, request, conf, added);
                    return 0;
                case CniCommand.Del:
                    await client.CniDelAsync(new CniDelRequest { ContainerId = request.ContainerId!, IfName = request.IfName!, NetNs = request.NetNs })
                        .ConfigureAwait(false);
                    return 0;
                case CniCommand.Check:
                    await CheckAsync(client, request, conf).ConfigureAwait(false);
                    return 0;
                case CniCommand.Gc:
                    var gc = await client.CniGcAsync(new CniGcRequest { ValidAttachments = conf.ValidAttachments, Network = conf.Name }).ConfigureAwait(false);
                    await log.WriteLineAsync($"membrane-cni: GC released {gc.Released.Count} attachment(s)").ConfigureAwait(false);
                    return 0;
                case CniCommand.Status:
                    await client.StatusAsync().ConfigureAwait(false);
                    return 0;
                default:
                    throw new CniException(ErrorCodes.InvalidEnvironment, $"unsupported command {request.Command}");
            }
        }
        catch (CniException e)
        {
            CniOutput.WriteError(stdout, version, e.Code, e.Message, e.Details);
        }
        catch (AgentUnreachableException e)
        {
            // STATUS has its own code for "cannot serve ADD now" (SPEC.md 1.1.0: 50); every other
            // verb asks the runtime to retry (11), since the agent may just be restarting.
            var status = env("CNI_COMMAND") == "STATUS";
            CniOutput.WriteError(stdout, version, status ? ErrorCodes.PluginNotAvailable : ErrorCodes.TryAgainLater,
                status ? "the membrane agent is not available" : "the membrane agent is not reachable; try again later", e.Message);
        }
        catch (MembraneApiException e)
        {
            CniOutput.WriteError(stdout, version, e.Error.Code, e.Error.Message, e.Error.Details);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException or JsonException)
        {
            CniOutput.WriteError(stdout, version, ErrorCodes.IoFailure, "failed to talk to the membrane agent", e.Message);
        }
        catch (Exception e)
        {
            // The spec wants an error object on stdout whatever happened (999: internal error).
            CniOutput.WriteError(stdout, version, ErrorCodes.Internal, "membrane-cni failed", e.Message);
        }
        return 1;
    }

    /// <summary>CHECK, GC and STATUS exist only from some versions on (SPEC.md; as libcni's skel enforces).</summary>
    private static void RequireVersion(CniCommand command, string version)
    {
        var minimum = command switch
        {
            CniCommand.Check => "0.4.0",
            CniCommand.Gc or CniCommand.Status => "1.1.0",
            _ => null,
        };
        if (minimum is not null && !CniVersion.AtLeast(version, minimum))
        {
            throw new CniException(ErrorCodes.IncompatibleVersion,
                $"config version {version} does not allow {command.ToString().ToUpperInvariant()} (needs {minimum} or later)");
        }
    }

    /// <summary>
    /// CHECK: the agent verifies the kernel side; the plugin verifies that the runtime's
    /// recorded result (prevResult) still names this interface and the endpoint's addresses.
    /// </summary>
    private static async Task CheckAsync(MembraneClient client, CniRequest request, NetConf conf)
    {
        if (conf.PrevResult is not { } prev)
        {
            throw CniException.InvalidConfig("CHECK needs prevResult: the runtime must pass the result of ADD");
        }
        await client.CniCheckAsync(new CniCheckRequest { ContainerId = request.ContainerId!, IfName = request.IfName!, NetNs = request.NetNs! })
            .ConfigureAwait(false);
        var endpoints = await client.EndpointsAsync().ConfigureAwait(false);
        var endpoint = endpoints.FirstOrDefault(e => e.ContainerId == request.ContainerId && e.IfName == request.IfName)
            ?? throw new CniException(ErrorCodes.UnknownContainer, $"no endpoint for container {request.ContainerId} interface {request.IfName}");

        var interfaces = prev.TryGetProperty("interfaces", out var list) && list.ValueKind == JsonValueKind.Array ? list.EnumerateArray().ToList() : [];
        var podIndex = interfaces.FindIndex(i => i.TryGetProperty("name", out var n) && n.GetString() == request.IfName
            && i.TryGetProperty("sandbox", out var s) && s.GetString() == request.NetNs);
        if (podIndex < 0)
        {
            throw new CniException(ErrorCodes.InvalidNetworkConfig, $"prevResult has no interface {request.IfName} in sandbox {request.NetNs}");
        }
        var recorded = prev.TryGetProperty("ips", out var ips) && ips.ValueKind == JsonValueKind.Array
            ? ips.EnumerateArray().Where(ip => ip.TryGetProperty("interface", out var idx) && idx.TryGetInt32(out var n) && n == podIndex)
                .Select(ip => ip.TryGetProperty("address", out var a) ? a.GetString() : null).ToHashSet(StringComparer.Ordinal)
            : [];
        foreach (var actual in new[] { endpoint.Ipv4, endpoint.Ipv6 }.OfType<string>())
        {
            if (!recorded.Any(r => r is not null && r.Split('/')[0] == actual.Split('/')[0]))
            {
                throw new CniException(ErrorCodes.InvalidNetworkConfig, $"endpoint address {actual} is not in prevResult for {request.IfName}");
            }
        }
    }

    /// <summary>VERSION's stdin is <c>{"cniVersion": "…"}</c>; answer in that version when we know it.</summary>
    private static string VersionOfVersionRequest(byte[] input)
    {
        try
        {
            using var doc = JsonDocument.Parse(input);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("cniVersion", out var v)
                && v.ValueKind == JsonValueKind.String && CniVersion.IsSupported(v.GetString()!))
            {
                return v.GetString()!;
            }
        }
        catch (JsonException)
        {
            // An empty or unreadable stdin still gets the list of versions.
        }
        return CniVersion.Latest;
    }

    private static async Task<byte[]> ReadAllAsync(Stream stdin)
    {
        using var buffer = new MemoryStream();
        await stdin.CopyToAsync(buffer).ConfigureAwait(false);
        return buffer.ToArray();
    }
}
