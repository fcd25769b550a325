package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a [Log].
type Options struct {
	// MaxSize is the size in bytes past which the file is rotated; 0 never
	// rotates. A file grows past it only by a single group larger than it.
	MaxSize int64
	// Logger receives the anchors (last seq and hash at rotation and
	// close) and the repair of a torn last line; nil discards them.
	Logger *slog.Logger
	// Now names rotated files (default time.Now).
	Now func() time.Time
	// SyncInterval, when positive, lets Write return once its line is
	// written to the file (the operating system holds it: a killed process
	// loses nothing) and fsyncs at most every SyncInterval: by the writer
	// that finds the last fsync that old, and by a timer when writes stop.
	// Zero fsyncs every group before its writers return. A failed fsync
	// stops the log as a failed write does.
	SyncInterval time.Duration
}

// Log is an append-only, hash-chained audit log file. Its methods are safe
// for concurrent use; lines are written in the order their Write calls took
// their sequence numbers.
type Log struct {
	path string
	opts Options
	log  *slog.Logger

	mu         sync.Mutex
	f          *os.File // nil once closed
	size       int64
	seq        uint64 // of the last line queued
	last       string // hash of the last line queued
	durableSeq uint64 // of the last line on disk
	durable    string // hash of the last line on disk
	committing bool
	queue      []*call
	err        error // sticky: set by the first failed write
	idle       *sync.Cond
	syncs      atomic.Int64 // fsyncs of the file (for the benchmark)
	// With Options.SyncInterval: whether lines were written since the last
	// fsync, and when it was (touched only by the committing caller).
	dirty    bool
	lastSync time.Time
	stop     chan struct{} // closed by Close: ends the sync timer
	stopped  chan struct{}
}

// call is one Write waiting in the group commit.
type call struct {
	line []byte // with its newline
	seq  uint64
	hash string
	err  error
	// batch is set (before wake is closed) for the caller that commits
	// the next group; it commits batch, itself first.
	batch []*call
	wake  chan struct{}
}

// maxLine bounds a line on reading (Open's tail, Verify).
const maxLine = 1 << 20

// Open opens the audit log at path for appending, creating it (and its
// directory, mode 0700) with mode 0600 if needed. The chain continues from
// the last line of the file; an empty or new file continues from the newest
// rotated file beside it ({base}-*{ext}), or starts at seq 1. A last line
// cut short by a crash (no newline: its writer never returned) is removed.
// A last line that is not an audit event is an error: verify the file and
// move it aside.
func Open(path string, opts Options) (*Log, error) {
	if opts.MaxSize < 0 {
		return nil, errors.New("audit: MaxSize must not be negative")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Log{path: path, opts: opts, log: opts.Logger, last: ZeroHash}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.idle = sync.NewCond(&l.mu)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	found, err := l.readTail(path, true)
	if err != nil {
		return nil, err
	}
	if !found {
		rotated, err := l.rotatedFiles()
		if err != nil {
			return nil, err
		}
		if len(rotated) > 0 {
			if _, err := l.readTail(rotated[len(rotated)-1], false); err != nil {
				return nil, err
			}
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	l.f, l.size = f, fi.Size()
	l.durableSeq, l.durable = l.seq, l.last
	l.lastSync = time.Now()
	l.log.Info("audit log opened", "path", path, "seq", l.seq, "lastHash", l.last)
	if opts.SyncInterval > 0 {
		l.stop, l.stopped = make(chan struct{}), make(chan struct{})
		go l.syncLoop(l.stop)
	}
	return l, nil
}

// syncLoop fsyncs lines left unsynced when writes stop (SyncInterval).
func (l *Log) syncLoop(stop <-chan struct{}) {
	defer close(l.stopped)
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			l.syncIdle()
		}
	}
}

// syncIdle fsyncs the file if no group is being committed (a committing
// writer syncs by itself when one is due) and lines are unsynced.
func (l *Log) syncIdle() {
	l.mu.Lock()
	if l.committing || l.f == nil || l.err != nil {
		l.mu.Unlock()
		return
	}
	l.committing = true
	l.mu.Unlock()
	if l.dirty && time.Since(l.lastSync) >= l.opts.SyncInterval {
		if err := l.syncFile(); err != nil {
			l.fail(err)
		}
	}
	l.handOff()
}

// handOff ends the caller's turn as committer: the next queued group, if
// any, is committed by its first writer.
func (l *Log) handOff() {
	l.mu.Lock()
	next := l.queue
	l.queue = nil
	if len(next) == 0 {
		l.committing = false
		l.idle.Broadcast()
	}
	l.mu.Unlock()
	if len(next) > 0 {
		next[0].batch = next
		close(next[0].wake)
	}
}

// syncFile fsyncs the file (by the committing caller only).
func (l *Log) syncFile() error {
	l.syncs.Add(1)
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.dirty, l.lastSync = false, time.Now()
	return nil
}

// fail makes err the log's sticky error.
func (l *Log) fail(err error) {
	err = fmt.Errorf("audit: write %s: %w", l.path, err)
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.log.Error("audit log failed: it refuses every later write until it is reopened", "path", l.path, "err", err)
}

// readTail sets the chain state from the last line of file. It reports
// false for a missing or empty file. With repair, a torn last line is cut.
func (l *Log) readTail(file string, repair bool) (bool, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return false, nil
	}
	n := min(size, 2*maxLine+2)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return false, fmt.Errorf("audit: %w", err)
	}
	if buf[len(buf)-1] != '\n' {
		cut := strings.LastIndexByte(string(buf), '\n') + 1 // 0: the only line is torn
		if !repair || (cut == 0 && n < size) {
			return false, fmt.Errorf("audit: %s ends with an incomplete line: verify it with tresor audit verify", file)
		}
		at := size - n + int64(cut)
		if err := os.Truncate(file, at); err != nil {
			return false, fmt.Errorf("audit: cut the incomplete last line of %s: %w", file, err)
		}
		l.log.Warn("audit log: removed an incomplete last line (a write cut short by a crash; its request was never answered)", "path", file, "bytes", size-at)
		buf = buf[:cut]
		if at == 0 {
			return false, nil
		}
	}
	body := buf[:len(buf)-1]
	line := body[strings.LastIndexByte(string(body), '\n')+1:]
	if len(line) == len(body) && n < size {
		return false, fmt.Errorf("audit: the last line of %s is longer than %d bytes", file, maxLine)
	}
	h, err := parseHeader(line)
	if err != nil {
		return false, fmt.Errorf("audit: the last line of %s %s: verify it with tresor audit verify and move it aside", file, err)
	}
	l.seq, l.last = h.seq, hashLine(line)
	return true, nil
}

// rotatedFiles lists the rotated files of the log, oldest first.
func (l *Log) rotatedFiles() ([]string, error) {
	base, ext := l.split()
	m, err := filepath.Glob(globEscape(base) + "-*" + globEscape(ext))
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	slices.Sort(m) // the time in the names sorts as text
	return m, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

func (l *Log) split() (base, ext string) {
	ext = filepath.Ext(l.path)
	return strings.TrimSuffix(l.path, ext), ext
}

// Path is the file the log writes to.
func (l *Log) Path() string { return l.path }

// Last returns the seq and hash of the last line on disk: an anchor to
// keep elsewhere and compare with what [Verify] reports later.
func (l *Log) Last() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durableSeq, l.durable
}

// Write appends e as one line, setting its Seq, PrevHash and Category, and
// returns once the line is on disk (or with the error that kept it off).
// Once queued, a line is written even if ctx ends meanwhile: its seq is
// taken, and the lines after it are chained to it.
func (l *Log) Write(ctx context.Context, e Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return l.err
	}
	if l.f == nil {
		l.mu.Unlock()
		return ErrClosed
	}
	e.Seq, e.PrevHash, e.Category = l.seq+1, l.last, Category
	e.Time = e.Time.UTC()
	b, err := json.Marshal(e)
	if err != nil {
		l.mu.Unlock()
		return fmt.Errorf("audit: encode event: %w", err)
	}
	c := &call{seq: e.Seq, hash: hashLine(b), line: append(b, '\n')}
	l.seq, l.last = c.seq, c.hash
	if l.committing {
		c.wake = make(chan struct{})
		l.queue = append(l.queue, c)
		l.mu.Unlock()
		<-c.wake
		if c.batch == nil {
			return c.err // written by another caller
		}
	} else {
		l.committing = true
		l.mu.Unlock()
		c.batch = []*call{c}
	}
	l.commitGroup(c.batch)
	l.handOff()
	return c.err
}

// commitGroup writes the lines of calls with one write and one fsync,
// rotating first if the group would take the file past MaxSize, and wakes
// every caller but the first (the one committing). Only the committing
// caller touches the file.
func (l *Log) commitGroup(calls []*call) {
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if err == nil {
		var buf []byte
		for _, c := range calls {
			buf = append(buf, c.line...)
		}
		err = l.writeDurable(buf)
		l.mu.Lock()
		if err != nil {
			err = fmt.Errorf("audit: write %s: %w", l.path, err)
			l.err = err // the disk may hold part of buf: no write after it
			l.log.Error("audit log failed: it refuses every later write until it is reopened", "path", l.path, "err", err)
		} else {
			last := calls[len(calls)-1]
			l.durableSeq, l.durable = last.seq, last.hash
		}
		l.mu.Unlock()
	}
	for i, c := range calls {
		c.err = err
		if i > 0 {
			close(c.wake)
		}
	}
}

func (l *Log) writeDurable(buf []byte) error {
	if l.opts.MaxSize > 0 && l.size > 0 && l.size+int64(len(buf)) > l.opts.MaxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(buf)
	l.size += int64(n)
	if err != nil {
		return err
	}
	l.dirty = true
	if d := l.opts.SyncInterval; d > 0 && time.Since(l.lastSync) < d {
		return nil // the timer or a later writer syncs it
	}
	return l.syncFile()
}

// rotate renames the file to {base}-{time}{ext} and starts a new one.
func (l *Log) rotate() error {
	base, ext := l.split()
	stamp := l.opts.Now().UTC().Format("20060102T150405.000000000Z")
	name := base + "-" + stamp + ext
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s-%s.%d%s", base, stamp, i, ext)
	}
	if err := os.Rename(l.path, name); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	old := l.f
	if l.dirty {
		if err := l.syncFile(); err != nil {
			return fmt.Errorf("rotate: %w", err)
		}
	}
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	l.mu.Lock()
	l.f, l.size = f, 0
	l.mu.Unlock()
	if err := old.Close(); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	l.mu.Lock()
	seq, hash := l.durableSeq, l.durable
	l.mu.Unlock()
	l.log.Info("audit log rotated", "rotated", name, "path", l.path, "lastSeq", seq, "lastHash", hash)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close waits for the writes under way, closes the file and logs the last
// seq and hash. Later writes fail with [ErrClosed].
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.committing {
		l.idle.Wait()
	}
	if l.f == nil {
		return nil
	}
	if stop := l.stop; stop != nil {
		l.stop = nil
		close(stop)
		l.mu.Unlock()
		<-l.stopped
		l.mu.Lock()
		for l.committing {
			l.idle.Wait()
		}
		if l.f == nil {
			return nil
		}
	}
	var err error
	if l.dirty && l.err == nil {
		err = l.syncFile()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	l.log.Info("audit log closed", "path", l.path, "lastSeq", l.durableSeq, "lastHash", l.durable)
	if err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

func hashLine(line []byte) string {
	s := sha256.Sum256(line)
	return hex.EncodeToString(s[:])
}
