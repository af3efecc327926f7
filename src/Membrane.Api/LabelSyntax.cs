namespace Membrane.Api;

/// <summary>
/// Kubernetes label syntax (apimachinery validation): a key is an optional DNS-subdomain
/// prefix and '/', then a name of 1–63 characters [A-Za-z0-9_.-] that starts and ends with an
/// alphanumeric; a value is empty or 1–63 characters of the same kind. Membrane also accepts
/// Cilium's source prefix ("k8s:", "container:") on keys.
/// </summary>
public static class LabelSyntax
{
    private const int MaxNameLength = 63;
    private const int MaxPrefixLength = 253;

    /// <summary>Null when <paramref name="key"/> is a valid label key, else why not.</summary>
    public static string? ValidateKey(string key)
    {
        var rest = key;
        var colon = rest.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            var source = rest[..colon];
            if (source.Length == 0 || !source.All(char.IsAsciiLetterOrDigit))
            {
                return $"label key \"{key}\": source \"{source}\" must be alphanumeric";
            }
            rest = rest[(colon + 1)..];
        }
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            var prefix = rest[..slash];
            if (prefix.Length == 0 || prefix.Length > MaxPrefixLength || !IsDnsSubdomain(prefix))
            {
                return $"label key \"{key}\": prefix \"{prefix}\" must be a DNS subdomain of at most {MaxPrefixLength} characters";
            }
            rest = rest[(slash + 1)..];
        }
        if (rest.Length == 0)
        {
            return $"label key \"{key}\": the name part is empty";
        }
        return IsName(rest) ? null
            : $"label key \"{key}\": name \"{rest}\" must be 1–{MaxNameLength} characters of [A-Za-z0-9_.-], starting and ending with an alphanumeric";
    }

    /// <summary>Null when <paramref name="value"/> is a valid label value, else why not.</summary>
    public static string? ValidateValue(string value) =>
        value.Length == 0 || IsName(value) ? null
            : $"label value \"{value}\" must be empty or 1–{MaxNameLength} characters of [A-Za-z0-9_.-], starting and ending with an alphanumeric";

    private static bool IsName(string s) =>
        s.Length <= MaxNameLength && char.IsAsciiLetterOrDigit(s[0]) && char.IsAsciiLetterOrDigit(s[^1])
        && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static bool IsDnsSubdomain(string s) =>
        s.Split('.').All(part => part.Length is > 0 and <= 63
            && (char.IsAsciiLetterLower(part[0]) || char.IsAsciiDigit(part[0]))
            && (char.IsAsciiLetterLower(part[^1]) || char.IsAsciiDigit(part[^1]))
            && part.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'));
}
