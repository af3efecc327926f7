using System.Globalization;
using Membrane.Testing;

namespace Membrane.Capture.Tests;

/// <summary>One frame as tshark sees it: number, comment(s), epoch time (null: none, as for simple packet blocks), length, captured length.</summary>
internal sealed record TsharkFrame(long Number, string Comment, long? TimestampNanoseconds, int Length, int CapturedLength);

/// <summary>Runs tshark as the oracle for what a capture file contains.</summary>
internal static class Tshark
{
    public static IReadOnlyList<TsharkFrame> ReadFrames(string path)
    {
        var tshark = Requires.Tool("tshark");
        var (exitCode, stdout, stderr) = Tools.Run(tshark,
            ["-r", path, "-T", "fields", "-E", "separator=/t", "-e", "frame.number", "-e", "frame.comment", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len"]);
        // tshark run as root warns on stderr ("Running as user root…"); only the exit code matters.
        Assert.True(exitCode == 0, $"tshark failed to read {path} (exit {exitCode}): {stderr}");
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            var f = line.Split('\t');
            Assert.True(f.Length == 5, $"unexpected tshark line: {line}");
            return new TsharkFrame(
                long.Parse(f[0], CultureInfo.InvariantCulture),
                f[1],
                ParseEpoch(f[2], line),
                int.Parse(f[3], CultureInfo.InvariantCulture),
                int.Parse(f[4], CultureInfo.InvariantCulture));
        }).ToList();
    }

    /// <summary>The frames as our reader sees them, in tshark's terms (comments joined by ',').</summary>
    public static IReadOnlyList<TsharkFrame> ReadOurs(string path) =>
        CaptureReader.ReadFile(path).Select(r => new TsharkFrame(
            r.Number, string.Join(',', r.Comments), r.HasTimestamp ? r.TimestampNanoseconds : null, r.OriginalLength, r.CapturedLength)).ToList();

    /// <summary>"1700000000.123456789" → nanoseconds, exactly (no floating point); "" → null.</summary>
    private static long? ParseEpoch(string text, string line)
    {
        if (text.Length == 0)
        {
            return null;
        }
        var parts = text.Split('.');
        var fraction = parts.Length > 1 ? parts[1].PadRight(9, '0')[..9] : "0";
        var ok = long.TryParse(parts[0], CultureInfo.InvariantCulture, out var seconds);
        ok &= long.TryParse(fraction, CultureInfo.InvariantCulture, out var nanoseconds);
        Assert.True(ok, $"unexpected tshark frame.time_epoch '{text}' in line: {line}");
        return seconds * 1_000_000_000 + nanoseconds;
    }
}

/// <summary>A directory for one test's files, removed on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), RunPrefix.Next("capture"));

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
