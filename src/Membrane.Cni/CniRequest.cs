using System.Text.RegularExpressions;

namespace Membrane.Cni;

/// <summary>The verbs of the CNI spec (1.1.0 "Parameters": CNI_COMMAND).</summary>
internal enum CniCommand { Add, Del, Check, Version, Gc, Status }

/// <summary>
/// The execution protocol's environment (SPEC.md "Parameters"), validated the way the
/// reference plugins' skel does: each verb names the variables it requires.
/// </summary>
internal sealed partial record CniRequest(
    CniCommand Command,
    string? ContainerId,
    string? NetNs,
    string? IfName,
    CniArgs Args,
    string? Path)
{
    /// <summary>Longest Linux interface name (IFNAMSIZ − 1).</summary>
    private const int MaxIfNameLength = 15;

    public static CniRequest FromEnvironment(Func<string, string?> env)
    {
        var commandText = env("CNI_COMMAND");
        if (string.IsNullOrEmpty(commandText))
        {
            throw CniException.InvalidEnvironment("CNI_COMMAND env variable missing");
        }
        var command = commandText switch
        {
            "ADD" => CniCommand.Add,
            "DEL" => CniCommand.Del,
            "CHECK" => CniCommand.Check,
            "VERSION" => CniCommand.Version,
            "GC" => CniCommand.Gc,
            "STATUS" => CniCommand.Status,
            _ => throw CniException.InvalidEnvironment($"unknown CNI_COMMAND: {commandText}"),
        };
        var containerId = env("CNI_CONTAINERID");
        var netns = env("CNI_NETNS");
        var ifName = env("CNI_IFNAME");
        var path = env("CNI_PATH");

        // Which variables each verb needs (SPEC.md: ADD/CHECK need all four, DEL may lack CNI_NETNS,
        // GC and STATUS need only CNI_PATH, VERSION needs nothing else).
        var needsAttachment = command is CniCommand.Add or CniCommand.Del or CniCommand.Check;
        if (needsAttachment)
        {
            Require("CNI_CONTAINERID", containerId);
            Require("CNI_IFNAME", ifName);
            if (command != CniCommand.Del)
            {
                Require("CNI_NETNS", netns);
            }
            ValidateContainerId(containerId!);
            ValidateIfName(ifName!);
        }
        if (command != CniCommand.Version)
        {
            Require("CNI_PATH", path);
        }
        // DEL must be able to clean up whatever the runtime passes: it does not read CNI_ARGS.
        var args = command is CniCommand.Add or CniCommand.Check ? CniArgs.Parse(env("CNI_ARGS")) : CniArgs.Empty;
        return new CniRequest(command, containerId, string.IsNullOrEmpty(netns) ? null : netns, ifName, args, path);
    }

    private static void Require(string name, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw CniException.InvalidEnvironment($"{name} env variable missing");
        }
    }

    /// <summary>Container IDs: alphanumeric first, then alphanumerics, '_', '.', '-' (libcni's ValidateContainerID).</summary>
    private static void ValidateContainerId(string id)
    {
        if (!ContainerIdPattern().IsMatch(id))
        {
            throw CniException.InvalidEnvironment($"invalid CNI_CONTAINERID \"{id}\": must start with an alphanumeric character, followed by alphanumerics, '_', '.' or '-'");
        }
    }

    /// <summary>Interface names as the kernel accepts them (dev_valid_name): 1–15 bytes, not "." or "..", no '/', ':' or whitespace.</summary>
    private static void ValidateIfName(string name)
    {
        var why = name.Length > MaxIfNameLength ? $"longer than {MaxIfNameLength} characters"
            : name is "." or ".." ? "\".\" and \"..\" are reserved"
            : name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c)) ? "contains '/', ':' or whitespace"
            : null;
        if (why is not null)
        {
            throw CniException.InvalidEnvironment($"invalid CNI_IFNAME \"{name}\": {why}");
        }
    }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$")]
    internal static partial Regex ContainerIdPattern();
}

/// <summary>
/// CNI_ARGS: <c>KEY=VALUE;KEY=VALUE</c> (SPEC.md "Parameters"). Membrane knows the Kubernetes
/// keys; any other key is an error unless <c>IgnoreUnknown=1</c> (or true) is present, as in
/// the reference plugins' LoadArgs.
/// </summary>
internal sealed record CniArgs(string? PodNamespace, string? PodName, string? PodUid, string? InfraContainerId)
{
    public static readonly CniArgs Empty = new(null, null, null, null);

    public static CniArgs Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return Empty;
        }
        var pairs = new List<(string Key, string Value)>();
        foreach (var part in text.Split(';'))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw CniException.InvalidEnvironment($"invalid CNI_ARGS pair \"{part}\": expected KEY=VALUE");
            }
            pairs.Add((part[..eq], part[(eq + 1)..]));
        }
        var ignoreUnknown = pairs.Any(p => p.Key == "IgnoreUnknown" && p.Value is "1" or "true" or "True");
        string? ns = null, name = null, uid = null, infra = null;
        foreach (var (key, value) in pairs)
        {
            switch (key)
            {
                case "K8S_POD_NAMESPACE":
                    ns = ValidateName(key, value);
                    break;
                case "K8S_POD_NAME":
                    name = ValidateName(key, value);
                    break;
                case "K8S_POD_UID":
                    uid = value;
                    break;
                case "K8S_POD_INFRA_CONTAINER_ID":
                    infra = value;
                    break;
                case "IgnoreUnknown":
                    break;
                default:
                    if (!ignoreUnknown)
                    {
                        throw CniException.InvalidEnvironment($"unknown CNI_ARGS key \"{key}\" (add IgnoreUnknown=1 to ignore it)");
                    }
                    break;
            }
        }
        return new CniArgs(ns, name, uid, infra);
    }

    /// <summary>
    /// Kubernetes pod names are DNS subdomains, but runtimes pass other names here too: podman
    /// passes its container name (upper case and '_' allowed, e.g. "hungry_turing"). So a name
    /// is accepted as container runtimes name things: 1–253 characters of [A-Za-z0-9_.-]
    /// starting with an alphanumeric (what could break a log line or a path is refused).
    /// </summary>
    private static string ValidateName(string key, string value)
    {
        var ok = value.Length is > 0 and <= 253 && char.IsAsciiLetterOrDigit(value[0])
            && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
        if (!ok)
        {
            throw CniException.InvalidEnvironment(
                $"invalid CNI_ARGS {key}=\"{value}\": must be 1–253 characters of [A-Za-z0-9_.-], starting with an alphanumeric");
        }
        return value;
    }
}
