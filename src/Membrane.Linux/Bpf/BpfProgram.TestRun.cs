using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>The outcome of <see cref="BpfProgram.TestRun"/>.</summary>
/// <param name="ReturnValue">What the program returned (for tc: TC_ACT_*, for XDP: XDP_*), from the last run.</param>
/// <param name="DataOutLength">Bytes of packet the kernel wrote back (the packet as the program left it).</param>
/// <param name="DurationNanoseconds">The kernel's mean time per run, in ns (bpf_test_run's time / repeat).</param>
public readonly record struct BpfTestRunResult(uint ReturnValue, int DataOutLength, uint DurationNanoseconds);

public sealed unsafe partial class BpfProgram
{
    /// <summary>
    /// Runs the program in the kernel on <paramref name="dataIn"/> without attaching it
    /// (BPF_PROG_TEST_RUN, net/bpf/test_run.c). The possibly rewritten packet is copied to
    /// <paramref name="dataOut"/> (which must be large enough: the kernel fails with ENOSPC
    /// otherwise). With <paramref name="repeat"/> &gt; 1 the kernel runs it that many times
    /// and reports the mean duration; map side effects happen every time.
    /// </summary>
    public BpfTestRunResult TestRun(ReadOnlySpan<byte> dataIn, Span<byte> dataOut, int repeat = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(repeat);
        fixed (byte* input = dataIn)
        fixed (byte* output = dataOut)
        {
            var opts = new BpfTestRunOpts
            {
                Size = (nuint)sizeof(BpfTestRunOpts),
                DataIn = input,
                DataSizeIn = (uint)dataIn.Length,
                DataOut = dataOut.IsEmpty ? null : output,
                DataSizeOut = (uint)dataOut.Length,
                Repeat = repeat,
            };
            var ret = Libbpf.ProgTestRunOpts(Handle.Fd, &opts);
            BpfException.ThrowIfNegative(ret, $"test-run program {Name}");
            return new BpfTestRunResult(opts.Retval, (int)opts.DataSizeOut, opts.Duration);
        }
    }
}
