namespace Membrane.Capture;
