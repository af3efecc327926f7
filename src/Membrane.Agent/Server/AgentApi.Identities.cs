using System.Globalization;
using Membrane.Agent.Endpoints;
using Membrane.Agent.Identities;
using Membrane.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using LabelSource = Membrane.Policy.Labels.LabelSource;

namespace Membrane.Agent.Server;

internal static partial class AgentApi
{
    /// <summary>
    /// The identity routes: GET /v1/identities lists every identity (reserved, then allocated,
    /// by number), GET /v1/identities/{id} shows one (code 103, HTTP 404, when the number is
    /// neither reserved nor allocated); and PATCH /v1/endpoints/{id}/labels, which changes an
    /// endpoint's labels and with them its identity.
    /// </summary>
    private static void MapIdentities(WebApplication app, EndpointManager endpoints, IdentityAllocator identities)
    {
        app.MapGet("/v1/identities", ctx =>
            WriteAsync(ctx, identities.List().Select(i => ToApi(i, identities.GracePeriod)).ToList(), ApiJsonContext.Default.ListIdentityEntry));
        app.MapGet("/v1/identities/{id}", ctx =>
        {
            var text = (string?)ctx.Request.RouteValues["id"] ?? "";
            if (!uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                throw new AgentException(ErrorCodes.InvalidRequest, $"failed to get identity '{text}': an identity is a number");
            }
            var info = identities.Lookup(id)
                ?? throw new AgentException(ErrorCodes.NotFound, $"failed to get identity {id}: it is neither reserved nor allocated");
            return WriteAsync(ctx, ToApi(info, identities.GracePeriod), ApiJsonContext.Default.IdentityEntry);
        });
        app.MapPatch("/v1/endpoints/{id}/labels", async ctx =>
        {
            var text = (string?)ctx.Request.RouteValues["id"] ?? "";
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                throw new AgentException(ErrorCodes.InvalidRequest, $"failed to change the labels of endpoint '{text}': an endpoint id is a number");
            }
            var request = await ReadAsync(ctx, s_strict.EndpointLabelsRequest, "labels").ConfigureAwait(false);
            var response = await endpoints.ChangeLabelsAsync(id, request, ctx.RequestAborted).ConfigureAwait(false);
            await WriteAsync(ctx, response, ApiJsonContext.Default.EndpointLabelsResponse).ConfigureAwait(false);
        });
    }

    private static IdentityEntry ToApi(IdentityInfo info, TimeSpan gracePeriod) => info.ReservedName is { } name
        ? new IdentityEntry { Id = info.Id, Labels = [$"{LabelSource.Reserved}:{name}"], Reserved = name }
        : new IdentityEntry
        {
            Id = info.Id,
            Labels = info.Labels.ToStrings(),
            Endpoints = info.References,
            UnusedSince = info.UnusedSince,
            ExpiresAt = info.UnusedSince + gracePeriod,
        };
}
