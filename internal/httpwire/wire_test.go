package httpwire

import (
	"bufio"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// rest is what follows every message in these tests: a reader must stop
// right before it.
const rest = "NEXT"

func TestChunkedBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string // the chunked body; rest is appended
		want    string // the decoded body
		wantErr error  // nil, io.ErrUnexpectedEOF, or errMalformed for a *MalformedError
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"several chunks", "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", "hello", nil},
		{"hex sizes in either case", "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij", nil},
		{"an empty body", "0\r\n\r\n", "", nil},
		{"extensions are ignored", "5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello", nil},
		{"white space before an extension", "5 ;x\r\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"white space after the size", "5 \r\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"trailer fields are read and ignored", "5\r\nhello\r\n0\r\nX-One: 1\r\nX-Two: 2\r\n\r\n", "hello", nil},
		{"a quoted extension value", "5;a=\"x \\\"y\\\" z\";b\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"a bare LF after the size", "5\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"a bare LF after the data", "5\r\nhello\n0\r\n\r\n", "hello", errMalformed},
		{"a bare LF ending the trailer", "5\r\nhello\r\n0\r\n\n", "hello", errMalformed},
		{"a CR inside the size line", "5\r;x\r\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"a control character in an extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"an extension without a name", "5;=x\r\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"an unterminated quoted extension", "5;a=\"x\r\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"a bad trailer field", "5\r\nhello\r\n0\r\nno colon\r\n\r\n", "hello", errMalformed},
		{"a control character in a trailer", "5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n", "hello", errMalformed},
		{"extensions outweighing the data", strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n", strings.Repeat("x", 16), errMalformed},
		{"cut in the data", "5\r\nhel", "hel", io.ErrUnexpectedEOF},
		{"cut before the CRLF after the data", "5\r\nhello", "hello", io.ErrUnexpectedEOF},
		{"cut before the last chunk", "5\r\nhello\r\n", "hello", io.ErrUnexpectedEOF},
		{"cut in a size line", "5", "", io.ErrUnexpectedEOF},
		{"cut in the trailer", "0\r\nX: 1\r\n", "", io.ErrUnexpectedEOF},
		{"a size that is not hex", "zz\r\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"an empty size line", "\r\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"a negative size", "-1\r\nx\r\n0\r\n\r\n", "", errMalformed},
		{"a size of 16 hex digits", "1000000000000000\r\nx\r\n0\r\n\r\n", "", errMalformed},
		{"data longer than its size", "2\r\nhello\r\n0\r\n\r\n", "he", errMalformed},
		{"a size line over 4 KiB", "1;" + strings.Repeat("x", 5000) + "\r\nx\r\n0\r\n\r\n", "", errMalformed},
		{"a trailer line over 4 KiB", "0\r\nX: " + strings.Repeat("x", 5000) + "\r\n\r\n", "", errMalformed},
		{"a size with a plus sign", "+5\r\nhello\r\n0\r\n\r\n", "", errMalformed},
		{"trailer lines over 4 KiB in all", "0\r\n" + strings.Repeat("X: "+strings.Repeat("x", 100)+"\r\n", 50) + "\r\n", "", errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := tc.in
			if tc.wantErr == nil {
				input += rest
			}
			br := bufio.NewReaderSize(strings.NewReader(input), 16) // small: lines span buffers
			checkBody(t, br, Body(br, Chunked, 0), tc.want, tc.wantErr)
		})
	}
}

func TestSizedBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		n       int64
		want    string
		wantErr error
	}{
		{"the whole body", "hello" + rest, 5, "hello", nil},
		{"no body", rest, 0, "", nil},
		{"cut short", "hel", 5, "hel", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.in))
			checkBody(t, br, Body(br, Sized, tc.n), tc.want, tc.wantErr)
		})
	}
}

func TestReadHead(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: b\r\n\r\n"
	long := strings.Repeat("v", 1000)
	for _, tc := range []struct {
		name      string
		in        string // rest is appended
		limit     int
		bufSize   int // of the bufio.Reader; 0: 4096
		wantStart string
		wantN     int // header fields
		wantErr   error
	}{
		{"a start line and fields", head, 1 << 10, 0, "HTTP/1.1 200 OK", 2, nil},
		{"no fields", "HTTP/1.1 204 No Content\r\n\r\n", 1 << 10, 0, "HTTP/1.1 204 No Content", 0, nil},
		{"empty lines before the start line are skipped", "\r\n\n" + head, 1 << 10, 0, "HTTP/1.1 200 OK", 2, nil},
		{"bare LF line ends", "HTTP/1.1 200 OK\nA: b\n\n", 1 << 10, 0, "HTTP/1.1 200 OK", 1, nil},
		// The limit counts the lines and their CRLFs, not the final empty line.
		{"exactly at the limit", head, len(head) - 2, 0, "HTTP/1.1 200 OK", 2, nil},
		{"one byte over the limit", head, len(head) - 3, 0, "", 0, ErrHeaderTooLarge},
		{"a line longer than the read buffer", "HTTP/1.1 200 OK\r\nX-Long: " + long + "\r\n\r\n", 2 << 10, 16, "HTTP/1.1 200 OK", 1, nil},
		{"a line over the limit and the read buffer", "HTTP/1.1 200 OK\r\nX-Long: " + long + "\r\n\r\n", 512, 16, "", 0, ErrHeaderTooLarge},
		{"a start line over the limit", "HTTP/1.1 200 " + long + "\r\n\r\n", 512, 0, "", 0, ErrHeaderTooLarge},
		{"many short fields over the limit", "HTTP/1.1 200 OK\r\n" + strings.Repeat("A: b\r\n", 200) + "\r\n", 512, 0, "", 0, ErrHeaderTooLarge},
		{"no input at all", "", 1 << 10, 0, "", 0, io.EOF},
		{"input ending in the start line", "HTTP/1.1 2", 1 << 10, 0, "", 0, io.ErrUnexpectedEOF},
		{"input ending in the fields", "HTTP/1.1 200 OK\r\nA: b\r\n", 1 << 10, 0, "", 0, io.ErrUnexpectedEOF},
		{"input ending after empty lines", "\r\n\r\n", 1 << 10, 0, "", 0, io.ErrUnexpectedEOF},
		{"a folded line", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", 1 << 10, 0, "", 0, errMalformed},
		{"a line without a colon", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 1 << 10, 0, "", 0, errMalformed},
		{"a space in a field name", "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 1 << 10, 0, "", 0, errMalformed},
		{"a control character in a value", "HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n", 1 << 10, 0, "", 0, errMalformed},
		{"a control character in the start line", "HTTP/1.1 200 \x7fOK\r\n\r\n", 1 << 10, 0, "", 0, errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := tc.in
			if tc.wantErr == nil {
				input += rest
			}
			size := tc.bufSize
			if size == 0 {
				size = 4096
			}
			br := bufio.NewReaderSize(strings.NewReader(input), size)
			start, h, err := ReadHead(br, tc.limit)
			checkErr(t, err, tc.wantErr)
			if start != tc.wantStart || len(h) != tc.wantN {
				t.Errorf("start %q with %d fields, want %q with %d", start, len(h), tc.wantStart, tc.wantN)
			}
			if tc.wantErr == nil {
				if left, _ := io.ReadAll(br); string(left) != rest {
					t.Errorf("after the head, %q is left, want %q", left, rest)
				}
			}
		})
	}

	t.Run("a body of MaxInt64 bytes under LimitBody", func(t *testing.T) {
		br := bufio.NewReader(strings.NewReader("hello" + rest))
		checkBody(t, br, LimitBody(Body(br, Sized, 5), math.MaxInt64), "hello", nil)
	})

	t.Run("an endless line stops at the limit", func(t *testing.T) {
		// 16 MiB with no newline: reading it all would take a while and
		// hold it in memory.
		endless := io.LimitReader(repeatReader('x'), 16<<20)
		counted := &countingReader{r: endless}
		_, _, err := ReadHead(bufio.NewReader(counted), 64<<10)
		checkErr(t, err, ErrHeaderTooLarge)
		if counted.n > 128<<10 {
			t.Errorf("read %d bytes for a 64 KiB limit", counted.n)
		}
	})
}

// errMalformed stands for any *MalformedError in the tables.
var errMalformed = errors.New("malformed")

// checkErr fails the test unless err is want (errMalformed: any
// *MalformedError).
// checkBody reads body whole and checks what it gave, the error, and
// that exactly rest is left in br after a body read without error.
func checkBody(t *testing.T, br *bufio.Reader, body io.Reader, want string, wantErr error) {
	t.Helper()
	got, err := io.ReadAll(body)
	if string(got) != want {
		t.Errorf("body %q, want %q", got, want)
	}
	checkErr(t, err, wantErr)
	if wantErr == nil {
		if left, _ := io.ReadAll(br); string(left) != rest {
			t.Errorf("after the body, %q is left, want %q", left, rest)
		}
	}
}

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	if want == errMalformed {
		var merr *MalformedError
		if !errors.As(err, &merr) {
			t.Errorf("error %v, want a *MalformedError", err)
		}
		return
	}
	if !errors.Is(err, want) || (want == nil && err != nil) {
		t.Errorf("error %v, want %v", err, want)
	}
}

// repeatReader is an endless stream of one byte.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// countingReader counts what was read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestResponseFraming(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h     Header
		code  int
		head  bool
		want  Framing
		n     int64
		isErr bool
	}{
		{name: "Content-Length", h: Header{{"Content-Length", "12"}}, code: 200, want: Sized, n: 12},
		{name: "chunked", h: Header{{"Transfer-Encoding", "chunked"}}, code: 200, want: Chunked},
		{name: "chunked after gzip", h: Header{{"Transfer-Encoding", "gzip, chunked"}}, code: 200, want: Chunked},
		{name: "chunked not last reads to the close", h: Header{{"Transfer-Encoding", "chunked, gzip"}}, code: 200, want: ToClose},
		{name: "neither reads to the close", code: 200, want: ToClose},
		{name: "204 has no body", h: Header{{"Content-Length", "5"}}, code: 204, want: Sized},
		{name: "304 has no body", code: 304, want: Sized},
		{name: "an answer to HEAD has no body", h: Header{{"Content-Length", "5"}}, code: 200, head: true, want: Sized},
		{name: "1xx has no body", code: 103, want: Sized},
		{name: "a bad Content-Length", h: Header{{"Content-Length", "x"}}, code: 200, isErr: true},
		{name: "conflicting Content-Lengths", h: Header{{"Content-Length", "1"}, {"Content-Length", "2"}}, code: 200, isErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, n, err := ResponseFraming(tc.h, tc.code, tc.head)
			if (err != nil) != tc.isErr {
				t.Fatalf("err %v, want error %v", err, tc.isErr)
			}
			if err == nil && (f != tc.want || n != tc.n) {
				t.Fatalf("got %v %d, want %v %d", f, n, tc.want, tc.n)
			}
		})
	}
}

func TestRequestFraming(t *testing.T) {
	for _, tc := range []struct {
		name  string
		minor int
		h     Header
		want  Framing
		n     int64
		isErr bool
	}{
		{name: "no body", minor: 1, want: Sized},
		{name: "Content-Length", minor: 1, h: Header{{"Content-Length", "12"}}, want: Sized, n: 12},
		{name: "the same Content-Length twice", minor: 1, h: Header{{"Content-Length", "3"}, {"Content-Length", "3"}}, want: Sized, n: 3},
		{name: "chunked", minor: 1, h: Header{{"Transfer-Encoding", "chunked"}}, want: Chunked},
		{name: "chunked on HTTP/1.0", minor: 0, h: Header{{"Transfer-Encoding", "chunked"}}, isErr: true},
		{name: "a list in Content-Length", minor: 1, h: Header{{"Content-Length", "1, 1"}}, isErr: true},
		{name: "a signed Content-Length", minor: 1, h: Header{{"Content-Length", "+1"}}, isErr: true},
		{name: "an empty Content-Length", minor: 1, h: Header{{"Content-Length", ""}}, isErr: true},
		{name: "a Content-Length past int64", minor: 1, h: Header{{"Content-Length", "99999999999999999999"}}, isErr: true},
		{name: "conflicting Content-Lengths", minor: 1, h: Header{{"Content-Length", "1"}, {"Content-Length", "2"}}, isErr: true},
		{name: "both framings", minor: 1, h: Header{{"Transfer-Encoding", "chunked"}, {"Content-Length", "2"}}, isErr: true},
		{name: "gzip", minor: 1, h: Header{{"Transfer-Encoding", "gzip, chunked"}}, isErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, n, err := RequestFraming(tc.minor, tc.h)
			if (err != nil) != tc.isErr {
				t.Fatalf("err %v, want error %v", err, tc.isErr)
			}
			if err == nil && (f != tc.want || n != tc.n) {
				t.Fatalf("got %v %d, want %v %d", f, n, tc.want, tc.n)
			}
		})
	}
}
