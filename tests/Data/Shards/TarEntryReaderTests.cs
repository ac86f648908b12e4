using System.Formats.Tar;
using System.Text;
using LiteVae.Data.Shards;
using LiteVae.Data.Tests.Support;

namespace LiteVae.Data.Tests.Shards;

public sealed class TarEntryReaderTests
{
    private static (string Name, byte[] Data)[] Entries() =>
    [
        ("a/short.jpg", Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray()),
        ("empty.txt", []),
        ("exact512.bin", new byte[512]),
        (new string('d', 90) + "/" + new string('n', 70) + ".json", "{\"x\":1}"u8.ToArray()),
        ("ünïcödé/名前.png", new byte[] { 1, 2, 3 }),
        ("big.bin", Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7)).ToArray()),
    ];

    [Theory]
    [InlineData(TarEntryFormat.Ustar)]
    [InlineData(TarEntryFormat.Pax)]
    [InlineData(TarEntryFormat.Gnu)]
    public void Reads_what_dotnet_TarWriter_writes(TarEntryFormat format)
    {
        var entries = Entries();
        byte[] tar = ShardBuilder.Tar(entries, format);
        // Truth: .NET's own TarReader.
        var expected = new List<(string, byte[])>();
        using (var reader = new TarReader(new MemoryStream(tar)))
            while (reader.GetNextEntry() is { } e)
            {
                var ms = new MemoryStream();
                e.DataStream?.CopyTo(ms);
                expected.Add((e.Name, ms.ToArray()));
            }
        Assert.Equal(entries.Length, expected.Count);
        foreach (bool seekable in new[] { true, false })
        {
            var problems = new List<DataProblem>();
            using var tr = new TarEntryReader(seekable ? new MemoryStream(tar) : new NonSeekable(tar), "t.tar", problems.Add);
            var got = new List<(string, byte[])>();
            while (tr.MoveNext())
            {
                var data = new byte[tr.Current.Size];
                Assert.True(tr.ReadData(data));
                got.Add((tr.Current.Name, data));
            }
            Assert.Empty(problems);
            Assert.False(tr.Truncated);
            Assert.Equal(expected.Count, got.Count);
            for (int i = 0; i < got.Count; i++)
            {
                Assert.Equal(expected[i].Item1, got[i].Item1);
                Assert.Equal(expected[i].Item2, got[i].Item2);
            }
        }
    }

    [Fact]
    public void Skipping_unread_data_works_on_seekable_and_streaming_input()
    {
        byte[] tar = ShardBuilder.Tar(Entries(), TarEntryFormat.Pax);
        foreach (Stream s in new Stream[] { new MemoryStream(tar), new NonSeekable(tar) })
        {
            using var tr = new TarEntryReader(s, "t.tar", _ => Assert.Fail("no problems expected"));
            var names = new List<string>();
            while (tr.MoveNext()) names.Add(tr.Current.Name);
            Assert.Equal(Entries().Select(e => e.Name), names);
        }
    }

    [Fact]
    public void Truncation_at_any_point_never_throws_and_keeps_complete_entries()
    {
        var entries = Entries();
        byte[] tar = ShardBuilder.Tar(entries, TarEntryFormat.Ustar);
        for (int cut = 0; cut < tar.Length; cut += 173)
        {
            var problems = new List<DataProblem>();
            using var tr = new TarEntryReader(new MemoryStream(tar, 0, cut), "cut.tar", problems.Add);
            int complete = 0;
            while (tr.MoveNext())
            {
                var data = new byte[tr.Current.Size];
                if (!tr.ReadData(data)) break;
                Assert.Equal(entries[complete].Data, data);
                complete++;
            }
            Assert.Empty(problems); // truncation is flagged, not reported: the caller knows the sample
            if (complete < entries.Length && cut > 0)
                Assert.True(tr.Truncated || tr.MissingEnd, $"cut at {cut}: {complete} complete entries, truncation not flagged");
        }
    }

    [Fact]
    public void Garbage_over_a_header_is_reported_and_reading_resumes_at_the_next_header()
    {
        var entries = Enumerable.Range(0, 6).Select(i => ($"s{i}.jpg", Enumerable.Repeat((byte)(i + 1), 700).ToArray())).ToArray();
        byte[] tar = ShardBuilder.Tar(entries);
        // Each entry is 512 header + 1024 data; overwrite the header of entry 2.
        int at = 2 * 1536;
        var rng = new Random(5);
        for (int i = 0; i < 300; i++) tar[at + i] = (byte)rng.Next(256);
        var problems = new List<DataProblem>();
        using var tr = new TarEntryReader(new MemoryStream(tar), "g.tar", problems.Add);
        var names = new List<string>();
        while (tr.MoveNext()) names.Add(tr.Current.Name);
        Assert.Equal(new[] { "s0.jpg", "s1.jpg", "s3.jpg", "s4.jpg", "s5.jpg" }, names);
        var p = Assert.Single(problems);
        Assert.Equal(BadReason.CorruptTar, p.Reason);
        Assert.Contains($"byte {at}", p.Detail);
        Assert.Contains("s1.jpg", p.Detail);
    }

    [Fact]
    public void Inserted_garbage_that_breaks_alignment_is_skipped()
    {
        var entries = Enumerable.Range(0, 5).Select(i => ($"s{i}.jpg", Enumerable.Repeat((byte)(i + 1), 600).ToArray())).ToArray();
        byte[] tar = ShardBuilder.Tar(entries);
        int at = 2 * 1536; // start of entry 2's header
        byte[] garbage = Enumerable.Range(0, 333).Select(i => (byte)(i * 37 + 11)).ToArray();
        byte[] damaged = [.. tar[..at], .. garbage, .. tar[at..]];
        foreach (Stream s in new Stream[] { new MemoryStream(damaged), new NonSeekable(damaged, chunk: 100) })
        {
            var problems = new List<DataProblem>();
            using var tr = new TarEntryReader(s, "g.tar", problems.Add);
            var got = new List<(string, byte[])>();
            while (tr.MoveNext())
            {
                var d = new byte[tr.Current.Size];
                Assert.True(tr.ReadData(d));
                got.Add((tr.Current.Name, d));
            }
            Assert.Equal(entries.Select(e => e.Item1), got.Select(g => g.Item1));
            Assert.Equal(entries.Select(e => e.Item2), got.Select(g => g.Item2));
            Assert.Equal(BadReason.CorruptTar, Assert.Single(problems).Reason);
        }
    }

    [Fact]
    public void Names_that_are_not_utf8_are_kept_with_percent_escapes()
    {
        byte[] latin1 = [(byte)'c', (byte)'a', (byte)'f', 0xE9, (byte)'.', (byte)'j', (byte)'p', (byte)'g'];
        byte[] tar = [.. ShardBuilder.RawUstarEntry(latin1, [9, 9, 9]), .. ShardBuilder.RawUstarEntry("ok.jpg"u8.ToArray(), [1]), .. new byte[1024]];
        using var tr = new TarEntryReader(new MemoryStream(tar), "n.tar", _ => Assert.Fail("no problem expected"));
        Assert.True(tr.MoveNext());
        Assert.Equal("caf%E9.jpg", tr.Current.Name);
        Assert.True(tr.Current.NameEscaped);
        Assert.True(tr.MoveNext());
        Assert.Equal("ok.jpg", tr.Current.Name);
        Assert.False(tr.Current.NameEscaped);
        Assert.False(tr.MoveNext());
    }

    [Fact]
    public void Concatenated_archives_are_read_through_their_end_blocks()
    {
        byte[] a = ShardBuilder.Tar([("a.jpg", new byte[] { 1 })]);
        byte[] b = ShardBuilder.Tar([("b.jpg", new byte[] { 2 })]);
        using var tr = new TarEntryReader(new MemoryStream([.. a, .. b]), "c.tar", _ => Assert.Fail());
        var names = new List<string>();
        while (tr.MoveNext()) names.Add(tr.Current.Name);
        Assert.Equal(new[] { "a.jpg", "b.jpg" }, names);
    }

    /// <summary>A forward-only stream (like an HTTP body) that returns at most <c>chunk</c> bytes per read.</summary>
    internal sealed class NonSeekable(byte[] data, int chunk = 4096) : Stream
    {
        private int _pos;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(Math.Min(buffer.Length, chunk), data.Length - _pos);
            data.AsSpan(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
