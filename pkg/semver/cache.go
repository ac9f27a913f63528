package semver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
)

// checkCache remembers, for one source, the branch tip the last check saw
// and the version file's number there. Concourse runs the checks of a
// resource in one container for as long as it can, so from the second check
// on the step asks the server for the tip alone (one round trip) and reads
// the file only when the tip moved.
//
// An entry lives in os.TempDir()/gitops-resource-check/<key>.json, where key
// is the SHA-256 of the fields that decide the answer: the URL without
// credentials, branch and file. Credentials are neither stored nor part of
// the key: whoever may list the branch's refs gets the number the tip holds.
// An entry is written atomically (a temp file renamed over it), mode 0600,
// in a 0700 directory; one that is not exactly what this code writes (mode,
// size, fields, a 40-hex tip, a strict version) is ignored and rewritten.
type checkCache struct {
	path string
	logf func(format string, args ...any)
}

// cacheEntry is what a cache file holds.
type cacheEntry struct {
	Tip string `json:"tip"`
	// Number is the version file's content at Tip, "" when there is no
	// file (check then reports initial_version).
	Number string `json:"number"`
}

// reported is the version check reports for the entry.
func (e cacheEntry) reported(initial *semver.Version) string {
	if e.Number == "" {
		return initial.String()
	}
	return e.Number
}

const (
	cacheDirName  = "gitops-resource-check"
	maxCacheEntry = 512
)

func newCheckCache(src *Source, url string, logf func(string, ...any)) *checkCache {
	key, _ := json.Marshal([]string{"semver/git/v1", url, src.Branch, src.File})
	sum := sha256.Sum256(key)
	return &checkCache{path: filepath.Join(os.TempDir(), cacheDirName, hex.EncodeToString(sum[:])+".json"), logf: logf}
}

// load returns the entry, and false when there is none usable.
func (c *checkCache) load() (cacheEntry, bool) {
	e, err := readCacheEntry(c.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return cacheEntry{}, false
	case err != nil:
		c.logf("ignoring the check cache %s: %v", c.path, err)
		return cacheEntry{}, false
	}
	return e, true
}

func readCacheEntry(path string) (cacheEntry, error) {
	if err := checkCacheDir(filepath.Dir(path)); err != nil {
		return cacheEntry{}, err
	}
	link, err := os.Lstat(path)
	if err != nil {
		return cacheEntry{}, err
	}
	if !link.Mode().IsRegular() || link.Mode().Perm() != 0o600 {
		return cacheEntry{}, fmt.Errorf("not a regular file of mode 0600 (%s)", link.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		return cacheEntry{}, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !os.SameFile(link, fi) {
		return cacheEntry{}, errors.New("replaced while being read")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCacheEntry+1))
	if err != nil {
		return cacheEntry{}, err
	}
	if len(data) > maxCacheEntry {
		return cacheEntry{}, fmt.Errorf("larger than %d bytes", maxCacheEntry)
	}
	return parseCacheEntry(data)
}

// parseCacheEntry accepts exactly what store writes.
func parseCacheEntry(data []byte) (cacheEntry, error) {
	var e cacheEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return cacheEntry{}, fmt.Errorf("not a cache entry: %w", err)
	}
	if dec.More() {
		return cacheEntry{}, errors.New("not a cache entry: data after the entry")
	}
	if !plumbing.IsHash(e.Tip) || plumbing.NewHash(e.Tip).String() != e.Tip {
		return cacheEntry{}, fmt.Errorf("tip %.50q is not a commit SHA", e.Tip)
	}
	if e.Number != "" {
		if v, err := semver.StrictNewVersion(e.Number); err != nil || v.String() != e.Number {
			return cacheEntry{}, fmt.Errorf("number %.50q is not a semantic version", e.Number)
		}
	}
	return e, nil
}

// checkCacheDir makes the cache directory if needed, and refuses one that
// is not a directory of mode 0700 (a symlink, or one others may write).
func checkCacheDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		return fmt.Errorf("%s is not a directory of mode 0700 (%s)", dir, fi.Mode())
	}
	return nil
}

// store writes the entry, atomically. A failure is logged: the next check
// then fetches, as the first one did.
func (c *checkCache) store(e cacheEntry) {
	if err := writeCacheEntry(c.path, e); err != nil {
		c.logf("could not write the check cache %s: %v", c.path, err)
	}
}

func writeCacheEntry(path string, e cacheEntry) error {
	dir := filepath.Dir(path)
	if err := checkCacheDir(dir); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".entry-*") // mode 0600
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
