package logs

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	// cutWindow is how far before the end of a chunk a newline is looked
	// for: the chunk is cut right after the last newline in that window.
	// For chunks smaller than 2*cutWindow the window is half the chunk.
	cutWindow = 4 << 10
	// minStamp separates the two numbered forms: a number of at least
	// 1,000,000,000 after the path is a Unix time (<path>.<T>, every T since
	// 2001), a smaller one is a chunk index (<path>.<k>).
	minStamp = 1_000_000_000
	// fileMode is the mode of files horust creates, before the umask.
	fileMode = 0o644
	// currentSuffix names the symlink to the chunk being written:
	// <path>.current (docs/logging.md).
	currentSuffix = ".current"
)

// MaxFileWrites is how many copiers write to chunk files at once. A write
// to a file holds its OS thread until the disk takes it (files have no
// poller), and the Go runtime makes another thread for the other
// goroutines meanwhile: the bound keeps the number of threads horust needs
// fixed (horust makes them all at start, see docs/design.md, "Threads").
// On a slow disk, copiers wait their turn instead.
const MaxFileWrites = 2

// fileWrites holds a token for each write to a chunk file in progress.
var fileWrites = make(chan struct{}, MaxFileWrites)

// chunkID names a chunk: stamp is 0 without the timestamp suffix.
type chunkID struct {
	stamp int64
	k     int64
}

func (c chunkID) less(d chunkID) bool {
	return c.stamp < d.stamp || c.stamp == d.stamp && c.k < d.k
}

// chunkName is the file name of a chunk of path, as the original names them:
// <path>, <path>.1, ... or <path>.<T>, <path>.<T>.1, ...
func chunkName(path string, c chunkID) string {
	if c.stamp != 0 {
		path += "." + strconv.FormatInt(c.stamp, 10)
	}
	if c.k > 0 {
		path += "." + strconv.FormatInt(c.k, 10)
	}
	return path
}

// parseNumber parses a canonical decimal (no sign, no leading zero).
func parseNumber(s string) (int64, bool) {
	if s == "" || len(s) > 18 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// parseChunk reports whether name (a file name in the directory of the log
// file, whose own name is base) is a chunk of the plain series (stamped
// false) or of a timestamped series (stamped true), and which.
func parseChunk(base, name string, stamped bool) (chunkID, bool) {
	if !stamped && name == base {
		return chunkID{}, true
	}
	rest, ok := strings.CutPrefix(name, base+".")
	if !ok {
		return chunkID{}, false
	}
	if !stamped {
		k, ok := parseNumber(rest)
		return chunkID{k: k}, ok && k < minStamp
	}
	ts, ks, indexed := strings.Cut(rest, ".")
	t, ok := parseNumber(ts)
	if !ok || t < minStamp {
		return chunkID{}, false
	}
	if !indexed {
		return chunkID{stamp: t}, true
	}
	k, ok := parseNumber(ks)
	return chunkID{stamp: t, k: k}, ok
}

// scanChunks returns the chunks of path that exist, oldest first. A
// directory that cannot be listed gives none: the caller then starts a new
// chunk and finds out whether it can write there.
func scanChunks(path string, stamped bool) []chunkID {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	base := filepath.Base(path)
	var ids []chunkID
	for _, name := range names {
		if c, ok := parseChunk(base, name, stamped); ok {
			ids = append(ids, c)
		}
	}
	slices.SortFunc(ids, func(a, b chunkID) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	return ids
}

// rotSink writes a stream into chunk files of path.
type rotSink struct {
	path   string
	stream string // the key, for the log
	size   int64  // a chunk is cut when it reaches size bytes
	window int64  // a newline in the last window bytes may cut it earlier
	keep   int    // old chunks kept besides the current one; 0 keeps all

	cur    chunkID
	f      *os.File // the current chunk; nil when opening it failed
	w      int64    // bytes written to the current chunk
	endsNL bool     // the last byte of the current chunk is a newline
	old    []chunkID

	linkWarned bool // a failure to update <path>.current was logged

	written *notifier // wakes the followers of the chunks (horustctl logs -f); may be nil

	acct *account
	log  *slog.Logger
}

// openRotation prepares the chunks of path. It continues the series of the
// previous run: the newest existing chunk of the series (the series of stamp
// when stamp is not 0) is appended to, and cut when it is full; nothing is
// truncated. It returns an error when the current chunk cannot be opened.
func openRotation(path, stream string, size uint64, keep int, stamp int64, acct *account, log *slog.Logger) (*rotSink, error) {
	r := &rotSink{path: path, stream: stream, size: int64(min(size, math.MaxInt64)), keep: max(keep, 0), acct: acct, log: log}
	r.window = min(cutWindow, r.size/2)
	r.cur = chunkID{stamp: stamp}
	ids := scanChunks(path, stamp != 0)
	for _, c := range ids {
		if c.stamp == stamp && r.cur.less(c) {
			r.cur = c
		}
	}
	if r.keep > 0 {
		r.old = slices.DeleteFunc(ids, func(c chunkID) bool { return c == r.cur })
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	r.prune()
	if r.w >= r.size {
		// Full already (the size was lowered since): cut now, as a chunk
		// is cut when it reaches the size.
		r.rotate()
		if r.f == nil {
			return nil, r.openErr()
		}
	}
	return r, nil
}

// openErr opens the current chunk again to report why it cannot be opened.
func (r *rotSink) openErr() error {
	err := r.open()
	if err == nil {
		return errors.New("cannot open the current chunk")
	}
	return err
}

// open opens the current chunk for appending and reads how full it is and
// whether it ends with a newline.
func (r *rotSink) open() error {
	name := chunkName(r.path, r.cur)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, fileMode)
	if errors.Is(err, os.ErrPermission) {
		// Writable but not readable: only the last byte is unknown.
		f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, fileMode)
	}
	if err != nil {
		return err
	}
	r.f, r.w, r.endsNL = f, 0, false
	r.link(name)
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		r.w = st.Size()
		var last [1]byte
		if n, _ := f.ReadAt(last[:], r.w-1); n == 1 {
			r.endsNL = last[0] == '\n'
		}
	}
	return nil
}

// link points <path>.current at chunk, the chunk being written: a relative
// symlink made under a temporary name and renamed over the old link, so that
// a reader (tail -F) never finds the name missing or half made. A failure is
// logged once; the chunks are written all the same.
func (r *rotSink) link(chunk string) {
	cur := r.path + currentSuffix
	tmp := cur + ".tmp"
	os.Remove(tmp) // left by a run that died between the two steps
	err := os.Symlink(filepath.Base(chunk), tmp)
	if err == nil {
		if err = os.Rename(tmp, cur); err != nil {
			os.Remove(tmp)
		}
	}
	if err != nil && !r.linkWarned {
		r.linkWarned = true
		r.log.Warn("cannot update the link to the current log chunk", "service", r.acct.service, "path", cur, "error", err.Error())
	}
}

// rotate closes the current chunk and opens the next one, deleting the
// oldest chunks beyond keep.
func (r *rotSink) rotate() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	if r.keep > 0 {
		r.old = append(r.old, r.cur)
	}
	r.cur.k++
	if err := r.open(); err != nil {
		// Retried at the next write; the data meanwhile is dropped.
		r.w, r.endsNL = 0, false
	}
	r.prune()
}

// prune deletes the oldest chunks until keep old ones are left.
func (r *rotSink) prune() {
	if r.keep <= 0 {
		return
	}
	for len(r.old) > r.keep {
		name := chunkName(r.path, r.old[0])
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("cannot delete an old log chunk", "service", r.acct.service, "path", name, "error", err.Error())
		}
		r.old = r.old[1:]
	}
}

func (r *rotSink) write(p []byte) {
	r.writeChunks(p)
	r.written.notify()
}

func (r *rotSink) writeChunks(p []byte) {
	for len(p) > 0 {
		if r.f == nil {
			if err := r.open(); err != nil {
				r.acct.drop(r.log, r.stream, chunkName(r.path, r.cur), len(p), err)
				return
			}
		}
		room := r.size - r.w
		if room <= 0 {
			r.rotate()
			continue
		}
		if int64(len(p)) < room {
			_ = r.put(p) // a failure is dropped and counted
			return
		}
		// p reaches the end of the chunk: cut at the size, or right after
		// the last newline in the window before it.
		cut := room
		if i := int64(bytes.LastIndexByte(p[:room], '\n')); i >= 0 && r.w+i+1 > r.size-r.window {
			cut = i + 1
		} else if r.endsNL && r.w > r.size-r.window {
			cut = 0
		}
		if err := r.put(p[:cut]); err != nil {
			// The chunk is not full: it is cut only by what it holds.
			// The rest of this read is dropped too (the disk that just
			// refused is full); the next read tries again.
			r.acct.drop(r.log, r.stream, r.f.Name(), len(p)-int(cut), err)
			return
		}
		p = p[cut:]
		r.rotate()
	}
}

// put appends p to the current chunk. What cannot be written is dropped and
// counted, and only what was written counts towards the chunk's size, so
// that a full disk does not make empty chunks (which would use up
// stdout-rotate-keep and delete real ones).
func (r *rotSink) put(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	fileWrites <- struct{}{}
	n, err := r.f.Write(p)
	<-fileWrites
	r.acct.copied.Add(uint64(n))
	r.w += int64(n)
	if n > 0 {
		r.endsNL = p[n-1] == '\n'
	}
	if err != nil {
		r.acct.drop(r.log, r.stream, r.f.Name(), len(p)-n, err)
	}
	return err
}

func (r *rotSink) finish() { r.abort() }

func (r *rotSink) abort() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}
