package gitrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
)

var defaultLimits = packLimits{MaxPackObjects, MaxPackMemory, MaxPackBytes}

// writePack sends pack through a packWriter into st, as go-git's fetch
// does, and returns the fetch's error.
func writePack(st *memory.Storage, limits packLimits, pack []byte) error {
	w := newCheckedPackWriter(limits, boundedStorage{st}.parsePack)
	_, err := io.Copy(w, bytes.NewReader(pack))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// gitPack has git pack every object of a repo with 40 commits of a file
// that grows a line each time (so most blobs are deltas), with offset
// deltas or reference deltas, and returns the pack and the object count.
func gitPack(t *testing.T, offsets bool) ([]byte, int) {
	t.Helper()
	srv := gittest.New(t)
	srv.CreateRepo(t, "r")
	srv.SeedHistory(t, "r", "main", 40, func(i int) map[string]string {
		return map[string]string{"values.yaml": strings.Repeat("image: ghcr.io/acme/web:1.0.0 # a long enough line\n", 50+i)}
	})
	base := filepath.Join(t.TempDir(), "p")
	args := []string{"pack-objects", "--revs", "--all", base}
	if offsets {
		args = append(args, "--delta-base-offset")
	}
	sha := srv.Git(t, "r", args...)
	pack, err := os.ReadFile(base + "-" + sha + ".pack")
	require.NoError(t, err)
	n := strings.Count(srv.Git(t, "r", "rev-list", "--objects", "--all"), "\n") + 1
	return pack, n
}

func TestPackWriterTakesGitsPacks(t *testing.T) {
	t.Parallel()
	for _, offsets := range []bool{true, false} {
		t.Run(fmt.Sprintf("offset deltas %v", offsets), func(t *testing.T) {
			t.Parallel()
			pack, n := gitPack(t, offsets)
			st := memory.NewStorage()
			require.NoError(t, writePack(st, defaultLimits, pack))
			iter, err := st.IterEncodedObjects(plumbing.AnyObject)
			require.NoError(t, err)
			got := 0
			require.NoError(t, iter.ForEach(func(plumbing.EncodedObject) error { got++; return nil }))
			require.Equal(t, n, got, "every object of the pack is stored")

			// Just over each bound, the same pack fails naming it.
			for _, tt := range []struct {
				limits packLimits
				want   string
			}{
				{packLimits{uint32(n - 1), MaxPackMemory, MaxPackBytes}, "gitrepo.MaxPackObjects"},
				{packLimits{MaxPackObjects, 4 << 10, MaxPackBytes}, "gitrepo.MaxPackMemory"},
				{packLimits{MaxPackObjects, MaxPackMemory, int64(len(pack) - 1)}, "gitrepo.MaxPackBytes"},
			} {
				err := writePack(memory.NewStorage(), tt.limits, pack)
				require.ErrorContains(t, err, tt.want)
			}
		})
	}
}

// entry is a pack entry written by hand: a header, then a zlib stream.
func entry(header []byte, data []byte) []byte {
	return append(header, zlibBytes(data)...)
}

func zlibBytes(data []byte) []byte {
	blob := gittest.PackBlob(data)
	// PackBlob is a header (one byte for small sizes) and the stream.
	hdr := 1
	for blob[hdr-1]&0x80 != 0 {
		hdr++
	}
	return blob[hdr:]
}

func TestPackWriterRefusesHostilePacks(t *testing.T) {
	t.Parallel()
	abc := gittest.PackBlob([]byte("abc"))
	delta := func(instructions ...byte) []byte {
		return gittest.Pack(abc, gittest.PackOfsDelta(uint64(len(abc)), instructions))
	}
	valid := gittest.Pack(abc)
	flipped := bytes.Clone(valid)
	flipped[len(flipped)-1] ^= 0xff
	tests := []struct {
		name string
		pack []byte
		want string
	}{
		{"not a pack", []byte("<html>not found</html>"), "does not start with PACK"},
		{"version 3", append([]byte("PACK\x00\x00\x00\x03"), 0, 0, 0, 0), "pack version 3, not 2"},
		{"more objects than the bound", gittest.PackHeader(MaxPackObjects + 1), "claims 1048577 objects, more than the 1048576"},
		{"an unknown type", gittest.Pack(entry([]byte{0x50}, nil)), "object 1 of 1 has the unknown type 5"},
		{"a size that overflows", gittest.Pack(append([]byte{0xbf}, bytes.Repeat([]byte{0xff}, 10)...)), "declares a size that overflows"},
		{"a size over the memory bound", gittest.Pack(entry([]byte{0xb0, 0x80, 0x80, 0x80, 0x40}, nil)), "declares 2147483648 bytes"},
		{"more bytes than declared", gittest.Pack(entry([]byte{0x31}, []byte("xx"))), "object 1 of 1 inflates to more than the 1 bytes it declares"},
		{"fewer bytes than declared", gittest.Pack(entry([]byte{0x35}, []byte("x"))), "object 1 of 1 inflates to 1 bytes, not the 5 it declares"},
		{"a corrupt zlib stream", gittest.Pack(append([]byte{0x31, 0x78, 0x01}, 0xff, 0xff, 0xff, 0xff)), "object 1 of 1: flate: corrupt input"},
		{"a delta copying past its base", delta(3, 10, 0x90, 10), "copies bytes 0 to 10 of a 3-byte base"},
		{"a delta making more than it declares", delta(3, 4, 0x90, 3, 0x90, 3), "makes more than the 4 bytes it declares"},
		{"a delta making less than it declares", delta(3, 5, 1, 'x'), "makes 1 bytes, not the 5 it declares"},
		{"a delta with instruction 0", delta(3, 1, 0), "reserved instruction 0"},
		{"a delta cut within an instruction", delta(3, 5, 5, 'x'), "ends within an instruction"},
		{"a delta base outside the pack", gittest.Pack(gittest.PackOfsDelta(100, []byte{3, 3, 0x90, 3})), "delta base 100 bytes back, outside the pack"},
		{"a wrong checksum", flipped, "checksum does not match"},
		{"data after the pack", append(bytes.Clone(valid), "junk"...), "data after the end of the pack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := writePack(memory.NewStorage(), defaultLimits, tt.pack)
			require.ErrorContains(t, err, "the server sent a bad pack: ")
			require.ErrorContains(t, err, tt.want)
			require.False(t, errors.Is(err, io.ErrUnexpectedEOF), "a bad pack is not a dropped connection")
		})
	}
}

// TestPackWriterCutShortIsADroppedConnection: a pack that ends early reads
// as a connection that dropped, which describe makes retryable.
func TestPackWriterCutShortIsADroppedConnection(t *testing.T) {
	t.Parallel()
	pack := gittest.Pack(gittest.PackBlob(bytes.Repeat([]byte("x"), 1000)))
	for _, n := range []int{0, 5, 12, 20, len(pack) - 5} {
		err := writePack(memory.NewStorage(), defaultLimits, pack[:n])
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d", n)
	}
}

func TestCappedBodyEndsAtItsBound(t *testing.T) {
	t.Parallel()
	req, err := http.NewRequest(http.MethodGet, "http://u:secret@git.example.com/r.git/info/refs", nil)
	require.NoError(t, err)
	read := func(body string) (string, error) {
		data, err := io.ReadAll(capBody(io.NopCloser(strings.NewReader(body)), req, 4, "gitrepo.MaxRefsBytes"))
		return string(data), err
	}
	got, err := read("abcd")
	require.NoError(t, err, "an answer of exactly the bound")
	require.Equal(t, "abcd", got)
	_, err = read("abcde")
	require.EqualError(t, err, "the server's answer to GET http://u:xxxxx@git.example.com/r.git/info/refs goes on past the 4 bytes a step reads (gitrepo.MaxRefsBytes)")
}
