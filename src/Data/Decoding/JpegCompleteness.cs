namespace LiteVae.Data.Decoding;

/// <summary>
/// A cheap test for JPEG files that were cut short. The last scan of a complete JPEG is followed by an
/// end-of-image marker (FF D9). Inside entropy-coded data a 0xFF byte is always followed by 0x00
/// (stuffing) or a restart marker (D0–D7), so scanning backwards from the end, the first marker that
/// is either EOI or SOS (FF DA, start of scan) decides: EOI means complete; SOS means the file ends
/// inside scan data. This lets the decoder stop after the rows a crop needs and still reject truncated
/// files the same way a full decode would.
/// </summary>
public static class JpegCompleteness
{
    public static bool HasEndOfImage(ReadOnlySpan<byte> jpeg)
    {
        int end = jpeg.Length - 1; // last index a marker's second byte may have
        while (end > 0)
        {
            int ff = jpeg[..end].LastIndexOf((byte)0xFF);
            if (ff < 0) return false;
            byte marker = jpeg[ff + 1];
            if (marker == 0xD9) return true;
            if (marker == 0xDA) return false;
            end = ff;
        }
        return false;
    }
}
