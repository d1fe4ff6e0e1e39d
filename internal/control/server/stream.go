package server

import (
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/horust-go/horust/internal/httpwire"
)

// streamWriteTimeout is how long a client of a streamed reply may take to
// take each piece: a client that takes nothing for that long is
// disconnected, so a handler never waits on it for ever.
const streamWriteTimeout = 10 * time.Second

// startStream sends the status line (200) and the header of a reply whose
// body follows in pieces (writePiece), until the handler returns. To an
// HTTP/1.1 client the body is chunked, to an HTTP/1.0 one it ends with the
// connection. It returns false for a HEAD request, which gets no body.
func (w *response) startStream(contentType string) bool {
	w.streamed, w.code = true, 200
	w.header.Set("Content-Type", contentType)
	w.header.Set("Cache-Control", "no-store")
	if w.minor > 0 {
		w.header.Set("Transfer-Encoding", "chunked")
	} else {
		w.header.Set("Connection", "close")
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	httpwire.WriteHead(w.bw, "HTTP/1.1 200 OK", w.header)
	if err := w.bw.Flush(); err != nil {
		w.broken = true
	}
	return !w.head && !w.broken
}

// errStreamBroken is what writePiece returns once a write has failed.
var errStreamBroken = errors.New("the client is gone")

// writePiece sends p as one piece of a streamed body, at once: the chunk's
// size line, p and its end in one system call (the head went out whole in
// startStream, so nothing is buffered).
func (w *response) writePiece(p []byte) error {
	if w.broken {
		return errStreamBroken
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	piece := net.Buffers{p}
	if w.minor > 0 {
		size := strconv.AppendInt(make([]byte, 0, 24), int64(len(p)), 16)
		piece = net.Buffers{append(size, "\r\n"...), p, crlf}
	}
	if _, err := piece.WriteTo(w.conn); err != nil {
		w.broken = true
		return err
	}
	return nil
}

var crlf = []byte("\r\n")

// endStream ends a streamed body; it reports whether the connection can
// carry another request.
func (w *response) endStream() bool {
	switch {
	case w.broken:
		return false
	case w.head:
		return true
	case w.minor == 0:
		return false // the body ends with the connection
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	w.bw.WriteString("0\r\n\r\n")
	return w.bw.Flush() == nil
}
