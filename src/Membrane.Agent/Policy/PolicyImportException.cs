using Membrane.Api;
using Membrane.Policy.Parsing;

namespace Membrane.Agent.Policy;

/// <summary>A policy import was refused: its API error carries every parse error with file, document, line, column and field.</summary>
public sealed class PolicyImportException(PolicyImport import)
    : AgentException(ErrorCodes.InvalidRequest,
        $"failed to import policies: {import.Errors.Length} error(s){(import.ErrorsTruncated ? " (the parser stopped there; there may be more)" : "")}; nothing was applied",
        string.Join("\n", import.Errors.Select(e => e.ToString())))
{
    /// <summary>The refused import.</summary>
    public PolicyImport Import { get; } = import;

    /// <inheritdoc/>
    public override ApiError ToApiError() => base.ToApiError() with
    {
        PolicyErrors = [.. Import.Errors.Select(e => new PolicyErrorInfo
        {
            File = e.File,
            Document = e.Document,
            Line = e.Line,
            Column = e.Column,
            Field = e.Field,
            Reason = e.Reason,
        })],
    };
}
