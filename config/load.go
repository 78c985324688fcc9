package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileSize bounds what Load reads. A tunnel takes a few hundred bytes, so
// a real config is far below it; a path pointing at a log, a disk image or a
// device must not make rtunnel read (and hold) it all.
const MaxFileSize = 1 << 20

// Load reads and validates the file at path. The path must name a regular
// file (after symlinks) of at most MaxFileSize bytes that only root or the
// user rtunnel runs as can change.
func Load(path string) (*Config, error) {
	data, errs := readFile(path)
	if errs != nil {
		return nil, errs
	}
	return Parse(path, data)
}

// readFile returns the file's bytes, or why it will not read them. It never
// blocks on a FIFO and never reads more than MaxFileSize+1 bytes.
func readFile(path string) ([]byte, Errors) {
	fail := func(format string, args ...any) Errors {
		return Errors{{File: path, Msg: fmt.Sprintf(format, args...)}}
	}
	// O_NONBLOCK: opening a FIFO that no one writes would wait forever; with
	// it, open returns and fstat below tells what the path is.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fail("cannot read config: %v", unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fail("cannot read config: %v", unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fail("is %s, not a regular file: rtunnel reads its config only from a regular file; name the YAML file itself", fileKind(fi.Mode()))
	}
	if errs := checkAccess(path, fi); errs != nil {
		return nil, errs
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fail("cannot read config: %v", unwrapPath(err))
	}
	if len(data) > MaxFileSize {
		return nil, fail("is larger than %d KiB, far more than any config needs: is this the right file?", MaxFileSize>>10)
	}
	return data, nil
}

// fileKind names what a non-regular path is, in the words `ls -l` and
// `stat` use, so the operator recognises it.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
