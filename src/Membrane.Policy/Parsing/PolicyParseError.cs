using System.Collections.Immutable;

namespace Membrane.Policy.Parsing;

/// <summary>
/// Why a policy file was rejected, and exactly where: the file, the YAML document (1-based,
/// counting every <c>---</c>-separated document), the line and column (1-based) and the field
/// path (<c>spec.ingress[0].toPorts[0].ports[1].port</c>).
/// </summary>
/// <param name="File">The file name as given.</param>
/// <param name="Document">The document, 1-based; 0 when the file could not be read at all.</param>
/// <param name="Line">The line, 1-based; 0 when unknown.</param>
/// <param name="Column">The column, 1-based; 0 when unknown.</param>
/// <param name="Field">The field path; empty for a YAML syntax error or an unreadable file.</param>
/// <param name="Reason">Why the field is rejected.</param>
public sealed record PolicyParseError(string File, int Document, int Line, int Column, string Field, string Reason)
{
    /// <summary><c>failed to parse policy: FILE:LINE:COL (document D) FIELD: REASON</c>.</summary>
    public override string ToString() =>
        $"failed to parse policy: {File}:{Line}:{Column} (document {Document}){(Field.Length == 0 ? "" : " " + Field)}: {Reason}";
}

/// <summary>One file's text to import.</summary>
/// <param name="Name">The name errors carry (usually the path).</param>
/// <param name="Text">The YAML.</param>
public sealed record PolicySource(string Name, string Text);

/// <summary>
/// The outcome of an import: every policy, or — when anything was rejected — the errors and
/// no policy at all (the import is atomic: a caller cannot apply half of it).
/// </summary>
public sealed class PolicyImport
{
    internal PolicyImport(ImmutableArray<Model.PolicyResource> policies, ImmutableArray<PolicyParseError> errors, bool truncated)
    {
        Errors = errors;
        Policies = errors.IsEmpty ? policies : [];
        ErrorsTruncated = truncated;
    }

    /// <summary>The parsed policies in file and document order; empty when there are errors.</summary>
    public ImmutableArray<Model.PolicyResource> Policies { get; }

    /// <summary>The errors, in file and document order (at most the parser's limit).</summary>
    public ImmutableArray<PolicyParseError> Errors { get; }

    /// <summary>Whether the parser stopped at its error limit (there may be more errors than <see cref="Errors"/> holds).</summary>
    public bool ErrorsTruncated { get; }

    /// <summary>Whether the import can be applied.</summary>
    public bool Succeeded => Errors.IsEmpty;

    /// <summary>All errors as one message, one per line.</summary>
    public string ErrorText =>
        string.Join('\n', Errors.Select(e => e.ToString())) + (ErrorsTruncated ? $"\n(stopped after {Errors.Length} errors; there may be more)" : "");
}
