using System.Globalization;
using System.Net;
using Membrane.Agent.Endpoints;
using Membrane.Agent.Policy;
using Membrane.Api;
using Membrane.Policy.Evaluation;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Parsing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Membrane.Agent.Server;

internal static partial class AgentApi
{
    /// <summary>
    /// The policy routes: POST /v1/policies imports YAML (all or nothing: a refusal is code 102
    /// with <see cref="ApiError.PolicyErrors"/>), GET /v1/policies[/{ns}/{name}] lists them,
    /// DELETE /v1/policies[/{ns}/{name}] deletes one or all, GET /v1/policy/selectors shows the
    /// selector cache, POST /v1/policy/trace judges a flow with the reference evaluator, and
    /// GET /v1/bpf/policy/{endpoint} reads an endpoint's entries back from the kernel.
    /// </summary>
    private static void MapPolicy(WebApplication app, EndpointManager endpoints, PolicyManager policy)
    {
        app.MapPost("/v1/policies", async ctx =>
        {
            var request = await ReadAsync(ctx, s_strict.PolicyImportRequest, "policy import").ConfigureAwait(false);
            if (request.Files.Count == 0)
            {
                throw new AgentException(ErrorCodes.InvalidRequest, "failed to import policies: no files were given");
            }
            var import = new PolicyDocumentParser().Parse(request.Files.Select(f => new PolicySource(f.Name, f.Text)));
            var response = policy.Import(import);
            await WriteAsync(ctx, response, ApiJsonContext.Default.PolicyChangeResponse).ConfigureAwait(false);
        });
        app.MapGet("/v1/policies", ctx =>
            WriteAsync(ctx, policy.Policies.Policies.Values.Select(p => PolicyViews.Info(p, policy.SelectedEndpoints(p))).ToList(),
                ApiJsonContext.Default.ListPolicyInfo));
        app.MapGet("/v1/policies/{ns}/{name}", ctx =>
        {
            var key = RouteKey(ctx);
            var found = policy.Policies.Policies.GetValueOrDefault(key)
                ?? throw new AgentException(ErrorCodes.NotFound, $"failed to get policy {key}: there is no such policy");
            return WriteAsync(ctx, new List<PolicyInfo> { PolicyViews.Info(found, policy.SelectedEndpoints(found)) }, ApiJsonContext.Default.ListPolicyInfo);
        });
        app.MapDelete("/v1/policies/{ns}/{name}", ctx =>
        {
            var key = RouteKey(ctx);
            if (!policy.Delete(key.Namespace, key.Name, out var response))
            {
                throw new AgentException(ErrorCodes.NotFound, $"failed to delete policy {key}: there is no such policy");
            }
            return WriteAsync(ctx, response!, ApiJsonContext.Default.PolicyChangeResponse);
        });
        app.MapDelete("/v1/policies", ctx => WriteAsync(ctx, policy.DeleteAll(), ApiJsonContext.Default.PolicyChangeResponse));
        app.MapGet("/v1/policy/selectors", ctx =>
            WriteAsync(ctx, policy.Selectors().Select(s => new PolicySelectorEntry
            {
                Selector = s.Selector,
                Identities = s.Identities,
                Users = [.. s.Users.Select(u => u.ToString())],
            }).ToList(), ApiJsonContext.Default.ListPolicySelectorEntry));
        app.MapPost("/v1/policy/trace", async ctx =>
        {
            var request = await ReadAsync(ctx, s_strict.PolicyTraceRequest, "policy trace").ConfigureAwait(false);
            const string op = "trace the flow";
            // Absent members of init-only properties arrive as null from the source-generated reader.
            var protocolName = request.Protocol ?? "TCP";
            if (!IpProtocol.TryParse(protocolName, out var protocol))
            {
                throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: unknown protocol '{protocolName}' (TCP, UDP, ICMP, ICMPv6, ANY or a number)");
            }
            if (request.Port is < 0 or > ushort.MaxValue)
            {
                throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: port {request.Port} is not 0-65535");
            }
            var source = TracePeer(op, "source", request.SrcLabels, request.SrcEndpoint, request.SrcIp, policy);
            var destination = TracePeer(op, "destination", request.DstLabels, request.DstEndpoint, request.DstIp, policy);
            var verdict = PolicyEvaluator.Evaluate(policy.Policies, source, destination, protocol, request.Port, policy.Options);
            await WriteAsync(ctx, PolicyViews.Trace(verdict, source, destination), ApiJsonContext.Default.PolicyTraceResponse).ConfigureAwait(false);
        });
        app.MapGet("/v1/bpf/policy/{id}", ctx =>
        {
            var text = (string?)ctx.Request.RouteValues["id"] ?? "";
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                throw new AgentException(ErrorCodes.InvalidRequest, $"failed to read the policy of endpoint '{text}': an endpoint id is a number");
            }
            var endpoint = endpoints.Get(id)
                ?? throw new AgentException(ErrorCodes.UnknownContainer, $"failed to read the policy of endpoint {id}: there is no such endpoint");
            (bool Ingress, bool Egress)? flags;
            IReadOnlyList<(Datapath.Policy.PolicyKey Key, bool Deny, uint Rule)> keys;
            try
            {
                (flags, keys) = policy.ReadKernel(endpoint.HostIfIndex);
            }
            catch (Exception e) when (e is not AgentException)
            {
                throw new AgentException(ErrorCodes.KernelFailure, $"failed to read the policy of endpoint {id}: {e.Message}", e.GetType().Name, e);
            }
            var response = new BpfPolicyResponse
            {
                EndpointId = id,
                IfIndex = endpoint.HostIfIndex,
                IngressEnforced = flags?.Ingress ?? false,
                EgressEnforced = flags?.Egress ?? false,
                Entries = [.. keys.Select(k => PolicyViews.Entry(k.Key, k.Deny, k.Rule, policy))
                    .OrderBy(e => e.Direction, StringComparer.Ordinal).ThenBy(e => e.PeerIdentity).ThenBy(e => e.Protocol, StringComparer.Ordinal)
                    .ThenBy(e => e.FromPort).ThenBy(e => e.Action, StringComparer.Ordinal)],
            };
            return WriteAsync(ctx, response, ApiJsonContext.Default.BpfPolicyResponse);
        });
    }

    private static PolicyKey RouteKey(HttpContext ctx) =>
        new((string?)ctx.Request.RouteValues["ns"] ?? "", (string?)ctx.Request.RouteValues["name"] ?? "");

    /// <summary>One end of a traced flow: exactly one of labels, endpoint, address.</summary>
    private static PolicyPeer TracePeer(string op, string side, IReadOnlyList<string>? labels, long? endpoint, string? ip, PolicyManager policy)
    {
        var given = (labels is not null ? 1 : 0) + (endpoint is not null ? 1 : 0) + (ip is not null ? 1 : 0);
        if (given != 1)
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: give the {side} as exactly one of labels, an endpoint id or an IP address");
        }
        if (endpoint is { } id)
        {
            return policy.PeerOf(id) ?? throw new AgentException(ErrorCodes.UnknownContainer, $"failed to {op}: there is no {side} endpoint {id}");
        }
        if (ip is not null)
        {
            return IPAddress.TryParse(ip, out var address)
                ? policy.PeerOf(address)
                : throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: the {side} address '{ip}' is not an IP address");
        }
        if (!LabelSet.TryParse(labels!, out var set, out var error))
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: invalid {side} labels: {error}");
        }
        // A pod always has its namespace label; labels given without one are a pod of "default"
        // (reserved identities have none).
        if (set.Namespace is null && !set.Labels.Any(l => l.Source == LabelSource.Reserved))
        {
            set = set.With(new Membrane.Policy.Labels.Label(LabelSource.K8s, WellKnownLabels.PodNamespace, WellKnownLabels.DefaultNamespace));
        }
        return new PolicyPeer(set);
    }
}
