using System.CommandLine;
using System.Globalization;
using System.Text;
using Membrane.Cli.Decode;
using Membrane.Packets;

namespace Membrane.Cli;

/// <summary>
/// <c>membrane seed demo</c>: builds a seed frame (DESIGN.md: the 8-byte header <c>!BBH I</c> —
/// version 1 in the high nibble and type in the low one, flags, total length including the
/// header, id — then the payload), prints it in hex, prints its fields as the packet decoder
/// reads them back, and its RFC 1071 checksum, and shows that the checksum over the frame
/// followed by its own checksum is zero (RFC 1071 §1: how a receiver verifies).
/// </summary>
internal static class SeedCommands
{
    /// <summary>The frame the demo builds unless told otherwise: a trace event (type 2) with subtype 1.</summary>
    private const byte DemoType = 2;
    private const byte DemoFlags = 0x01;
    private const uint DemoId = 0x2A;
    private const string DemoPayload = "membrane seed frame demo";

    /// <summary>pcap's LINKTYPE_USER0, under which Membrane.Packets reads a seed frame.</summary>
    private const ushort SeedLinkType = 147;

    public static Command Create()
    {
        var seed = new Command("seed", "The seed frame: build, parse and checksum");
        var payload = new Option<string>("--payload") { Description = "The payload text (UTF-8)", DefaultValueFactory = _ => DemoPayload };
        var id = new Option<uint>("--id") { Description = "The frame id", DefaultValueFactory = _ => DemoId };
        var type = new Option<byte>("--type") { Description = "The frame type (0-15)", DefaultValueFactory = _ => DemoType };
        type.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<byte>() > 15)
            {
                result.AddError("--type must fit in 4 bits (0-15)");
            }
        });
        var demo = new Command("demo", "Build a seed frame and print it in hex, its parsed fields and its checksum");
        demo.Options.Add(payload);
        demo.Options.Add(id);
        demo.Options.Add(type);
        demo.SetAction(parseResult => Demo(parseResult.GetValue(type), DemoFlags, parseResult.GetValue(id),
            Encoding.UTF8.GetBytes(parseResult.GetValue(payload) ?? ""), Console.Out));
        seed.Subcommands.Add(demo);
        return seed;
    }

    /// <summary>Builds the frame and prints the demo to <paramref name="output"/>; returns the exit code.</summary>
    internal static int Demo(byte type, byte flags, uint id, byte[] payload, TextWriter output)
    {
        if (payload.Length > SeedFrame.MaxPayloadLength)
        {
            Console.Error.WriteLine($"membrane: failed to build seed frame: payload of {payload.Length} bytes exceeds {SeedFrame.MaxPayloadLength}");
            return 1;
        }
        var frame = SeedFrame.Build(type, flags, id, payload);
        var c = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(c, $"seed frame: {frame.Length} bytes (8-byte header + {payload.Length}-byte payload)"));
        HexDump(frame, output);
        output.WriteLine();

        // The fields as `pcap decode` would show them, read back by the dissector.
        using (var stdout = new MemoryStream())
        {
            using (var writer = DecodeWriter.Create(stdout, DecodeFormat.Text))
            {
                writer.WritePacket(1, 0, frame.Length, (Membrane.Capture.LinkType)SeedLinkType, frame);
            }
            var text = Encoding.UTF8.GetString(stdout.ToArray());
            // Drop the "Frame 1: …" line: this frame was built, not captured.
            output.Write(text.Substring(text.IndexOf('\n', StringComparison.Ordinal) + 1));
        }
        output.WriteLine(string.Create(c, $"    Payload: \"{Encoding.UTF8.GetString(payload)}\""));
        output.WriteLine();

        var checksum = InternetChecksum.Compute(frame);
        output.WriteLine(string.Create(c, $"checksum (RFC 1071 over the whole frame): 0x{checksum:x4}"));
        // RFC 1071 §1: appending the checksum and summing again gives zero when nothing changed.
        // An odd-length frame is padded with a zero byte first (§4.1), so the checksum stays 16-bit aligned.
        var padded = frame.Length + (frame.Length & 1);
        var withChecksum = new byte[padded + 2];
        frame.CopyTo(withChecksum, 0);
        withChecksum[padded] = (byte)(checksum >> 8);
        withChecksum[padded + 1] = (byte)checksum;
        var verify = InternetChecksum.Compute(withChecksum);
        output.WriteLine(string.Create(c, $"checksum of frame + checksum:             0x{verify:x4} ({(verify == 0 ? "verifies" : "DOES NOT VERIFY")})"));
        return verify == 0 ? 0 : 1;
    }

    private static void HexDump(ReadOnlySpan<byte> data, TextWriter output)
    {
        var line = new StringBuilder();
        for (var row = 0; row < data.Length; row += 16)
        {
            line.Clear();
            line.Append(row.ToString("x4", CultureInfo.InvariantCulture)).Append("  ");
            for (var i = row; i < row + 16; i++)
            {
                line.Append(i < data.Length ? data[i].ToString("x2", CultureInfo.InvariantCulture) + " " : "   ");
                if (i == row + 7)
                {
                    line.Append(' ');
                }
            }
            line.Append(' ');
            for (var i = row; i < Math.Min(row + 16, data.Length); i++)
            {
                line.Append(data[i] is >= 0x20 and < 0x7F ? (char)data[i] : '.');
            }
            output.WriteLine(line.ToString().TrimEnd());
        }
    }
}
