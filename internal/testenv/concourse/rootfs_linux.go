package concourse

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gitops-resource/gitops-resource/internal/image"
)

// GoImage is the task image of ci/pipeline.yml in the suite, made of this
// machine's files, as there is no Docker Hub here: the Go toolchain that
// runs the tests (its GOROOT, without its own test suite, api/ and
// testdata), and what `make test-unit` and `make image` run besides Go, as
// the Dockerfile's test stage has them: git (with its helpers, for
// git-http-backend), gpg and ssh-keygen (signed writes are verified by
// git with them), openssl, make and bash, GNU time (the peak-memory
// tests), a shell and coreutils; each with the shared libraries ldd names.
// PATH has GOROOT/bin first, HOME is /root. It also returns the layer's
// compressed size.
func GoImage(ctx context.Context) (v1.Image, int64, error) {
	goroot, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go env GOROOT: %w", err)
	}
	root := strings.TrimSpace(string(goroot))
	r := newRootfs()
	skip := func(path string, d fs.DirEntry) bool {
		rel, _ := filepath.Rel(root, path)
		return d.IsDir() && (rel == "test" || rel == "api" || d.Name() == "testdata")
	}
	if err := r.addTree(root, skip); err != nil {
		return nil, 0, err
	}
	for _, tree := range []string{"/usr/lib/git-core", "/usr/share/git-core", "/usr/lib/gnupg"} {
		if err := r.addTree(tree, nil); err != nil {
			return nil, 0, err
		}
	}
	for _, cmd := range []string{"git", "ssh", "ssh-keygen", "gpg", "gpg-agent", "gpgconf", "openssl", "make", "bash", "sh", "time", "env", "cat", "ls", "mkdir", "rm", "cp", "mv",
		"ln", "chmod", "touch", "mktemp", "readlink", "basename", "dirname", "sed", "grep", "tr", "cut", "head", "tail", "sort",
		"uniq", "wc", "tee", "find", "xargs", "tar", "gzip", "date", "sleep", "uname", "id", "printf", "test", "true", "false"} {
		path, err := exec.LookPath(cmd)
		if err != nil {
			return nil, 0, fmt.Errorf("the Go task image needs %s from this machine: %w", cmd, err)
		}
		if err := r.add(path); err != nil {
			return nil, 0, err
		}
	}
	// /bin: the Makefile's SHELL is /bin/bash.
	for _, f := range []string{"/bin", "/etc/ssl/certs/ca-certificates.crt", "/usr/lib/ssl/openssl.cnf"} {
		if err := r.add(f); err != nil {
			return nil, 0, err
		}
	}
	r.dir("tmp/", 0o1777)
	r.dir("root/", 0o700)
	r.file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	r.file("etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n")
	layer, err := r.tar()
	if err != nil {
		return nil, 0, err
	}
	env := []string{"PATH=" + filepath.Join(root, "bin") + ":/usr/local/bin:/usr/bin:/bin", "HOME=/root"}
	return image.Image(layer, v1.Platform{OS: "linux", Architecture: "amd64"}, env, nil, gzip.BestSpeed)
}

// rootfs is the root of an image taken from this machine: each path added
// comes with its parent dirs and the symlinks on its way (bin -> usr/bin, a
// library's soname link), and an ELF executable with the shared libraries
// ldd names for it. Its tar lists the entries in name order, owned by root,
// dated 1970-01-01; files of one inode are one file and hard links to it.
type rootfs struct {
	entries map[string]*tar.Header // by name in the image: no leading /, a dir's ending in /
	host    map[string]string      // a regular file's host path
	inode   map[string]inode       // a regular file's host inode
	data    map[string][]byte      // a regular file's content made here
	ldd     map[inode]bool         // executables whose libraries are in
}

type inode struct{ dev, ino uint64 }

func newRootfs() *rootfs {
	return &rootfs{entries: map[string]*tar.Header{}, host: map[string]string{}, inode: map[string]inode{},
		data: map[string][]byte{}, ldd: map[inode]bool{}}
}

// dir adds a directory made here; name ends in /.
func (r *rootfs) dir(name string, mode int64) {
	r.entries[name] = &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}
}

// file adds a regular file made here, in a dir already added.
func (r *rootfs) file(name string, mode int64, content string) {
	r.entries[name] = &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content))}
	r.data[name] = []byte(content)
}

// symlink adds a symlink made here, in a dir already added.
func (r *rootfs) symlink(name, target string) {
	r.entries[name] = &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}
}

// addTree adds the tree at dir, leaving out what skip (nil: nothing) says.
func (r *rootfs) addTree(dir string, skip func(path string, d fs.DirEntry) bool) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip != nil && skip(path, d) {
			return filepath.SkipDir
		}
		return r.add(path)
	})
}

// add adds the host path p (absolute), resolving it one component at a time.
func (r *rootfs) add(p string) error { return r.resolve(p, 0) }

func (r *rootfs) resolve(p string, links int) error {
	if links > 40 {
		return fmt.Errorf("add %s to the image: too many levels of symbolic links", p)
	}
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(p), "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := filepath.Join(cur, part)
		name := strings.TrimPrefix(next, "/")
		fi, err := os.Lstat(next)
		if err != nil {
			return fmt.Errorf("add %s to the image: %w", p, err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(next)
			if err != nil {
				return fmt.Errorf("add %s to the image: %w", p, err)
			}
			r.symlink(name, target)
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			return r.resolve(filepath.Join(append([]string{target}, parts[i+1:]...)...), links+1)
		case fi.IsDir():
			r.entries[name+"/"] = &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: tarMode(fi)}
		case fi.Mode().IsRegular() && i == len(parts)-1:
			return r.addFile(next, name, fi)
		default:
			return fmt.Errorf("add %s to the image: %s is neither a directory, a regular file nor a symlink", p, next)
		}
		cur = next
	}
	return nil
}

// addFile adds a regular file, and the libraries of an ELF executable.
func (r *rootfs) addFile(path, name string, fi fs.FileInfo) error {
	r.entries[name] = &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: tarMode(fi), Size: fi.Size()}
	r.host[name] = path
	st := fi.Sys().(*syscall.Stat_t)
	ino := inode{st.Dev, st.Ino}
	r.inode[name] = ino
	if fi.Mode()&0o111 == 0 || r.ldd[ino] {
		return nil
	}
	r.ldd[ino] = true
	if !isELF(path) {
		return nil
	}
	libs, err := sharedLibraries(path)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		if err := r.add(lib); err != nil {
			return err
		}
	}
	return nil
}

func tarMode(fi fs.FileInfo) int64 {
	mode := int64(fi.Mode().Perm())
	for bit, v := range map[fs.FileMode]int64{fs.ModeSticky: 0o1000, fs.ModeSetgid: 0o2000, fs.ModeSetuid: 0o4000} {
		if fi.Mode()&bit != 0 {
			mode |= v
		}
	}
	return mode
}

func isELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	return err == nil && bytes.Equal(magic, []byte("\x7fELF"))
}

var lddPath = regexp.MustCompile(`(/\S+) \(0x`)

// sharedLibraries are the libraries (and the loader) ldd lists for an ELF
// executable; none for a static one.
func sharedLibraries(path string) ([]string, error) {
	out, err := exec.Command("ldd", path).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", path, err, out)
	}
	var libs []string
	for _, m := range lddPath.FindAllSubmatch(out, -1) {
		libs = append(libs, string(m[1]))
	}
	return libs, nil
}

// tar is the layer: every entry in name order, a file of an inode already
// written as a hard link to it.
func (r *rootfs) tar() ([]byte, error) {
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range r.entries {
			if !yield(name) {
				return
			}
		}
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	written := map[inode]string{}
	for _, name := range names {
		h := *r.entries[name]
		h.ModTime = time.Unix(0, 0)
		var content []byte
		if h.Typeflag == tar.TypeReg {
			if host, ok := r.host[name]; ok {
				if first, ok := written[r.inode[name]]; ok {
					h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
				} else {
					written[r.inode[name]] = name
					b, err := os.ReadFile(host)
					if err != nil {
						return nil, fmt.Errorf("add %s to the image: %w", host, err)
					}
					content, h.Size = b, int64(len(b))
				}
			} else {
				content = r.data[name]
			}
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("write %s into the layer: %w", name, err)
		}
		if _, err := tw.Write(content); err != nil {
			return nil, fmt.Errorf("write %s into the layer: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close the layer: %w", err)
	}
	return buf.Bytes(), nil
}
