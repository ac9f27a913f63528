package gitrepo

import (
	"bytes"
	"container/list"
	"crypto/sha1"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// packCache bounds the inflated objects a History keeps in memory: delta
// bases while a pack is indexed, then the objects a walk reads. git writes
// a delta's base before it in the pack and makes newer objects the bases
// of older ones, so indexing in pack order, and walking newest first,
// find most bases among the last ones made.
const packCache = 8 << 20

// packObject is one object of a pack.
type packObject struct {
	offset int64
	// size is the object's inflated size (a delta's once resolved): at
	// most MaxPackMemory, so 32 bits, which keep the struct at 64 bytes.
	size uint32
	typ  plumbing.ObjectType // the type in the pack: a delta's is resolved
	hash plumbing.Hash       // zero until resolved
	ref  plumbing.Hash       // a REF delta's base
	base int                 // a delta's base, by index; -1 until known
}

// packReader reads the objects of a pack file by hash, through an index
// it builds in memory: each object's hash computed once, deltas resolved
// in pack order against a bounded cache of inflated objects.
type packReader struct {
	f      *os.File
	sc     *packfile.Scanner
	objs   []packObject
	byHash map[plumbing.Hash]int
	// cache is shared by the packs of a History: object i of this pack is
	// its key first+i.
	cache *byteCache
	first int
	// deltas are the instructions of deltas, kept from the first read
	// while the cache's deltaBudget lasts: resolving a delta again (a walk
	// reads most trees twice) then costs no read from disk.
	deltas map[int][]byte
	buf    bytes.Buffer
}

// readPack indexes the pack f (checked, complete), caching its objects in
// cache as keys first and up (first: the number of objects of the packs
// read into the cache before).
func readPack(f *os.File, cache *byteCache, first int) (*packReader, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	sc := packfile.NewScanner(f)
	_, count, err := sc.Header()
	if err != nil {
		return nil, err
	}
	p := &packReader{f: f, sc: sc, objs: make([]packObject, count), byHash: make(map[plumbing.Hash]int, count), cache: cache, first: first, deltas: map[int][]byte{}}
	byOffset := make(map[int64]int, count)
	for i := range p.objs {
		oh, err := sc.NextObjectHeader()
		if err != nil {
			return nil, err
		}
		o := &p.objs[i]
		o.offset, o.typ, o.base, o.ref = oh.Offset, oh.Type, -1, oh.Reference
		byOffset[oh.Offset] = i
		p.buf.Reset()
		w := io.Writer(&p.buf)
		var hw *objectHasher
		switch oh.Type {
		case plumbing.OFSDeltaObject:
			b, ok := byOffset[oh.OffsetReference]
			if !ok {
				return nil, fmt.Errorf("object %d of the pack has its delta base at offset %d, where no object starts", i+1, oh.OffsetReference)
			}
			o.base = b
		case plumbing.REFDeltaObject:
		default:
			hw = newObjectHasher(oh.Type, oh.Length)
			w = hw
			if oh.Length <= maxCachedOnRead {
				w = io.MultiWriter(hw, &p.buf)
			}
			o.size = uint32(oh.Length) // checked against MaxPackMemory
		}
		if _, _, err := sc.NextObject(w); err != nil {
			return nil, err
		}
		if hw != nil {
			o.hash = hw.sum()
			p.byHash[o.hash] = i
			if oh.Length <= maxCachedOnRead {
				p.cache.put(first+i, o.typ, bytes.Clone(p.buf.Bytes()))
			}
			continue
		}
		// A delta: its instructions kept if the budget allows, and
		// resolved at once when its base is at hand (git writes a base
		// before its deltas, mostly just before).
		if !p.cache.keepDelta(p.buf.Len()) {
			continue
		}
		p.deltas[i] = bytes.Clone(p.buf.Bytes())
		if o.base < 0 {
			continue
		}
		if _, ok := p.cache.get(first + o.base); ok {
			if err := p.resolve(i); err != nil {
				return nil, err
			}
		}
	}
	return p, p.resolveAll()
}

// maxCachedOnRead is the largest object readPack caches as it indexes it.
const maxCachedOnRead = packCache / 8

// resolve hashes delta i, whose base is hashed.
func (p *packReader) resolve(i int) error {
	typ, data, err := p.content(i)
	if err != nil {
		return err
	}
	o := &p.objs[i]
	hw := newObjectHasher(typ, int64(len(data)))
	hw.Write(data)
	o.hash, o.size = hw.sum(), uint32(len(data))
	p.byHash[o.hash] = i
	return nil
}

// Close closes the pack file.
func (p *packReader) Close() error { return p.f.Close() }

// object returns the type and content of the object h (not to be
// modified: it may be cached), and whether the pack has it.
func (p *packReader) object(h plumbing.Hash) (plumbing.ObjectType, []byte, bool, error) {
	i, ok := p.byHash[h]
	if !ok {
		return 0, nil, false, nil
	}
	typ, data, err := p.content(i)
	return typ, data, true, err
}

// size returns the inflated size of the object h without reading it, and
// whether the pack has it.
func (p *packReader) size(h plumbing.Hash) (int64, bool) {
	i, ok := p.byHash[h]
	if !ok {
		return 0, false
	}
	return int64(p.objs[i].size), true
}

// resolveAll hashes every delta. REF deltas find their bases by hash, so
// passes repeat while one resolves more; what is left has no base in the
// pack (a thin pack, which History never asks for) or a cycle.
func (p *packReader) resolveAll() error {
	for left := -1; left != 0; {
		before := left
		left = 0
		for i := range p.objs {
			o := &p.objs[i]
			if !o.hash.IsZero() {
				continue
			}
			if o.base < 0 {
				b, ok := p.byHash[o.ref]
				if !ok {
					left++
					continue
				}
				o.base = b
			}
			if p.objs[o.base].hash.IsZero() {
				left++ // its base is a REF delta not resolved yet
				continue
			}
			if err := p.resolve(i); err != nil {
				return err
			}
		}
		if left == before {
			return fmt.Errorf("%d deltas of the pack have no base in it", left)
		}
	}
	return nil
}

// content returns the type and the inflated content of object i,
// resolving its chain of deltas from the nearest base in the cache.
func (p *packReader) content(i int) (plumbing.ObjectType, []byte, error) {
	var chain []int
	var typ plumbing.ObjectType
	var data []byte
	var err error
	for {
		o := p.objs[i]
		if _, ok := p.cache.get(p.first + i); ok || !o.typ.IsDelta() {
			typ, data, err = p.read(i)
			break
		}
		chain = append(chain, i)
		if len(chain) > len(p.objs) {
			return 0, nil, fmt.Errorf("the pack's deltas make a cycle")
		}
		i = o.base
	}
	if err != nil {
		return 0, nil, err
	}
	for k := len(chain) - 1; k >= 0; k-- {
		_, delta, err := p.read(chain[k])
		if err != nil {
			return 0, nil, err
		}
		if data, err = applyDelta(data, delta); err != nil {
			return 0, nil, fmt.Errorf("apply the delta of object %d of the pack: %w", chain[k]+1, err)
		}
		p.cache.put(p.first+chain[k], typ, data)
	}
	return typ, data, nil
}

// read returns object i as cached (its resolved type), or as stored: the
// content of a base, the instructions of a delta.
func (p *packReader) read(i int) (plumbing.ObjectType, []byte, error) {
	if e, ok := p.cache.get(p.first + i); ok {
		return e.typ, e.data, nil
	}
	o := p.objs[i]
	if delta, ok := p.deltas[i]; ok {
		return o.typ, delta, nil
	}
	if _, err := p.sc.SeekObjectHeader(o.offset); err != nil {
		return 0, nil, err
	}
	p.buf.Reset()
	if _, _, err := p.sc.NextObject(&p.buf); err != nil {
		return 0, nil, err
	}
	data := bytes.Clone(p.buf.Bytes())
	if !o.typ.IsDelta() {
		p.cache.put(p.first+i, o.typ, data)
	}
	return o.typ, data, nil
}

// objectHasher computes an object's id: the SHA-1 of "<type> <size>\0"
// and its content. It is crypto/sha1, without go-git's collision
// detection: the id indexes what this server sent, to be read back from
// it, and names nothing to anyone else.
type objectHasher struct{ hash.Hash }

func newObjectHasher(t plumbing.ObjectType, size int64) *objectHasher {
	h := sha1.New()
	h.Write(t.Bytes())
	h.Write([]byte(" " + strconv.FormatInt(size, 10) + "\x00"))
	return &objectHasher{h}
}

func (w *objectHasher) sum() (h plumbing.Hash) {
	copy(h[:], w.Sum(nil))
	return h
}

// byteCache is an LRU of inflated objects by index, bounded in bytes.
type byteCache struct {
	max, size int
	// deltaBudget is what is left of maxKeptDeltas, for the packs sharing
	// the cache.
	deltaBudget int
	order       *list.List // of *cacheEntry, most recent first
	entries     map[int]*list.Element
}

type cacheEntry struct {
	i    int
	typ  plumbing.ObjectType
	data []byte
}

func newByteCache(max int) *byteCache {
	return &byteCache{max: max, deltaBudget: maxKeptDeltas, order: list.New(), entries: map[int]*list.Element{}}
}

// maxKeptDeltas bounds the delta instructions the packs of a History keep
// in memory (packReader.deltas): those of the benchmarked history take
// under 2 MiB.
const maxKeptDeltas = 16 << 20

// keepDelta takes n bytes from the delta budget, if it has them.
func (c *byteCache) keepDelta(n int) bool {
	if n > c.deltaBudget {
		return false
	}
	c.deltaBudget -= n
	return true
}

func (c *byteCache) get(i int) (*cacheEntry, bool) {
	el, ok := c.entries[i]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry), true
}

// put caches data, counting what it holds (its capacity).
func (c *byteCache) put(i int, typ plumbing.ObjectType, data []byte) {
	if cap(data) > c.max {
		return
	}
	if _, ok := c.entries[i]; ok {
		return
	}
	c.entries[i] = c.order.PushFront(&cacheEntry{i, typ, data})
	c.size += cap(data)
	for c.size > c.max {
		el := c.order.Back()
		e := el.Value.(*cacheEntry)
		c.order.Remove(el)
		delete(c.entries, e.i)
		c.size -= cap(e.data)
	}
}
