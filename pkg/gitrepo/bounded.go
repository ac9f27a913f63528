package gitrepo

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Bounds on what one fetch may take from a server, whatever the server
// sends. go-git sizes its tables from the object count in a pack's header
// and inflates objects and applies deltas without checking them against the
// sizes they declare, so each pack is checked on its way in: a pack over
// these bounds fails the fetch, and memory stays in proportion to them.
//
// The yardstick is the config repo `make bench` measures: 10,000 commits
// over 2,000 files, whose whole history is 17,440 objects inflating to
// 55 MB (2.9 MiB packed). If each commit rewrote the 68 KB tree that lists
// the 2,000 apps, the history would inflate to about 700 MB.
const (
	// MaxPackObjects is the most objects one pack may hold: 60 times the
	// benchmarked history. go-git allocates about 64 bytes of tables an
	// object before reading the first one.
	MaxPackObjects = 1 << 20

	// MaxPackMemory bounds what the objects of one pack take once inflated,
	// deltas both as instructions (go-git holds them until the pack ends)
	// and as the objects they make: 19 times the benchmarked history.
	MaxPackMemory = 1 << 30

	// MaxPackBytes bounds the bytes of one pack as sent: a pack within the
	// other two bounds is smaller (its headers and zlib framing add at most
	// 64 bytes an object and 0.1 %), and a stream that inflates to nothing
	// ends here.
	MaxPackBytes = MaxPackMemory + MaxPackMemory/8
)

// boundedStorage is the in-memory storage of a snapshot. Being a
// storer.PackfileWriter, it is handed the raw pack of each fetch, which it
// checks against the bounds above while go-git parses the checked part.
type boundedStorage struct{ *memory.Storage }

func newStorage() boundedStorage { return boundedStorage{memory.NewStorage()} }

// packStorage is a snapshot's storage: it takes in a pack that has been
// checked against the bounds (parsePack), as a fetch driven by hand
// (uploadPack) hands it over, or checks one itself (PackfileWriter), as
// go-git's Fetch hands it over.
type packStorage interface {
	storage.Storer
	storer.PackfileWriter
	parsePack(r io.Reader) error
}

// PackfileWriter implements storer.PackfileWriter.
func (s boundedStorage) PackfileWriter() (io.WriteCloser, error) {
	return newCheckedPackWriter(packLimits{MaxPackObjects, MaxPackMemory, MaxPackBytes}, s.parsePack), nil
}

// parsePack reads a checked pack into memory.
func (s boundedStorage) parsePack(r io.Reader) error {
	p, err := packfile.NewParserWithStorage(packfile.NewScanner(r), s.Storage)
	if err == nil {
		_, err = p.Parse()
	}
	return err
}

// packLimits are the bounds a pack is checked against.
type packLimits struct {
	objects       uint32
	memory, bytes int64
}

// packWriter takes a raw pack from go-git's fetch. A checker goroutine
// reads it, and passes on to a parser goroutine only what it has checked:
// the parser never sees a count or an object header beyond the bounds, nor
// a byte of a zlib stream the checker has not inflated (so what the parser
// inflates, the checker has counted, but for flate's 32 KiB window).
type packWriter struct {
	in      *io.PipeWriter
	n, max  int64
	checked chan error
	parsed  chan error
}

// newCheckedPackWriter is a packWriter whose checked pack goes to parse,
// which reads it to its end: go-git's parser into memory (a packStorage's
// parsePack), or a pack file on disk (History).
func newCheckedPackWriter(limits packLimits, parse func(r io.Reader) error) *packWriter {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	w := &packWriter{in: inW, max: limits.bytes, checked: make(chan error, 1), parsed: make(chan error, 1)}
	go func() {
		err := checkPack(inR, outW, limits)
		outW.CloseWithError(err) // nil: the parser reads EOF after the pack
		inR.CloseWithError(err)  // go-git's next write fails with it
		w.checked <- err
	}()
	go func() {
		err := parse(outR)
		if err != nil {
			err = parseError{err}
		}
		outR.CloseWithError(err)
		w.parsed <- err
	}()
	return w
}

// parseError is go-git's parser failing on a pack the checker let through.
type parseError struct{ err error }

func (e parseError) Error() string {
	return "the server sent a pack that does not parse: " + e.err.Error()
}
func (e parseError) Unwrap() error { return e.err }

func (w *packWriter) Write(p []byte) (int, error) {
	if w.n += int64(len(p)); w.n > w.max {
		err := fmt.Errorf("the server sent a pack larger than %s, more than a fetch reads (gitrepo.MaxPackBytes)", bytesText(w.max))
		w.in.CloseWithError(err)
		return 0, err
	}
	return w.in.Write(p)
}

// Close ends the pack and returns what was wrong with it, if anything.
func (w *packWriter) Close() error {
	w.in.Close()
	checked, parsed := <-w.checked, <-w.parsed
	if checked != nil {
		return checked
	}
	return parsed
}

// untilDone runs fn and returns its error, or ctx's as soon as ctx ends,
// whatever fn is doing: go-git's transports do not all stop reading when the
// context ends, nor does its pack parser. fn goes on in the background; the
// step is ending anyway.
func untilDone(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Object types in a pack.
const (
	objCommit   = 1
	objTag      = 4
	objOfsDelta = 6
	objRefDelta = 7
)

// flushAt is how much the checker gathers before passing it on, unless it
// has to wait for more.
const flushAt = 64 << 10

// badPack is the error for a pack that breaks the format or the bounds.
func badPack(format string, args ...any) error {
	return fmt.Errorf("the server sent a bad pack: "+format, args...)
}

// packChecker reads a pack as git's index-pack would, and passes the bytes
// it has checked on to out.
type packChecker struct {
	r       *bufio.Reader
	out     io.Writer
	sum     hash.Hash // of the bytes passed on: the pack's checksum
	off     int64     // of the first pending byte in the pack
	pending []byte    // read, not yet passed on
	checked int       // of pending: those the parser may have
	// inData: reading a zlib stream, whose bytes are checked as soon as
	// they are read: what the parser inflates from them, the checker has
	// inflated (but for the 32 KiB window of the inflater) and counted.
	inData bool
	limits packLimits
	budget int64 // what is left of limits.memory
	zr     io.ReadCloser
	delta  *bufio.Reader
	// i of count: the object being read
	i, count uint32
}

// checkPack checks the pack read from r, passing it on to out as it goes.
func checkPack(r io.Reader, out io.Writer, limits packLimits) error {
	c := &packChecker{r: bufio.NewReaderSize(r, flushAt), out: out, sum: sha1.New(), limits: limits, budget: limits.memory}
	var hdr [12]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return ended("in its header", err)
	}
	if !bytes.Equal(hdr[:4], []byte("PACK")) {
		return badPack("it does not start with PACK")
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != 2 {
		return badPack("pack version %d, not 2", v)
	}
	c.count = binary.BigEndian.Uint32(hdr[8:])
	if c.count > c.limits.objects {
		return badPack("it claims %d objects, more than the %d a fetch accepts (gitrepo.MaxPackObjects)", c.count, c.limits.objects)
	}
	c.checked = len(c.pending)
	for c.i = 1; c.i <= c.count; c.i++ {
		if err := c.object(); err != nil {
			return err
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	want := c.sum.Sum(nil)
	var trailer [sha1.Size]byte
	if _, err := io.ReadFull(c, trailer[:]); err != nil {
		return ended("in its checksum", err)
	}
	if !bytes.Equal(trailer[:], want) {
		return badPack("its checksum does not match its content")
	}
	if _, err := c.out.Write(c.pending); err != nil {
		return err
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		return badPack("it sends data after the end of the pack")
	}
	return nil
}

// ended describes a pack cut short, as by a dropped connection: worth
// another try. Other errors (go-git's parser failing first) pass as they are.
func ended(where string, err error) error {
	var parse parseError
	if !errors.As(err, &parse) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return fmt.Errorf("the pack ended %s: %w", where, io.ErrUnexpectedEOF)
	}
	return err
}

// name is the object being read, for messages.
func (c *packChecker) name() string { return fmt.Sprintf("object %d of %d", c.i, c.count) }

// object checks one entry: its header, and its zlib stream against the
// size the header declares (and for a delta, its instructions against the
// sizes they declare).
func (c *packChecker) object() error {
	start := c.off + int64(len(c.pending))
	b, err := c.ReadByte()
	if err != nil {
		return ended("in "+c.name(), err)
	}
	typ := b >> 4 & 7
	size := uint64(b & 0x0f)
	for shift := 4; b&0x80 != 0; shift += 7 {
		if shift > 60 {
			return badPack("%s declares a size that overflows", c.name())
		}
		if b, err = c.ReadByte(); err != nil {
			return ended("in "+c.name(), err)
		}
		size |= uint64(b&0x7f) << shift
	}
	switch {
	case typ == objOfsDelta:
		if err := c.ofsDelta(start); err != nil {
			return err
		}
	case typ == objRefDelta:
		var base [sha1.Size]byte
		if _, err := io.ReadFull(c, base[:]); err != nil {
			return ended("in "+c.name(), err)
		}
	case typ < objCommit || typ > objTag:
		return badPack("%s has the unknown type %d", c.name(), typ)
	}
	if err := c.charge(size); err != nil {
		return err
	}
	// The header is checked: the parser may read it.
	c.checked = len(c.pending)
	c.inData = true
	defer func() { c.inData = false }()
	if err := c.startStream(); err != nil {
		return c.streamError(err)
	}
	data := &countingReader{r: io.LimitReader(c.zr, int64(size)+1)}
	if typ == objOfsDelta || typ == objRefDelta {
		err = c.checkDelta(data)
	} else {
		_, err = io.Copy(io.Discard, data)
	}
	switch {
	case data.n > int64(size):
		return badPack("%s inflates to more than the %d bytes it declares", c.name(), size)
	case err != nil:
		return c.streamError(err)
	case data.n < int64(size):
		return badPack("%s inflates to %d bytes, not the %d it declares", c.name(), data.n, size)
	}
	return nil
}

// ofsDelta reads the distance back to the base of an offset delta.
func (c *packChecker) ofsDelta(start int64) error {
	b, err := c.ReadByte()
	if err != nil {
		return ended("in "+c.name(), err)
	}
	back := uint64(b & 0x7f)
	for b&0x80 != 0 {
		if back >= 1<<56 {
			return badPack("%s has a delta base offset that overflows", c.name())
		}
		if b, err = c.ReadByte(); err != nil {
			return ended("in "+c.name(), err)
		}
		back = (back+1)<<7 | uint64(b&0x7f)
	}
	if back == 0 || back > uint64(start) {
		return badPack("%s has its delta base %d bytes back, outside the pack", c.name(), back)
	}
	return nil
}

// charge counts size bytes against the pack's memory budget.
func (c *packChecker) charge(size uint64) error {
	if size > uint64(c.budget) {
		return badPack("%s declares %d bytes: the pack would take more than the %s a fetch may hold in memory (gitrepo.MaxPackMemory)", c.name(), size, bytesText(c.limits.memory))
	}
	c.budget -= int64(size)
	return nil
}

func (c *packChecker) startStream() error {
	if c.zr == nil {
		zr, err := zlib.NewReader(c)
		c.zr = zr
		return err
	}
	return c.zr.(zlib.Resetter).Reset(c, nil)
}

// streamError describes a zlib stream that failed: cut short, or corrupt.
func (c *packChecker) streamError(err error) error {
	var corrupt flate.CorruptInputError
	if errors.As(err, &corrupt) || errors.Is(err, zlib.ErrChecksum) || errors.Is(err, zlib.ErrHeader) || errors.Is(err, zlib.ErrDictionary) {
		return badPack("%s: %w", c.name(), err)
	}
	return ended("in "+c.name(), err)
}

// checkDelta checks a delta's instructions: the sizes of its base and
// result, then copies from the base within its size and inserts, which must
// make exactly the result's size. go-git applies them unchecked.
func (c *packChecker) checkDelta(data io.Reader) error {
	if c.delta == nil {
		c.delta = bufio.NewReader(data)
	}
	r := c.delta
	r.Reset(data)
	// A clean end of the inflated delta where more is due: a bad delta.
	short := func(err error) error {
		if err == io.EOF {
			return badPack("the delta in %s ends within an instruction", c.name())
		}
		return err
	}
	base, err := deltaSize(r)
	if err != nil {
		return short(err)
	}
	target, err := deltaSize(r)
	if err != nil {
		return short(err)
	}
	if err := c.charge(target); err != nil {
		return err
	}
	var made uint64
	for {
		op, err := readDeltaOp(r)
		switch {
		case err == io.EOF:
			if made != target {
				return badPack("the delta in %s makes %d bytes, not the %d it declares", c.name(), made, target)
			}
			return nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			return short(io.EOF)
		case errors.Is(err, errReservedDeltaOp):
			return badPack("the delta in %s has the reserved instruction 0", c.name())
		case err != nil:
			return err
		}
		if op.copy {
			if op.off+op.n > base {
				return badPack("the delta in %s copies bytes %d to %d of a %d-byte base", c.name(), op.off, op.off+op.n, base)
			}
		} else if _, err := r.Discard(int(op.n)); err != nil {
			return short(err)
		}
		if made += op.n; made > target {
			return badPack("the delta in %s makes more than the %d bytes it declares", c.name(), target)
		}
	}
}

// deltaOp is one instruction of a delta: copy n bytes from off in the base,
// or insert the n bytes that follow the instruction.
type deltaOp struct {
	copy   bool
	off, n uint64
}

var errReservedDeltaOp = errors.New("the reserved delta instruction 0")

// readDeltaOp reads a delta's next instruction (not an insert's bytes):
// io.EOF at the delta's clean end, io.ErrUnexpectedEOF within an
// instruction.
func readDeltaOp(r io.ByteReader) (deltaOp, error) {
	cmd, err := r.ReadByte()
	if err != nil {
		return deltaOp{}, err
	}
	switch {
	case cmd&0x80 != 0: // copy from the base
		op := deltaOp{copy: true}
		for i := range 7 {
			if cmd&(1<<i) == 0 {
				continue
			}
			b, err := r.ReadByte()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return deltaOp{}, err
			}
			if i < 4 {
				op.off |= uint64(b) << (8 * i)
			} else {
				op.n |= uint64(b) << (8 * (i - 4))
			}
		}
		if op.n == 0 {
			op.n = 0x10000
		}
		return op, nil
	case cmd != 0: // insert the next cmd bytes
		return deltaOp{n: uint64(cmd)}, nil
	}
	return deltaOp{}, errReservedDeltaOp
}

// applyDelta makes the object delta describes from base, in a buffer of
// the size the delta declares: go-git's PatchDelta sizes its buffer to at
// most 64 KiB first and doubles it from there, which for the 68 KB trees of
// a config repo of 2,000 files tripled what resolving a history allocated
// and cleared.
func applyDelta(base, delta []byte) ([]byte, error) {
	r := bytes.NewReader(delta)
	src, err := deltaSize(r)
	if err != nil {
		return nil, fmt.Errorf("bad delta: %w", err)
	}
	target, err := deltaSize(r)
	if err != nil {
		return nil, fmt.Errorf("bad delta: %w", err)
	}
	if src != uint64(len(base)) {
		return nil, fmt.Errorf("bad delta: it is for a %d-byte base, not %d bytes", src, len(base))
	}
	if target > MaxPackMemory {
		return nil, fmt.Errorf("bad delta: it makes %d bytes, more than gitrepo.MaxPackMemory", target)
	}
	out := make([]byte, 0, target)
	for {
		op, err := readDeltaOp(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bad delta: %w", err)
		}
		if op.n > target-uint64(len(out)) {
			return nil, fmt.Errorf("bad delta: it makes more than the %d bytes it declares", target)
		}
		if op.copy {
			if op.off+op.n > uint64(len(base)) {
				return nil, fmt.Errorf("bad delta: it copies bytes %d to %d of a %d-byte base", op.off, op.off+op.n, len(base))
			}
			out = append(out, base[op.off:op.off+op.n]...)
			continue
		}
		at := len(delta) - r.Len()
		if op.n > uint64(r.Len()) {
			return nil, fmt.Errorf("bad delta: it ends within an insert")
		}
		out = append(out, delta[at:at+int(op.n)]...)
		r.Seek(int64(op.n), io.SeekCurrent)
	}
	if uint64(len(out)) != target {
		return nil, fmt.Errorf("bad delta: it makes %d bytes, not the %d it declares", len(out), target)
	}
	return out, nil
}

// deltaSize reads a size at the start of a delta: base 128, little-endian.
func deltaSize(r io.ByteReader) (uint64, error) {
	var n uint64
	for shift := 0; ; shift += 7 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		if shift > 56 {
			return 0, badPack("a delta declares a size that overflows")
		}
		n |= uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, nil
		}
	}
}

// ReadByte and Read read the raw pack, keeping what they read to pass on.
// They make an io.ByteReader, which flate reads without reading ahead, so
// each zlib stream ends where the parser's will.
func (c *packChecker) ReadByte() (byte, error) {
	if err := c.maybeFlush(); err != nil {
		return 0, err
	}
	b, err := c.r.ReadByte()
	if err == nil {
		c.keep(b)
	}
	return b, err
}

func (c *packChecker) Read(p []byte) (int, error) {
	if err := c.maybeFlush(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.keep(p[:n]...)
	return n, err
}

func (c *packChecker) keep(b ...byte) {
	c.pending = append(c.pending, b...)
	if c.inData {
		c.checked = len(c.pending)
	}
}

// maybeFlush passes on the checked bytes when there are flushAt of them,
// or when reading on would wait for the network, so the parser works
// meanwhile. A stream that inflates to nothing is not held in memory.
func (c *packChecker) maybeFlush() error {
	if c.checked >= flushAt || c.checked > 0 && c.r.Buffered() == 0 {
		return c.flush()
	}
	return nil
}

// flush passes on the checked bytes.
func (c *packChecker) flush() error {
	c.sum.Write(c.pending[:c.checked])
	_, err := c.out.Write(c.pending[:c.checked])
	c.off += int64(c.checked)
	c.pending = c.pending[:copy(c.pending, c.pending[c.checked:])]
	c.checked = 0
	return err
}

// bytesText is n bytes for a message: in MiB when a whole number of them.
func bytesText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
