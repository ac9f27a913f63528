package gittest

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// HostileTip is the commit a Hostile server advertises for its branches.
const HostileTip = "1111111111111111111111111111111111111111"

// PackWriter writes what a Hostile server sends as the pack of a fetch. It
// returns when w fails, that is when the client hangs up.
type PackWriter func(w io.Writer) error

// Hostile is a smart-HTTP git server built to hurt its clients. It speaks
// the protocol as git does up to the pack: its ref advertisement names
// refs/heads/main and refs/heads/version at HostileTip, and it answers a
// fetch (shallow or not) with NAK and then whatever its PackWriter writes.
// Options make it go on without end elsewhere. It counts the requests it
// is sent and stops when the test ends.
type Hostile struct {
	srv         *httptest.Server
	pack        PackWriter
	endlessRefs bool
	status      int
	requests    atomic.Int64
}

// HostileOption makes a Hostile server hurt somewhere else.
type HostileOption func(*Hostile)

// EndlessRefs makes the ref advertisement go on without end after its
// first ref, each line naming a new 60 KB branch.
func EndlessRefs() HostileOption { return func(h *Hostile) { h.endlessRefs = true } }

// EndlessError answers every request with status and a body without end.
func EndlessError(status int) HostileOption { return func(h *Hostile) { h.status = status } }

// NewHostile starts a Hostile server on 127.0.0.1 that answers every fetch
// with pack.
func NewHostile(t testing.TB, pack PackWriter, opts ...HostileOption) *Hostile {
	t.Helper()
	h := &Hostile{pack: pack}
	for _, o := range opts {
		o(h)
	}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(func() {
		h.srv.CloseClientConnections()
		h.srv.Close()
	})
	return h
}

// URL is the address of repository name on the server (any name serves).
func (h *Hostile) URL(name string) string { return h.srv.URL + "/" + repoName(name) }

// Addr is the server's host:port, as error messages name it.
func (h *Hostile) Addr() string { return h.srv.Listener.Addr().String() }

// Requests counts the requests the server was sent.
func (h *Hostile) Requests() int64 { return h.requests.Load() }

func (h *Hostile) serve(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	switch {
	case h.status != 0:
		w.WriteHeader(h.status)
		endless(flushWriter{w}, []byte("gittest: hostile server: an error page without end. "))
	case r.Method == http.MethodGet && Service(r) == "git-upload-pack":
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		head := pktLine("# service=git-upload-pack\n") + "0000" + pktLine(HostileTip+" refs/heads/main\x00shallow no-progress\n")
		if !h.endlessRefs {
			io.WriteString(w, head+pktLine(HostileTip+" refs/heads/version\n")+"0000")
			return
		}
		fw := flushWriter{w}
		if _, err := io.WriteString(fw, head); err != nil {
			return
		}
		name := strings.Repeat("x", 60_000)
		for i := 0; ; i++ {
			if _, err := io.WriteString(fw, pktLine(fmt.Sprintf("%s refs/heads/%s%d\n", HostileTip, name, i))); err != nil {
				return
			}
		}
	case r.Method == http.MethodPost && Service(r) == "git-upload-pack":
		req, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return
		}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
		fw := flushWriter{w}
		if bytes.Contains(req, []byte("deepen ")) {
			io.WriteString(fw, "0000") // no shallow lines
		}
		if _, err := io.WriteString(fw, pktLine("NAK\n")); err != nil {
			return
		}
		_ = h.pack(fw)
	default:
		http.Error(w, "gittest: hostile server: fetch only", http.StatusForbidden)
	}
}

// endless writes chunk to w until the client hangs up.
func endless(w io.Writer, chunk []byte) error {
	chunk = bytes.Repeat(chunk, 64<<10/len(chunk)+1)
	for {
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
}

// flushWriter sends each write to the client at once.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = http.NewResponseController(f.w).Flush()
	}
	return n, err
}

func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// Pack object types, as a pack entry's header codes them.
const (
	packBlob     = 3
	packOfsDelta = 6
)

// PackHeader is the 12 bytes that open a pack of count objects.
func PackHeader(count uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte("PACK\x00\x00\x00\x02"), count)
}

// packEntryHeader codes an entry's type and (inflated) size.
func packEntryHeader(typ byte, size uint64) []byte {
	b := []byte{typ<<4 | byte(size&0x0f)}
	for size >>= 4; size > 0; size >>= 7 {
		b[len(b)-1] |= 0x80
		b = append(b, byte(size&0x7f))
	}
	return b
}

// PackBlob is a pack entry holding a blob of content.
func PackBlob(content []byte) []byte {
	var buf bytes.Buffer
	buf.Write(packEntryHeader(packBlob, uint64(len(content))))
	zw := zlib.NewWriter(&buf)
	zw.Write(content)
	zw.Close()
	return buf.Bytes()
}

// PackOfsDelta is a pack entry holding delta, the instructions that make an
// object from the entry back bytes before it.
func PackOfsDelta(back uint64, delta []byte) []byte {
	var buf bytes.Buffer
	buf.Write(packEntryHeader(packOfsDelta, uint64(len(delta))))
	// The offset is big-endian base 128, each continued byte adding one.
	off := []byte{byte(back & 0x7f)}
	for back >>= 7; back > 0; back >>= 7 {
		back--
		off = append([]byte{0x80 | byte(back&0x7f)}, off...)
	}
	buf.Write(off)
	zw := zlib.NewWriter(&buf)
	zw.Write(delta)
	zw.Close()
	return buf.Bytes()
}

// Pack is a complete pack of entries: header, entries, checksum.
func Pack(entries ...[]byte) []byte {
	pack := PackHeader(uint32(len(entries)))
	for _, e := range entries {
		pack = append(pack, e...)
	}
	sum := sha1.Sum(pack)
	return append(pack, sum[:]...)
}

// DeltaBombPack is a complete pack of a 64 KiB blob and a delta on it that
// says it makes 64 KiB + 1 bytes, then copies the whole blob again and
// again: each byte of the delta makes 64 KiB.
func DeltaBombPack(copies int) PackWriter {
	return func(w io.Writer) error {
		base := PackBlob(bytes.Repeat([]byte("a"), 1<<16))
		// Source size and target size (base 128, little-endian), then copy
		// commands: 0x80 alone copies 0x10000 bytes from offset 0.
		delta := append([]byte{0x80, 0x80, 0x04, 0x81, 0x80, 0x04}, bytes.Repeat([]byte{0x80}, copies)...)
		_, err := w.Write(Pack(base, PackOfsDelta(uint64(len(base)), delta)))
		return err
	}
}

// ClaimingPack's header claims count objects; one-byte blobs follow until
// the client hangs up.
func ClaimingPack(count uint32) PackWriter {
	return func(w io.Writer) error {
		if _, err := w.Write(PackHeader(count)); err != nil {
			return err
		}
		return endless(w, PackBlob([]byte("x")))
	}
}

// EndlessObjectPack is a pack of one blob that says it holds size bytes and
// whose deflate stream of zeros never ends: each byte sent inflates to
// about a thousand.
func EndlessObjectPack(size uint64) PackWriter {
	return func(w io.Writer) error {
		if _, err := w.Write(append(PackHeader(1), packEntryHeader(packBlob, size)...)); err != nil {
			return err
		}
		zw, _ := zlib.NewWriterLevel(w, zlib.BestSpeed)
		zeros := make([]byte, 1<<20)
		for {
			if _, err := zw.Write(zeros); err != nil {
				return err
			}
			if err := zw.Flush(); err != nil {
				return err
			}
		}
	}
}

// EmptyBlocksPack is a pack of one blob of one byte whose deflate stream is
// empty stored blocks without end: nothing inflates, and bytes keep coming.
func EmptyBlocksPack() PackWriter {
	return func(w io.Writer) error {
		if _, err := w.Write(append(PackHeader(1), append(packEntryHeader(packBlob, 1), 0x78, 0x01)...)); err != nil {
			return err
		}
		// A stored block that is not the last one: BFINAL 0, BTYPE 00, then
		// LEN 0 and NLEN 0xffff.
		return endless(w, []byte{0x00, 0x00, 0x00, 0xff, 0xff})
	}
}

// JunkAfterPack is a complete, valid pack of one blob, followed by bytes
// without end.
func JunkAfterPack() PackWriter {
	return func(w io.Writer) error {
		if _, err := w.Write(Pack(PackBlob([]byte("x")))); err != nil {
			return err
		}
		return endless(w, []byte("junk"))
	}
}
