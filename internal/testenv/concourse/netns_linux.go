package concourse

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// listenIn opens a TCP listener inside the network namespace at nsPath.
func listenIn(nsPath, addr string) (net.Listener, error) {
	return inNetns(nsPath, func() (net.Listener, error) { return net.Listen("tcp", addr) })
}

// dialIn connects to addr inside the network namespace at nsPath.
func dialIn(nsPath, addr string) (net.Conn, error) {
	return inNetns(nsPath, func() (net.Conn, error) { return net.Dial("tcp", addr) })
}

// inNetns runs open on an OS thread moved into the network namespace at
// nsPath. A socket stays in the namespace it was made in, so only the making
// is done there; the rest of the process stays where it is.
func inNetns[T io.Closer](nsPath string, open func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked when moving back fails: the goroutine ends and
		// the runtime discards the thread instead of reusing it.
		runtime.LockOSThread()
		var r result
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			r.err = err
			ch <- r
			return
		}
		defer self.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			r.err = err
			ch <- r
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			r.err = fmt.Errorf("enter %s: %w", nsPath, err)
			ch <- r
			return
		}
		r.v, r.err = open()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			if r.err == nil {
				r.v.Close()
			}
			ch <- result{err: fmt.Errorf("leave %s: %w", nsPath, err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- r
	}()
	r := <-ch
	return r.v, r.err
}

// forward accepts on ln and connects each connection to what dial opens
// (listener and dial on either side of the namespace), until ln is closed.
// It returns a func that closes ln and every open connection, and waits.
func forward(ln net.Listener, dial func() (net.Conn, error)) (stop func()) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			c.Close()
			return false
		}
		conns[c] = struct{}{}
		return true
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := dial()
				if err != nil {
					in.Close()
					return
				}
				if !track(in) || !track(out) {
					in.Close()
					out.Close()
					return
				}
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn) {
					io.Copy(dst, src)
					if tc, ok := dst.(*net.TCPConn); ok {
						tc.CloseWrite()
					}
					done <- struct{}{}
				}
				go pipe(out, in)
				go pipe(in, out)
				<-done
				<-done
				in.Close()
				out.Close()
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	}
}
