//go:build linux && amd64

package vivid

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeInitramfs writes the VM's root file system to path as the kernel unpacks it: a cpio
// archive in the "newc" format (see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst), uncompressed, which spares
// the emulated CPU a decompression. It holds /init, busybox, the guest, the modules hack/vm.sh
// prepared under lib/modules, and the console device the kernel opens for /init before
// anything is mounted.
func writeInitramfs(path, assets, guest string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create the initramfs: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write the initramfs: %w", cerr)
		}
	}()
	w := &cpioWriter{w: bufio.NewWriterSize(f, 1<<20)}
	for _, dir := range []string{"bin", "dev", "proc", "sys"} {
		w.dir(dir)
	}
	w.node("dev/console", modeCharDev|0o600, 5, 1)
	w.file("init", 0o755, []byte(initScript))
	for name, src := range map[string]string{"bin/busybox": filepath.Join(assets, "busybox"), "guest": guest} {
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("read %s for the initramfs: %w", src, err)
		}
		w.file(name, 0o755, data)
	}
	modules := filepath.Join(assets, "modules")
	err = filepath.WalkDir(modules, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == modules {
			return err
		}
		rel, err := filepath.Rel(modules, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			w.dir(rel)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w.file(rel, 0o644, data)
		return nil
	})
	if err != nil {
		return fmt.Errorf("add the modules of %s to the initramfs: %w", modules, err)
	}
	w.trailer()
	if w.err != nil {
		return fmt.Errorf("write the initramfs: %w", w.err)
	}
	return nil
}

// File type bits of a cpio entry's mode, as in stat(2).
const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeCharDev = 0o020000
)

// cpioWriter writes newc entries, owned by root, remembering the first error.
type cpioWriter struct {
	w   *bufio.Writer
	ino int
	n   int64
	err error
}

func (c *cpioWriter) dir(name string)                      { c.entry(name, modeDir|0o755, 0, 0, nil) }
func (c *cpioWriter) file(name string, perm int, b []byte) { c.entry(name, modeFile|perm, 0, 0, b) }
func (c *cpioWriter) node(name string, mode, major, minor int) {
	c.entry(name, mode, major, minor, nil)
}

// trailer ends the archive and flushes it.
func (c *cpioWriter) trailer() {
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	if c.err == nil {
		c.err = c.w.Flush()
	}
}

func (c *cpioWriter) entry(name string, mode, rdevMajor, rdevMinor int, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&modeDir != 0 {
		nlink = 2
	}
	// The fields: magic, inode, mode, uid, gid, nlink, mtime, file size, the device holding
	// the file (major, minor), the device a node is (major, minor), name size with its NUL,
	// and a checksum the newc format leaves at zero.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	var n int
	n, c.err = c.w.Write(b)
	c.n += int64(n)
}

// pad aligns the next header or data to four bytes, as newc requires.
func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}
