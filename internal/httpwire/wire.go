// Package httpwire reads and writes HTTP/1.1 messages (RFC 9112): start
// lines, header fields, and bodies framed by Content-Length or chunked
// transfer coding. It is the part of HTTP that horust's control server, the
// control client and the http health check share.
//
// horust does not link net/http: that package (with its bundled HTTP/2,
// multipart and MIME code) adds 1.6 MB to the binary, and since the kernel
// maps a binary's pages 64 KiB at a time around every page fault, about as
// much to the memory of every running horust, used or not. What horust
// speaks is small: JSON requests of a few hundred bytes on a local socket,
// and GET probes of health endpoints.
package httpwire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// Errors of reading a message. A *MalformedError is any other violation of
// the syntax.
var (
	// ErrHeaderTooLarge is returned when the start line and header fields
	// are longer than the limit given to ReadHead.
	ErrHeaderTooLarge = errors.New("header fields too large")
	// ErrBodyTooLarge is returned by a LimitBody reader that saw more than
	// its limit.
	ErrBodyTooLarge = errors.New("body too large")
)

// MalformedError says what is wrong with a message that is not HTTP/1.1.
type MalformedError struct{ Msg string }

func (e *MalformedError) Error() string { return "malformed HTTP message: " + e.Msg }

func malformed(format string, a ...any) error {
	return &MalformedError{Msg: fmt.Sprintf(format, a...)}
}

// Field is one header field.
type Field struct {
	Name, Value string
}

// Header is a message's header fields in the order they came or are sent.
// Names compare without regard to case.
type Header []Field

// Get returns the value of the first field named name, or "".
func (h Header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values returns the values of every field named name.
func (h Header) Values(name string) []string {
	var vs []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// Set replaces every field named name with one.
func (h *Header) Set(name, value string) {
	h.Del(name)
	*h = append(*h, Field{Name: name, Value: value})
}

// Del removes every field named name.
func (h *Header) Del(name string) {
	out := (*h)[:0]
	for _, f := range *h {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	*h = out
}

// HasToken reports whether a comma-separated field named name lists token
// ("Connection: keep-alive, Upgrade" has "upgrade").
func (h Header) HasToken(name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// ReadHead reads a start line and the header fields that follow it, up to
// the empty line, from r. limit bounds their total length; more is
// ErrHeaderTooLarge. Empty lines before the start line are skipped (RFC 9112
// section 2.2). An end of input before the first byte is io.EOF; after it,
// io.ErrUnexpectedEOF.
func ReadHead(r *bufio.Reader, limit int) (start string, h Header, err error) {
	read := 0
	first := true
	for {
		line, err := readLine(r, limit-read)
		read += len(line) + 2
		if err != nil {
			if err == io.EOF && (!first || read > 2) {
				err = io.ErrUnexpectedEOF
			}
			return "", nil, err
		}
		if start == "" {
			if line == "" {
				first = false
				continue
			}
			if err := checkText(line); err != nil {
				return "", nil, err
			}
			start = line
			first = false
			continue
		}
		if line == "" {
			return start, h, nil
		}
		f, err := parseField(line)
		if err != nil {
			return "", nil, err
		}
		h = append(h, f)
	}
}

// readLine reads one line of at most limit bytes and returns it without its
// CRLF (a bare LF also ends a line).
func readLine(r *bufio.Reader, limit int) (string, error) {
	var long []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(long)+len(frag) > limit+2 || (err == bufio.ErrBufferFull && len(long)+len(frag) > limit) {
			return "", ErrHeaderTooLarge
		}
		switch err {
		case nil:
			var line []byte
			if long == nil {
				line = frag
			} else {
				line = append(long, frag...)
			}
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if len(line) > limit {
				return "", ErrHeaderTooLarge
			}
			return string(line), nil
		case bufio.ErrBufferFull:
			long = append(long, frag...)
		default:
			if err == io.EOF && len(long)+len(frag) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}

// checkText rejects control characters other than tab in a start line.
func checkText(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return malformed("control character %#x in %q", c, trim(s))
		}
	}
	return nil
}

func parseField(line string) (Field, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return Field{}, malformed("folded header line %q", trim(line))
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok {
		return Field{}, malformed("header line without a colon: %q", trim(line))
	}
	if !isToken(name) {
		return Field{}, malformed("bad header field name %q", trim(name))
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return Field{}, malformed("control character %#x in header field %s", c, name)
		}
	}
	return Field{Name: name, Value: value}, nil
}

// isToken reports whether s is an RFC 9110 token (a method or field name).
func isToken(s string) bool { return s != "" && tokenPrefix(s) == s }

// isTokenChar reports the characters of a token (RFC 9110 section 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func trim(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// RequestLine is the first line of a request.
type RequestLine struct {
	Method string
	Target string // as sent: "/v1/services?x=1" or an absolute URI
	Minor  int    // 1 for HTTP/1.1, 0 for HTTP/1.0
}

// ErrVersion is returned by ParseRequestLine for a version other than
// HTTP/1.0 and HTTP/1.1 (answered 505).
var ErrVersion = errors.New("HTTP version not supported")

// ParseRequestLine splits "GET /path HTTP/1.1".
func ParseRequestLine(line string) (RequestLine, error) {
	method, rest, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" || strings.ContainsAny(target, " \t") {
		return RequestLine{}, malformed("bad request line %q", trim(line))
	}
	minor, err := parseVersion(version)
	if err != nil {
		return RequestLine{}, err
	}
	return RequestLine{Method: method, Target: target, Minor: minor}, nil
}

// ParseTarget reads a request target in origin form ("/path?query") or
// absolute form ("http://host/path"), as net/http does.
func ParseTarget(target string) (*url.URL, error) {
	u, err := url.ParseRequestURI(target)
	if err != nil || u.Path == "" && u.Opaque != "" {
		return nil, malformed("bad request target %q", trim(target))
	}
	return u, nil
}

// CheckHost checks the Host fields of a request as net/http's server does:
// exactly one on HTTP/1.1, at most one on HTTP/1.0, made of the bytes a
// host and port can hold (httpguts.ValidHostHeader).
func CheckHost(minor int, h Header) error {
	hosts := h.Values("Host")
	switch {
	case len(hosts) == 0 && minor == 1:
		return malformed("missing Host header")
	case len(hosts) > 1:
		return malformed("more than one Host header")
	case len(hosts) == 1 && !validHost(hosts[0]):
		return malformed("bad Host header %q", trim(hosts[0]))
	}
	return nil
}

// validHost reports whether h holds only host name or address characters,
// a port, brackets, percent-escapes and sub-delims.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func parseVersion(v string) (int, error) {
	switch v {
	case "HTTP/1.1":
		return 1, nil
	case "HTTP/1.0":
		return 0, nil
	}
	if strings.HasPrefix(v, "HTTP/") && len(v) == 8 && v[6] == '.' {
		return 0, ErrVersion
	}
	return 0, malformed("bad protocol version %q", trim(v))
}

// StatusLine is the first line of a response.
type StatusLine struct {
	Minor  int
	Code   int
	Reason string
}

// ParseStatusLine splits "HTTP/1.1 200 OK".
func ParseStatusLine(line string) (StatusLine, error) {
	version, rest, ok := strings.Cut(line, " ")
	if !ok {
		return StatusLine{}, malformed("bad status line %q", trim(line))
	}
	minor, err := parseVersion(version)
	if err != nil {
		return StatusLine{}, fmt.Errorf("status line %q: %w", trim(line), err)
	}
	code, reason, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if len(code) != 3 || err != nil || n < 100 {
		return StatusLine{}, malformed("bad status code in %q", trim(line))
	}
	return StatusLine{Minor: minor, Code: n, Reason: reason}, nil
}

// Framing says how a body is delimited.
type Framing int

// The framings of a body.
const (
	Sized   Framing = iota // Content-Length bytes (0: no body)
	Chunked                // chunked transfer coding
	ToClose                // until the connection closes (responses only)
)

// RequestFraming returns how the body of a request of HTTP/1.minor with
// header h is framed and, when Sized, its length. A request with neither
// Content-Length nor Transfer-Encoding has no body. Transfer-Encoding on an
// HTTP/1.0 request is an error: RFC 9112 section 6.1 says to treat its
// framing as faulty (net/http ignores the field instead).
func RequestFraming(minor int, h Header) (Framing, int64, error) {
	if te := h.Values("Transfer-Encoding"); len(te) > 0 {
		if minor == 0 {
			return 0, 0, malformed("Transfer-Encoding in an HTTP/1.0 request")
		}
		if len(h.Values("Content-Length")) > 0 {
			return 0, 0, malformed("both Transfer-Encoding and Content-Length")
		}
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return 0, 0, malformed("unsupported Transfer-Encoding %q", trim(strings.Join(te, ", ")))
		}
		return Chunked, 0, nil
	}
	n, err := contentLength(h)
	return Sized, n, err
}

// ResponseFraming returns how the body of a response is framed: none for
// 1xx, 204 and 304 and for an answer to HEAD, else by Transfer-Encoding,
// Content-Length or the end of the connection.
func ResponseFraming(h Header, code int, head bool) (Framing, int64, error) {
	if head || code < 200 || code == 204 || code == 304 {
		return Sized, 0, nil
	}
	if te := h.Values("Transfer-Encoding"); len(te) > 0 {
		// Chunked framing only when chunked is the last coding applied.
		codings := strings.Split(strings.Join(te, ","), ",")
		if strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked") {
			return Chunked, 0, nil
		}
		return ToClose, 0, nil
	}
	if len(h.Values("Content-Length")) == 0 {
		return ToClose, 0, nil
	}
	n, err := contentLength(h)
	return Sized, n, err
}

// contentLength is the value of Content-Length (0 when absent): digits
// only, as net/http wants; repeated fields must be identical ("1, 1" in
// one field is an error, as a list there has no meaning).
func contentLength(h Header) (int64, error) {
	vs := h.Values("Content-Length")
	if len(vs) == 0 {
		return 0, nil
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return 0, malformed("conflicting Content-Length values %q and %q", trim(vs[0]), trim(v))
		}
	}
	v := vs[0]
	if v == "" || len(v) > 18 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, malformed("bad Content-Length %q", trim(v))
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, malformed("bad Content-Length %q", trim(v))
	}
	return n, nil
}

// Body returns a reader of a body framed by f (length n when Sized) on r.
// It returns io.EOF at the end of the body, and io.ErrUnexpectedEOF when the
// connection ends before it.
func Body(r *bufio.Reader, f Framing, n int64) io.Reader {
	switch f {
	case Chunked:
		return &chunkedReader{r: r}
	case ToClose:
		return r
	}
	if n == 0 {
		return eofReader{}
	}
	return &sizedReader{r: r, n: n}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

type sizedReader struct {
	r *bufio.Reader
	n int64
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	k, err := s.r.Read(p)
	s.n -= int64(k)
	if err == io.EOF && s.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && s.n == 0 {
		err = io.EOF
	}
	return k, err
}

// Bounds of the chunked coding's overhead.
const (
	// maxChunkLine bounds a chunk-size line and the trailer section.
	maxChunkLine = 4096
	// maxChunkExcess bounds the overhead (size lines and extensions) beyond
	// 16 bytes per chunk plus twice its data, as net/http does: a sender
	// may stream a byte per chunk, but not a kilobyte of extensions per byte.
	maxChunkExcess = 16 << 10
)

// chunkedReader decodes the chunked transfer coding (RFC 9112 section 7.1).
// Every line must end in CRLF (a bare LF is an error here, unlike in the
// header: RFC 9112 erratum 7633). Chunk extensions are checked against
// their grammar and ignored; trailer fields are checked as header fields
// and ignored.
type chunkedReader struct {
	r       *bufio.Reader
	n       int64 // bytes left in the current chunk
	inChunk bool  // a chunk's data was started: its CRLF is still to come
	excess  int64 // overhead beyond the allowance, see maxChunkExcess
	err     error
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.n == 0 {
		if err := c.next(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.err = err
	}
	return k, err
}

// next reads up to the start of the next chunk's data, or to the end of
// the body (io.EOF).
func (c *chunkedReader) next() error {
	if c.inChunk {
		var crlf [2]byte
		if _, err := io.ReadFull(c.r, crlf[:]); err != nil {
			return eofToUnexpected(err)
		}
		if string(crlf[:]) != "\r\n" {
			return malformed("missing CRLF after chunk data")
		}
		c.inChunk = false
	}
	line, err := readChunkLine(c.r, maxChunkLine)
	if err != nil {
		return err
	}
	size, ext := line, ""
	if i := strings.IndexByte(line, ';'); i >= 0 {
		size, ext = line[:i], line[i:]
	}
	// No white space after the size: RFC 9112 allows it before an
	// extension, net/http refuses it there and allows it at the end of the
	// line; refusing both keeps us the stricter of the two.
	if size == "" || len(size) > 15 || !isHex(size) {
		return malformed("bad chunk size %q", trim(line))
	}
	if !validChunkExt(ext) {
		return malformed("bad chunk extension in %q", trim(line))
	}
	n, err := strconv.ParseInt(size, 16, 64)
	if err != nil {
		return malformed("bad chunk size %q", trim(line))
	}
	c.excess = max(c.excess+int64(len(line))+4-16-2*n, 0)
	if c.excess > maxChunkExcess {
		return malformed("chunked body with too much overhead (chunk extensions)")
	}
	if n > 0 {
		c.n, c.inChunk = n, true
		return nil
	}
	for read := 0; ; { // trailer fields, up to the empty line
		line, err := readChunkLine(c.r, maxChunkLine-read)
		if err != nil {
			return err
		}
		if line == "" {
			return io.EOF
		}
		if _, err := parseField(line); err != nil {
			return err
		}
		read += len(line) + 2
	}
}

// readChunkLine reads a line of the chunked coding: at most limit bytes,
// ended by CRLF, with no other CR in it.
func readChunkLine(r *bufio.Reader, limit int) (string, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > limit+2 {
			return "", malformed("chunk line too long")
		}
		line = append(line, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", eofToUnexpected(err)
		}
		break
	}
	n := len(line)
	if n < 2 || line[n-2] != '\r' {
		return "", malformed("chunk line %q ends with a bare LF", trim(string(line[:n-1])))
	}
	line = line[:n-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return "", malformed("CR inside the chunk line %q", trim(string(line)))
	}
	return string(line), nil
}

// validChunkExt checks chunk extensions against RFC 9112 section 7.1.1:
// *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ).
func validChunkExt(ext string) bool {
	for {
		ext = trimOWS(ext)
		if ext == "" {
			return true
		}
		if ext[0] != ';' {
			return false
		}
		ext = trimOWS(ext[1:])
		name := tokenPrefix(ext)
		if name == "" {
			return false
		}
		ext = trimOWS(ext[len(name):])
		if ext == "" || ext[0] != '=' {
			continue
		}
		ext = trimOWS(ext[1:])
		if ext != "" && ext[0] == '"' {
			n, ok := quotedString(ext)
			if !ok {
				return false
			}
			ext = ext[n:]
			continue
		}
		v := tokenPrefix(ext)
		if v == "" {
			return false
		}
		ext = ext[len(v):]
	}
}

func trimOWS(s string) string { return strings.TrimLeft(s, " \t") }

// tokenPrefix is the longest prefix of s made of token characters.
func tokenPrefix(s string) string {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return s[:i]
}

// quotedString returns the length of the quoted-string at the start of s.
func quotedString(s string) (int, bool) {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
			if i == len(s) || !isQuotable(s[i]) {
				return 0, false
			}
		case !isQuotable(c):
			return 0, false
		}
	}
	return 0, false
}

// isQuotable reports the bytes allowed in a quoted-string: HTAB, SP,
// visible characters and obs-text.
func isQuotable(c byte) bool { return c == '\t' || c >= ' ' && c != 0x7f }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// eofToUnexpected turns the end of input inside a chunked body into
// io.ErrUnexpectedEOF.
func eofToUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// LimitBody returns a reader of r that fails with ErrBodyTooLarge once more
// than limit bytes came.
func LimitBody(r io.Reader, limit int64) io.Reader {
	return &limitReader{r: r, left: limit}
}

type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, ErrBodyTooLarge
	}
	if int64(len(p)) > l.left { // one byte more than allowed shows the overflow
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n + int(l.left), ErrBodyTooLarge
	}
	return n, err
}

// WriteHead writes a start line, the header fields and the empty line.
func WriteHead(w *bufio.Writer, start string, h Header) {
	w.WriteString(start)
	w.WriteString("\r\n")
	for _, f := range h {
		w.WriteString(f.Name)
		w.WriteString(": ")
		w.WriteString(f.Value)
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

// StatusText is the reason phrase of the codes horust sends and meets.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 204:
		return "No Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 413:
		return "Request Entity Too Large"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(code)
}

// KeepAlive reports whether a connection stays open after a message of
// HTTP/1.minor with header h.
func KeepAlive(minor int, h Header) bool {
	if h.HasToken("Connection", "close") {
		return false
	}
	return minor >= 1 || h.HasToken("Connection", "keep-alive")
}
