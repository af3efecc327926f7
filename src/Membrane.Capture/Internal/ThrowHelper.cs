using System.Diagnostics.CodeAnalysis;

namespace Membrane.Capture.Internal;

/// <summary>Keeps throw sites out of hot methods so that they stay small and inlinable.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowFormat(CaptureFormat? format, CaptureError error) =>
        throw new CaptureFormatException(format, error);

    [DoesNotReturn]
    public static void ThrowObjectDisposed(object instance) =>
        throw new ObjectDisposedException(instance.GetType().Name);
}
